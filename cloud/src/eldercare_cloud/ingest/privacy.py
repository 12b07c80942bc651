"""Ingest's part of erasing one resident: what their devices reported and the gateway's
SMS receipts to their contacts. Rows stay (their ids keep ingest idempotent, invariant 1);
what they said about the person goes. Called inside the erasure's one transaction."""

from __future__ import annotations

from collections.abc import Sequence

from eldercare_cloud.db import Connection


async def erase(conn: Connection, device_ids: Sequence[str],
                phones: Sequence[str]) -> None:
    if device_ids:
        marks = ",".join("?" for _ in device_ids)
        await conn.execute(f"UPDATE events SET data = '{{}}' WHERE device_id IN ({marks})",
                           tuple(device_ids))
    if phones:
        marks = ",".join("?" for _ in phones)
        await conn.execute(f"UPDATE sms_reports SET recipient = 'erased', error = NULL"
                           f" WHERE recipient IN ({marks})", tuple(phones))
