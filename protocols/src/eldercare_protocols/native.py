"""The native device protocol: what our own firmware and the simulator speak on the home broker.

Topics (one device, one prefix)::

    eldercare/{device_id}/event       an event (QoS 1)
    eldercare/{device_id}/telemetry   a reading (QoS 0 or 1)
    eldercare/{device_id}/state       retained state; also the heartbeat and the Last Will
    eldercare/{device_id}/cmd         a command to the device
    eldercare/{device_id}/cmd/ack     the device's answer to a command

Every payload is a JSON object with the protocol version ``v``; events and
telemetry carry a per-device sequence number ``seq`` and the device's time ``ts``.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from eldercare_protocols._json import dump, load_object, parse, validate
from eldercare_protocols.bounds import JsonData, Seq, Timestamp
from eldercare_protocols.catalogue import CATALOGUE, device_type
from eldercare_protocols.errors import DecodeError, UnknownDeviceError
from eldercare_protocols.events import CanonicalEvent, EventKind

PREFIX = "eldercare"
DEVICE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DeviceId = Annotated[str, Field(pattern=DEVICE_ID_RE.pattern)]
DeviceTypeName = Annotated[str, Field(min_length=1, max_length=32)]


class Channel(StrEnum):
    EVENT = "event"
    TELEMETRY = "telemetry"
    STATE = "state"
    CMD = "cmd"
    CMD_ACK = "cmd/ack"


def topic(device_id: str, channel: Channel) -> str:
    if not DEVICE_ID_RE.match(device_id):
        raise ValueError(f"invalid device id {device_id!r}")
    return f"{PREFIX}/{device_id}/{channel.value}"


SUBSCRIPTIONS = (f"{PREFIX}/+/event", f"{PREFIX}/+/telemetry", f"{PREFIX}/+/state",
                 f"{PREFIX}/+/cmd/ack")


def parse_topic(topic_: str) -> tuple[str, Channel]:
    parts = topic_.split("/")
    if len(parts) < 3 or parts[0] != PREFIX:
        raise DecodeError("not a native device topic", topic=topic_)
    device_id, rest = parts[1], "/".join(parts[2:])
    if not DEVICE_ID_RE.match(device_id):
        raise DecodeError(f"invalid device id {device_id!r}", topic=topic_)
    try:
        return device_id, Channel(rest)
    except ValueError as exc:
        raise DecodeError(f"unknown channel {rest!r}", topic=topic_) from exc


class _Msg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    v: Literal[1] = 1


class DeviceEvent(_Msg):
    seq: Seq
    ts: Timestamp
    type: DeviceTypeName
    kind: EventKind
    test: bool = False
    data: JsonData = Field(default_factory=dict)


class DeviceTelemetry(_Msg):
    seq: Seq
    ts: Timestamp
    type: DeviceTypeName
    kind: EventKind
    values: dict[str, float] = Field(min_length=1)


class StateReason(StrEnum):
    BOOT = "boot"
    HEARTBEAT = "heartbeat"
    CHANGE = "change"
    WILL = "will"
    SHUTDOWN = "shutdown"


class DeviceState(_Msg):
    """Retained. Published on boot, on every heartbeat and on change; the Last Will is
    a state with ``online: false`` and ``reason: will`` set when the device connects."""

    online: bool
    reason: StateReason
    ts: Timestamp | None = None
    type: DeviceTypeName | None = None
    seq: Seq | None = None
    battery: float | None = Field(default=None, ge=0, le=100)
    rssi: int | None = Field(default=None, ge=-130, le=0)
    firmware: str | None = Field(default=None, max_length=32)
    props: JsonData = Field(default_factory=dict)

    @model_validator(mode="after")
    def _live_state_is_complete(self) -> DeviceState:
        if self.online and (self.ts is None or self.type is None):
            raise ValueError("an online state needs ts and type")
        return self


class DeviceCommand(_Msg):
    id: Annotated[str, Field(min_length=1, max_length=64)]
    command: Annotated[str, Field(min_length=1, max_length=32)]
    args: JsonData = Field(default_factory=dict)
    ts: Timestamp


class DeviceCommandAck(_Msg):
    id: Annotated[str, Field(min_length=1, max_length=64)]
    ok: bool
    error: str | None = None
    ts: Timestamp


NativeMessage = DeviceEvent | DeviceTelemetry | DeviceState | DeviceCommand | DeviceCommandAck

_MODELS: dict[Channel, type[_Msg]] = {
    Channel.EVENT: DeviceEvent,
    Channel.TELEMETRY: DeviceTelemetry,
    Channel.STATE: DeviceState,
    Channel.CMD: DeviceCommand,
    Channel.CMD_ACK: DeviceCommandAck,
}


def decode(topic_: str, payload: bytes) -> tuple[str, NativeMessage]:
    """Decode one native message; check it against the catalogue. Raises DecodeError only."""
    device_id, channel = parse_topic(topic_)
    msg = parse(_MODELS[channel], payload, topic_)
    assert isinstance(msg, DeviceEvent | DeviceTelemetry | DeviceState | DeviceCommand
                      | DeviceCommandAck)
    _check_catalogue(msg, topic_, payload)
    return device_id, msg


def _check_catalogue(msg: NativeMessage, topic_: str, payload: bytes) -> None:
    type_name = getattr(msg, "type", None)
    if type_name is None:
        return
    try:
        dtype = device_type(type_name)
    except UnknownDeviceError as exc:
        raise DecodeError(str(exc), topic=topic_, payload=payload) from exc
    if isinstance(msg, DeviceEvent) and msg.kind not in dtype.events:
        raise DecodeError(f"a {type_name} does not emit {msg.kind.value!r}", topic=topic_,
                          payload=payload)
    if isinstance(msg, DeviceTelemetry):
        if msg.kind not in dtype.telemetry_kinds:
            raise DecodeError(f"a {type_name} does not report {msg.kind.value!r}", topic=topic_,
                              payload=payload)
        ranges = dtype.measurements
        for name, value in msg.values.items():
            m = ranges.get(name)
            if m is None:
                raise DecodeError(f"a {type_name} does not measure {name!r}", topic=topic_,
                                  payload=payload)
            if not m.is_valid(value):
                raise DecodeError(
                    f"{name}={value} outside {m.valid_min:g}..{m.valid_max:g} {m.unit}",
                    topic=topic_, payload=payload)


def to_canonical(device_id: str, msg: NativeMessage) -> list[CanonicalEvent]:
    """The canonical events a native message means (commands and acks mean none)."""
    if isinstance(msg, DeviceEvent):
        return [CanonicalEvent(device_id=device_id, kind=msg.kind, ts=msg.ts, seq=msg.seq,
                               test=msg.test, data=msg.data)]
    if isinstance(msg, DeviceTelemetry):
        return [CanonicalEvent(device_id=device_id, kind=msg.kind, ts=msg.ts, seq=msg.seq,
                               data=dict(msg.values))]
    if isinstance(msg, DeviceState):
        data: dict[str, Any] = {k: v for k, v in (("battery", msg.battery), ("rssi", msg.rssi),
                                                  ("firmware", msg.firmware)) if v is not None}
        if msg.type:
            data["type"] = msg.type
        data.update(msg.props)
        kind = {
            StateReason.BOOT: EventKind.DEVICE_ONLINE,
            StateReason.HEARTBEAT: EventKind.HEARTBEAT,
            StateReason.CHANGE: EventKind.HEARTBEAT,
        }.get(msg.reason, EventKind.DEVICE_OFFLINE)
        if not msg.online:
            kind = EventKind.DEVICE_OFFLINE
            data["reason"] = msg.reason.value
        return [CanonicalEvent(device_id=device_id, kind=kind, ts=msg.ts, seq=msg.seq, data=data)]
    return []


def decode_canonical(topic_: str, payload: bytes) -> list[CanonicalEvent]:
    device_id, msg = decode(topic_, payload)
    return to_canonical(device_id, msg)


def encode(msg: NativeMessage) -> bytes:
    return dump(msg)


def will_payload() -> bytes:
    """The Last Will a native device registers when it connects."""
    return encode(DeviceState(online=False, reason=StateReason.WILL))


def known_types() -> tuple[str, ...]:
    return tuple(CATALOGUE)


__all__ = [
    "SUBSCRIPTIONS",
    "Channel",
    "DeviceCommand",
    "DeviceCommandAck",
    "DeviceEvent",
    "DeviceState",
    "DeviceTelemetry",
    "NativeMessage",
    "StateReason",
    "decode",
    "decode_canonical",
    "encode",
    "load_object",
    "parse_topic",
    "to_canonical",
    "topic",
    "validate",
    "will_payload",
]
