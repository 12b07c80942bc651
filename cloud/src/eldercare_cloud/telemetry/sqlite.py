"""Telemetry in SQLite: the embedded default, written in the same transaction as the
ingest batch that carried it (so a committed TelemetryBatch id always has its rows)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from eldercare_cloud.db import Connection
from eldercare_cloud.ingest.models import StoredTelemetry, TelemetryPoint
from eldercare_cloud.ingest.timefmt import from_db, to_db
from eldercare_protocols.events import EventKind

MIGRATIONS: list[str] = [
    """
CREATE TABLE telemetry (
    rowid INTEGER PRIMARY KEY,
    batch_id TEXT NOT NULL,
    gateway_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    ts TEXT NOT NULL,
    device_seq INTEGER,
    values_json TEXT NOT NULL
);
CREATE INDEX telemetry_device_ts ON telemetry(device_id, ts)
""",
]


async def insert(conn: Connection,
                 rows: Sequence[tuple[str, TelemetryPoint]]) -> None:
    """Insert (batch_id, point) rows inside the caller's transaction."""
    if not rows:
        return
    await conn.executemany(
        "INSERT INTO telemetry(batch_id, gateway_id, device_id, kind, ts, device_seq,"
        " values_json) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(batch_id, p.gateway_id, p.device_id, p.kind, to_db(p.ts), p.device_seq,
          json.dumps(p.values, separators=(",", ":"))) for batch_id, p in rows],
    )


async def read(conn: Connection, device_id: str, since: datetime | None = None,
               limit: int = 1000) -> list[StoredTelemetry]:
    """Oldest first from ``since`` (inclusive)."""
    cur = await conn.execute(
        "SELECT rowid, batch_id, gateway_id, device_id, kind, ts, device_seq, values_json"
        " FROM telemetry WHERE device_id = ? AND ts >= ? ORDER BY ts, rowid LIMIT ?",
        (device_id, to_db(since) if since else "", limit),
    )
    rows = await cur.fetchall()
    return [StoredTelemetry(rowid=r[0], batch_id=r[1], gateway_id=r[2], device_id=r[3],
                            kind=EventKind(r[4]), ts=from_db(r[5]), device_seq=r[6],
                            values=json.loads(r[7])) for r in rows]


async def latest(conn: Connection, device_id: str, kind: EventKind,
                 since: datetime) -> StoredTelemetry | None:
    """The newest reading of ``kind`` from ``device_id`` at or after ``since`` (one row
    through the (device_id, ts) index, however many the device sent)."""
    cur = await conn.execute(
        "SELECT rowid, batch_id, gateway_id, device_id, kind, ts, device_seq, values_json"
        " FROM telemetry WHERE device_id = ? AND ts >= ? AND kind = ?"
        " ORDER BY ts DESC, rowid DESC LIMIT 1",
        (device_id, to_db(since), kind.value),
    )
    r = await cur.fetchone()
    if r is None:
        return None
    return StoredTelemetry(rowid=r[0], batch_id=r[1], gateway_id=r[2], device_id=r[3],
                           kind=EventKind(r[4]), ts=from_db(r[5]), device_seq=r[6],
                           values=json.loads(r[7]))


async def erase_devices(conn: Connection, device_ids: Sequence[str]) -> int:
    """Every telemetry row of these devices (a resident's erasure), in the caller's
    transaction; returns how many went."""
    if not device_ids:
        return 0
    marks = ",".join("?" for _ in device_ids)
    cur = await conn.execute(f"DELETE FROM telemetry WHERE device_id IN ({marks})",
                             tuple(device_ids))
    return int(cur.rowcount or 0)


async def purge_before(conn: Connection, before: datetime) -> int:
    """Telemetry older than the retention (``telemetry.retention_days``)."""
    cur = await conn.execute("DELETE FROM telemetry WHERE ts < ?", (to_db(before),))
    return int(cur.rowcount or 0)
