"""Zigbee2MQTT adapter: off-the-shelf Zigbee devices published by a Z2M bridge.

Z2M publishes the device's whole state on ``zigbee2mqtt/{friendly_name}`` every
time anything changes, and ``{"state": "online"|"offline"}`` on
``zigbee2mqtt/{friendly_name}/availability``. Most fields are levels, not events,
so the adapter remembers the last value per device and emits a canonical event on
the edge (a door that was already closed does not "close" again on each report).

Semantics that are easy to get wrong and that the tests pin down:

* ``contact: true`` means the magnet is near the switch: the door is CLOSED.
* ``action: "emergency"`` is followed by ``action: ""`` a moment later; the empty
  action means nothing. Other models send ``sos: true``; emergency buttons send
  ``action: single|double|hold``. Each of the three is one ``sos``.
* ``test`` / ``selftest`` true marks a test: it becomes ``self_test``, never an alarm.

Unknown fields are tolerated: bridges and firmware add fields all the time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from eldercare_protocols._json import load_object
from eldercare_protocols.catalogue import DeviceType, device_type_for_z2m_model
from eldercare_protocols.errors import DecodeError, UnknownDeviceError
from eldercare_protocols.events import CanonicalEvent, EventKind

BASE_TOPIC = "zigbee2mqtt"
SUBSCRIPTIONS = (f"{BASE_TOPIC}/+", f"{BASE_TOPIC}/+/availability")

#: actions an emergency button model sends for a press
_PRESS_ACTIONS = {"single": "single", "double": "double", "hold": "long", "long": "long"}
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


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in {"", "0", "false", "off", "none", "normal", "no"}
    return bool(value)


@dataclass
class _Memory:
    levels: dict[str, bool] = field(default_factory=dict)


@dataclass
class Z2MAdapter:
    """Decode Z2M payloads for known models into canonical events.

    One adapter per bridge: it holds the last level of each edge-triggered field.
    """

    _memory: dict[str, _Memory] = field(default_factory=dict)

    def decode(self, topic: str, payload: bytes, model: str, device_id: str | None = None
               ) -> list[CanonicalEvent]:
        """Raises DecodeError only: whatever a field's converter refuses (a canonical event
        it cannot build, a number it cannot convert) is this payload's fault."""
        try:
            return self._decode(topic, payload, model, device_id)
        except (ValidationError, ValueError, TypeError, OverflowError) as exc:
            first = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise DecodeError(f"cannot convert: {first}", topic=topic, payload=payload) from exc

    def _decode(self, topic: str, payload: bytes, model: str, device_id: str | None
                ) -> list[CanonicalEvent]:
        friendly, availability = parse_topic(topic)
        dev_id = device_id or friendly
        if availability:
            return [self._availability(dev_id, topic, payload)]
        try:
            dtype = device_type_for_z2m_model(model)
        except UnknownDeviceError as exc:
            raise DecodeError(str(exc), topic=topic, payload=payload) from exc
        obj = load_object(payload, topic)
        return self._state(dev_id, dtype, obj)

    def forget(self, device_id: str) -> None:
        self._memory.pop(device_id, None)

    # ------------------------------------------------------------------ internals

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

    def _edge(self, dev_id: str, name: str, value: bool) -> tuple[bool | None, bool] | None:
        """Return (old, new) when the level moved or is seen for the first time."""
        mem = self._memory.setdefault(dev_id, _Memory())
        old = mem.levels.get(name)
        mem.levels[name] = value
        return (old, value) if old != value else None

    def _state(self, dev_id: str, dtype: DeviceType, obj: dict[str, Any]
               ) -> list[CanonicalEvent]:
        out: list[CanonicalEvent] = []
        is_test = _truthy(obj.get("test")) or _truthy(obj.get("selftest"))

        def ev(kind: EventKind, test: bool = False, **data: Any) -> None:
            out.append(CanonicalEvent(device_id=dev_id, kind=kind, test=test, data=data,
                                      source="z2m"))

        if is_test:
            ev(EventKind.SELF_TEST, test=True, model_type=dtype.name)

        if "contact" in obj and isinstance(obj["contact"], bool):
            edge = self._edge(dev_id, "contact", obj["contact"])
            if edge:
                ev(EventKind.DOOR_CLOSE if edge[1] else EventKind.DOOR_OPEN)

        for fld, alarm, clear in (("gas", EventKind.GAS_ALARM, EventKind.GAS_CLEAR),
                                  ("smoke", EventKind.SMOKE_ALARM, EventKind.SMOKE_CLEAR)):
            if fld in obj and not is_test:
                edge = self._edge(dev_id, fld, _truthy(obj[fld]))
                if edge and edge[1]:
                    ev(alarm)
                elif edge and edge[0] is True:
                    ev(clear)
        if "gas_density" in obj and isinstance(obj["gas_density"], int | float):
            ev(EventKind.GAS_LEVEL, lel=float(obj["gas_density"]))

        if obj.get("occupancy") is True:
            ev(EventKind.MOTION)

        fall = None
        if "status" in obj and dtype.name == "fall_radar":
            fall = obj["status"] == "falling"
        if "fall_down_status" in obj:
            fall = _truthy(obj["fall_down_status"])
        if fall is not None and not is_test:
            edge = self._edge(dev_id, "fall", fall)
            if edge and edge[1]:
                ev(EventKind.FALL)
        if "presence" in obj and isinstance(obj["presence"], bool):
            edge = self._edge(dev_id, "presence", obj["presence"])
            if edge:
                ev(EventKind.PRESENCE, presence=1.0 if edge[1] else 0.0)

        self._sos(dev_id, dtype, obj, is_test, ev)

        if "battery_low" in obj:
            edge = self._edge(dev_id, "battery_low", _truthy(obj["battery_low"]))
            if edge and edge[1]:
                ev(EventKind.BATTERY_LOW, battery=obj.get("battery"))
        if "tamper" in obj:
            edge = self._edge(dev_id, "tamper", _truthy(obj["tamper"]))
            if edge and edge[1]:
                ev(EventKind.TAMPER)

        state = {k: obj[k] for k in ("battery", "linkquality", "voltage") if k in obj}
        if state and not out:
            ev(EventKind.HEARTBEAT, **state)
        return out

    def _sos(self, dev_id: str, dtype: DeviceType, obj: dict[str, Any], is_test: bool,
             ev: Any) -> None:
        action = obj.get("action")
        if isinstance(action, str) and action:
            if action in {"emergency", "sos"}:
                ev(EventKind.SOS, test=is_test, encoding="action_emergency")
            elif dtype.name == "call_button" and action in _PRESS_ACTIONS:
                ev(EventKind.SOS, test=is_test, encoding="action_press",
                   press=_PRESS_ACTIONS[action])
        if "sos" in obj:
            edge = self._edge(dev_id, "sos", _truthy(obj["sos"]))
            if edge and edge[1]:
                ev(EventKind.SOS, test=is_test, encoding="sos_bool")
