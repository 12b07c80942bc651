"""Visit rows on a connection inside the caller's transaction (the service desk opens and
closes a visit in the same transaction as the order change that causes it)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from eldercare_cloud.clock import iso, opt_parse, parse_iso
from eldercare_cloud.db import Connection, Row
from eldercare_cloud.visits.verify import SLACK, Evidence, Method, Verdict, verify

#: device event kinds that corroborate a visit
EVIDENCE_KINDS = frozenset({"door_open", "door_close", "motion"})


class VisitPublic(BaseModel):
    """The six EVV facts (service type, recipient, date/where, provider, start, end) and how
    each was verified."""

    model_config = ConfigDict(frozen=True)
    id: str
    order_id: str
    service_type_id: str
    resident_id: str
    household_id: str
    district_id: str
    address: str
    provider_id: str
    worker_id: str
    window_start: datetime
    window_end: datetime
    check_in_at: datetime
    check_in_method: str
    check_in_lat: float | None
    check_in_lon: float | None
    check_out_at: datetime | None
    check_out_method: str | None
    duration_min: float | None
    door_events: int
    motion_events: int
    status: str
    flags: list[str]
    verification: dict[str, str]
    note: str
    reviewed_by: str | None
    reviewed_at: datetime | None


async def add_evidence(conn: Connection, household_id: str, record_id: str,
                       device_id: str, kind: str, ts: datetime) -> None:
    await conn.execute(
        "INSERT INTO visit_evidence(household_id, record_id, device_id, kind, ts)"
        " VALUES (?,?,?,?,?) ON CONFLICT (record_id) DO NOTHING",
        (household_id, record_id, device_id, kind, iso(ts)))


async def prune_evidence(conn: Connection, before: datetime) -> int:
    """Evidence older than ``before`` goes, except in homes with a visit still in progress
    (its check-out will be judged against the evidence since its check-in). A closed
    visit keeps its verdict and counts; the raw door/motion rows are not needed again."""
    cur = await conn.execute(
        "DELETE FROM visit_evidence WHERE ts < ? AND household_id NOT IN"
        " (SELECT household_id FROM visits WHERE status = 'in_progress')", (iso(before),))
    return max(cur.rowcount, 0)


async def open_visit(conn: Connection, *, order_id: str, service_type_id: str,
                     resident_id: str, household_id: str, district_id: str, address: str,
                     provider_id: str, worker_id: str, window_start: str, window_end: str,
                     min_minutes: int, check_in_at: datetime, method: Method,
                     lat: float | None, lon: float | None, now: datetime) -> str:
    visit_id = f"V-{now:%y%m%d}-{secrets.token_hex(4)}"
    await conn.execute(
        "INSERT INTO visits(id, order_id, service_type_id, resident_id, household_id,"
        " district_id, address, provider_id, worker_id, window_start, window_end, min_minutes,"
        " check_in_at, check_in_method, check_in_lat, check_in_lon, status, flags,"
        " verification, note, created_at, updated_at)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (visit_id, order_id, service_type_id, resident_id, household_id, district_id, address,
         provider_id, worker_id, window_start, window_end, min_minutes, iso(check_in_at),
         method.value, lat, lon, "in_progress", "[]", "{}", "", iso(now), iso(now)))
    return visit_id


async def by_order(conn: Connection, order_id: str) -> Row | None:
    cur = await conn.execute("SELECT * FROM visits WHERE order_id = ?", (order_id,))
    row: Row | None = await cur.fetchone()
    return row


async def close_visit(conn: Connection, row: Row, *,
                      check_out_at: datetime, method: Method, note: str,
                      now: datetime) -> Verdict:
    check_in = parse_iso(row["check_in_at"])
    cur = await conn.execute(
        "SELECT kind, ts FROM visit_evidence WHERE household_id = ? AND ts >= ? AND ts <= ?",
        (row["household_id"], iso(min(check_in, check_out_at) - SLACK),
         iso(check_out_at + SLACK)))
    evidence = [Evidence(r["kind"], parse_iso(r["ts"])) for r in await cur.fetchall()]
    verdict = verify(check_in=check_in, check_out=check_out_at,
                     check_in_method=Method(row["check_in_method"]), check_out_method=method,
                     window_start=parse_iso(row["window_start"]),
                     window_end=parse_iso(row["window_end"]), min_minutes=row["min_minutes"],
                     evidence=evidence, phone_position=row["check_in_lat"] is not None)
    await conn.execute(
        "UPDATE visits SET check_out_at = ?, check_out_method = ?, duration_min = ?,"
        " door_events = ?, motion_events = ?, status = ?, flags = ?, verification = ?,"
        " note = ?, updated_at = ? WHERE id = ?",
        (iso(check_out_at), method.value, verdict.duration_min, verdict.door_events,
         verdict.motion_events, "verified" if verdict.verified else "flagged",
         json.dumps([f.value for f in verdict.flags]), json.dumps(verdict.how), note,
         iso(now), row["id"]))
    return verdict


async def review(conn: Connection, visit_id: str, accepted: bool, actor: str,
                 now: datetime) -> None:
    await conn.execute(
        "UPDATE visits SET status = ?, reviewed_by = ?, reviewed_at = ?, updated_at = ?"
        " WHERE id = ?",
        ("accepted" if accepted else "rejected", actor, iso(now), iso(now), visit_id))


def to_public(r: Row) -> VisitPublic:
    return VisitPublic(
        id=r["id"], order_id=r["order_id"], service_type_id=r["service_type_id"],
        resident_id=r["resident_id"], household_id=r["household_id"],
        district_id=r["district_id"], address=r["address"], provider_id=r["provider_id"],
        worker_id=r["worker_id"], window_start=parse_iso(r["window_start"]),
        window_end=parse_iso(r["window_end"]), check_in_at=parse_iso(r["check_in_at"]),
        check_in_method=r["check_in_method"], check_in_lat=r["check_in_lat"],
        check_in_lon=r["check_in_lon"], check_out_at=opt_parse(r["check_out_at"]),
        check_out_method=r["check_out_method"], duration_min=r["duration_min"],
        door_events=r["door_events"], motion_events=r["motion_events"], status=r["status"],
        flags=json.loads(r["flags"]), verification=json.loads(r["verification"]),
        note=r["note"], reviewed_by=r["reviewed_by"],
        reviewed_at=opt_parse(r["reviewed_at"]))


def public_json(r: Row) -> dict[str, Any]:
    data: dict[str, Any] = to_public(r).model_dump(mode="json")
    return data


# -- reads for the service desk's records (the only SQL on these tables lives here) --------

def _in(column: str, values: Iterable[str]) -> tuple[str, list[Any]]:
    items = sorted(set(values))
    if not items:
        return "1 = 0", []
    return f"{column} IN ({','.join('?' for _ in items)})", list(items)


async def get(conn: Connection, visit_id: str,
              district_ids: Iterable[str]) -> Row | None:
    clause, params = _in("district_id", district_ids)
    cur = await conn.execute(f"SELECT * FROM visits WHERE id = ? AND {clause}",
                             (visit_id, *params))
    row: Row | None = await cur.fetchone()
    return row


async def in_districts(conn: Connection, district_ids: Iterable[str],
                       flagged_only: bool, limit: int = 500) -> list[Row]:
    clause, params = _in("district_id", district_ids)
    sql = f"SELECT * FROM visits WHERE {clause}"
    if flagged_only:
        sql += " AND status = 'flagged'"
    cur = await conn.execute(sql + " ORDER BY check_in_at DESC LIMIT ?", (*params, limit))
    return list(await cur.fetchall())


async def worker_minutes(conn: Connection, worker_id: str, lo: str,
                         hi: str) -> float:
    cur = await conn.execute("SELECT COALESCE(SUM(duration_min), 0) FROM visits"
                             " WHERE worker_id = ? AND check_in_at >= ? AND check_in_at < ?",
                             (worker_id, lo, hi))
    row = await cur.fetchone()
    return float(row[0]) if row is not None else 0.0


async def of_orders(conn: Connection,
                    order_ids: Iterable[str]) -> dict[str, tuple[str, float | None]]:
    """order id → (visit status, duration in minutes) for the orders that have a visit."""
    out: dict[str, tuple[str, float | None]] = {}
    ids = sorted(set(order_ids))
    for start in range(0, len(ids), 500):  # bounded IN lists
        clause, params = _in("order_id", ids[start:start + 500])
        cur = await conn.execute(f"SELECT order_id, status, duration_min FROM visits"
                                 f" WHERE {clause}", params)
        for r in await cur.fetchall():
            out[r["order_id"]] = (r["status"], r["duration_min"])
    return out
