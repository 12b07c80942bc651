"""Notifications are queued as rows inside the transaction that decided to send them.

The dispatcher sends what is due and records the outcome; a notification is created
once (the ladder's offer is unique per contact and alert), so a restart resends at most
the one message that was in flight when the process died.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

from eldercare_cloud.clock import iso
from eldercare_cloud.db import Connection


async def enqueue(conn: Connection, *, alert_id: str, contact_id: str | None,
                  channel: str, address: str, body: str, link: str | None,
                  payload: dict[str, Any], now: datetime) -> str:
    notification_id = f"N-{secrets.token_hex(6)}"
    await conn.execute(
        "INSERT INTO notifications(id, alert_id, contact_id, channel, address, body, link,"
        " payload, status, next_attempt_at, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (notification_id, alert_id, contact_id, channel, address, body, link,
         json.dumps(payload, ensure_ascii=False, default=str), "pending", iso(now), iso(now)))
    return notification_id
