"""Stream events are rows written in the same transaction as the change they announce.

So the stream is exactly the committed history, in commit order (the rowid), and a
client that reconnects with ``Last-Event-ID`` resumes without a gap or a duplicate.
The hub only wakes waiting readers after a commit; it holds nothing that a crash
could lose.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from eldercare_cloud.auth.models import Principal, Role
from eldercare_cloud.auth.scope import district_clause, in_clause
from eldercare_cloud.clock import Clock, iso, parse_iso
from eldercare_cloud.db import Connection, Database

#: the PostgreSQL notification channel of stream commits
CHANNEL = "eldercare_stream"

MIGRATIONS: list[str] = [
    """
CREATE TABLE stream_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    type TEXT NOT NULL,
    alert_id TEXT,
    district_id TEXT,
    resident_id TEXT,
    contact_ids TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX stream_events_alert ON stream_events(alert_id)
""",
    # who may see an event offered to contacts, as rows (was a JSON array read with
    # SQLite's json_each, which PostgreSQL does not have); contact_ids stays for reference
    """
CREATE TABLE stream_event_contacts (
    event_id INTEGER NOT NULL,
    contact_id TEXT NOT NULL,
    PRIMARY KEY (event_id, contact_id)
)
""",
    # events for the monitoring centre only (the service desk's requests and orders): the
    # family's resident scope and the responders' contact scope never reach them
    """
ALTER TABLE stream_events ADD COLUMN staff_only INTEGER NOT NULL DEFAULT 0
""",
]

#: roles that see staff-only events (in their districts)
STAFF_READERS = (Role.ADMIN, Role.OPERATOR, Role.SUPERVISOR)


class StreamEvent(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: int
    ts: datetime
    type: str
    alert_id: str | None
    data: dict[str, Any]


class StreamHub:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._changed = asyncio.Event()

    async def migrate(self) -> None:
        await self._db.migrate("stream", MIGRATIONS)

    async def append(self, conn: Connection, type_: str, data: dict[str, Any], *,
                     alert_id: str | None = None, district_id: str | None = None,
                     resident_id: str | None = None,
                     contact_ids: list[str] | None = None,
                     staff_only: bool = False) -> None:
        """Write an event inside the caller's transaction; call ``wake()`` after commit.

        ``staff_only``: only the monitoring centre (admins, operators, supervisors of the
        event's district) may read it, whatever resident or contacts it names.

        With several API workers on PostgreSQL the commit also wakes every other worker's
        hub (NOTIFY), and stream writers commit one at a time, so ids appear in order
        and a reader tailing by id never passes over one that commits late."""
        contacts = sorted(set(contact_ids or []))
        await self._db.serialise(conn, "stream_events")
        cur = await conn.execute(
            "INSERT INTO stream_events(ts, type, alert_id, district_id, resident_id,"
            " contact_ids, data, staff_only) VALUES (?,?,?,?,?,?,?,?) RETURNING id",
            (iso(self._clock.now()), type_, alert_id, district_id, resident_id,
             json.dumps(contacts), json.dumps(data, ensure_ascii=False, default=str),
             1 if staff_only else 0))
        row = await cur.fetchone()
        if contacts and row is not None:
            await conn.executemany(
                "INSERT INTO stream_event_contacts(event_id, contact_id) VALUES (?, ?)",
                [(row[0], c) for c in contacts])
        await self._db.notify(conn, CHANNEL)

    def listening(self) -> AbstractAsyncContextManager[None]:
        """While inside, commits of stream events by other processes wake this hub too."""
        return self._db.listen(CHANNEL, self.wake)

    def wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def watch(self) -> asyncio.Event:
        """Take this before reading, then ``wait`` on it: a commit in between is not missed."""
        return self._changed

    @staticmethod
    async def wait(changed: asyncio.Event, seconds: float) -> bool:
        """Wait for a commit after ``watch()`` (True) or ``seconds`` (False)."""
        try:
            async with asyncio.timeout(seconds):   # not wait_for: see clock.py
                await changed.wait()
        except TimeoutError:
            return False
        return True

    async def last_id(self) -> int:
        cur = await self._db.conn.execute("SELECT COALESCE(MAX(id), 0) FROM stream_events")
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def events_after(self, p: Principal, after: int, limit: int = 200
                           ) -> tuple[list[StreamEvent], int]:
        """Events the principal may see after ``after``; also the last id scanned, so a reader
        that sees nothing of a long run of other people's events still moves on."""
        clause, params = _scope(p)
        cur = await self._db.conn.execute(
            "SELECT id, ts, type, alert_id, data, (" + clause + ") AS visible"
            " FROM stream_events WHERE id > ? ORDER BY id LIMIT ?", (*params, after, limit))
        rows = list(await cur.fetchall())
        out = [StreamEvent(id=r["id"], ts=parse_iso(r["ts"]), type=r["type"],
                           alert_id=r["alert_id"], data=json.loads(r["data"]))
               for r in rows if r["visible"]]
        return out, (int(rows[-1]["id"]) if rows else after)


def _scope(p: Principal) -> tuple[str, list[Any]]:
    clause, params = _audience(p)
    if p.role in STAFF_READERS:
        return clause, params
    return f"(staff_only = 0 AND {clause})", params


def _audience(p: Principal) -> tuple[str, list[Any]]:
    if p.role is Role.ADMIN:
        clause, params = district_clause(p, "district_id")
        return f"(district_id IS NULL OR {clause})", params
    if p.role in (Role.OPERATOR, Role.SUPERVISOR):
        return district_clause(p, "district_id")
    if p.role is Role.FAMILY:
        return in_clause("resident_id", p.resident_ids)
    if p.role in (Role.VOLUNTEER, Role.WORKER):
        clause, params = in_clause("c.contact_id", p.contact_ids)
        return (f"EXISTS (SELECT 1 FROM stream_event_contacts c"
                f" WHERE c.event_id = stream_events.id AND {clause})", params)
    return "1 = 0", []


async def forget(conn: Connection, alert_ids: Sequence[str],
                 resident_id: str) -> None:
    """A resident's erasure: their events (which carry names and addresses) leave the
    stream, inside the erasure's transaction."""
    await conn.execute("DELETE FROM stream_event_contacts WHERE event_id IN"
                       " (SELECT id FROM stream_events WHERE resident_id = ?)", (resident_id,))
    await conn.execute("DELETE FROM stream_events WHERE resident_id = ?", (resident_id,))
    if alert_ids:
        marks = ",".join("?" for _ in alert_ids)
        await conn.execute("DELETE FROM stream_event_contacts WHERE event_id IN (SELECT id"
                           f" FROM stream_events WHERE alert_id IN ({marks}))", tuple(alert_ids))
        await conn.execute(f"DELETE FROM stream_events WHERE alert_id IN ({marks})",
                           tuple(alert_ids))

