"""A resident's record on request: the full export, and erasure.

Export gathers what every domain holds about one resident through their own functions
(each read audited as usual). Erasure runs each domain's own erasure step
(``registry.privacy``, ``care.privacy``, ``stream.hub.forget``, ``auth.users``,
``ingest.privacy``, ``telemetry.sqlite``, the demo SMS outbox) in ONE transaction, so a
failure leaves the record whole: personal data and telemetry go, alerts stay as
anonymous facts so the district's statistics keep their counts.

The audit log is the one place the resident's id survives: it is append-only by design
(who read or changed a record must stay accountable after the record is gone), holds
no name, phone or address, and the erasure itself is written there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from eldercare_cloud.audit import AuditLog
from eldercare_cloud.auth.models import Principal
from eldercare_cloud.auth.users import unlink_resident
from eldercare_cloud.care import privacy as care_privacy
from eldercare_cloud.care.service import CareService
from eldercare_cloud.clock import Clock, iso
from eldercare_cloud.db import Database
from eldercare_cloud.errors import InvalidRequestError
from eldercare_cloud.ingest import privacy as ingest_privacy
from eldercare_cloud.notify import sms_outbox
from eldercare_cloud.registry import RegistryService
from eldercare_cloud.registry import privacy as registry_privacy
from eldercare_cloud.stream.hub import forget
from eldercare_cloud.telemetry import sqlite as telemetry_sqlite

#: telemetry rows exported per device at most (the export is a JSON document)
EXPORT_TELEMETRY_PER_DEVICE = 50_000


class EraseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: why (a request by the resident or their guardian, a court order...): audited
    reason: str = Field(min_length=3, max_length=300)
    #: the resident's name, typed again: an erasure cannot be undone
    confirm_name: str = Field(min_length=1, max_length=64)


class ErasureReport(BaseModel):
    model_config = ConfigDict(frozen=True)
    resident_id: str
    erased_at: datetime
    alerts_anonymized: int
    telemetry_rows_deleted: int
    devices_unbound: int
    contacts_deleted: int
    household_cleared: bool


class PrivacyService:
    def __init__(self, db: Database, clock: Clock, audit: AuditLog,
                 registry: RegistryService, care: CareService, telemetry: Any,
                 outbox_enabled: bool) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._registry = registry
        self._care = care
        #: reads telemetry per device (``IngestStore.telemetry``), or None without ingest
        self._telemetry = telemetry
        self._outbox = outbox_enabled

    async def export(self, p: Principal, resident_id: str) -> dict[str, Any]:
        resident = await self._registry.get_resident(p, resident_id, "export on request")
        household = await self._registry.get_household(p, resident.household_id)
        contacts = await self._registry.list_contacts(p, resident_id)
        devices = await self._registry.list_devices(p, household_id=resident.household_id)
        alerts = [await self._care.get_alert(p, a.id)
                  for a in await self._care.list_alerts(p, resident_id=resident_id,
                                                        limit=10_000)]
        telemetry: dict[str, Any] = {}
        if self._telemetry is not None:
            for d in devices:
                if d.resident_id in (None, resident_id):
                    rows = await self._telemetry(d.id, None, EXPORT_TELEMETRY_PER_DEVICE)
                    telemetry[d.id] = [r.model_dump(mode="json") for r in rows]
        audit = await self._audit.entries(p.tenant, record_type="resident",
                                          record_id=resident_id, limit=1000)
        await self._audit.record(tenant=p.tenant, actor=p.actor, actor_name=p.username,
                                 role=p.role.value, action="export_resident",
                                 record_type="resident", record_id=resident_id,
                                 reason="full record export on request")
        return {
            "exported_at": iso(self._clock.now()),
            "resident": resident.model_dump(mode="json"),
            "household": household.model_dump(mode="json"),
            "contacts": [c.model_dump(mode="json") for c in contacts],
            "devices": [d.model_dump(mode="json") for d in devices],
            "alerts": [a.model_dump(mode="json") for a in alerts],
            "telemetry": telemetry,
            "audit": [e.model_dump(mode="json") for e in audit],
        }

    async def erase(self, p: Principal, resident_id: str, body: EraseRequest) -> ErasureReport:
        resident = await self._registry.get_resident(p, resident_id, "erasure on request")
        if body.confirm_name.strip() != resident.name:
            raise InvalidRequestError("confirm_name does not match the resident's name",
                                      code="confirm_mismatch")
        now = self._clock.now()
        async with self._db.transaction() as conn:
            erased = await registry_privacy.erase_resident(conn, resident_id, iso(now))
            alert_ids = await care_privacy.alerts_of(
                conn, resident_id, erased.household_id if erased.household_emptied else None,
                erased.device_ids)
            await care_privacy.anonymize(conn, alert_ids, resident_id)
            await forget(conn, alert_ids, resident_id)
            await unlink_resident(conn, resident_id)
            await ingest_privacy.erase(conn, erased.device_ids, erased.phones)
            deleted = await telemetry_sqlite.erase_devices(conn, erased.device_ids)
            if self._outbox:
                await sms_outbox.erase(conn, erased.phones, erased.identifiers)
        await self._audit.record(tenant=p.tenant, actor=p.actor, actor_name=p.username,
                                 role=p.role.value, action="erase_resident",
                                 record_type="resident", record_id=resident_id,
                                 reason=body.reason)
        self._care.committed()
        return ErasureReport(resident_id=resident_id, erased_at=now.astimezone(UTC),
                             alerts_anonymized=len(alert_ids), telemetry_rows_deleted=deleted,
                             devices_unbound=len(erased.device_ids),
                             contacts_deleted=len(erased.contact_ids),
                             household_cleared=erased.household_emptied)
