"""Sends what the ladder queued, records the outcome, retries transient failures.

A row is marked ``sending`` (with its attempt counted) in one transaction before the
channel is called, and the outcome in another after. A crash in between leaves it
``sending``; the next start retries it, with the same ``X-Eldercare-Delivery`` id on
webhooks, so the one message that was in flight is the only one that may arrive twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from eldercare_cloud.care import alerts as A
from eldercare_cloud.clock import Clock, iso, parse_iso
from eldercare_cloud.db import Database, Row
from eldercare_cloud.notify.base import Channel, Delivery, Outbound
from eldercare_cloud.stream import StreamHub

log = logging.getLogger(__name__)

#: channels the dispatcher serves itself: the stream is the delivery
IN_APP = frozenset({"app", "console"})


class Dispatcher:
    def __init__(self, db: Database, clock: Clock, hub: StreamHub,
                 channels: Mapping[str, Channel], *, max_attempts: int,
                 retry_base_s: float, on_change: Callable[[], None] | None = None) -> None:
        self._db = db
        self._clock = clock
        self._hub = hub
        self._channels = dict(channels)
        self._max_attempts = max_attempts
        self._retry_base = retry_base_s
        self._on_change = on_change or (lambda: None)

    @property
    def channels(self) -> dict[str, Channel]:
        return self._channels

    async def recover(self) -> int:
        """After a restart: what was in flight is sent again (at least once)."""
        async with self._db.transaction() as conn:
            cur = await conn.execute("UPDATE notifications SET status = 'pending'"
                                     " WHERE status = 'sending'")
            return int(cur.rowcount or 0)

    async def next_due(self) -> datetime | None:
        cur = await self._db.conn.execute(
            "SELECT MIN(next_attempt_at) FROM notifications WHERE status = 'pending'")
        row = await cur.fetchone()
        return parse_iso(row[0]) if row and row[0] else None

    async def deliver_due(self, limit: int = 50) -> int:
        """Send every pending notification that is due; return how many were attempted."""
        now = self._clock.now()
        cur = await self._db.conn.execute(
            "SELECT * FROM notifications WHERE status = 'pending' AND next_attempt_at <= ?"
            " ORDER BY next_attempt_at, created_at LIMIT ?", (iso(now), limit))
        rows = list(await cur.fetchall())
        for row in rows:
            await self._deliver(row)
        return len(rows)

    async def _deliver(self, row: Row) -> None:
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE notifications SET status = 'sending', attempts = attempts + 1"
                " WHERE id = ? AND status = 'pending'", (row["id"],))
            if cur.rowcount == 0:
                return  # another worker took it
        attempts = int(row["attempts"]) + 1
        msg = Outbound(notification_id=row["id"], alert_id=row["alert_id"],
                       channel=row["channel"], address=row["address"], text=row["body"],
                       link=row["link"], payload=json.loads(row["payload"]))
        if msg.channel in IN_APP:
            result = Delivery("delivered")
        else:
            channel = self._channels.get(msg.channel)
            result = (await channel.send(msg) if channel is not None
                      else Delivery.failed(f"no {msg.channel} channel is configured",
                                           transient=False))
        await self._record(row, attempts, result)

    async def _record(self, row: Row, attempts: int, result: Delivery) -> None:
        now = self._clock.now()
        retry = result.status == "failed" and result.transient and attempts < self._max_attempts
        status = "pending" if retry else result.status
        delay = self._retry_base * (2 ** (attempts - 1))
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE notifications SET status = ?, next_attempt_at = ?, last_error = ?,"
                " provider_ref = COALESCE(?, provider_ref), sent_at = ? WHERE id = ?",
                (status, iso(now + timedelta(seconds=delay)) if retry else iso(now),
                 result.error, result.provider_ref,
                 iso(now) if result.status != "failed" else None, row["id"]))
            alert = await A.load(conn, row["alert_id"])
            assert alert is not None
            if (result.status != "failed" and row["contact_id"] is not None
                    and alert["first_notified_at"] is None):
                await A.touch(conn, alert["id"], now, first_notified_at=iso(now))
                alert = await A.load(conn, row["alert_id"])
                assert alert is not None
            if result.status != "failed" or not retry:
                await A.add_timeline(
                    conn, alert["id"], now, A.Actor.system(), "notification", None, None,
                    {"notification_id": row["id"], "channel": row["channel"],
                     "contact_id": row["contact_id"], "status": status,
                     "attempts": attempts, "error": result.error})
            if status == "failed":
                log.warning("notification %s to %s via %s failed after %d attempt(s): %s",
                            row["id"], row["address"], row["channel"], attempts, result.error)
                await self._hub.append(
                    conn, "notification.failed",
                    {"alert_id": alert["id"], "notification_id": row["id"],
                     "channel": row["channel"], "contact_id": row["contact_id"],
                     "error": result.error},
                    alert_id=alert["id"], district_id=alert["district_id"])
        self._hub.wake()
        self._on_change()
