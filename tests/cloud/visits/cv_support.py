"""Helpers for the care-visit tests (no tests here).

Time is a ManualClock seeded with a fixed date (Tuesday 4 March 2025, 09:00 in
Hangzhou); events are committed through ingest's own write path stamped with times the
test chooses, so nothing here reads the wall clock.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from eldercare_cloud.auth.models import Principal, Role
from eldercare_cloud.ingest import IngestStore, Received
from eldercare_cloud.services.catalogue import LOCAL_TZ
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import EventEnvelope

#: 09:00 local time on Tuesday 4 March 2025
T0 = datetime(2025, 3, 4, 1, 0, tzinfo=UTC)
ADMIN = Principal(user_id="U-test-admin", username="admin", role=Role.ADMIN, tenant="default")
OPERATOR = Principal(user_id="U-test-operator", username="operator", role=Role.OPERATOR,
                     tenant="default", district_ids=frozenset({"D-XH"}))

_SEQ = [50_000]


def local(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=LOCAL_TZ)


async def commit_many(store: IngestStore, gateway_id: str,
                      events: Sequence[tuple[EventKind, str, datetime, dict[str, Any]]]) -> None:
    """Events (kind, device, device time, data) committed by ingest in one batch."""
    items = []
    for kind, device_id, ts, data in events:
        _SEQ[0] += 1
        env = EventEnvelope(id=uuid.uuid4().hex, seq=_SEQ[0], gateway_id=gateway_id,
                            gateway_ts=ts + timedelta(milliseconds=20), device_id=device_id,
                            kind=kind, device_ts=ts, device_seq=_SEQ[0], data=data)
        items.append(Received(gateway_id, env, ts + timedelta(milliseconds=40)))
    if items:
        info = await store.commit(items)
        assert len(info.events) == len(items)
