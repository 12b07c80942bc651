"""Commissioning windows: while an installer walk-tests a home, its alarms are tests.

A walk test on a real device is a real press: a real SOS button raises a real (non-test)
``sos`` as far as the device and the gateway know. The gateway keeps forwarding every
alarm as it always does; the cloud decides. While a gateway is "commissioning until T",
the care engine turns alarms from that gateway into one low-severity ``commissioning``
entry for the console (no ladder, no family SMS) instead of a life-safety alert.

The window is judged by the engine's clock when it processes the event, and an event
that ingest received before the window was opened is never a commissioning event: a
backlog processed late (an engine that was down) stays real. Fail-safe in both
directions: after the window, or after ``end``, every alarm is real again.

These functions take a connection inside the caller's transaction, like ``alerts``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from eldercare_cloud.clock import iso, opt_parse, parse_iso
from eldercare_cloud.db import Connection
from eldercare_cloud.errors import InvalidRequestError

#: the longest window an installer may open in one go
MAX_WINDOW = timedelta(hours=4)


@dataclass(frozen=True)
class Window:
    gateway_id: str
    started_at: datetime
    until: datetime
    started_by: str
    ended_at: datetime | None

    def active(self, at: datetime) -> bool:
        end = min(self.until, self.ended_at) if self.ended_at else self.until
        return self.started_at <= at < end

    def covers(self, at: datetime, received_at: datetime) -> bool:
        """An event received at ``received_at`` and processed at ``at`` is a test."""
        return self.active(at) and received_at >= self.started_at


async def start(conn: Connection, gateway_id: str, now: datetime,
                length: timedelta, by: str) -> Window:
    """Open (or extend, or reopen) the gateway's window until ``now + length``."""
    if length <= timedelta(0) or length > MAX_WINDOW:
        raise InvalidRequestError(f"a commissioning window lasts more than 0 and at most "
                                  f"{int(MAX_WINDOW.total_seconds() // 60)} minutes")
    current = await get(conn, gateway_id)
    # extending an open window keeps its start (events since then stay tests)
    started = (current.started_at if current is not None and current.active(now) else now)
    until = now + length
    await conn.execute(
        "INSERT INTO care_commissioning(gateway_id, started_at, until, started_by, ended_at,"
        " ended_by) VALUES (?, ?, ?, ?, NULL, NULL) ON CONFLICT(gateway_id) DO UPDATE SET"
        " started_at = excluded.started_at, until = excluded.until,"
        " started_by = excluded.started_by, ended_at = NULL, ended_by = NULL",
        (gateway_id, iso(started), iso(until), by))
    return Window(gateway_id, started, until, by, None)


async def end(conn: Connection, gateway_id: str, now: datetime, by: str) -> bool:
    """Close the window now; True when one was open."""
    current = await get(conn, gateway_id)
    if current is None or not current.active(now):
        return False
    await conn.execute("UPDATE care_commissioning SET ended_at = ?, ended_by = ?"
                       " WHERE gateway_id = ?", (iso(now), by, gateway_id))
    return True


async def get(conn: Connection, gateway_id: str) -> Window | None:
    cur = await conn.execute("SELECT * FROM care_commissioning WHERE gateway_id = ?",
                             (gateway_id,))
    row = await cur.fetchone()
    if row is None:
        return None
    return Window(row["gateway_id"], parse_iso(row["started_at"]), parse_iso(row["until"]),
                  row["started_by"], opt_parse(row["ended_at"]))
