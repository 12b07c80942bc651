"""How a simulated device's words become bytes on a wire.

A device says "event sos", "reading lel=3.2", "state heartbeat"; a renderer turns
that into what real hardware of that kind would put on the wire: our native
MQTT protocol, a Zigbee2MQTT bridge's device state, or a serial frame for the
RF dongle. All three use the protocols package's models and encoders.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from eldercare_protocols import native, serial_frame
from eldercare_protocols.events import EventKind
from eldercare_protocols.native import (
    Channel,
    DeviceEvent,
    DeviceState,
    DeviceTelemetry,
    StateReason,
)
from eldercare_protocols.z2m import BASE_TOPIC
from eldercare_sim.errors import UnsupportedInMode

if TYPE_CHECKING:
    from eldercare_sim.devices import SimDevice

SERIAL_TOPIC = "serial"


@dataclass(frozen=True)
class Outgoing:
    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False


class Renderer(Protocol):
    def boot(self, dev: SimDevice) -> list[Outgoing]: ...
    def event(self, dev: SimDevice, kind: EventKind, test: bool, data: dict[str, Any]
              ) -> list[Outgoing]: ...
    def telemetry(self, dev: SimDevice, kind: EventKind, values: dict[str, float]
                  ) -> list[Outgoing]: ...
    def state(self, dev: SimDevice, reason: StateReason) -> list[Outgoing]: ...
    def level(self, dev: SimDevice) -> list[Outgoing]: ...
    def shutdown(self, dev: SimDevice) -> list[Outgoing]: ...


# ---------------------------------------------------------------------- native


class NativeRenderer:
    """eldercare/{id}/... with the protocols package's pydantic models."""

    def boot(self, dev: SimDevice) -> list[Outgoing]:
        return self.state(dev, StateReason.BOOT)

    def event(self, dev: SimDevice, kind: EventKind, test: bool, data: dict[str, Any]
              ) -> list[Outgoing]:
        msg = DeviceEvent(seq=dev.next_seq(), ts=dev.now(), type=dev.type_name, kind=kind,
                          test=test, data=data)
        return [Outgoing(native.topic(dev.device_id, Channel.EVENT), native.encode(msg), 1)]

    def telemetry(self, dev: SimDevice, kind: EventKind, values: dict[str, float]
                  ) -> list[Outgoing]:
        msg = DeviceTelemetry(seq=dev.next_seq(), ts=dev.now(), type=dev.type_name, kind=kind,
                              values=values)
        return [Outgoing(native.topic(dev.device_id, Channel.TELEMETRY), native.encode(msg), 0)]

    def state(self, dev: SimDevice, reason: StateReason) -> list[Outgoing]:
        msg = DeviceState(online=True, reason=reason, ts=dev.now(), type=dev.type_name,
                          seq=dev.next_seq(), battery=dev.battery_level(), rssi=dev.rssi(),
                          firmware=dev.firmware, props=dict(dev.props))
        return [Outgoing(native.topic(dev.device_id, Channel.STATE), native.encode(msg), 1, True)]

    def level(self, dev: SimDevice) -> list[Outgoing]:
        return []

    def shutdown(self, dev: SimDevice) -> list[Outgoing]:
        msg = DeviceState(online=False, reason=StateReason.SHUTDOWN, ts=dev.now(),
                          type=dev.type_name, seq=dev.next_seq())
        return [Outgoing(native.topic(dev.device_id, Channel.STATE), native.encode(msg), 1, True)]

    @staticmethod
    def will(device_id: str) -> Outgoing:
        return Outgoing(native.topic(device_id, Channel.STATE), native.will_payload(), 1, True)


# ---------------------------------------------------------------------- Zigbee2MQTT


def linkquality(rssi: int) -> int:
    """Map dBm to Zigbee LQI (0..255) the way most coordinators roughly do."""
    return max(0, min(255, int((rssi + 100) * 255 / 70)))


class Z2MRenderer:
    """What a Zigbee2MQTT bridge publishes for the device: its whole state on every change."""

    def __init__(self) -> None:
        self._state: dict[str, dict[str, Any]] = {}

    def _topic(self, dev: SimDevice) -> str:
        return f"{BASE_TOPIC}/{dev.device_id}"

    def _base(self, dev: SimDevice) -> dict[str, Any]:
        st = self._state.setdefault(dev.device_id, {})
        st["linkquality"] = linkquality(dev.rssi())
        level = dev.battery_level()
        if level is not None:
            st["battery"] = round(level)
            st["voltage"] = int(2700 + level * 4.5)
            if dev.battery is not None and dev.battery.low:
                st["battery_low"] = True
        return st

    def _publish(self, dev: SimDevice, **changes: Any) -> Outgoing:
        st = self._base(dev)
        st.update(changes)
        return Outgoing(self._topic(dev), json.dumps(st, separators=(",", ":")).encode(), 0)

    def boot(self, dev: SimDevice) -> list[Outgoing]:
        st = self._state.setdefault(dev.device_id, {})
        st.update(dev.z2m_levels())
        avail = Outgoing(f"{self._topic(dev)}/availability", b'{"state":"online"}', 1, True)
        return [avail, self._publish(dev)]

    def event(self, dev: SimDevice, kind: EventKind, test: bool, data: dict[str, Any]
              ) -> list[Outgoing]:
        if kind is EventKind.SOS:
            # the button's model (TS0215A_sos) has one action for any press
            return [self._publish(dev, action="emergency"), self._publish(dev, action="")]
        if kind is EventKind.SELF_TEST:
            # the IAS zone's test bit, as the gas (JT-BZ-01AQ/A) and smoke (HS3SA) models send
            return [self._publish(dev, test=True), self._publish(dev, test=False)]
        if kind is EventKind.TAMPER:
            return [self._publish(dev, tamper=True), self._publish(dev, tamper=False)]
        if kind in (EventKind.DOOR_OPEN, EventKind.DOOR_CLOSE, EventKind.MOTION,
                    EventKind.GAS_ALARM, EventKind.GAS_CLEAR, EventKind.SMOKE_ALARM,
                    EventKind.SMOKE_CLEAR, EventKind.FALL, EventKind.BATTERY_LOW):
            return [self._publish(dev, **dev.z2m_levels())]
        raise UnsupportedInMode(f"a Zigbee {dev.type_name} cannot send {kind.value!r} "
                                "(Zigbee2MQTT has no field for it)")

    def telemetry(self, dev: SimDevice, kind: EventKind, values: dict[str, float]
                  ) -> list[Outgoing]:
        if kind is EventKind.GAS_LEVEL:
            return [self._publish(dev, **dev.z2m_levels())]  # gas_density = the reading
        if kind is EventKind.PRESENCE:
            return [self._publish(dev, **dev.z2m_levels())]
        raise UnsupportedInMode(f"a Zigbee {dev.type_name} cannot report {kind.value!r}")

    def state(self, dev: SimDevice, reason: StateReason) -> list[Outgoing]:
        return [self._publish(dev, **dev.z2m_levels())]

    def level(self, dev: SimDevice) -> list[Outgoing]:
        return [self._publish(dev, **dev.z2m_levels())]

    def shutdown(self, dev: SimDevice) -> list[Outgoing]:
        return [Outgoing(f"{self._topic(dev)}/availability", b'{"state":"offline"}', 1, True)]


# ---------------------------------------------------------------------- serial


def _field(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def frame_fields(**fields: Any) -> tuple[tuple[str, str], ...]:
    return tuple((k, _field(v)) for k, v in fields.items() if v is not None)


class SerialRenderer:
    """Frames for devices bound to the RF dongle (topic is unused: the dongle has one line)."""

    def _frame(self, dev: SimDevice, ftype: serial_frame.FrameType, **fields: Any) -> Outgoing:
        frame = serial_frame.Frame(ftype, dev.device_id, dev.next_seq(), frame_fields(**fields))
        return Outgoing(SERIAL_TOPIC, serial_frame.encode(frame))

    def boot(self, dev: SimDevice) -> list[Outgoing]:
        return self.state(dev, StateReason.BOOT)

    def event(self, dev: SimDevice, kind: EventKind, test: bool, data: dict[str, Any]
              ) -> list[Outgoing]:
        extra = {k: v for k, v in data.items() if not isinstance(v, dict | list)}
        return [self._frame(dev, serial_frame.FrameType.EVENT, kind=kind.value,
                            test=True if test else None, **extra)]

    def telemetry(self, dev: SimDevice, kind: EventKind, values: dict[str, float]
                  ) -> list[Outgoing]:
        return [self._frame(dev, serial_frame.FrameType.TELEMETRY, kind=kind.value, **values)]

    def state(self, dev: SimDevice, reason: StateReason) -> list[Outgoing]:
        return [self._frame(dev, serial_frame.FrameType.STATE, type=dev.type_name,
                            reason=reason.value, battery=dev.battery_level(), rssi=dev.rssi())]

    def level(self, dev: SimDevice) -> list[Outgoing]:
        return []

    def shutdown(self, dev: SimDevice) -> list[Outgoing]:
        return [self._frame(dev, serial_frame.FrameType.STATE, type=dev.type_name,
                            reason="shutdown", online=False)]


def ts_iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")
