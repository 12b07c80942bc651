"""Self-test maintenance: the one 30-day rule, and the scan that turns it into tasks.

Gas and smoke detectors must be self-tested (their test button) at least every
``SELF_TEST_MAX_AGE``; a detector that was not becomes one open maintenance task for the
installers. The care engine runs :func:`scan` on a timer
(``settings.care.maintenance_scan_interval_s``) so tasks appear without anyone asking; the
installer API runs the same scan, scoped to the caller, when the tool asks.

The console's device board flags "not tested recently" with the same constant as its
default window (``api/console_support.py``). A stale self-test is deliberately not an
alert in the operators' queue: it is not urgent for a person, it is work for an
installer, and the board and the task list are where it shows.

The tables are the installer component's (``installer_self_tests``, ``installer_cursor``,
``installer_maintenance``); :func:`ensure_tables` applies its migrations, which are
idempotent, because the engine may scan before any installer request has.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from eldercare_cloud.clock import iso, parse_iso
from eldercare_cloud.db import Connection, Database
from eldercare_cloud.ingest.models import StoredEvent
from eldercare_protocols.events import EventKind

#: a gas or smoke detector's self-test older than this becomes a maintenance task
SELF_TEST_MAX_AGE = timedelta(days=30)
SELF_TEST_TYPES = ("gas_detector", "smoke_detector")


def overdue(last: datetime | None, now: datetime,
            max_age: timedelta = SELF_TEST_MAX_AGE) -> bool:
    """Never tested, or tested longer ago than ``max_age``."""
    return last is None or now - last > max_age


class EventReader(Protocol):
    async def events_after(self, cursor: int, limit: int = 500) -> list[StoredEvent]: ...


async def ensure_tables(db: Database) -> None:
    # imported here: the installer's service imports this module
    from eldercare_cloud.installer.schema import MIGRATIONS

    await db.migrate("installer", MIGRATIONS)


async def note_self_test(conn: Connection, device_id: str, at: datetime) -> None:
    await conn.execute("INSERT INTO installer_self_tests(device_id, last_at) VALUES (?, ?)"
                       " ON CONFLICT(device_id) DO UPDATE SET"
                       " last_at = CASE WHEN excluded.last_at > installer_self_tests.last_at"
                       " THEN excluded.last_at ELSE installer_self_tests.last_at END",
                       (device_id, iso(at)))


async def catch_up_self_tests(db: Database, reader: EventReader) -> None:
    """Fold self-test events committed since the last scan into installer_self_tests
    (a stored cursor, so each event is read once across restarts)."""
    cur = await db.conn.execute("SELECT value FROM installer_cursor WHERE name = 'self_test'")
    row = await cur.fetchone()
    cursor = int(row[0]) if row else 0
    latest: dict[str, datetime] = {}
    for _ in range(10_000):  # bounded: pages of 500
        page = await reader.events_after(cursor, 500)
        if not page:
            break
        cursor = page[-1].rowid
        for ev in page:
            if ev.kind is EventKind.SELF_TEST:
                at = ev.device_ts or ev.gateway_ts
                if ev.device_id not in latest or at > latest[ev.device_id]:
                    latest[ev.device_id] = at
    async with db.transaction() as conn:
        for device_id, at in latest.items():
            await note_self_test(conn, device_id, at)
        await conn.execute(
            "INSERT INTO installer_cursor(name, value) VALUES ('self_test', ?)"
            " ON CONFLICT(name) DO UPDATE SET value = excluded.value", (cursor,))


async def last_self_tests(conn: Connection) -> dict[str, datetime]:
    cur = await conn.execute("SELECT device_id, last_at FROM installer_self_tests")
    return {r[0]: parse_iso(r[1]) for r in await cur.fetchall()}


async def scan(db: Database, reader: EventReader, devices: Sequence[tuple[str, str]],
               now: datetime) -> int:
    """Open one task per overdue detector among ``devices`` (id, type); close the tasks
    of detectors tested since. Returns how many tasks were opened.

    A device has at most one open task (a partial unique index), so scanning every hour
    opens nothing twice."""
    await catch_up_self_tests(db, reader)
    tests = await last_self_tests(db.conn)
    created = 0
    async with db.transaction() as conn:
        for device_id, type_name in devices:
            if type_name not in SELF_TEST_TYPES:
                continue
            last = tests.get(device_id)
            if not overdue(last, now):
                await conn.execute(
                    "UPDATE installer_maintenance SET status = 'done', done_at = ?,"
                    " done_by = 'self-test' WHERE device_id = ? AND kind = 'self_test'"
                    " AND status = 'open'", (iso(now), device_id))
                continue
            reason = ("从未自检 / never self-tested" if last is None else
                      f"上次自检 / last self-test {last.date().isoformat()} "
                      f"({(now - last).days} 天 / days)")
            cur = await conn.execute(
                "INSERT INTO installer_maintenance(id, device_id, kind, reason,"
                " status, created_at) VALUES (?, ?, 'self_test', ?, 'open', ?)"
                " ON CONFLICT DO NOTHING",
                (f"MT-{secrets.token_hex(6)}", device_id, reason, iso(now)))
            created += cur.rowcount
    return created


async def all_detectors(conn: Connection) -> list[tuple[str, str]]:
    """Every registered gas and smoke detector (the engine's scan is not scoped)."""
    types: list[Any] = list(SELF_TEST_TYPES)
    cur = await conn.execute(
        f"SELECT id, type FROM devices WHERE type IN ({','.join('?' for _ in types)})"
        " ORDER BY id", types)
    return [(str(r[0]), str(r[1])) for r in await cur.fetchall()]
