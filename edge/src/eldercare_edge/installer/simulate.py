"""``--simulate``: the simulator's devices do what the installer would do with their hands.

Each walk-test step becomes the device's own message on the home broker, rendered by
the simulator (``eldercare_sim``) exactly as a real device of that catalogue type
speaks: a test press, a door opening, a self-test, one reading. Events carry
``test=1``, so a simulated commissioning never raises an alarm for a real resident.
The simulator is a development dependency: a gateway image without it gets one clear
error instead of an ImportError.
"""

from __future__ import annotations

import time
import uuid
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from eldercare_edge.installer.errors import InstallerError
from eldercare_protocols.catalogue import device_type
from eldercare_protocols.events import EventKind

if TYPE_CHECKING:
    from eldercare_sim.devices import SimDevice


class SimulatorMissingError(InstallerError):
    """--simulate needs the eldercare-sim package."""


def _device(type_name: str, device_id: str) -> SimDevice:
    try:
        from eldercare_sim.clock import SimClock
        from eldercare_sim.devices import make_device
        from eldercare_sim.scheduler import Scheduler
    except ImportError as exc:
        raise SimulatorMissingError("--simulate needs the simulator (pip install "
                                    "eldercare-sim)") from exc
    dev = make_device(type_name, device_id, Scheduler(SimClock()))
    # a one-shot device object: its counter must still only grow across runs
    dev.seq = int(time.time() * 1000)
    return dev


def _reading(type_name: str, kind: EventKind) -> dict[str, float]:
    """A plausible, in-range reading for a telemetry walk-test step."""
    dtype = device_type(type_name)
    values: dict[str, float] = {}
    for cap in dtype.capabilities:
        if cap.telemetry_kind is not kind:
            continue
        for m in cap.measurements:
            low = m.normal_low if m.normal_low is not None else m.valid_min
            high = m.normal_high if m.normal_high is not None else m.valid_max
            values[m.name] = round((low + high) / 2, 1)
    if kind is EventKind.PRESENCE:
        values["presence"] = 1.0
    return values


class SimulatedHome:
    """A short-lived MQTT client on the home broker that speaks for simulated devices."""

    def __init__(self, broker_url: str, *, username: str | None = None,
                 password: str | None = None, timeout_s: float = 5.0) -> None:
        parts = urlsplit(broker_url)
        if parts.scheme not in {"mqtt", "mqtts"} or not parts.hostname:
            raise InstallerError(f"home broker must look like mqtt://host:port, got "
                                 f"{broker_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 1883
        self.timeout_s = timeout_s
        self._client = paho.Client(CallbackAPIVersion.VERSION2,
                                   client_id=f"installer-sim-{uuid.uuid4().hex[:8]}",
                                   protocol=paho.MQTTv311, clean_session=True)
        if username:
            self._client.username_pw_set(username, password)
        if parts.scheme == "mqtts":
            self._client.tls_set()

    def __enter__(self) -> SimulatedHome:
        try:
            self._client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise InstallerError(f"cannot reach the home broker {self.host}:{self.port}: "
                                 f"{exc}") from exc
        self._client.loop_start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _publish(self, messages: list[Any]) -> None:
        for m in messages:
            info = self._client.publish(m.topic, m.payload, qos=max(m.qos, 1), retain=m.retain)
            info.wait_for_publish(self.timeout_s)
            if not info.is_published():
                raise InstallerError(f"the home broker did not take {m.topic} within "
                                     f"{self.timeout_s:g}s")

    def announce(self, device_id: str, type_name: str) -> None:
        """Power the device on: its boot state, as on first install."""
        dev = _device(type_name, device_id)
        self._publish(dev.renderer.boot(dev))

    def act(self, device_id: str, type_name: str, kind: EventKind) -> None:
        """Do what a walk-test step asks for ``kind``."""
        dev = _device(type_name, device_id)
        if kind in dev.dtype.telemetry_kinds:
            self._publish(dev.renderer.telemetry(dev, kind, _reading(type_name, kind)))
        else:
            data: dict[str, Any] = {"walk_test": True}
            if kind is EventKind.SOS and type_name == "call_button":
                data.update(button="red", press="single")
            self._publish(dev.renderer.event(dev, kind, True, data))
