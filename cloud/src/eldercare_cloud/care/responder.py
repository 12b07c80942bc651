"""What a responder's phone page shows and does, behind a signed link.

The responder sees what happened, where, and who else was asked. Medical notes and
the key-safe code are for the one who accepted: they are the person going in. Every
view is audited as a read of the resident's record, and the key-safe read separately.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict

from eldercare_cloud.audit import AuditLog
from eldercare_cloud.care import alerts as A
from eldercare_cloud.care.links import verify_link
from eldercare_cloud.care.models import (
    KIND_ZH,
    UNASSIGNED_STATES,
    AlertKind,
    AlertPosition,
    AlertStatus,
    ResolveRequest,
    Severity,
)
from eldercare_cloud.care.service import CareService
from eldercare_cloud.clock import Clock, opt_parse, parse_iso
from eldercare_cloud.db import Database
from eldercare_cloud.errors import NotFoundError, PermissionDeniedError
from eldercare_cloud.notify import messages
from eldercare_cloud.registry import RegistryService
from eldercare_cloud.registry.models import Coordinates, KeySafe

RESPONDER_ACTIONS = ("accept", "decline", "en_route", "on_scene", "resolve")


class ResponderPerson(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    relation: str
    status: str


class ResponderResident(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    age: int | None
    sex: str | None
    address: str
    coordinates: Coordinates | None
    room: str | None


class ResponderMedical(BaseModel):
    model_config = ConfigDict(frozen=True)
    conditions: list[str]
    medications: list[str]
    allergies: list[str]
    mobility: str
    cognitive_impairment: str
    language: str
    phone: str | None


class ResponderPosition(BaseModel):
    """Where the person was (a GPS watch), with the text of the SMS and a map link."""

    model_config = ConfigDict(frozen=True)
    position: AlertPosition
    #: seconds between the fix and now (None: the fix time is unknown)
    age_s: int | None
    text_zh: str
    map_url: str


class ResponderView(BaseModel):
    model_config = ConfigDict(frozen=True)
    alert_id: str
    kind: AlertKind
    kind_text: str
    severity: Severity
    status: AlertStatus
    raised_at: datetime | None
    opened_at: datetime
    resident: ResponderResident | None
    you: ResponderPerson
    you_accepted: bool
    accepted_by: str | None
    others: list[ResponderPerson]
    actions: list[str]
    medical: ResponderMedical | None
    has_key_safe: bool
    where: ResponderPosition | None = None


class ResponderService:
    def __init__(self, db: Database, clock: Clock, registry: RegistryService,
                 care: CareService, audit: AuditLog, secret_key: str, tenant: str) -> None:
        self._db = db
        self._clock = clock
        self._registry = registry
        self._care = care
        self._audit = audit
        self._secret = secret_key
        self._tenant = tenant

    def contact_for(self, alert_id: str, token: str) -> str:
        return verify_link(self._secret, token, alert_id, self._clock.now())

    async def view(self, alert_id: str, token: str) -> ResponderView:
        contact_id = self.contact_for(alert_id, token)
        return await self._view(alert_id, contact_id)

    async def act(self, alert_id: str, token: str, action: str,
                  resolve: ResolveRequest | None = None) -> ResponderView:
        contact_id = self.contact_for(alert_id, token)
        await self._care.responder_act(alert_id, contact_id, action, resolve)
        return await self._view(alert_id, contact_id)

    async def key_safe(self, alert_id: str, token: str) -> KeySafe:
        contact_id = self.contact_for(alert_id, token)
        row = await A.load(self._db.conn, alert_id)
        if row is None:
            raise NotFoundError(f"alert {alert_id} not found")
        if row["assigned_contact_id"] != contact_id or AlertStatus(row["status"]) in (
                AlertStatus.RESOLVED, AlertStatus.CLOSED):
            raise PermissionDeniedError("the key-safe code is only for the responder who"
                                        " accepted, while the alert is open")
        key = await self._registry.key_safe(row["household_id"]) if row["household_id"] else None
        if key is None:
            raise NotFoundError("this household has no key safe on record")
        contact = await self._registry.contact(contact_id)
        await self._audit.record(tenant=self._tenant, actor=f"contact:{contact_id}",
                                 actor_name=contact.name if contact else contact_id,
                                 role="responder", action="read_key_safe",
                                 record_type="household", record_id=row["household_id"],
                                 reason=f"accepted alert {alert_id}")
        return key

    async def _view(self, alert_id: str, contact_id: str) -> ResponderView:
        conn = self._db.conn
        row = await A.load(conn, alert_id)
        if row is None:
            raise NotFoundError(f"alert {alert_id} not found")
        offers = await A.offers_of(conn, alert_id)
        mine = next((o for o in offers if o.contact_id == contact_id), None)
        if mine is None:
            raise NotFoundError(f"alert {alert_id} not found")
        status = AlertStatus(row["status"])
        accepted = row["assigned_contact_id"] == contact_id
        accepted_by = next((o.name for o in offers
                            if o.contact_id == row["assigned_contact_id"]), None)
        resident = None
        medical = None
        has_key_safe = False
        if row["resident_id"]:
            r = await self._registry.resident_unscoped(row["resident_id"])
            if r is not None:
                household = await self._db.conn.execute(
                    "SELECT latitude, longitude, key_safe FROM households WHERE id = ?",
                    (r.household_id,))
                h = await household.fetchone()
                coords = (Coordinates(latitude=h["latitude"], longitude=h["longitude"])
                          if h is not None and h["latitude"] is not None else None)
                has_key_safe = h is not None and h["key_safe"] is not None
                resident = ResponderResident(name=r.name, age=_age(r.birth_date,
                                                                   self._clock.now()),
                                             sex=r.sex.value if r.sex else None,
                                             address=r.address, coordinates=coords,
                                             room=row["room"])
                if accepted:
                    medical = ResponderMedical(
                        conditions=r.conditions, medications=r.medications,
                        allergies=r.allergies, mobility=r.mobility.value,
                        cognitive_impairment=r.cognitive_impairment.value,
                        language=r.language, phone=r.phone)
                await self._audit.record(
                    tenant=self._tenant, actor=f"contact:{contact_id}", actor_name=mine.name,
                    role="responder", action="read_responder_view", record_type="resident",
                    record_id=r.id, reason=f"offered alert {alert_id}")
        return ResponderView(
            alert_id=alert_id, kind=row["kind"], kind_text=KIND_ZH[AlertKind(row["kind"])],
            severity=row["severity_override"] or row["severity"], status=status,
            raised_at=opt_parse(row["raised_at"]), opened_at=parse_iso(row["opened_at"]),
            resident=resident,
            you=ResponderPerson(name=mine.name, relation=mine.relation, status=mine.status),
            you_accepted=accepted, accepted_by=accepted_by,
            others=[ResponderPerson(name=o.name, relation=o.relation, status=o.status)
                    for o in offers if o.contact_id != contact_id],
            actions=_actions(status, accepted, row["assigned_contact_id"] is not None,
                             mine.status),
            medical=medical, has_key_safe=has_key_safe and accepted,
            where=_where(A.position_of(row), self._clock.now()))


def _where(pos: AlertPosition | None, now: datetime) -> ResponderPosition | None:
    if pos is None:
        return None
    age = int((now - pos.at).total_seconds()) if pos.at is not None else None
    return ResponderPosition(position=pos, age_s=max(0, age) if age is not None else None,
                             text_zh=messages.position_text(pos, now),
                             map_url=messages.map_url(pos))


def _actions(status: AlertStatus, mine: bool, assigned: bool, offer_status: str) -> list[str]:
    if status in (AlertStatus.RESOLVED, AlertStatus.CLOSED):
        return []
    if mine:
        out = []
        if status in (AlertStatus.ASSIGNED, AlertStatus.CANCEL_REQUESTED):
            out.append("en_route")
        if status in (AlertStatus.ASSIGNED, AlertStatus.EN_ROUTE, AlertStatus.CANCEL_REQUESTED):
            out.append("on_scene")
        return [*out, "resolve"]
    if assigned or status not in UNASSIGNED_STATES:
        return []
    return ["accept"] if offer_status == "declined" else ["accept", "decline"]


def _age(birth: date | None, now: datetime) -> int | None:
    if birth is None:
        return None
    today = now.date()
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
