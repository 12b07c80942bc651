"""Alert rows, their transitions and timeline, on a connection inside a transaction.

These functions never open transactions themselves: the caller groups them with the
ladder and the stream events they cause, so an alert change, its timeline entry and its
announcement commit together or not at all.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eldercare_cloud.care.models import (
    TRANSITIONS,
    AlertDetail,
    AlertKind,
    AlertPosition,
    AlertPublic,
    AlertStatus,
    LadderRunPublic,
    LadderStep,
    NotificationPublic,
    OfferPublic,
    PositionSource,
    Severity,
    TimelineEntry,
    category_of,
    default_severity,
)
from eldercare_cloud.clock import iso, opt_iso, opt_parse, parse_iso
from eldercare_cloud.db import Connection, Row
from eldercare_cloud.errors import ConflictError, InvalidRequestError

ALERT_SELECT = (
    "SELECT a.*, r.name AS resident_name, h.address AS address FROM alerts a"
    " LEFT JOIN residents r ON r.id = a.resident_id"
    " LEFT JOIN households h ON h.id = a.household_id")

#: the timestamp column each status stamps on entry (first entry wins)
STAMP = {
    AlertStatus.ACKNOWLEDGED: "acknowledged_at",
    AlertStatus.ASSIGNED: "accepted_at",
    AlertStatus.EN_ROUTE: "en_route_at",
    AlertStatus.ON_SCENE: "on_scene_at",
    AlertStatus.CANCEL_REQUESTED: "cancel_requested_at",
    AlertStatus.RESOLVED: "resolved_at",
    AlertStatus.CLOSED: "closed_at",
}


@dataclass(frozen=True)
class Actor:
    """Who did it: ``user:U``, ``contact:K``, ``device:D``, ``system``."""

    id: str
    name: str

    @staticmethod
    def system(name: str = "系统") -> Actor:
        return Actor("system", name)


@dataclass(frozen=True)
class AlertSpec:
    kind: AlertKind
    subject: str
    source: str
    resident_id: str | None
    household_id: str | None
    district_id: str | None
    gateway_id: str | None
    device_id: str | None = None
    room: str | None = None
    raised_at: datetime | None = None
    received_at: datetime | None = None
    committed_at: datetime | None = None
    detail: dict[str, Any] | None = None
    #: None: the kind's default severity (the resident's profile may set another)
    severity: Severity | None = None
    position: AlertPosition | None = None


async def find_open(conn: Connection, subject: str,
                    kind: AlertKind) -> Row | None:
    cur = await conn.execute(
        "SELECT * FROM alerts WHERE subject = ? AND kind = ?"
        " AND status NOT IN ('resolved', 'closed')", (subject, kind.value))
    row: Row | None = await cur.fetchone()
    return row


async def insert_alert(conn: Connection, spec: AlertSpec, now: datetime) -> str:
    alert_id = f"AL-{now:%y%m%d}-{secrets.token_hex(4)}"
    await conn.execute(
        "INSERT INTO alerts(id, subject, kind, category, severity, status, resident_id,"
        " household_id, district_id, gateway_id, device_id, room, source, raised_at,"
        " received_at, committed_at, opened_at, updated_at)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (alert_id, spec.subject, spec.kind.value, category_of(spec.kind).value,
         (spec.severity or default_severity(spec.kind)).value, AlertStatus.OPEN.value,
         spec.resident_id, spec.household_id, spec.district_id, spec.gateway_id,
         spec.device_id, spec.room, spec.source, opt_iso(spec.raised_at),
         opt_iso(spec.received_at), opt_iso(spec.committed_at), iso(now), iso(now)))
    if spec.position is not None:
        await set_position(conn, alert_id, spec.position)
    await add_timeline(conn, alert_id, now, Actor.system(), "opened", None, AlertStatus.OPEN,
                       spec.detail or {})
    return alert_id


async def set_position(conn: Connection, alert_id: str, pos: AlertPosition) -> None:
    """Record where the person is, unless the alert already holds a newer position (a
    repeat with an older fix, or one without a fix, does not overwrite a valid newer one)."""
    at = opt_iso(pos.at)
    await conn.execute(
        "UPDATE alerts SET position_lat = ?, position_lon = ?, position_at = ?,"
        " position_valid = ?, position_source = ? WHERE id = ? AND (position_lat IS NULL"
        " OR (? >= position_valid AND COALESCE(?, '') >= COALESCE(position_at, '')))",
        (pos.lat, pos.lon, at, int(pos.valid), pos.source.value, alert_id, int(pos.valid),
         at))


def position_of(r: Row) -> AlertPosition | None:
    if r["position_lat"] is None:
        return None
    return AlertPosition(lat=r["position_lat"], lon=r["position_lon"],
                         at=opt_parse(r["position_at"]), valid=bool(r["position_valid"]),
                         source=PositionSource(r["position_source"]))


async def add_timeline(conn: Connection, alert_id: str, now: datetime, actor: Actor,
                       action: str, from_status: AlertStatus | None,
                       to_status: AlertStatus | None, detail: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO alert_timeline(alert_id, ts, actor, actor_name, action, from_status,"
        " to_status, detail) VALUES (?,?,?,?,?,?,?,?)",
        (alert_id, iso(now), actor.id, actor.name, action,
         from_status.value if from_status else None, to_status.value if to_status else None,
         json.dumps(detail, ensure_ascii=False, default=str)))


async def load(conn: Connection, alert_id: str) -> Row | None:
    cur = await conn.execute(f"{ALERT_SELECT} WHERE a.id = ?", (alert_id,))
    row: Row | None = await cur.fetchone()
    return row


async def transition(conn: Connection, row: Row, to: AlertStatus,
                     now: datetime, actor: Actor, action: str | None = None,
                     detail: dict[str, Any] | None = None,
                     extra: dict[str, Any] | None = None) -> None:
    """Move an alert along the life cycle, stamping the entry time of the new status."""
    current = AlertStatus(row["status"])
    if to not in TRANSITIONS[current]:
        raise ConflictError(f"alert {row['id']} is {current.value}; it cannot become"
                            f" {to.value}")
    sets: dict[str, Any] = {"status": to.value, "updated_at": iso(now), **(extra or {})}
    column = STAMP.get(to)
    if column is not None and row[column] is None:
        sets[column] = iso(now)
    assignments = ", ".join(f"{k} = ?" for k in sets)
    await conn.execute(f"UPDATE alerts SET {assignments} WHERE id = ?",
                       (*sets.values(), row["id"]))
    await add_timeline(conn, row["id"], now, actor, action or to.value, current, to,
                       detail or {})


async def touch(conn: Connection, alert_id: str, now: datetime,
                **sets: Any) -> None:
    values = {"updated_at": iso(now), **sets}
    assignments = ", ".join(f"{k} = ?" for k in values)
    await conn.execute(f"UPDATE alerts SET {assignments} WHERE id = ?",
                       (*values.values(), alert_id))


def require_open(row: Row) -> AlertStatus:
    status = AlertStatus(row["status"])
    if status in (AlertStatus.RESOLVED, AlertStatus.CLOSED):
        raise ConflictError(f"alert {row['id']} is already {status.value}")
    return status


def require_text(text: str, what: str) -> str:
    if not text.strip():
        raise InvalidRequestError(f"{what} must not be blank")
    return text.strip()


def to_public(r: Row) -> AlertPublic:
    return AlertPublic(
        id=r["id"], kind=r["kind"], category=r["category"],
        severity=r["severity_override"] or r["severity"],
        severity_override=r["severity_override"], status=r["status"],
        resident_id=r["resident_id"], resident_name=r["resident_name"],
        household_id=r["household_id"], address=r["address"], district_id=r["district_id"],
        gateway_id=r["gateway_id"], device_id=r["device_id"], room=r["room"],
        source=r["source"], repeat_count=r["repeat_count"],
        raised_at=opt_parse(r["raised_at"]), received_at=opt_parse(r["received_at"]),
        committed_at=opt_parse(r["committed_at"]), opened_at=parse_iso(r["opened_at"]),
        first_notified_at=opt_parse(r["first_notified_at"]),
        acknowledged_at=opt_parse(r["acknowledged_at"]),
        accepted_at=opt_parse(r["accepted_at"]), en_route_at=opt_parse(r["en_route_at"]),
        on_scene_at=opt_parse(r["on_scene_at"]),
        cancel_requested_at=opt_parse(r["cancel_requested_at"]),
        resolved_at=opt_parse(r["resolved_at"]), closed_at=opt_parse(r["closed_at"]),
        closure_code=r["closure_code"], assigned_contact_id=r["assigned_contact_id"],
        taken_over_by=r["taken_over_by"], updated_at=parse_iso(r["updated_at"]),
        supervisor_escalated_at=opt_parse(r["supervisor_escalated_at"]),
        position=position_of(r))


def public_json(r: Row) -> dict[str, Any]:
    data: dict[str, Any] = to_public(r).model_dump(mode="json")
    return data


async def detail(conn: Connection, r: Row) -> AlertDetail:
    alert_id = r["id"]
    cur = await conn.execute("SELECT * FROM alert_timeline WHERE alert_id = ? ORDER BY id",
                             (alert_id,))
    timeline = [TimelineEntry(id=t["id"], ts=parse_iso(t["ts"]), actor=t["actor"],
                              actor_name=t["actor_name"], action=t["action"],
                              from_status=t["from_status"], to_status=t["to_status"],
                              detail=json.loads(t["detail"]))
                for t in await cur.fetchall()]
    offers = await offers_of(conn, alert_id)
    cur = await conn.execute("SELECT * FROM notifications WHERE alert_id = ?"
                             " ORDER BY created_at, id", (alert_id,))
    notes = [NotificationPublic(id=n["id"], contact_id=n["contact_id"], channel=n["channel"],
                                address=n["address"], status=n["status"],
                                attempts=n["attempts"], last_error=n["last_error"],
                                created_at=parse_iso(n["created_at"]),
                                sent_at=opt_parse(n["sent_at"]))
             for n in await cur.fetchall()]
    cur = await conn.execute("SELECT * FROM ladder_runs WHERE alert_id = ?", (alert_id,))
    run = await cur.fetchone()
    ladder = None
    if run is not None:
        ladder = LadderRunPublic(
            status=run["status"], step_index=run["step_index"], position=run["position"],
            due_at=opt_parse(run["due_at"]), stop_reason=run["stop_reason"],
            steps=[LadderStep.model_validate(s) for s in json.loads(run["steps"])])
    return AlertDetail(**to_public(r).model_dump(), timeline=timeline, offers=offers,
                       notifications=notes, ladder=ladder)


async def offers_of(conn: Connection, alert_id: str) -> list[OfferPublic]:
    cur = await conn.execute("SELECT * FROM ladder_offers WHERE alert_id = ? ORDER BY id",
                             (alert_id,))
    return [OfferPublic(contact_id=o["contact_id"], name=o["name"], relation=o["relation"],
                        step_index=o["step_index"], channel=o["channel"], status=o["status"],
                        offered_at=parse_iso(o["offered_at"]),
                        responded_at=opt_parse(o["responded_at"]))
            for o in await cur.fetchall()]


async def offered_contacts(conn: Connection, alert_id: str) -> list[str]:
    cur = await conn.execute("SELECT contact_id FROM ladder_offers WHERE alert_id = ?",
                             (alert_id,))
    return [r[0] for r in await cur.fetchall()]
