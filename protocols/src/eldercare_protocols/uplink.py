"""The gateway↔cloud contract.

Topics::

    ec/v1/{gateway_id}/up/events      EventEnvelope | GapRecord | SmsReport | UnknownDeviceSeen
    ec/v1/{gateway_id}/up/telemetry   TelemetryBatch
    ec/v1/{gateway_id}/up/state       GatewayState (retained; birth, health, Last Will)
    ec/v1/{gateway_id}/down/ack       Ack: ids the cloud has committed
    ec/v1/{gateway_id}/down/config    GatewayConfig (retained)
    ec/v1/{gateway_id}/down/cmd       DownCommand

Every uplink record carries an idempotency ``id`` and a per-gateway monotonic
``seq``. The gateway deletes a record from its outbox only when an Ack names
its id; the cloud acks only after its database commit and acks a duplicate
again without storing it twice.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from eldercare_protocols._json import dump, load_object, parse, validate
from eldercare_protocols.bounds import MAX_PAYLOAD, Int64, JsonData, Seq, Timestamp
from eldercare_protocols.errors import DecodeError
from eldercare_protocols.events import EventKind, is_life_safety

ROOT = "ec/v1"
GATEWAY_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
GatewayId = Annotated[str, Field(pattern=GATEWAY_ID_RE.pattern)]
DeviceId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
RecordId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{8,80}$")]
HHMM = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


class Up(StrEnum):
    EVENTS = "events"
    TELEMETRY = "telemetry"
    STATE = "state"


class Down(StrEnum):
    ACK = "ack"
    CONFIG = "config"
    CMD = "cmd"


def _check_gateway(gateway_id: str) -> str:
    if not GATEWAY_ID_RE.match(gateway_id):
        raise ValueError(f"invalid gateway id {gateway_id!r}")
    return gateway_id


def up_topic(gateway_id: str, channel: Up) -> str:
    return f"{ROOT}/{_check_gateway(gateway_id)}/up/{channel.value}"


def down_topic(gateway_id: str, channel: Down) -> str:
    return f"{ROOT}/{_check_gateway(gateway_id)}/down/{channel.value}"


#: what the cloud subscribes to; a shared subscription ``$share/ingest/...`` spreads it
CLOUD_SUBSCRIPTION = f"{ROOT}/+/up/#"


def gateway_subscriptions(gateway_id: str) -> tuple[str, ...]:
    return tuple(down_topic(gateway_id, d) for d in Down)


#: topics already parsed (one per gateway and channel): the cloud parses every uplink
#: message's topic, ~1 us each (issue 14). Only valid topics are kept, at most
#: _TOPIC_CACHE_MAX (then it starts again empty: a flood of distinct topics costs
#: what it did without a cache, never memory)
_UP_TOPICS: dict[str, tuple[str, Up]] = {}
_TOPIC_CACHE_MAX = 4096


def parse_up_topic(topic: str) -> tuple[str, Up]:
    parsed = _UP_TOPICS.get(topic)
    if parsed is not None:
        return parsed
    parsed = _parse_up_topic(topic)
    if len(_UP_TOPICS) >= _TOPIC_CACHE_MAX:
        _UP_TOPICS.clear()
    _UP_TOPICS[topic] = parsed
    return parsed


def _parse_up_topic(topic: str) -> tuple[str, Up]:
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != ROOT or parts[3] != "up":
        raise DecodeError("not an uplink topic", topic=topic)
    if not GATEWAY_ID_RE.match(parts[2]):
        raise DecodeError(f"invalid gateway id {parts[2]!r}", topic=topic)
    try:
        return parts[2], Up(parts[4])
    except ValueError as exc:
        raise DecodeError(f"unknown uplink channel {parts[4]!r}", topic=topic) from exc


def parse_down_topic(topic: str) -> tuple[str, Down]:
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != ROOT or parts[3] != "down":
        raise DecodeError("not a downlink topic", topic=topic)
    if not GATEWAY_ID_RE.match(parts[2]):
        raise DecodeError(f"invalid gateway id {parts[2]!r}", topic=topic)
    try:
        return parts[2], Down(parts[4])
    except ValueError as exc:
        raise DecodeError(f"unknown downlink channel {parts[4]!r}", topic=topic) from exc


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    v: Literal[1] = 1


class _Record(_Model):
    id: RecordId
    seq: Seq
    gateway_id: GatewayId
    gateway_ts: Timestamp


class Lane(StrEnum):
    ALARM = "alarm"
    EVENT = "event"
    TELEMETRY = "telemetry"


class EventEnvelope(_Record):
    """One canonical event from one device (or from a gateway rule, ``rule`` set)."""

    type: Literal["event"] = "event"
    device_id: DeviceId
    kind: EventKind
    test: bool = False
    device_ts: Timestamp | None = None
    device_seq: Seq | None = None
    source: Literal["native", "z2m", "serial", "gateway", "watch"] = "native"
    rule: str | None = Field(default=None, max_length=64)
    data: JsonData = Field(default_factory=dict)

    @property
    def lane(self) -> Lane:
        return Lane.ALARM if is_life_safety(self.kind) and not self.test else Lane.EVENT


class GapRecord(_Record):
    """Telemetry the gateway evicted under its disk cap: the cloud knows what is missing."""

    type: Literal["gap"] = "gap"
    dropped: Seq = Field(ge=1)
    first_seq: Seq
    last_seq: Seq
    oldest_ts: Timestamp
    newest_ts: Timestamp
    reason: Literal["disk_cap"] = "disk_cap"


class SmsReport(_Record):
    """The gateway sent (or failed to send) an SMS itself while the cloud was silent."""

    type: Literal["sms_report"] = "sms_report"
    alarm_id: RecordId
    to: Annotated[str, Field(pattern=r"^\+?[0-9]{3,20}$")]
    status: Literal["sent", "failed"]
    attempts: Seq = Field(ge=1)
    sent_at: Timestamp | None = None
    error: str | None = Field(default=None, max_length=200)


class UnknownDeviceSeen(_Record):
    """A device the gateway has not been told about; reported once, never acted on."""

    type: Literal["unknown_device"] = "unknown_device"
    device_id: Annotated[str, Field(min_length=1, max_length=128)]
    source: Literal["native", "z2m", "serial"]
    topic: str = Field(max_length=256)
    device_type: str | None = Field(default=None, max_length=32)


UplinkRecord = Annotated[
    EventEnvelope | GapRecord | SmsReport | UnknownDeviceSeen, Field(discriminator="type")
]
_UPLINK: TypeAdapter[EventEnvelope | GapRecord | SmsReport | UnknownDeviceSeen] = TypeAdapter(
    UplinkRecord
)


class TelemetryRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    device_id: DeviceId
    kind: EventKind
    ts: Timestamp
    device_seq: Seq | None = None
    values: dict[str, float] = Field(min_length=1)


class TelemetryBatch(_Record):
    type: Literal["telemetry"] = "telemetry"
    records: list[TelemetryRecord] = Field(min_length=1, max_length=1000)


class DeviceStatus(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    type: str | None = None
    online: bool
    battery: float | None = None
    rssi: Int64 | None = None
    last_seen: Timestamp | None = None


class GatewayState(_Model):
    """Retained state: birth (``online``), periodic ``health`` and the Last Will (``offline``)."""

    gateway_id: GatewayId
    status: Literal["online", "offline", "health"]
    ts: Timestamp | None = None
    version: str | None = None
    uptime_s: float | None = Field(default=None, ge=0)
    outbox: dict[Lane, int] = Field(default_factory=dict)
    oldest_unacked_s: float | None = Field(default=None, ge=0)
    last_cloud_ack: Timestamp | None = None
    devices: dict[str, DeviceStatus] = Field(default_factory=dict)
    counters: dict[str, Int64] = Field(default_factory=dict)


class Ack(_Model):
    ids: list[RecordId] = Field(min_length=1, max_length=5000)
    committed_at: Timestamp


class Threshold(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    low: float | None = None
    high: float | None = None


class Routine(BaseModel):
    """Windows that person-activity rules use; times are local wall-clock HH:MM."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    wake_by: HHMM = "10:00"
    waking_start: HHMM = "07:00"
    waking_end: HHMM = "21:00"
    inactive_hours: float = Field(default=4.0, gt=0, le=48)
    night_start: HHMM = "23:00"
    night_end: HHMM = "05:00"
    door_open_max_s: int = Field(default=600, ge=30, le=86_400)
    timezone: str = "Asia/Shanghai"


class Resident(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    name: str = Field(min_length=1, max_length=64)
    address: str = Field(min_length=1, max_length=200)
    wandering_risk: bool = False


class SmsContact(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    name: str = Field(min_length=1, max_length=64)
    phone: Annotated[str, Field(pattern=r"^\+?[0-9]{3,20}$")]
    relation: str = Field(default="family", max_length=32)


class DeviceBinding(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    device_id: DeviceId
    type: str = Field(min_length=1, max_length=32)
    room: str | None = Field(default=None, max_length=64)
    source: Literal["native", "z2m", "serial"] = "native"
    z2m_model: str | None = None
    z2m_name: str | None = None


class GatewayConfig(_Model):
    """Pushed retained by the cloud; the gateway starts from safe defaults until it arrives."""

    gateway_id: GatewayId
    version: Seq
    resident: Resident | None = None
    thresholds: dict[str, Threshold] = Field(default_factory=dict)
    vitals_sustain_s: int = Field(default=60, ge=0, le=3600)
    routine: Routine = Field(default_factory=Routine)
    sms_timeout_s: int = Field(default=60, ge=5, le=3600)
    sms_contacts: list[SmsContact] = Field(default_factory=list, max_length=10)
    devices: list[DeviceBinding] = Field(default_factory=list, max_length=200)


class DownCommand(_Model):
    id: RecordId
    device_id: DeviceId
    command: str = Field(min_length=1, max_length=32)
    args: JsonData = Field(default_factory=dict)
    ts: Timestamp


def _decode_fast(channel: Up, payload: bytes
                 ) -> (EventEnvelope | GapRecord | SmsReport | UnknownDeviceSeen | TelemetryBatch
                       | GatewayState | None):
    """The common case in one pass of pydantic's own JSON parser (about half the CPU of
    json.loads, then validating the dict; issue 14). Only for payloads whose bytes rule
    out what the bounded loader's walk alone catches (``bounds.loads``: in ASCII bytes
    only a ``\\u`` escape makes a lone surrogate); everything else the models check
    themselves (``allow_inf_nan=False``, the 64-bit bounds, free-form data walking
    itself). None when the payload is not valid: the slow path then says why, exactly as
    before."""
    if len(payload) > MAX_PAYLOAD or not payload.isascii() or b"\\u" in payload:
        return None
    try:
        if channel is Up.EVENTS:
            return _UPLINK.validate_json(payload)
        if channel is Up.TELEMETRY:
            return TelemetryBatch.model_validate_json(payload)
        return GatewayState.model_validate_json(payload)
    except ValueError:
        return None


def decode_uplink(topic: str, payload: bytes
                  ) -> tuple[str, EventEnvelope | GapRecord | SmsReport | UnknownDeviceSeen
                             | TelemetryBatch | GatewayState]:
    """Decode an uplink message and check that it names the gateway of its topic."""
    gateway_id, channel = parse_up_topic(topic)
    msg: EventEnvelope | GapRecord | SmsReport | UnknownDeviceSeen | TelemetryBatch | GatewayState
    fast = _decode_fast(channel, payload)
    if fast is not None:
        msg = fast
    elif channel is Up.EVENTS:
        obj = load_object(payload, topic, into_model=True)
        try:
            msg = _UPLINK.validate_python(obj)
        except ValueError:
            # re-run through validate() for one clear DecodeError message
            models: dict[str, type[_Record]] = {
                "event": EventEnvelope, "gap": GapRecord, "sms_report": SmsReport,
                "unknown_device": UnknownDeviceSeen}
            model = models.get(str(obj.get("type")))
            if model is None:
                raise DecodeError(f"unknown record type {obj.get('type')!r}", topic=topic,
                                  payload=payload) from None
            record = validate(model, obj, payload, topic)
            assert isinstance(record, EventEnvelope | GapRecord | SmsReport | UnknownDeviceSeen)
            msg = record
    elif channel is Up.TELEMETRY:
        msg = parse(TelemetryBatch, payload, topic)
    else:
        msg = parse(GatewayState, payload, topic)
    if msg.gateway_id != gateway_id:
        raise DecodeError(f"record names gateway {msg.gateway_id!r} on {gateway_id!r}'s topic",
                          topic=topic, payload=payload)
    return gateway_id, msg


def encode(msg: BaseModel) -> bytes:
    return dump(msg)


__all__ = [
    "CLOUD_SUBSCRIPTION",
    "Ack",
    "DeviceBinding",
    "DeviceStatus",
    "Down",
    "DownCommand",
    "EventEnvelope",
    "GapRecord",
    "GatewayConfig",
    "GatewayState",
    "Lane",
    "Resident",
    "Routine",
    "SmsContact",
    "SmsReport",
    "TelemetryBatch",
    "TelemetryRecord",
    "Threshold",
    "UnknownDeviceSeen",
    "Up",
    "UplinkRecord",
    "decode_uplink",
    "down_topic",
    "encode",
    "gateway_subscriptions",
    "parse_down_topic",
    "parse_up_topic",
    "up_topic",
]
