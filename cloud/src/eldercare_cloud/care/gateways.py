"""A gateway's life as the care core sees it beyond ingest's online flag: revoked.

A revoked gateway loses its broker account; Mosquitto publishes no Last Will for a client
it deleted, so nothing the gateway says can tell the cloud it is gone. The installer's
revoke records it here (in the care core's own ``care_gateway_watch``), and the engine
and the console read it: its offline record is not a fault to alert on, and the fleet
board shows it revoked, not online.
"""

from __future__ import annotations

from datetime import datetime

from eldercare_cloud.clock import iso, opt_parse
from eldercare_cloud.db import Connection


async def mark_revoked(conn: Connection, gateway_id: str, now: datetime) -> None:
    """First revoke wins (a second revoke is a no-op, not a new time)."""
    await conn.execute(
        "INSERT INTO care_gateway_watch(gateway_id, revoked_at) VALUES (?, ?)"
        " ON CONFLICT(gateway_id) DO UPDATE SET"
        " revoked_at = COALESCE(care_gateway_watch.revoked_at, excluded.revoked_at)",
        (gateway_id, iso(now)))


async def revoked_at(conn: Connection, gateway_id: str) -> datetime | None:
    cur = await conn.execute("SELECT revoked_at FROM care_gateway_watch WHERE gateway_id = ?",
                             (gateway_id,))
    row = await cur.fetchone()
    return opt_parse(row[0]) if row is not None else None
