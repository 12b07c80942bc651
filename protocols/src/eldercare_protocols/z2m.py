"""Zigbee2MQTT adapter: off-the-shelf Zigbee devices published by a Z2M bridge.

Z2M publishes the device's whole state on ``zigbee2mqtt/{friendly_name}`` every
time anything changes, and ``{"state": "online"|"offline"}`` on
``zigbee2mqtt/{friendly_name}/availability``. Its retained ``zigbee2mqtt/bridge/devices``
lists every paired device with its friendly name, model and *exposes*: what it reports.

The adapter learns devices from that list (:meth:`Z2MAdapter.learn`) and decodes each
device by what it exposes: every property is read by the codec of the capability block
that owns it (:mod:`eldercare_protocols.z2m_codecs`, attached to blocks in the catalogue),
so a device nobody has seen before works if it exposes ``contact``, ``gas``, ``smoke``,
``water_leak``, ``sos`` or an emergency ``action``, ``occupancy``/``presence``, a fall
state, ``tamper``, ``battery`` or ``battery_low``. A device the bridge has not described
yet is decoded by the codecs of its catalogue type (its bound type or its model).

Most fields are levels, not events, so the adapter remembers the last value per device
and emits a canonical event on the edge. That memory is saved by the gateway
(:meth:`Z2MAdapter.snapshot`) and restored after a restart, so a battery report that
repeats ``contact: false`` after a restart is not a door opening.

Semantics that are easy to get wrong and that the tests pin down:

* ``contact: true`` means the magnet is near the switch: the door is CLOSED. The first
  contact ever seen only sets the baseline.
* ``action: "emergency"`` is followed by ``action: ""`` a moment later; the empty
  action means nothing. Other models send ``sos: true``; a second ``sos: true`` with
  nothing else changed is a second press. Emergency buttons bound as call buttons send
  ``action: single|double|hold``. Each is one ``sos``.
* ``fall_status: fall_alarm`` / ``fall_down_status: fall`` / ``status: falling`` are a
  ``fall``; ``fall_warning`` / ``maybe_fall`` are a ``fall_warning`` (a concern to check).
* ``test: true`` marks a test: it becomes ``self_test``, never an alarm.
* A value of the wrong type (``"contact": "yes"``) is reported to ``on_problem`` with the
  topic (a warning), and the message's other fields are still decoded.

Unknown fields are tolerated: bridges and firmware add fields all the time.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from eldercare_protocols._json import load_object
from eldercare_protocols.catalogue import (
    Z2M_CODECS,
    DeviceType,
    device_type_for_exposes,
    device_type_for_z2m_model,
)
from eldercare_protocols.errors import DecodeError, UnknownDeviceError
from eldercare_protocols.events import CanonicalEvent, EventCategory, EventKind
from eldercare_protocols.z2m_codecs import (
    HOUSEKEEPING,
    STATE_FIELDS,
    Ctx,
    Expose,
    FieldCodec,
    FieldProblem,
    Memory,
    ProblemSink,
    flatten_exposes,
)

log = logging.getLogger(__name__)

BASE_TOPIC = "zigbee2mqtt"
BRIDGE_DEVICES = f"{BASE_TOPIC}/bridge/devices"
BRIDGE_STATE = f"{BASE_TOPIC}/bridge/state"
#: the bridge's device list first: it tells the adapter what the devices expose
SUBSCRIPTIONS = (BRIDGE_DEVICES, BRIDGE_STATE, f"{BASE_TOPIC}/+", f"{BASE_TOPIC}/+/availability")
#: ``bridge/devices`` describes every device with its exposes: far larger than a state
MAX_BRIDGE_DEVICES = 4 * 1024 * 1024
MAX_DEVICES = 1000
_ORDER = {EventCategory.LIFE_SAFETY: 0, EventCategory.CARE: 1, EventCategory.TELEMETRY: 2,
          EventCategory.DEVICE: 3}
#: a friendly name becomes a device id (at most 64 characters) when no binding names one
MAX_FRIENDLY_NAME = 64


def parse_topic(topic: str) -> tuple[str, bool]:
    """Return (friendly_name, is_availability). Bridge topics are not device topics."""
    parts = topic.split("/")
    if len(parts) < 2 or parts[0] != BASE_TOPIC or not parts[1] or parts[1] == "bridge":
        raise DecodeError("not a Zigbee2MQTT device topic", topic=topic)
    if len(parts[1]) > MAX_FRIENDLY_NAME:
        raise DecodeError(f"friendly name longer than {MAX_FRIENDLY_NAME} characters",
                          topic=topic)
    if len(parts) == 2:
        return parts[1], False
    if len(parts) == 3 and parts[2] == "availability":
        return parts[1], True
    raise DecodeError("not a Zigbee2MQTT device topic", topic=topic)


@dataclass(frozen=True)
class Z2MDevice:
    """One device as the bridge describes it in ``bridge/devices``."""

    friendly_name: str
    ieee_address: str
    model: str | None
    vendor: str | None
    description: str | None
    exposes: tuple[Expose, ...]

    @property
    def device_type(self) -> DeviceType | None:
        """The catalogue type this device is, by its model or else by its exposes."""
        return device_type_for_exposes(self.model, self.exposes)


def parse_bridge_devices(payload: bytes, topic: str = BRIDGE_DEVICES) -> list[Z2MDevice]:
    """The end devices and routers of a ``bridge/devices`` message (the coordinator and
    entries without a definition are left out: there is nothing to decode them by)."""
    if len(payload) > MAX_BRIDGE_DEVICES:
        raise DecodeError(f"device list of {len(payload)} bytes exceeds {MAX_BRIDGE_DEVICES}",
                          topic=topic, payload=payload)
    try:
        raw = json.loads(payload)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DecodeError(f"not JSON: {exc}", topic=topic, payload=payload) from exc
    if not isinstance(raw, list):
        raise DecodeError(f"expected a JSON list of devices, got {type(raw).__name__}",
                          topic=topic, payload=payload)
    if len(raw) > MAX_DEVICES:
        raise DecodeError(f"{len(raw)} devices exceed {MAX_DEVICES}", topic=topic,
                          payload=payload)
    out: list[Z2MDevice] = []
    for entry in raw:
        if not isinstance(entry, dict) or entry.get("type") == "Coordinator":
            continue
        name, ieee, definition = (entry.get("friendly_name"), entry.get("ieee_address"),
                                  entry.get("definition"))
        if not isinstance(name, str) or not name or not isinstance(definition, dict):
            continue

        def text(key: str, d: dict[str, Any] = definition) -> str | None:
            value = d.get(key)
            return value[:128] if isinstance(value, str) else None

        out.append(Z2MDevice(friendly_name=name[:128],
                             ieee_address=ieee[:32] if isinstance(ieee, str) else "",
                             model=text("model"), vendor=text("vendor"),
                             description=text("description"),
                             exposes=flatten_exposes(definition.get("exposes"))))
    return out


# ---------------------------------------------------------------- saved memory


class _Snap(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _ExposeSnap(_Snap):
    property: str
    type: str
    access: int = 1
    values: tuple[str, ...] = ()
    value_on: Any = None
    value_off: Any = None


class _DeviceSnap(_Snap):
    ieee_address: str = ""
    model: str | None = None
    vendor: str | None = None
    description: str | None = None
    exposes: list[_ExposeSnap] = Field(default_factory=list)


class _MemorySnap(_Snap):
    levels: dict[str, Any] = Field(default_factory=dict)
    last: dict[str, Any] = Field(default_factory=dict)


class Z2MSnapshot(_Snap):
    """What the adapter knows, saved across gateway restarts (JSON)."""

    v: int = 1
    memory: dict[str, _MemorySnap] = Field(default_factory=dict)
    devices: dict[str, _DeviceSnap] = Field(default_factory=dict)


def _log_problem(topic: str, problem: FieldProblem) -> None:
    log.warning("Zigbee2MQTT field of the wrong type on %s: %s", topic, problem)


@dataclass
class Z2MAdapter:
    """Decode Z2M payloads into canonical events.

    One adapter per bridge: it holds the devices the bridge described and the last level
    of each edge-triggered field. ``on_problem(topic, problem)`` hears of every field of
    the wrong type (by default a warning in the log).
    """

    on_problem: ProblemSink = _log_problem
    _memory: dict[str, Memory] = field(default_factory=dict)
    _devices: dict[str, Z2MDevice] = field(default_factory=dict)
    #: devices whose next message may be the bridge replaying its cached state
    _replay: set[str] = field(default_factory=set)
    _bridge_online: bool | None = None
    #: memory or devices changed since the last snapshot
    dirty: bool = False

    def decode(self, topic: str, payload: bytes, model: str | None, device_id: str | None = None,
               *, dtype: DeviceType | None = None) -> list[CanonicalEvent]:
        """Decode one message of a device. ``model``/``dtype`` say what the device is when the
        bridge has not described it (yet); what the bridge said wins.

        Raises DecodeError only: whatever a field's converter refuses (a canonical event
        it cannot build, a number it cannot convert) is this payload's fault."""
        try:
            return self._decode(topic, payload, model, device_id, dtype)
        except (ValidationError, ValueError, TypeError, OverflowError) as exc:
            first = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise DecodeError(f"cannot convert: {first}", topic=topic, payload=payload) from exc

    def _decode(self, topic: str, payload: bytes, model: str | None, device_id: str | None,
                dtype: DeviceType | None) -> list[CanonicalEvent]:
        friendly, availability = parse_topic(topic)
        dev_id = device_id or friendly
        if availability:
            return [self._availability(dev_id, topic, payload)]
        type_name, codecs, exposes = self._profile(friendly, model, dtype, topic, payload)
        obj = load_object(payload, topic)
        return self._state(dev_id, topic, type_name, codecs, exposes, obj)

    # ---------------------------------------------------------------- the bridge

    def learn(self, payload: bytes, topic: str = BRIDGE_DEVICES) -> list[Z2MDevice]:
        """Take the bridge's device list (it replaces the previous one)."""
        devices = parse_bridge_devices(payload, topic)
        learned = {d.friendly_name: d for d in devices}
        if learned != self._devices:
            self._devices = learned
            self.dirty = True
        return devices

    def device(self, friendly_name: str) -> Z2MDevice | None:
        return self._devices.get(friendly_name)

    @property
    def devices(self) -> dict[str, Z2MDevice]:
        return dict(self._devices)

    def bridge_state(self, payload: bytes, topic: str = BRIDGE_STATE) -> bool:
        """The bridge's own state; when it comes (back) online it replays every device's
        cached state, which must not read as new reports. Returns whether it is online."""
        text = payload.strip()
        state: Any = (load_object(payload, topic).get("state") if text.startswith(b"{")
                      else text.decode("utf-8", errors="replace"))
        if state not in ("online", "offline"):
            raise DecodeError(f"bridge state must be online or offline, got {state!r}",
                              topic=topic, payload=payload)
        online = bool(state == "online")
        if online and self._bridge_online is not True:
            self._replay = set(self._memory)
        self._bridge_online = online
        return online

    def forget(self, device_id: str) -> None:
        if self._memory.pop(device_id, None) is not None:
            self.dirty = True

    # ---------------------------------------------------------------- saved memory

    def snapshot(self) -> bytes:
        snap = Z2MSnapshot(
            memory={d: _MemorySnap(levels=dict(m.levels), last=dict(m.last))
                    for d, m in self._memory.items()},
            devices={n: _DeviceSnap(
                ieee_address=d.ieee_address, model=d.model, vendor=d.vendor,
                description=d.description,
                exposes=[_ExposeSnap(property=e.prop, type=e.type, access=e.access,
                                     values=e.values, value_on=e.value_on,
                                     value_off=e.value_off) for e in d.exposes])
                for n, d in self._devices.items()})
        return snap.model_dump_json().encode()

    def restore(self, raw: bytes) -> None:
        """Take back what a previous run saved. Raises DecodeError when it is unreadable
        (the caller then starts from nothing)."""
        try:
            snap = Z2MSnapshot.model_validate_json(raw)
        except ValidationError as exc:
            raise DecodeError(f"saved Zigbee2MQTT state is unreadable: {exc.error_count()}"
                              f" errors, first: {exc.errors()[0]['msg']}", payload=raw) from exc
        self._memory = {d: Memory(levels=dict(m.levels), last=dict(m.last))
                        for d, m in snap.memory.items()}
        self._devices = {n: Z2MDevice(
            friendly_name=n, ieee_address=d.ieee_address, model=d.model, vendor=d.vendor,
            description=d.description,
            exposes=tuple(Expose(e.property, e.type, e.access, tuple(e.values), e.value_on,
                                 e.value_off) for e in d.exposes))
            for n, d in snap.devices.items()}
        # the first message of each device may replay a retained or cached state
        self._replay = set(self._memory)
        self.dirty = False

    # ------------------------------------------------------------------ internals

    def _profile(self, friendly: str, model: str | None, dtype: DeviceType | None, topic: str,
                 payload: bytes
                 ) -> tuple[str | None, tuple[FieldCodec, ...], dict[str, Expose] | None]:
        learned = self._devices.get(friendly)
        if learned is not None:
            known = dtype or learned.device_type
            own = set(map(id, known.z2m_codecs)) if known is not None else set()
            published = [e for e in learned.exposes if e.published]
            props = {e.prop for e in published}
            codecs = tuple(c for c in Z2M_CODECS
                           if any(c.claims(e) for e in published)
                           or (id(c) in own and props & set(c.properties)))
            return (known.name if known else None, codecs,
                    {e.prop: e for e in learned.exposes})
        if dtype is None:
            try:
                dtype = device_type_for_z2m_model(model or "")
            except UnknownDeviceError as exc:
                raise DecodeError(f"{exc}, and the bridge has not described {friendly!r}",
                                  topic=topic, payload=payload) from exc
        return dtype.name, dtype.z2m_codecs, None

    def _availability(self, dev_id: str, topic: str, payload: bytes) -> CanonicalEvent:
        text = payload.strip()
        state: Any
        if text.startswith(b"{"):
            state = load_object(payload, topic).get("state")
        else:
            state = text.decode("utf-8", errors="replace")
        if state == "online":
            return CanonicalEvent(device_id=dev_id, kind=EventKind.DEVICE_ONLINE, source="z2m")
        if state == "offline":
            return CanonicalEvent(device_id=dev_id, kind=EventKind.DEVICE_OFFLINE, source="z2m",
                                  data={"reason": "availability"})
        raise DecodeError(f"availability must be online or offline, got {state!r}",
                          topic=topic, payload=payload)

    def _state(self, dev_id: str, topic: str, type_name: str | None,
               codecs: tuple[FieldCodec, ...], exposes: dict[str, Expose] | None,
               obj: dict[str, Any]) -> list[CanonicalEvent]:
        mem = self._memory.setdefault(dev_id, Memory())
        before = (dict(mem.levels), dict(mem.last))
        ctx = Ctx(device_id=dev_id, obj=obj, memory=mem, type_name=type_name, exposes=exposes,
                  replay=dev_id in self._replay)
        self._replay.discard(dev_id)
        for codec in codecs:
            if codec.early:
                codec.decode(ctx)
        for codec in codecs:
            if not codec.early:
                codec.decode(ctx)
        mem.last = {k: v for k, v in obj.items() if k not in HOUSEKEEPING
                    and (v is None or isinstance(v, str | int | float | bool))}
        for problem in ctx.problems:
            self.on_problem(topic, problem)
        state = {k: obj[k] for k in STATE_FIELDS if isinstance(obj.get(k), int | float)
                 and not isinstance(obj.get(k), bool)}
        if state and not ctx.events:
            ctx.emit(EventKind.HEARTBEAT, **state)
        if (mem.levels, mem.last) != before:
            self.dirty = True
        # alarms first (they go to the alarm lane and the button's LED before anything
        # else), then what the person did, readings, and what the device says of itself
        return sorted(ctx.events, key=lambda e: _ORDER[e.category])
