"""What the operator console needs beyond the care core's API: fleet health, the care
map, a family member's view of their elder (read models), and dispatching a responder.

These are aggregates over what other components own (the registry's households and
devices, ingest's gateway records and test events, the care core's open alerts and
activity watch), read in a few scoped queries instead of one audited resident card per
household. Every query applies the caller's scope in SQL (``auth.scope``), so a
household outside it is never fetched. The only writes are the audit record of a
family member's read and a dispatch.

Dispatch is the operator's own step beside the ladder: after a phone call ("I can go")
the operator sends one named contact the same signed link the ladder would, in one
transaction with its timeline entry and stream events, like every alert change.

Ingest's ``gateways`` and ``events`` tables are read directly (one query each instead of
a call per gateway); ``last_health`` is decoded with the protocols model, as ingest
stored it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from eldercare_cloud.api.deps import CurrentUser, ServicesDep, roles
from eldercare_cloud.auth.models import Principal, Role
from eldercare_cloud.auth.scope import alert_clause, district_clause, in_clause, resident_clause
from eldercare_cloud.care import alerts as A
from eldercare_cloud.care.links import link_token, link_url
from eldercare_cloud.care.maintenance import SELF_TEST_MAX_AGE, overdue
from eldercare_cloud.care.models import (
    MAINTENANCE_ALERTS,
    OPEN_STATES,
    UNASSIGNED_STATES,
    AlertKind,
    AlertPosition,
    AlertPublic,
    AlertStatus,
    PositionSource,
    Severity,
)
from eldercare_cloud.clock import iso, opt_parse
from eldercare_cloud.db import Connection
from eldercare_cloud.errors import ConflictError, InvalidRequestError, NotFoundError
from eldercare_cloud.notify import messages
from eldercare_cloud.notify.outbox import enqueue
from eldercare_cloud.registry.models import (
    CommunityPublic,
    ContactChannel,
    ContactPublic,
    Coordinates,
)
from eldercare_cloud.telemetry import sqlite as telemetry_sqlite
from eldercare_protocols.catalogue import CATALOGUE
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import DeviceStatus, GatewayState

log = logging.getLogger(__name__)

router = APIRouter(prefix="/console", tags=["console"])

#: below this a battery needs changing when the catalogue gives no threshold of its own
DEFAULT_LOW_BATTERY = 20.0
_SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.HIGH: 1, Severity.MEDIUM: 2, Severity.LOW: 3}


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class DeviceProblem(StrEnum):
    OFFLINE = "offline"
    LOW_BATTERY = "low_battery"
    #: no walk test or self-test within the window (or ever)
    NOT_TESTED = "not_tested"
    #: the gateway is online but its health report does not mention the device
    NOT_REPORTED = "not_reported"
    #: the device's own state is unknown because its gateway is offline
    GATEWAY_OFFLINE = "gateway_offline"


class GatewayHealth(_Out):
    id: str
    label: str
    household_id: str | None
    community_id: str | None
    district_id: str | None
    address: str | None
    registered: bool
    #: False for a revoked gateway: its Last Will never comes (the broker deleted its
    #: account), so the cloud records it offline at the revoke
    online: bool | None
    #: when an installer revoked it (the broker account is gone); not a fault to chase
    revoked_at: datetime | None = None
    last_seen: datetime | None
    last_health_at: datetime | None
    last_will_at: datetime | None
    version: str | None
    #: records waiting in the gateway's outbox by lane, from its last health report
    outbox: dict[str, int]
    oldest_unacked_s: float | None


class DeviceHealth(_Out):
    id: str
    type: str
    gateway_id: str | None
    household_id: str | None
    community_id: str | None
    resident_id: str | None
    resident_name: str | None
    address: str | None
    room: str | None
    online: bool | None
    battery: float | None
    rssi: int | None
    last_seen: datetime | None
    last_test_at: datetime | None
    problems: list[DeviceProblem]


class FleetSummary(_Out):
    gateways: int
    #: offline gateways that were not revoked
    gateways_offline: int
    gateways_revoked: int = 0
    devices: int
    devices_offline: int
    low_battery: int
    not_tested: int


class FleetHealth(_Out):
    generated_at: datetime
    tested_within_days: int
    summary: FleetSummary
    gateways: list[GatewayHealth]
    devices: list[DeviceHealth]


class MapState(StrEnum):
    ALERT = "alert"
    DEVICE = "device"
    OK = "ok"


class MapResident(_Out):
    id: str
    name: str


class HouseholdPin(_Out):
    id: str
    community_id: str
    district_id: str
    address: str
    coordinates: Coordinates | None
    residents: list[MapResident]
    state: MapState
    open_alerts: int
    top_severity: Severity | None
    alert_ids: list[str]
    device_problems: int
    last_activity_at: datetime | None


class WatchPin(_Out):
    """Where a resident wearing a GPS watch was last seen (its newest position reading)."""

    device_id: str
    household_id: str
    community_id: str
    resident_id: str | None
    resident_name: str | None
    position: AlertPosition


class CareMap(_Out):
    generated_at: datetime
    communities: list[CommunityPublic]
    households: list[HouseholdPin]
    #: residents' watches with a position in the last WATCH_POSITION_WITHIN
    watches: list[WatchPin] = []


class ElderStatus(_Out):
    """What a relative sees first: did anything move today, are the devices all right,
    is anything happening now."""

    resident_id: str
    name: str
    address: str
    last_activity_at: datetime | None
    gateway_online: bool | None
    devices_ok: bool
    device_problems: list[DeviceHealth]
    open_alerts: list[AlertPublic]


# -- queries -------------------------------------------------------------------------------

def _low_battery_threshold(device_type: str) -> float:
    dtype = CATALOGUE.get(device_type)
    measurement = dtype.measurements.get("battery") if dtype else None
    if measurement is not None and measurement.normal_low is not None:
        return float(measurement.normal_low)
    return DEFAULT_LOW_BATTERY


def _health(raw: str | None, gateway_id: str) -> GatewayState | None:
    if not raw:
        return None
    try:
        return GatewayState.model_validate_json(raw)
    except ValidationError as exc:
        log.warning("gateway %s: stored health report does not decode (%s): %.200s",
                    gateway_id, exc.error_count(), raw)
        return None


Scope = tuple[str, list[Any]]


def _staff_scope(p: Principal) -> Scope:
    """Households in the districts the caller works in (as a clause on ``c.district_id``)."""
    return district_clause(p, "c.district_id")


async def _gateways(conn: Connection, scope: Scope) -> list[GatewayHealth]:
    clause, params = scope
    cur = await conn.execute(
        "SELECT b.id, b.label, b.household_id, h.address, h.community_id, c.district_id,"
        " g.id AS registered, g.online, g.last_seen, g.last_health_at, g.last_will_at,"
        " g.last_health, g.version, w.revoked_at"
        " FROM gateway_bindings b LEFT JOIN households h ON h.id = b.household_id"
        " LEFT JOIN communities c ON c.id = h.community_id"
        " LEFT JOIN gateways g ON g.id = b.id"
        " LEFT JOIN care_gateway_watch w ON w.gateway_id = b.id"
        f" WHERE {clause} ORDER BY b.id", params)
    out = []
    for r in await cur.fetchall():
        health = _health(r["last_health"], r["id"])
        revoked = r["revoked_at"] is not None
        out.append(GatewayHealth(
            id=r["id"], label=r["label"], household_id=r["household_id"],
            community_id=r["community_id"], district_id=r["district_id"], address=r["address"],
            registered=r["registered"] is not None,
            # never heard from (no message, no Last Will): unknown, not "offline"; revoked:
            # offline whatever its last retained birth said
            online=False if revoked else None if r["registered"] is None or (
                r["last_seen"] is None and r["last_will_at"] is None) else bool(r["online"]),
            revoked_at=opt_parse(r["revoked_at"]),
            last_seen=opt_parse(r["last_seen"]), last_health_at=opt_parse(r["last_health_at"]),
            last_will_at=opt_parse(r["last_will_at"]), version=r["version"],
            outbox={str(k): v for k, v in health.outbox.items()} if health else {},
            oldest_unacked_s=health.oldest_unacked_s if health else None))
    return out


async def _states(conn: Connection,
                  gateway_ids: list[str]) -> dict[str, dict[str, DeviceStatus]]:
    clause, params = in_clause("id", gateway_ids)
    cur = await conn.execute(f"SELECT id, last_health FROM gateways WHERE {clause}", params)
    out: dict[str, dict[str, DeviceStatus]] = {}
    for r in await cur.fetchall():
        health = _health(r["last_health"], r["id"])
        out[r["id"]] = dict(health.devices) if health else {}
    return out


async def _last_tests(conn: Connection, device_ids: list[str]) -> dict[str, datetime]:
    """The newest walk test (test=1) or self-test per device, from what ingest committed."""
    out: dict[str, datetime] = {}
    for i in range(0, len(device_ids), 500):
        clause, params = in_clause("device_id", device_ids[i:i + 500])
        cur = await conn.execute(
            "SELECT device_id, MAX(COALESCE(device_ts, gateway_ts)) FROM events"
            f" WHERE {clause} AND (test = 1 OR kind = 'self_test') GROUP BY device_id", params)
        for device_id, ts in await cur.fetchall():
            parsed = opt_parse(ts)
            if parsed is not None:
                out[str(device_id)] = parsed
    return out


async def _devices(conn: Connection, scope: Scope, gateways: list[GatewayHealth],
                   now: datetime, tested_within: timedelta,
                   household_ids: list[str] | None = None) -> list[DeviceHealth]:
    clause, params = scope
    sql = ("SELECT d.id, d.type, d.gateway_id, d.household_id, h.community_id, d.resident_id,"
           " r.name AS resident_name, h.address, d.room"
           " FROM devices d JOIN households h ON h.id = d.household_id"
           " JOIN communities c ON c.id = h.community_id"
           " LEFT JOIN residents r ON r.id = d.resident_id"
           f" WHERE {clause}")
    if household_ids is not None:
        hh_clause, hh_params = in_clause("d.household_id", household_ids)
        sql += f" AND {hh_clause}"
        params = [*params, *hh_params]
    cur = await conn.execute(sql + " ORDER BY d.household_id, d.id", params)
    rows = await cur.fetchall()
    by_gateway = {g.id: g for g in gateways}
    states = await _states(conn, sorted({r["gateway_id"] for r in rows if r["gateway_id"]}))
    tests = await _last_tests(conn, [r["id"] for r in rows])
    out = []
    for r in rows:
        gw = by_gateway.get(r["gateway_id"]) if r["gateway_id"] else None
        status = states.get(r["gateway_id"] or "", {}).get(r["id"])
        problems: list[DeviceProblem] = []
        gateway_down = gw is not None and gw.online is False
        if gateway_down:
            problems.append(DeviceProblem.GATEWAY_OFFLINE)
        elif status is not None and not status.online:
            problems.append(DeviceProblem.OFFLINE)
        elif status is None and gw is not None and gw.online:
            problems.append(DeviceProblem.NOT_REPORTED)
        battery = status.battery if status else None
        if battery is not None and battery < _low_battery_threshold(r["type"]):
            problems.append(DeviceProblem.LOW_BATTERY)
        last_test = tests.get(r["id"])
        if overdue(last_test, now, tested_within):
            problems.append(DeviceProblem.NOT_TESTED)
        out.append(DeviceHealth(
            id=r["id"], type=r["type"], gateway_id=r["gateway_id"],
            household_id=r["household_id"], community_id=r["community_id"],
            resident_id=r["resident_id"], resident_name=r["resident_name"],
            address=r["address"], room=r["room"],
            online=None if gateway_down or status is None else status.online,
            battery=battery, rssi=status.rssi if status else None,
            last_seen=status.last_seen if status else None, last_test_at=last_test,
            problems=problems))
    return out


#: a watch whose newest position is older than this is not drawn (it says where someone
#: was, not where they are)
WATCH_POSITION_WITHIN = timedelta(hours=24)


async def _watch_pins(conn: Connection, devices: list[DeviceHealth],
                      community_of: dict[str, str], now: datetime) -> list[WatchPin]:
    """The newest position of every GPS device in these households (one indexed read each)."""
    pins = []
    for d in devices:
        dtype = CATALOGUE.get(d.type)
        if (d.household_id not in community_of or dtype is None
                or EventKind.LOCATION not in dtype.telemetry_kinds):
            continue
        point = await telemetry_sqlite.latest(conn, d.id, EventKind.LOCATION,
                                              now - WATCH_POSITION_WITHIN)
        if point is None or "lat" not in point.values or "lon" not in point.values:
            continue
        pins.append(WatchPin(
            device_id=d.id, household_id=d.household_id,
            community_id=community_of[d.household_id], resident_id=d.resident_id,
            resident_name=d.resident_name,
            position=AlertPosition(lat=point.values["lat"], lon=point.values["lon"],
                                   at=point.ts, valid=True, source=PositionSource.FIX)))
    return pins


#: device problems that colour a household on the map (an untested device is for the board)
_MAP_PROBLEMS = frozenset({DeviceProblem.OFFLINE, DeviceProblem.LOW_BATTERY,
                           DeviceProblem.GATEWAY_OFFLINE})


async def _last_activity(conn: Connection,
                         household_ids: list[str]) -> dict[str, datetime]:
    """The care engine's per-gateway activity watch, by household."""
    clause, params = in_clause("b.household_id", household_ids)
    cur = await conn.execute(
        "SELECT b.household_id, MAX(w.last_activity_at) FROM gateway_bindings b"
        " JOIN care_gateway_watch w ON w.gateway_id = b.id"
        f" WHERE {clause} GROUP BY b.household_id", params)
    out: dict[str, datetime] = {}
    for household_id, ts in await cur.fetchall():
        parsed = opt_parse(ts)
        if parsed is not None:
            out[str(household_id)] = parsed
    return out


# -- routes --------------------------------------------------------------------------------

TestedWithin = Annotated[int, Query(ge=1, le=3650,
                                    description="a device not tested for longer is flagged")]


@router.get("/fleet", response_model=FleetHealth,
            **roles(Role.ADMIN, Role.OPERATOR, Role.INSTALLER))
async def fleet(services: ServicesDep, user: CurrentUser,
                tested_within_days: TestedWithin = SELF_TEST_MAX_AGE.days) -> FleetHealth:
    """Gateways offline, devices offline, low batteries, devices not tested recently
    (by default the maintenance rule's window: the board and the tasks agree)."""
    now = services.clock.now()
    conn = services.db.conn
    gateways = await _gateways(conn, _staff_scope(user))
    devices = await _devices(conn, _staff_scope(user), gateways, now,
                             timedelta(days=tested_within_days))
    summary = FleetSummary(
        gateways=len(gateways),
        gateways_offline=sum(1 for g in gateways if g.online is False and g.revoked_at is None),
        gateways_revoked=sum(1 for g in gateways if g.revoked_at is not None),
        devices=len(devices),
        devices_offline=sum(1 for d in devices if DeviceProblem.OFFLINE in d.problems),
        low_battery=sum(1 for d in devices if DeviceProblem.LOW_BATTERY in d.problems),
        not_tested=sum(1 for d in devices if DeviceProblem.NOT_TESTED in d.problems))
    return FleetHealth(generated_at=now, tested_within_days=tested_within_days,
                       summary=summary, gateways=gateways, devices=devices)


@router.get("/map", response_model=CareMap, **roles(Role.ADMIN, Role.OPERATOR))
async def care_map(services: ServicesDep, user: CurrentUser,
                   community_id: Annotated[str | None, Query(max_length=64)] = None) -> CareMap:
    """Households with their coordinates and state: open alert, device problem, all well."""
    now = services.clock.now()
    conn = services.db.conn
    communities = await services.registry.list_communities(user)
    clause, params = _staff_scope(user)
    sql = ("SELECT h.id, h.community_id, c.district_id, h.address, h.latitude, h.longitude"
           " FROM households h JOIN communities c ON c.id = h.community_id"
           f" WHERE {clause}")
    if community_id is not None:
        sql += " AND h.community_id = ?"
        params = [*params, community_id]
    cur = await conn.execute(sql + " ORDER BY h.id", params)
    households = await cur.fetchall()
    ids = [r["id"] for r in households]

    residents: dict[str, list[MapResident]] = {}
    rclause, rparams = in_clause("household_id", ids)
    cur = await conn.execute(f"SELECT id, household_id, name FROM residents WHERE {rclause}"
                             " ORDER BY id", rparams)
    for r in await cur.fetchall():
        residents.setdefault(r["household_id"], []).append(MapResident(id=r["id"],
                                                                       name=r["name"]))

    states = [s.value for s in OPEN_STATES]
    aclause, aparams = in_clause("household_id", ids)
    cur = await conn.execute(
        f"SELECT id, household_id, kind, COALESCE(severity_override, severity) AS severity"
        f" FROM alerts WHERE {aclause} AND status IN ({','.join('?' for _ in states)})",
        (*aparams, *states))
    alerts: dict[str, list[Any]] = {}
    for r in await cur.fetchall():
        alerts.setdefault(r["household_id"], []).append(r)

    gateways = await _gateways(conn, _staff_scope(user))
    devices = await _devices(conn, _staff_scope(user), gateways, now, timedelta(days=3650),
                             household_ids=ids)
    problems: dict[str, int] = {}
    for d in devices:
        if d.household_id and _MAP_PROBLEMS.intersection(d.problems):
            problems[d.household_id] = problems.get(d.household_id, 0) + 1
    activity = await _last_activity(conn, ids)

    pins = []
    for h in households:
        open_alerts = alerts.get(h["id"], [])
        care_alerts = [a for a in open_alerts if a["kind"] not in
                       {k.value for k in MAINTENANCE_ALERTS}]
        n_problems = problems.get(h["id"], 0)
        state = (MapState.ALERT if care_alerts else
                 MapState.DEVICE if n_problems or open_alerts else MapState.OK)
        severities = [Severity(a["severity"]) for a in open_alerts]
        coords = (Coordinates(latitude=h["latitude"], longitude=h["longitude"])
                  if h["latitude"] is not None and h["longitude"] is not None else None)
        pins.append(HouseholdPin(
            id=h["id"], community_id=h["community_id"], district_id=h["district_id"],
            address=h["address"], coordinates=coords, residents=residents.get(h["id"], []),
            state=state, open_alerts=len(open_alerts),
            top_severity=min(severities, key=_SEVERITY_RANK.__getitem__) if severities
            else None,
            alert_ids=[a["id"] for a in open_alerts], device_problems=n_problems,
            last_activity_at=activity.get(h["id"])))
    watches = await _watch_pins(conn, devices, {h["id"]: h["community_id"] for h in households},
                                now)
    return CareMap(generated_at=now, communities=communities, households=pins,
                   watches=watches)


@router.get("/residents/{resident_id}/status", response_model=ElderStatus,
            **roles(Role.ADMIN, Role.OPERATOR, Role.FAMILY))
async def elder_status(services: ServicesDep, user: CurrentUser,
                       resident_id: str) -> ElderStatus:
    """The family page's summary of their elder (also the card's "last activity")."""
    now = services.clock.now()
    conn = services.db.conn
    clause, params = resident_clause(user, "r.id", "c.district_id")
    cur = await conn.execute(
        "SELECT r.id, r.name, r.household_id, h.address FROM residents r"
        " JOIN households h ON h.id = r.household_id"
        " JOIN communities c ON c.id = h.community_id"
        f" WHERE r.id = ? AND {clause}", (resident_id, *params))
    row = await cur.fetchone()
    if row is None:
        raise NotFoundError(f"resident {resident_id} not found")
    household_id = row["household_id"]
    # scoped to this one household (already checked against the caller's scope above): a
    # relative sees their elder's devices through this summary only, never the fleet board
    scope: Scope = ("h.id = ?", [household_id])
    gateways = await _gateways(conn, scope)
    devices = [d for d in await _devices(conn, scope, gateways, now, timedelta(days=3650))
               if d.resident_id in (None, resident_id)]
    trouble = [d for d in devices if _MAP_PROBLEMS.intersection(d.problems)]
    activity = await _last_activity(conn, [household_id])
    await services.audit.record(tenant=user.tenant, actor=user.actor, actor_name=user.username,
                                role=user.role.value, action="read_status",
                                record_type="resident", record_id=resident_id,
                                reason="elder status")
    open_alerts = await services.care.open_alerts_of(resident_id)
    return ElderStatus(
        resident_id=resident_id, name=row["name"], address=row["address"],
        last_activity_at=activity.get(household_id),
        gateway_online=(all(g.online for g in gateways) if gateways and
                        all(g.online is not None for g in gateways) else None),
        devices_ok=not trouble, device_problems=trouble, open_alerts=open_alerts)


# -- dispatch ------------------------------------------------------------------------------

#: ``ladder_offers.step_index`` of an offer the operator made (the ladder's steps are 0..n)
DISPATCH_STEP = -1


class DispatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    contact_id: str = Field(min_length=1, max_length=64)
    note: str = Field(default="", max_length=500)


def _channel(contact: ContactPublic) -> str:
    """The contact's preferred channel when it can reach them, else SMS (as the ladder)."""
    if contact.preferred_channel is ContactChannel.WEBHOOK and contact.webhook_url:
        return "webhook"
    if contact.preferred_channel is ContactChannel.APP and contact.user_id:
        return "app"
    return "sms"


@router.post("/alerts/{alert_id}/dispatch", response_model=AlertPublic,
             **roles(Role.ADMIN, Role.OPERATOR))
async def dispatch(services: ServicesDep, user: CurrentUser, alert_id: str,
                   body: DispatchRequest) -> AlertPublic:
    """Send one of the resident's contacts the responder link now (they said they can go).

    The ladder keeps running: the alert is someone's only when they accept on the link
    page. A contact who had declined is asked again (the operator has just spoken to
    them); one who already holds a link gets a fresh one. 409 once someone has accepted.
    """
    now = services.clock.now()
    contact = await services.registry.contact(body.contact_id)
    clause, params = alert_clause(user)
    async with services.db.transaction() as conn:
        cur = await conn.execute(f"{A.ALERT_SELECT} WHERE a.id = ? AND {clause}",
                                 (alert_id, *params))
        row = await cur.fetchone()
        if row is None:
            raise NotFoundError(f"alert {alert_id} not found")
        status = A.require_open(row)
        if contact is None or row["resident_id"] is None or (
                contact.resident_id != row["resident_id"]):
            raise InvalidRequestError(f"contact {body.contact_id} is not a contact of this"
                                      " alert's resident")
        if status not in UNASSIGNED_STATES or row["assigned_contact_id"] is not None:
            raise ConflictError(f"alert {alert_id} was already accepted by a responder")
        channel = _channel(contact)
        await conn.execute(
            "INSERT INTO ladder_offers(alert_id, step_index, contact_id, name, relation,"
            " channel, status, offered_at) VALUES (?,?,?,?,?,?,'offered',?)"
            " ON CONFLICT(alert_id, contact_id) DO UPDATE SET status = 'offered',"
            " responded_at = NULL, channel = excluded.channel",
            (alert_id, DISPATCH_STEP, contact.id, contact.name, contact.relation.value, channel,
             iso(now)))
        auth = services.settings.auth
        token = link_token(auth.secret_key.get_secret_value(), alert_id, contact.id,
                           now + timedelta(seconds=auth.responder_link_ttl_s))
        url = link_url(services.settings.http.public_base_url, alert_id, token)
        text = messages.offer_text(row["resident_name"] or "居民", row["address"] or "",
                                   AlertKind(row["kind"]), url,
                                   status is AlertStatus.CANCEL_REQUESTED,
                                   A.position_of(row), now)
        if body.note:
            text = f"{text}（{body.note}）"
        address = {"sms": contact.phone, "webhook": contact.webhook_url or "",
                   "app": contact.user_id or ""}[channel]
        await enqueue(conn, alert_id=alert_id, contact_id=contact.id, channel=channel,
                      address=address, body=text, link=url, now=now,
                      payload={"type": "offer", "alert": A.public_json(row),
                               "contact_id": contact.id, "link": url, "text": text})
        await A.add_timeline(conn, alert_id, now, A.Actor(user.actor, user.username),
                             "dispatched", None, None,
                             {"contact_id": contact.id, "name": contact.name,
                              "relation": contact.relation.value, "channel": channel,
                              "note": body.note})
        await A.touch(conn, alert_id, now)
        row = await A.load(conn, alert_id)
        assert row is not None
        await services.hub.append(conn, "offer", {
            "alert": A.public_json(row), "contact_id": contact.id, "name": contact.name,
            "relation": contact.relation.value, "link": url if channel == "app" else None},
            alert_id=alert_id, district_id=row["district_id"],
            resident_id=row["resident_id"], contact_ids=[contact.id])
        await services.hub.append(conn, "alert.updated", {"alert": A.public_json(row)},
                                  alert_id=alert_id, district_id=row["district_id"],
                                  resident_id=row["resident_id"],
                                  contact_ids=await A.offered_contacts(conn, alert_id))
    services.care.committed()
    return A.to_public(row)
