"""Helpers for the service-desk tests (no tests here).

Time is a ManualClock seeded with a fixed date (Tuesday 4 March 2025, 09:00 in
Hangzhou); events are committed through ingest's own write path with timestamps from
that clock, so nothing here reads the wall clock.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from care_support import Running

from eldercare_cloud.auth.models import Principal, Role
from eldercare_cloud.clock import ManualClock
from eldercare_cloud.ingest import IngestStore, Received, StoredEvent
from eldercare_cloud.services.catalogue import LOCAL_TZ
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import EventEnvelope

#: 09:00 local time on Tuesday 4 March 2025
T0 = datetime(2025, 3, 4, 1, 0, tzinfo=UTC)
ADMIN = Principal(user_id="U-test-admin", username="admin", role=Role.ADMIN, tenant="default")
OPERATOR = Principal(user_id="U-test-operator", username="operator", role=Role.OPERATOR,
                     tenant="default", district_ids=frozenset({"D-XH"}))

_SEQ = [10_000]


def local(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=LOCAL_TZ)


async def commit_at(store: IngestStore, clock: ManualClock, kind: EventKind, device_id: str,
                    gateway_id: str, at: datetime | None = None, **data: Any) -> StoredEvent:
    """One event envelope committed by ingest, stamped by the test's clock."""
    _SEQ[0] += 1
    ts = at or clock.now()
    env = EventEnvelope(id=uuid.uuid4().hex, seq=_SEQ[0], gateway_id=gateway_id,
                        gateway_ts=ts + timedelta(milliseconds=20), device_id=device_id,
                        kind=kind, device_ts=ts, device_seq=_SEQ[0], data=data)
    info = await store.commit([Received(gateway_id, env, ts + timedelta(milliseconds=40))])
    assert len(info.events) == 1
    return info.events[0]




def client(running: Running) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=running.url, timeout=10)


async def count(running: Running, table: str) -> int:
    cur = await running.services.db.conn.execute(f"SELECT COUNT(*) FROM {table}")
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])
