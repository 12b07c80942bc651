"""Read-only queries over the care core's record of alerts, for case history and KPIs.

These are the care domain's own queries on its tables (``alerts``, ``alert_timeline``,
``ladder_offers``), joined to the registry's households and communities only to name
where an alert happened, as ``alerts.ALERT_SELECT`` already does. They never write. The
records domain (``eldercare_cloud.records``) builds the history view and the KPIs on
them, so no SQL on care tables lives outside care.

Everything is portable SQL: ``?`` placeholders, ISO-8601 text timestamps compared as
text, no engine functions; the caller's scope comes from ``auth.scope`` as for every
other query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eldercare_cloud.auth.models import Principal
from eldercare_cloud.auth.scope import district_clause, in_clause
from eldercare_cloud.care.models import AlertStatus
from eldercare_cloud.clock import iso, opt_parse, parse_iso
from eldercare_cloud.db import Connection, Row

HISTORY_SELECT = (
    "SELECT a.*, r.name AS resident_name, h.address AS address,"
    " h.community_id AS community_id, c.name AS community_name FROM alerts a"
    " LEFT JOIN residents r ON r.id = a.resident_id"
    " LEFT JOIN households h ON h.id = a.household_id"
    " LEFT JOIN communities c ON c.id = h.community_id")

#: the states a case is "on the record" in: waiting for review, or closed
RECORD_STATES = (AlertStatus.RESOLVED.value, AlertStatus.CLOSED.value)


@dataclass(frozen=True)
class HistoryFilter:
    q: str | None = None
    resident_id: str | None = None
    kind: str | None = None
    district_id: str | None = None
    community_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    closure_code: str | None = None
    #: a user id: cases this operator acted on (any timeline entry of theirs)
    operator_id: str | None = None
    #: a contact id: cases this responder accepted
    responder_id: str | None = None
    #: part of a name: cases whose accepting responder / acting staff member matches
    responder_q: str | None = None
    operator_q: str | None = None
    #: resolved (待复核) or closed (已结案); None: both
    status: str | None = None


def _where(p: Principal, f: HistoryFilter) -> tuple[str, list[Any]]:
    clause, params = district_clause(p, "a.district_id")
    where = [clause]
    if f.status is not None:
        where.append("a.status = ?")
        params.append(f.status)
    else:
        where.append("a.status IN (?, ?)")
        params.extend(RECORD_STATES)
    for col, value in (("a.resident_id", f.resident_id), ("a.kind", f.kind),
                       ("a.district_id", f.district_id), ("h.community_id", f.community_id),
                       ("a.closure_code", f.closure_code),
                       ("a.assigned_contact_id", f.responder_id)):
        if value is not None:
            where.append(f"{col} = ?")
            params.append(value)
    if f.q:
        # LIKE is case-sensitive on PostgreSQL: compare lower() on both sides
        where.append("(lower(r.name) LIKE ? OR lower(a.id) LIKE ? OR lower(h.address) LIKE ?)")
        needle = f"%{f.q.lower()}%"
        params.extend([needle, needle, needle])
    if f.since is not None:
        where.append("a.opened_at >= ?")
        params.append(iso(f.since))
    if f.until is not None:
        where.append("a.opened_at < ?")
        params.append(iso(f.until))
    if f.responder_q:
        where.append("EXISTS (SELECT 1 FROM ladder_offers o WHERE o.alert_id = a.id"
                     " AND o.status = 'accepted' AND lower(o.name) LIKE ?)")
        params.append(f"%{f.responder_q.lower()}%")
    if f.operator_q:
        where.append("EXISTS (SELECT 1 FROM alert_timeline t WHERE t.alert_id = a.id"
                     " AND t.actor LIKE ? AND lower(t.actor_name) LIKE ?)")
        params.extend(["user:%", f"%{f.operator_q.lower()}%"])
    if f.operator_id is not None:
        where.append("EXISTS (SELECT 1 FROM alert_timeline t WHERE t.alert_id = a.id"
                     " AND t.actor = ?)")
        params.append(f"user:{f.operator_id}")
    return " AND ".join(where), params


async def search(conn: Connection, p: Principal, f: HistoryFilter, *,
                 limit: int, offset: int) -> tuple[list[Row], int]:
    """One page of cases on the record, newest first, and the total that match."""
    where, params = _where(p, f)
    cur = await conn.execute(f"{HISTORY_SELECT} WHERE {where}"
                             " ORDER BY a.opened_at DESC, a.id LIMIT ? OFFSET ?",
                             (*params, limit, offset))
    rows = list(await cur.fetchall())
    cur = await conn.execute(
        "SELECT COUNT(*) FROM alerts a LEFT JOIN residents r ON r.id = a.resident_id"
        " LEFT JOIN households h ON h.id = a.household_id"
        f" WHERE {where}", params)
    total = await cur.fetchone()
    return rows, int(total[0]) if total else 0


async def one(conn: Connection, p: Principal, alert_id: str) -> Row | None:
    """One alert in the caller's districts (any state), with its community."""
    clause, params = district_clause(p, "a.district_id")
    cur = await conn.execute(f"{HISTORY_SELECT} WHERE a.id = ? AND {clause}",
                             (alert_id, *params))
    row: Row | None = await cur.fetchone()
    return row


async def staff_actors(conn: Connection,
                       alert_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """Per alert, the staff users who acted on it, in the order they first did."""
    if not alert_ids:
        return {}
    clause, params = in_clause("alert_id", alert_ids)
    cur = await conn.execute(
        f"SELECT alert_id, actor, actor_name FROM alert_timeline WHERE {clause}"
        " AND actor LIKE ? ORDER BY id", (*params, "user:%"))
    out: dict[str, list[tuple[str, str]]] = {}
    for r in await cur.fetchall():
        seen = out.setdefault(r["alert_id"], [])
        if all(r["actor"] != a for a, _ in seen):
            seen.append((r["actor"], r["actor_name"]))
    return out


async def accepted_offers(conn: Connection,
                          alert_ids: Sequence[str]) -> dict[str, tuple[str, int]]:
    """Per alert, the responder who accepted (name) and the ladder step they were asked at."""
    if not alert_ids:
        return {}
    clause, params = in_clause("alert_id", alert_ids)
    cur = await conn.execute(
        f"SELECT alert_id, name, step_index FROM ladder_offers WHERE {clause}"
        " AND status = 'accepted'", params)
    return {r["alert_id"]: (r["name"], int(r["step_index"])) for r in await cur.fetchall()}


# -- facts for the KPIs ----------------------------------------------------------------------

@dataclass(frozen=True)
class AlertFacts:
    """What the KPIs need of one alert: where, what, and every timestamp of invariant 5."""

    id: str
    kind: str
    category: str
    district_id: str | None
    community_id: str | None
    opened_at: datetime
    acknowledged_at: datetime | None
    accepted_at: datetime | None
    on_scene_at: datetime | None
    cancel_requested_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    closure_code: str | None
    #: the first staff user who acknowledged or took it over, and their name
    operator: str | None = None
    operator_name: str | None = None
    #: the ladder step (0-based) of the responder who accepted
    accepted_step: int | None = None


async def facts(conn: Connection, p: Principal, start: datetime, end: datetime,
                district_id: str | None = None) -> list[AlertFacts]:
    """Every alert opened in [start, end) in the caller's districts, with the operator who
    answered it and the ladder step at which someone accepted."""
    clause, params = district_clause(p, "a.district_id")
    where = f"a.opened_at >= ? AND a.opened_at < ? AND {clause}"
    args: list[Any] = [iso(start), iso(end), *params]
    if district_id is not None:
        where += " AND a.district_id = ?"
        args.append(district_id)
    cur = await conn.execute(
        "SELECT a.id, a.kind, a.category, a.district_id, h.community_id, a.opened_at,"
        " a.acknowledged_at, a.accepted_at, a.on_scene_at, a.cancel_requested_at,"
        " a.resolved_at, a.closed_at, a.closure_code FROM alerts a"
        f" LEFT JOIN households h ON h.id = a.household_id WHERE {where}", args)
    rows = list(await cur.fetchall())
    cur = await conn.execute(
        "SELECT t.alert_id, t.actor, t.actor_name FROM alert_timeline t"
        " JOIN alerts a ON a.id = t.alert_id"
        f" WHERE {where} AND t.action IN ('acknowledged', 'takeover') AND t.actor LIKE ?"
        " ORDER BY t.id", (*args, "user:%"))
    answered: dict[str, tuple[str, str]] = {}
    for t in await cur.fetchall():
        answered.setdefault(t["alert_id"], (t["actor"], t["actor_name"]))
    cur = await conn.execute(
        "SELECT o.alert_id, o.step_index FROM ladder_offers o JOIN alerts a"
        f" ON a.id = o.alert_id WHERE {where} AND o.status = 'accepted'", args)
    steps = {o["alert_id"]: int(o["step_index"]) for o in await cur.fetchall()}
    out = []
    for r in rows:
        who = answered.get(r["id"])
        out.append(AlertFacts(
            id=r["id"], kind=r["kind"], category=r["category"], district_id=r["district_id"],
            community_id=r["community_id"], opened_at=parse_iso(r["opened_at"]),
            acknowledged_at=opt_parse(r["acknowledged_at"]),
            accepted_at=opt_parse(r["accepted_at"]), on_scene_at=opt_parse(r["on_scene_at"]),
            cancel_requested_at=opt_parse(r["cancel_requested_at"]),
            resolved_at=opt_parse(r["resolved_at"]), closed_at=opt_parse(r["closed_at"]),
            closure_code=r["closure_code"], operator=who[0] if who else None,
            operator_name=who[1] if who else None, accepted_step=steps.get(r["id"])))
    return out




# -- shift handover ------------------------------------------------------------------------

async def open_cases(conn: Connection, p: Principal) -> list[Row]:
    """Every alert still open in the caller's districts, oldest first."""
    clause, params = district_clause(p, "a.district_id")
    cur = await conn.execute(
        f"{HISTORY_SELECT} WHERE a.status NOT IN (?, ?) AND {clause} ORDER BY a.opened_at",
        (*RECORD_STATES, *params))
    return list(await cur.fetchall())


async def changed_since(conn: Connection, p: Principal,
                        since: datetime) -> tuple[list[Row], list[Row]]:
    """Alerts with timeline entries since ``since`` and those entries (in order)."""
    clause, params = district_clause(p, "a.district_id")
    cur = await conn.execute(
        "SELECT t.alert_id, t.ts, t.actor, t.actor_name, t.action, t.to_status"
        " FROM alert_timeline t JOIN alerts a ON a.id = t.alert_id"
        f" WHERE t.ts >= ? AND {clause} ORDER BY t.id", (iso(since), *params))
    entries = list(await cur.fetchall())
    ids = sorted({e["alert_id"] for e in entries})
    if not ids:
        return [], entries
    inner, inner_params = in_clause("a.id", ids)
    cur = await conn.execute(f"{HISTORY_SELECT} WHERE {inner} ORDER BY a.opened_at",
                             inner_params)
    return list(await cur.fetchall()), entries


async def exhausted_ladders(conn: Connection, alert_ids: Sequence[str]) -> set[str]:
    if not alert_ids:
        return set()
    clause, params = in_clause("alert_id", alert_ids)
    cur = await conn.execute(
        f"SELECT alert_id FROM ladder_runs WHERE {clause} AND status = 'exhausted'", params)
    return {str(r[0]) for r in await cur.fetchall()}


async def failed_notifications(conn: Connection, p: Principal,
                               since: datetime) -> dict[str, int]:
    """Per alert, notifications that finally failed since ``since``."""
    clause, params = district_clause(p, "a.district_id")
    cur = await conn.execute(
        "SELECT n.alert_id, COUNT(n.id) AS n FROM notifications n JOIN alerts a"
        f" ON a.id = n.alert_id WHERE n.status = 'failed' AND n.created_at >= ? AND {clause}"
        " GROUP BY n.alert_id", (iso(since), *params))
    return {str(r["alert_id"]): int(r["n"]) for r in await cur.fetchall()}
