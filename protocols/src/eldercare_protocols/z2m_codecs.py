"""Zigbee2MQTT field codecs: one per device property, carried by the catalogue's capability blocks.

Zigbee2MQTT describes every device by its *exposes*: a list of the properties it
publishes (``contact`` binary, ``fall_status`` enum, ``battery`` numeric …), the way
zigbee-herdsman-converters' modern extends build a definition's exposes and converters
together. Here each capability block of :mod:`eldercare_protocols.catalogue` carries the
codecs of the properties that belong to it, so a device is decoded by what it exposes,
not by a model name: any device exposing ``contact`` is a door, whatever its vendor.

A codec reads one property of a state message, keeps the last level it saw in the
device's memory (Z2M republishes the whole state on every change, so most fields are
levels and only their edges are events), and emits canonical events. A value of the
wrong type is a :class:`FieldProblem` (reported with the topic), never a silent drop.

This module knows nothing about device types; the catalogue attaches codecs to blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from eldercare_protocols.events import CanonicalEvent, EventKind

#: fields that change on every message and say nothing about the device's state
HOUSEKEEPING = frozenset({"linkquality", "last_seen", "elapsed", "update", "update_available"})
#: fields a state heartbeat carries as data
STATE_FIELDS = ("battery", "linkquality", "voltage")


@dataclass(frozen=True)
class Expose:
    """One property from a Zigbee2MQTT definition's exposes (composites flattened)."""

    prop: str
    type: str
    access: int = 1
    values: tuple[str, ...] = ()
    value_on: Any = None
    value_off: Any = None

    @property
    def published(self) -> bool:
        """Access bit 1: the device reports it in its state (2 is set-only, 4 get)."""
        return bool(self.access & 1)


def flatten_exposes(raw: Any) -> tuple[Expose, ...]:
    """The properties of a definition's ``exposes`` list; malformed entries are skipped
    (a bridge from the future may describe things this code does not know)."""
    out: list[Expose] = []

    def walk(items: Any, depth: int) -> None:
        if not isinstance(items, list) or depth > 4:
            return
        for e in items:
            if not isinstance(e, dict):
                continue
            prop = e.get("property")
            typ = e.get("type")
            features = e.get("features")
            if isinstance(features, list) and typ != "composite":
                walk(features, depth + 1)   # specific exposes (light, lock …) group features
                continue
            if not isinstance(prop, str) or not isinstance(typ, str) or not prop:
                continue
            values = e.get("values")
            access = e.get("access")
            out.append(Expose(
                prop=prop, type=typ,
                access=access if isinstance(access, int) and not isinstance(access, bool) else 1,
                values=tuple(v for v in values if isinstance(v, str))
                if isinstance(values, list) else (),
                value_on=e.get("value_on", True) if typ == "binary" else None,
                value_off=e.get("value_off", False) if typ == "binary" else None))

    walk(raw, 0)
    return tuple(out)


@dataclass(frozen=True)
class FieldProblem:
    """A property whose value is not what the device's exposes (or the codec) allow."""

    property: str
    value: Any
    expected: str

    def __str__(self) -> str:
        return f"{self.property}={self.value!r}: expected {self.expected}"


@dataclass
class Memory:
    """What one device said last: codec levels and the previous message's fields."""

    levels: dict[str, Any] = field(default_factory=dict)
    last: dict[str, Any] = field(default_factory=dict)


@dataclass
class Ctx:
    """Everything a codec needs while it decodes one message of one device."""

    device_id: str
    obj: Mapping[str, Any]
    memory: Memory
    #: the catalogue type the device is bound as (or was inferred as), if any
    type_name: str | None
    #: the device's exposes by property, when learned from the bridge
    exposes: Mapping[str, Expose] | None
    #: the first message after a restart or a bridge (re)start may be a replay of the
    #: cached state (Z2M's ``cache_state_send_on_startup``), not a new report
    replay: bool = False
    test: bool = False
    events: list[CanonicalEvent] = field(default_factory=list)
    problems: list[FieldProblem] = field(default_factory=list)

    def emit(self, kind: EventKind, *, test: bool = False, **data: Any) -> None:
        self.emit_data(kind, data, test=test)

    def emit_data(self, kind: EventKind, data: dict[str, Any], *, test: bool = False) -> None:
        self.events.append(CanonicalEvent(device_id=self.device_id, kind=kind, test=test,
                                          data=data, source="z2m"))

    def problem(self, prop: str, value: Any, expected: str) -> None:
        self.problems.append(FieldProblem(prop, value, expected))

    def edge(self, name: str, value: Any) -> tuple[Any, Any] | None:
        """(old, new) when the level moved or is seen for the first time (old None)."""
        old = self.memory.levels.get(name)
        self.memory.levels[name] = value
        return (old, value) if old != value else None

    def changed_besides(self, *props: str) -> bool:
        """Did any field other than ``props`` and housekeeping change since the last message?"""
        skip = HOUSEKEEPING | set(props)
        last = self.memory.last
        keys = (set(self.obj) | set(last)) - skip
        return any(self.obj.get(k) != last.get(k) for k in keys)

    def binary(self, prop: str, *, raw: bool = False) -> bool | None:
        """The property as a bool: whether it is the expose's ``value_on`` (or, ``raw``, the
        boolean as sent: Z2M's contact expose calls an open door "on", ``contact: false``).
        None if absent or of the wrong type (then a problem is recorded)."""
        if prop not in self.obj:
            return None
        value = self.obj[prop]
        ex = self.exposes.get(prop) if self.exposes else None
        on = ex.value_on if ex is not None and ex.value_on is not None else True
        off = ex.value_off if ex is not None and ex.value_off is not None else False
        if value is None:
            return None     # Z2M publishes null for a property it has not heard yet
        if raw:
            if isinstance(value, bool):
                return value
        elif isinstance(value, bool) and isinstance(on, bool):
            return value is on
        elif value == on and type(value) is type(on):
            return True
        elif value == off and type(value) is type(off):
            return False
        self.problem(prop, value, "true or false" if raw else f"{on!r} or {off!r}")
        return None

    def enum(self, prop: str) -> str | None:
        if prop not in self.obj or self.obj[prop] is None:
            return None
        value = self.obj[prop]
        ex = self.exposes.get(prop) if self.exposes else None
        allowed = ex.values if ex is not None and ex.type == "enum" else ()
        if not isinstance(value, str):
            self.problem(prop, value, f"one of {list(allowed)}" if allowed else "a string")
            return None
        if allowed and value not in allowed and value != "":
            self.problem(prop, value, f"one of {list(allowed)}")
            return None
        return value

    def number(self, prop: str, low: float, high: float) -> float | None:
        if prop not in self.obj or self.obj[prop] is None:
            return None
        value = self.obj[prop]
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not low <= value <= high:
            self.problem(prop, value, f"a number in {low:g}..{high:g}")
            return None
        return float(value)


class FieldCodec:
    """Decodes the properties it owns. Subclasses set ``properties`` and ``decode``."""

    properties: tuple[str, ...] = ()
    #: runs before the others (the test flag changes what every alarm means)
    early: bool = False

    def claims(self, expose: Expose) -> bool:
        return expose.prop in self.properties

    def decode(self, ctx: Ctx) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self.properties)})"


class TestFlag(FieldCodec):
    """``test: true`` (the IAS zone's test bit, a detector's test button): a self-test,
    never an alarm; every alarm codec of the same message stands down."""

    properties = ("test", "selftest")
    early = True

    def claims(self, expose: Expose) -> bool:
        # ``selftest`` as an enum is a set-only button (access 2): never a state
        return expose.prop == "test" or (expose.prop == "selftest"
                                             and expose.type == "binary")

    def decode(self, ctx: Ctx) -> None:
        flag = False
        for prop in self.properties:
            value = ctx.obj.get(prop)
            if isinstance(value, bool):
                flag = flag or value
            elif prop == "test" and value is not None:
                ctx.problem(prop, value, "true or false")
        ctx.test = flag
        edge = ctx.edge("test", flag)
        if flag and edge is not None:
            ctx.emit(EventKind.SELF_TEST, test=True, model_type=ctx.type_name)


class Level(FieldCodec):
    """A binary level whose edges are events (contact, gas, smoke, water leak, tamper,
    battery_low).

    ``alarm``: a test stands it down. Every level fires on the first sight of ``on`` (a
    leak is a leak, even at boot); ``off_after_on``: the ``off`` event only after an ``on``
    (a first "no gas" is not a clearance).
    """

    def __init__(self, prop: str, on: EventKind | None, off: EventKind | None, *,
                 alarm: bool = False, off_after_on: bool = True, raw: bool = False) -> None:
        self.properties = (prop,)
        self.prop, self.raw = prop, raw
        self.on, self.off = on, off
        self.alarm, self.off_after_on = alarm, off_after_on

    def decode(self, ctx: Ctx) -> None:
        if self.alarm and ctx.test:
            return
        value = ctx.binary(self.prop, raw=self.raw)
        if value is None:
            return
        edge = ctx.edge(self.prop, value)
        if edge is None:
            return
        old, new = edge
        if new and self.on is not None:
            battery = ctx.obj.get("battery") if self.on is EventKind.BATTERY_LOW else None
            ctx.emit_data(self.on, {"battery": battery} if battery is not None else {})
        elif not new and self.off is not None and (old is True or not self.off_after_on):
            ctx.emit(self.off)


class Contact(Level):
    """``contact: true`` means the magnet is at the switch: the door is CLOSED.

    The first value ever seen is reported (a door first heard of as open may just have
    been opened: the gateway may have started after the bridge); after that only changes.
    The memory survives restarts (:meth:`Z2MAdapter.snapshot`), so a battery report that
    repeats an open door after a restart is not an opening."""

    def __init__(self) -> None:
        super().__init__("contact", EventKind.DOOR_CLOSE, EventKind.DOOR_OPEN,
                         off_after_on=False, raw=True)


class Reading(FieldCodec):
    """A numeric property reported as telemetry (``gas_density`` → ``gas_level`` lel)."""

    def __init__(self, prop: str, kind: EventKind, name: str, low: float, high: float
                 ) -> None:
        self.properties = (prop,)
        self.prop, self.kind, self.name, self.low, self.high = prop, kind, name, low, high

    def decode(self, ctx: Ctx) -> None:
        value = ctx.number(self.prop, self.low, self.high)
        if value is not None:
            ctx.emit_data(self.kind, {self.name: value})


class Occupancy(FieldCodec):
    """``occupancy`` (PIR) and ``presence`` (mmWave): someone arriving is ``motion``
    (activity); ``presence`` changes are also reported as ``presence`` telemetry."""

    properties = ("occupancy", "presence")

    def decode(self, ctx: Ctx) -> None:
        moved = False
        for prop in self.properties:
            value = ctx.binary(prop)
            if value is None:
                continue
            edge = ctx.edge(prop, value)
            if edge is None:
                continue
            moved = moved or value
            if prop == "presence":
                ctx.emit(EventKind.PRESENCE, presence=1.0 if value else 0.0)
        if moved:
            ctx.emit(EventKind.MOTION)


#: fall state values across vendors: 2 a fall, 1 a concern to check, 0 nothing
_FALL_LEVEL = {"fall_alarm": 2, "fall": 2, "falling": 2, "fall_warning": 1, "maybe_fall": 1}


class FallState(FieldCodec):
    """Fall states: Heiman ``fall_status`` (``fall_alarm`` a fall, ``fall_warning`` a
    concern), Tuya ``fall_down_status`` (``fall`` / ``maybe_fall``), OWON ``status``
    (``falling``; its other values say whether someone is there)."""

    properties = ("fall_status", "fall_down_status", "status")

    def claims(self, expose: Expose) -> bool:
        if expose.prop == "status":      # a common name: only OWON's means a fall
            return "falling" in expose.values
        return expose.prop in self.properties

    def decode(self, ctx: Ctx) -> None:
        for prop in self.properties:
            if prop == "status" and ctx.exposes is not None and (
                    "status" not in ctx.exposes or not self.claims(ctx.exposes["status"])):
                continue
            value = ctx.enum(prop)
            if value is None:
                continue
            if ctx.test:
                continue
            level = _FALL_LEVEL.get(value, 0)
            edge = ctx.edge(f"fall:{prop}", level)
            if edge is not None:
                old = edge[0] or 0
                if level == 2:
                    ctx.emit(EventKind.FALL, state=value)
                elif level == 1 and old == 0:
                    ctx.emit(EventKind.FALL_WARNING, state=value)
            if prop == "status":
                here = value != "unoccupied"
                if ctx.edge("status_presence", here) is not None:
                    ctx.emit(EventKind.PRESENCE, presence=1.0 if here else 0.0)


#: actions an emergency button sends for a press (only on a device bound as a call button)
PRESS_ACTIONS = {"single": "single", "double": "double", "hold": "long", "long": "long"}
SOS_ACTIONS = frozenset({"emergency", "sos"})


class SosAction(FieldCodec):
    """``action: "emergency"`` (Tuya TS0215A_sos, TS0601_sos); the ``action: ""`` that
    follows means nothing. On a call button (Heiman HS1EB) ``single|double|hold`` are
    presses too; on anything else they are a remote's buttons and mean nothing here."""

    properties = ("action",)

    def claims(self, expose: Expose) -> bool:
        return expose.prop == "action" and bool(SOS_ACTIONS & set(expose.values))

    def decode(self, ctx: Ctx) -> None:
        if "action" not in ctx.obj or ctx.obj["action"] is None:
            return
        action = ctx.obj["action"]
        if not isinstance(action, str):
            ctx.problem("action", action, "a string")
            return
        if action in SOS_ACTIONS:
            ctx.emit(EventKind.SOS, test=ctx.test, encoding="action_emergency")
        elif ctx.type_name == "call_button" and action in PRESS_ACTIONS:
            ctx.emit(EventKind.SOS, test=ctx.test, encoding="action_press",
                     press=PRESS_ACTIONS[action])


class SosFlag(FieldCodec):
    """``sos: true`` (IAS zone alarm of SOS buttons such as Feibit SEB01ZB).

    Zigbee2MQTT repeats the whole state on every message, so ``sos: true`` also rides
    along a battery report. A message with ``sos: true`` is a press when the flag was
    not already up, or when nothing else changed (the zone status notification of a
    second press repeats the same state); a message where another field changed while
    ``sos`` stayed up is that other field's report, and the first message after a restart
    is a replay of the cached state."""

    properties = ("sos",)

    def decode(self, ctx: Ctx) -> None:
        value = ctx.binary("sos")
        if value is None:
            return
        old = ctx.memory.levels.get("sos")
        ctx.memory.levels["sos"] = value
        if not value:
            return
        if old is not True or (not ctx.replay and not ctx.changed_besides()):
            ctx.emit(EventKind.SOS, test=ctx.test, encoding="sos_bool",
                     **({"repeat": True} if old is True else {}))


class StateReport(FieldCodec):
    """``battery`` (%), ``voltage`` (mV), ``linkquality``: checked, carried by heartbeats."""

    properties = ("battery", "voltage")

    def decode(self, ctx: Ctx) -> None:
        ctx.number("battery", 0, 100)
        ctx.number("voltage", 0, 100_000)


ProblemSink = Callable[[str, FieldProblem], None]

__all__ = [
    "HOUSEKEEPING",
    "STATE_FIELDS",
    "Contact",
    "Ctx",
    "Expose",
    "FallState",
    "FieldCodec",
    "FieldProblem",
    "Level",
    "Memory",
    "Occupancy",
    "ProblemSink",
    "Reading",
    "SosAction",
    "SosFlag",
    "StateReport",
    "TestFlag",
    "flatten_exposes",
]
