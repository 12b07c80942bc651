"""Alert operations: raising from committed events, and what staff do with an alert.

Every public operation is one transaction that checks the caller's scope in SQL,
applies the change, writes the timeline and the stream event, and only then wakes the
stream readers and the engine.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from eldercare_cloud.audit import AuditLog
from eldercare_cloud.auth.models import Principal, Role
from eldercare_cloud.auth.scope import alert_clause, district_clause, resident_clause
from eldercare_cloud.care import alerts as A
from eldercare_cloud.care import ladder as L
from eldercare_cloud.care.models import (
    LIFE_SAFETY_ALERTS,
    OPEN_STATES,
    UNASSIGNED_STATES,
    AlertDetail,
    AlertKind,
    AlertPublic,
    AlertStatus,
    Ladder,
    LadderPublic,
    NoteCreate,
    ProgressRequest,
    ResolveRequest,
    ReviewRequest,
    SeverityOverride,
    TakeoverRequest,
    escalates,
)
from eldercare_cloud.care.schema import MIGRATIONS
from eldercare_cloud.clock import Clock, iso, opt_iso, parse_iso
from eldercare_cloud.db import Connection, Database, Row
from eldercare_cloud.errors import ConflictError, InvalidRequestError, NotFoundError
from eldercare_cloud.stream import StreamHub

Mutation = Callable[[Connection, Row, datetime], Awaitable[None]]


class CareService:
    def __init__(self, db: Database, clock: Clock, audit: AuditLog, hub: StreamHub,
                 ctx: L.LadderContext, wake_engine: Callable[[], None]) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._hub = hub
        self.ctx = ctx
        self._wake_engine = wake_engine

    async def migrate(self) -> None:
        await self._db.migrate("care", MIGRATIONS)

    def committed(self) -> None:
        """Call after a transaction that changed alerts commits."""
        self._hub.wake()
        self._wake_engine()

    # -- raising (inside the engine's transaction) -------------------------------------------

    async def raise_alert(self, conn: Connection, spec: A.AlertSpec, now: datetime,
                          record_id: str | None = None, cursor: int = 0) -> tuple[str, bool]:
        """Open an alert, or attach to the open one of the same subject and kind."""
        if record_id is not None:
            cur = await conn.execute("SELECT alert_id FROM alert_sources WHERE record_id = ?",
                                     (record_id,))
            seen = await cur.fetchone()
            if seen is not None:
                return str(seen[0]), False
        existing = await A.find_open(conn, spec.subject, spec.kind)
        created = existing is None
        if existing is not None:
            alert_id = existing["id"]
            await A.touch(conn, alert_id, now, repeat_count=existing["repeat_count"] + 1)
            if spec.position is not None:
                await A.set_position(conn, alert_id, spec.position)
            await A.add_timeline(conn, alert_id, now, A.Actor.system(), "repeat", None, None,
                                 {**(spec.detail or {}),
                                  "raised_at": opt_iso(spec.raised_at)})
            row = await A.load(conn, alert_id)
            assert row is not None
            if AlertStatus(row["status"]) is AlertStatus.CANCEL_REQUESTED:
                # pressed again after cancelling: the resident does need help
                await A.transition(conn, row, AlertStatus.OPEN, now, A.Actor.system(),
                                   "reopened", {"why": "pressed again after cancel"})
            event = "alert.repeat"
        else:
            alert_id = await A.insert_alert(conn, spec, now)
            event = "alert.opened"
        if record_id is not None:
            await conn.execute(
                "INSERT INTO alert_sources(record_id, alert_id, cursor, kind, device_id,"
                " device_ts, gateway_ts, committed_at) VALUES (?,?,?,?,?,?,?,?)",
                (record_id, alert_id, cursor, spec.kind.value, spec.device_id,
                 opt_iso(spec.raised_at), opt_iso(spec.received_at),
                 opt_iso(spec.committed_at)))
        row = await A.load(conn, alert_id)
        assert row is not None
        await self._announce(conn, row, event)
        if created and escalates(spec.kind):
            await L.start(conn, row, now, self.ctx)
        return alert_id, created

    async def cancel_requested(self, conn: Connection, resident_id: str,
                               now: datetime, detail: dict[str, Any]) -> list[str]:
        """A resident's cancel press: open life-safety alerts become "cancel requested"."""
        kinds = [k.value for k in LIFE_SAFETY_ALERTS]
        cur = await conn.execute(
            f"SELECT id FROM alerts WHERE resident_id = ? AND kind IN"
            f" ({','.join('?' for _ in kinds)}) AND status NOT IN"
            " ('resolved', 'closed', 'cancel_requested')", (resident_id, *kinds))
        ids = [r[0] for r in await cur.fetchall()]
        for alert_id in ids:
            row = await A.load(conn, alert_id)
            assert row is not None
            await A.transition(conn, row, AlertStatus.CANCEL_REQUESTED, now,
                               A.Actor("device:" + str(detail.get("device_id")), "居民"),
                               "cancel_requested", detail)
            row = await A.load(conn, alert_id)
            assert row is not None
            await self._announce(conn, row, "alert.updated")
        return ids

    async def system_note(self, conn: Connection, subject: str, kind: AlertKind,
                          text: str, now: datetime) -> None:
        row = await A.find_open(conn, subject, kind)
        if row is None:
            return
        await A.add_timeline(conn, row["id"], now, A.Actor.system(), "note", None, None,
                             {"text": text})
        await A.touch(conn, row["id"], now)
        full = await A.load(conn, row["id"])
        assert full is not None
        await self._announce(conn, full, "alert.note")

    async def _announce(self, conn: Connection, row: Row,
                        event: str) -> None:
        await self._hub.append(conn, event, {"alert": A.public_json(row)}, alert_id=row["id"],
                               district_id=row["district_id"], resident_id=row["resident_id"],
                               contact_ids=await A.offered_contacts(conn, row["id"]))

    # -- reading -----------------------------------------------------------------------------

    async def list_alerts(self, p: Principal, *, status: AlertStatus | None = None,
                          open_only: bool = False, kind: AlertKind | None = None,
                          district_id: str | None = None, resident_id: str | None = None,
                          limit: int = 100, offset: int = 0) -> list[AlertPublic]:
        clause, params = alert_clause(p)
        sql = f"{A.ALERT_SELECT} WHERE {clause}"
        if status is not None:
            sql += " AND a.status = ?"
            params.append(status.value)
        if open_only:
            sql += " AND a.status NOT IN ('resolved', 'closed')"
        for col, value in (("kind", kind.value if kind else None),
                           ("district_id", district_id), ("resident_id", resident_id)):
            if value is not None:
                sql += f" AND a.{col} = ?"
                params.append(value)
        sql += (" ORDER BY CASE COALESCE(a.severity_override, a.severity) WHEN 'critical'"
                " THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END,"
                " a.opened_at DESC LIMIT ? OFFSET ?")
        cur = await self._db.conn.execute(sql, (*params, limit, offset))
        return [A.to_public(r) for r in await cur.fetchall()]

    async def _scoped(self, conn: Connection, p: Principal,
                      alert_id: str) -> Row:
        clause, params = alert_clause(p)
        cur = await conn.execute(f"{A.ALERT_SELECT} WHERE a.id = ? AND {clause}",
                                 (alert_id, *params))
        row = await cur.fetchone()
        if row is None:
            raise NotFoundError(f"alert {alert_id} not found")
        return row

    async def get_alert(self, p: Principal, alert_id: str) -> AlertDetail:
        row = await self._scoped(self._db.conn, p, alert_id)
        detail = await A.detail(self._db.conn, row)
        if p.role in (Role.VOLUNTEER, Role.WORKER):
            # only their own offers and notifications, not the rest of the ladder
            detail = detail.model_copy(update={
                "offers": [o for o in detail.offers if o.contact_id in p.contact_ids],
                "notifications": [n for n in detail.notifications
                                  if n.contact_id in p.contact_ids],
                "timeline": [], "ladder": None})
        if row["resident_id"]:
            await self._audit.record(tenant=p.tenant, actor=p.actor, actor_name=p.username,
                                     role=p.role.value, action="read_alert",
                                     record_type="resident", record_id=row["resident_id"],
                                     reason=f"alert {alert_id}")
        return detail

    # -- staff actions -------------------------------------------------------------------------

    async def _mutate(self, p: Principal, alert_id: str, fn: Mutation,
                      event: str = "alert.updated") -> AlertPublic:
        now = self._clock.now()
        async with self._db.transaction() as conn:
            await fn(conn, await self._scoped(conn, p, alert_id), now)
            row = await A.load(conn, alert_id)
            assert row is not None
            await self._announce(conn, row, event)
        self.committed()
        return A.to_public(row)

    def _actor(self, p: Principal) -> A.Actor:
        return A.Actor(p.actor, p.username)

    async def acknowledge(self, p: Principal, alert_id: str) -> AlertPublic:
        async def fn(conn: Connection, row: Row, now: datetime) -> None:
            status = A.require_open(row)
            if status is AlertStatus.OPEN:
                await A.transition(conn, row, AlertStatus.ACKNOWLEDGED, now, self._actor(p))
            elif row["acknowledged_at"] is None:
                await A.touch(conn, row["id"], now, acknowledged_at=iso(now))
                await A.add_timeline(conn, row["id"], now, self._actor(p), "acknowledged",
                                     None, None, {})
        return await self._mutate(p, alert_id, fn)

    async def takeover(self, p: Principal, alert_id: str, body: TakeoverRequest) -> AlertPublic:
        """The monitoring centre takes the alert off the ladder and handles it itself."""
        async def fn(conn: Connection, row: Row, now: datetime) -> None:
            status = A.require_open(row)
            if row["taken_over_by"] is not None:
                raise ConflictError(f"alert {alert_id} was already taken over")
            await L.stop(conn, alert_id, "takeover", now, self.ctx)
            await A.touch(conn, alert_id, now, taken_over_by=p.user_id)
            if status is AlertStatus.OPEN:
                await A.transition(conn, row, AlertStatus.ACKNOWLEDGED, now, self._actor(p),
                                   "takeover", {"note": body.note})
            else:
                await A.add_timeline(conn, alert_id, now, self._actor(p), "takeover", None,
                                     None, {"note": body.note})
        return await self._mutate(p, alert_id, fn)

    async def add_note(self, p: Principal, alert_id: str, body: NoteCreate) -> AlertPublic:
        text = A.require_text(body.text, "note")

        async def fn(conn: Connection, row: Row, now: datetime) -> None:
            await A.add_timeline(conn, alert_id, now, self._actor(p), "note", None, None,
                                 {"text": text})
            await A.touch(conn, alert_id, now)
        return await self._mutate(p, alert_id, fn, "alert.note")

    async def set_severity(self, p: Principal, alert_id: str,
                           body: SeverityOverride) -> AlertPublic:
        async def fn(conn: Connection, row: Row, now: datetime) -> None:
            A.require_open(row)
            await A.touch(conn, alert_id, now, severity_override=body.severity.value)
            await A.add_timeline(conn, alert_id, now, self._actor(p), "severity", None, None,
                                 {"from": row["severity_override"] or row["severity"],
                                  "to": body.severity.value, "reason": body.reason})
        return await self._mutate(p, alert_id, fn)

    async def progress(self, p: Principal, alert_id: str, body: ProgressRequest) -> AlertPublic:
        if body.status not in (AlertStatus.EN_ROUTE, AlertStatus.ON_SCENE):
            raise InvalidRequestError("status must be en_route or on_scene; use resolve,"
                                      " close or acknowledge for the others")

        async def fn(conn: Connection, row: Row, now: datetime) -> None:
            await A.transition(conn, row, body.status, now, self._actor(p), None,
                               {"note": body.note, "reported_by": "operator"})
            await L.stop(conn, alert_id, body.status.value, now, self.ctx)
        return await self._mutate(p, alert_id, fn)

    async def resolve(self, p: Principal, alert_id: str, body: ResolveRequest) -> AlertPublic:
        async def fn(conn: Connection, row: Row, now: datetime) -> None:
            await A.transition(conn, row, AlertStatus.RESOLVED, now, self._actor(p), None,
                               {"closure_code": body.closure_code.value, "note": body.note},
                               {"closure_code": body.closure_code.value})
            await L.stop(conn, alert_id, "resolved", now, self.ctx)
        return await self._mutate(p, alert_id, fn)

    async def close(self, p: Principal, alert_id: str) -> AlertPublic:
        async def fn(conn: Connection, row: Row, now: datetime) -> None:
            await A.transition(conn, row, AlertStatus.CLOSED, now, self._actor(p))
        return await self._mutate(p, alert_id, fn)

    async def review(self, p: Principal, alert_id: str, body: ReviewRequest) -> AlertPublic:
        """Sign a resolved case off (待复核 → 已结案): the reviewer, the time, the note and
        any correction of the closure code go on the timeline."""
        async def fn(conn: Connection, row: Row, now: datetime) -> None:
            if AlertStatus(row["status"]) is not AlertStatus.RESOLVED:
                raise ConflictError(f"alert {alert_id} is {row['status']}; only a resolved"
                                    " case waits for review")
            extra: dict[str, Any] = {}
            detail: dict[str, Any] = {"note": body.note,
                                      "closure_code": row["closure_code"]}
            if body.closure_code is not None and body.closure_code.value != row["closure_code"]:
                extra["closure_code"] = body.closure_code.value
                detail.update(closure_code=body.closure_code.value,
                              closure_code_was=row["closure_code"])
            await A.transition(conn, row, AlertStatus.CLOSED, now, self._actor(p), "reviewed",
                               detail, extra)
        return await self._mutate(p, alert_id, fn)

    # -- responder actions (the link was verified by the caller) --------------------------------

    async def responder_act(self, alert_id: str, contact_id: str, action: str,
                            resolve: ResolveRequest | None = None) -> None:
        now = self._clock.now()
        async with self._db.transaction() as conn:
            row = await A.load(conn, alert_id)
            if row is None:
                raise NotFoundError(f"alert {alert_id} not found")
            cur = await conn.execute("SELECT * FROM ladder_offers WHERE alert_id = ? AND"
                                     " contact_id = ?", (alert_id, contact_id))
            offer = await cur.fetchone()
            if offer is None:
                raise NotFoundError(f"alert {alert_id} not found")
            actor = A.Actor(f"contact:{contact_id}", offer["name"])
            status = A.require_open(row)
            if action == "accept":
                if status not in UNASSIGNED_STATES or row["assigned_contact_id"] is not None:
                    if row["assigned_contact_id"] == contact_id:
                        return  # accepting twice is harmless
                    raise ConflictError("someone else has already accepted this alert")
                await conn.execute("UPDATE ladder_offers SET status = 'accepted',"
                                   " responded_at = ? WHERE id = ?", (iso(now), offer["id"]))
                await conn.execute("UPDATE ladder_offers SET status = 'superseded' WHERE"
                                   " alert_id = ? AND status IN ('offered', 'no_answer')",
                                   (alert_id,))
                await A.transition(conn, row, AlertStatus.ASSIGNED, now, actor, "accepted",
                                   {"contact_id": contact_id},
                                   {"assigned_contact_id": contact_id})
                await L.stop(conn, alert_id, "accepted", now, self.ctx)
            elif action == "decline":
                if row["assigned_contact_id"] == contact_id:
                    raise ConflictError("you accepted this alert; call the monitoring centre")
                if offer["status"] == "declined":
                    return
                await conn.execute("UPDATE ladder_offers SET status = 'declined',"
                                   " responded_at = ? WHERE id = ?", (iso(now), offer["id"]))
                await A.add_timeline(conn, alert_id, now, actor, "declined", None, None,
                                     {"contact_id": contact_id})
                await L.on_decline(conn, row, contact_id, now, self.ctx)
            else:
                if row["assigned_contact_id"] != contact_id:
                    raise ConflictError("only the responder who accepted can report progress")
                if action == "resolve":
                    assert resolve is not None
                    await A.transition(conn, row, AlertStatus.RESOLVED, now, actor, None,
                                       {"closure_code": resolve.closure_code.value,
                                        "note": resolve.note},
                                       {"closure_code": resolve.closure_code.value})
                else:
                    target = AlertStatus(action)
                    if status is target:
                        return
                    await A.transition(conn, row, target, now, actor)
            row = await A.load(conn, alert_id)
            assert row is not None
            await self._announce(conn, row, "alert.updated")
        self.committed()

    # -- ladders ---------------------------------------------------------------------------------

    async def get_ladder(self, p: Principal, *, district_id: str | None = None,
                         resident_id: str | None = None) -> LadderPublic:
        conn = self._db.conn
        district_id = await self._check_ladder_scope(p, district_id, resident_id)
        scope = f"resident:{resident_id}" if resident_id else f"district:{district_id}"
        cur = await conn.execute("SELECT * FROM ladders WHERE scope = ?", (scope,))
        row = await cur.fetchone()
        if row is not None:
            return LadderPublic(scope=scope, district_id=row["district_id"],
                                resident_id=row["resident_id"],
                                steps=json.loads(row["steps"]),
                                updated_at=parse_iso(row["updated_at"]))
        ladder = await L.ladder_for(conn, resident_id, district_id)
        return LadderPublic(scope=scope, district_id=district_id, resident_id=resident_id,
                            steps=ladder.steps, inherited=True)

    async def put_ladder(self, p: Principal, ladder: Ladder, *, district_id: str | None = None,
                         resident_id: str | None = None) -> LadderPublic:
        district_id = await self._check_ladder_scope(p, district_id, resident_id)
        scope = f"resident:{resident_id}" if resident_id else f"district:{district_id}"
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO ladders(scope, district_id, resident_id, steps, updated_at,"
                " updated_by) VALUES (?,?,?,?,?,?) ON CONFLICT(scope) DO UPDATE SET"
                " steps = excluded.steps, updated_at = excluded.updated_at,"
                " updated_by = excluded.updated_by",
                (scope, None if resident_id else district_id, resident_id,
                 json.dumps([s.model_dump(mode="json") for s in ladder.steps]),
                 iso(self._clock.now()), p.actor))
        return await self.get_ladder(p, district_id=district_id, resident_id=resident_id)

    async def delete_ladder(self, p: Principal, *, resident_id: str) -> None:
        await self._check_ladder_scope(p, None, resident_id)
        async with self._db.transaction() as conn:
            await conn.execute("DELETE FROM ladders WHERE scope = ?", (f"resident:{resident_id}",))

    async def _check_ladder_scope(self, p: Principal, district_id: str | None,
                                  resident_id: str | None) -> str:
        conn = self._db.conn
        if resident_id is not None:
            clause, params = resident_clause(p, "r.id", "c.district_id")
            cur = await conn.execute(
                "SELECT c.district_id FROM residents r JOIN households h ON h.id = r.household_id"
                f" JOIN communities c ON c.id = h.community_id WHERE r.id = ? AND {clause}",
                (resident_id, *params))
            row = await cur.fetchone()
            if row is None:
                raise NotFoundError(f"resident {resident_id} not found")
            return str(row[0])
        clause, params = district_clause(p, "id")
        cur = await conn.execute(f"SELECT id FROM districts WHERE id = ? AND {clause}",
                                 (district_id, *params))
        if await cur.fetchone() is None:
            raise NotFoundError(f"district {district_id} not found")
        assert district_id is not None
        return district_id

    async def open_alerts_of(self, resident_id: str) -> list[AlertPublic]:
        states = [s.value for s in OPEN_STATES]
        cur = await self._db.conn.execute(
            f"{A.ALERT_SELECT} WHERE a.resident_id = ? AND a.status IN"
            f" ({','.join('?' for _ in states)}) ORDER BY a.opened_at DESC",
            (resident_id, *states))
        return [A.to_public(r) for r in await cur.fetchall()]
