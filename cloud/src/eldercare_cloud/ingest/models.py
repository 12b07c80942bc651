"""What ingest has committed, as frozen models: the care core reads these, never raw rows.

Every model carries the rowid of its table; that rowid is the cursor a reader stores
to resume exactly where it stopped (``IngestStore.events_after(cursor)``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import GatewayState, Lane


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StoredEvent(_Frozen):
    """One committed event envelope with every timestamp of its life so far."""

    rowid: int
    id: str
    gateway_id: str
    seq: int
    device_id: str
    kind: EventKind
    test: bool
    lane: Lane
    rule: str | None
    source: str
    data: dict[str, Any]
    device_ts: datetime | None
    device_seq: int | None
    gateway_ts: datetime
    received_at: datetime
    committed_at: datetime


class GatewayRecord(_Frozen):
    id: str
    created_at: datetime
    online: bool
    last_seen: datetime | None
    last_birth_at: datetime | None
    last_will_at: datetime | None
    last_health_at: datetime | None
    last_health: GatewayState | None
    version: str | None


@dataclass(frozen=True, slots=True)
class GatewayLiveness:
    """What the periodic silence rule needs of an online gateway: no health report (its
    JSON is what made loading every gateway cost 180-370 ms at 10,000 gateways)."""

    id: str
    created_at: datetime
    last_seen: datetime | None


class GatewayLogEntry(_Frozen):
    """A gateway's online/offline transition (birth, Last Will, or health after silence)."""

    rowid: int
    gateway_id: str
    status: Literal["online", "offline"]
    reason: Literal["birth", "will", "health"]
    ts: datetime | None
    received_at: datetime


class StoredGap(_Frozen):
    rowid: int
    id: str
    gateway_id: str
    seq: int
    dropped: int
    first_seq: int
    last_seq: int
    oldest_ts: datetime
    newest_ts: datetime
    reason: str
    gateway_ts: datetime
    received_at: datetime
    committed_at: datetime


class StoredSmsReport(_Frozen):
    rowid: int
    id: str
    gateway_id: str
    seq: int
    alarm_id: str
    to: str
    status: Literal["sent", "failed"]
    attempts: int
    sent_at: datetime | None
    error: str | None
    gateway_ts: datetime
    received_at: datetime
    committed_at: datetime


class StoredUnknownDevice(_Frozen):
    rowid: int
    id: str
    gateway_id: str
    seq: int
    device_id: str
    source: str
    topic: str
    device_type: str | None
    gateway_ts: datetime
    received_at: datetime
    committed_at: datetime


class StoredTelemetry(_Frozen):
    rowid: int
    batch_id: str
    gateway_id: str
    device_id: str
    kind: EventKind
    ts: datetime
    device_seq: int | None
    values: dict[str, float]


@dataclass(frozen=True)
class TelemetryPoint:
    """One telemetry record with the gateway it came through, for the time-series sinks."""

    gateway_id: str
    device_id: str
    kind: str
    ts: datetime
    values: dict[str, float]
    device_seq: int | None = None


def _no_events() -> tuple[StoredEvent, ...]:
    return ()


@dataclass(frozen=True)
class CommitInfo:
    """What one ingest commit added; handed to commit listeners after the acks went out.

    ``events`` (the rows this commit inserted, duplicates excluded, rowid order) is built
    on first use: a listener that only wants a wake-up does not pay for the models."""

    committed_at: datetime
    new_events: Callable[[], tuple[StoredEvent, ...]] = field(default=_no_events,
                                                               repr=False, compare=False)
    new_event_count: int = 0
    gateway_changes: tuple[GatewayLogEntry, ...] = ()
    event_rowid: int = 0
    gateway_log_rowid: int = 0
    gap_rowid: int = 0
    sms_rowid: int = 0
    unknown_rowid: int = 0
    #: records in the batch (new and duplicate) and how many of them were duplicates
    records: int = 0
    duplicates: int = 0
    #: new telemetry points (duplicates excluded), for the InfluxDB sink
    telemetry: tuple[TelemetryPoint, ...] = field(default=(), repr=False)
    #: record ids to ack, per gateway (duplicates included: they are acked again)
    acks: dict[str, list[str]] = field(default_factory=dict, repr=False)

    @cached_property
    def events(self) -> tuple[StoredEvent, ...]:
        return self.new_events()


@dataclass
class IngestCounters:
    """Monotonic counters since start; the health endpoint and benchmarks read them."""

    received: int = 0
    committed: int = 0
    duplicates: int = 0
    telemetry_points: int = 0
    rejected_unregistered: int = 0
    rejected_bad_payload: int = 0
    commit_failures: int = 0
    acks_published: int = 0
    batches: int = 0
    gateway_states: int = 0
    #: empty retained messages on up/state: the cloud cleared a revoked gateway's state
    states_cleared: int = 0
    #: notifications that the accepted gateways changed (a revoke, by any worker)
    gateway_set_changes: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)
