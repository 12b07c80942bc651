"""``--simulate``: the simulator's devices do what the installer would do with their hands.

Each walk-test step becomes the device's own message on the home broker, rendered by
the simulator (``eldercare_sim``) exactly as a real device of that catalogue type
speaks: a test press, a door opening, a self-test, one reading. Events carry
``test=1``, so a simulated commissioning never raises an alarm for a real resident.
The simulator is the optional ``simulate`` extra (``eldercare-edge[simulate]``): a
gateway image without it gets one clear line and exit status 2 instead of an ImportError.
"""

from __future__ import annotations

import time
import uuid
from types import TracebackType
from typing import TYPE_CHECKING, Any

from eldercare_edge.installer.errors import InstallerError, UsageError
from eldercare_protocols.catalogue import device_type
from eldercare_protocols.events import EventKind
from eldercare_transport import (
    ConnectError,
    Endpoint,
    EndpointError,
    LoopThread,
    MqttClient,
    PublishError,
    Session,
)

if TYPE_CHECKING:
    from eldercare_sim.devices import SimDevice


class SimulatorMissingError(UsageError):
    """--simulate needs the eldercare-sim package (the ``simulate`` extra)."""


def require_simulator() -> None:
    """One clear line (exit 2) when the simulator is not installed, as in a gateway image."""
    try:
        import eldercare_sim  # noqa: F401
    except ImportError as exc:
        raise SimulatorMissingError(
            "--simulate needs the device simulator, which this installation does not have:"
            " install eldercare-edge[simulate]") from exc


def _device(type_name: str, device_id: str) -> SimDevice:
    require_simulator()
    from eldercare_sim.clock import SimClock
    from eldercare_sim.devices import make_device
    from eldercare_sim.scheduler import Scheduler

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
    """A short-lived MQTT client on the home broker that speaks for simulated devices
    (the shared transport's client, on a loop thread of its own: the tool is blocking)."""

    def __init__(self, broker_url: str, *, username: str | None = None,
                 password: str | None = None, timeout_s: float = 5.0) -> None:
        require_simulator()
        try:
            self.endpoint = Endpoint.parse(broker_url, username=username, password=password)
        except EndpointError as exc:
            raise UsageError(f"home broker must look like mqtt://host:port: {exc}") from exc
        self.timeout_s = timeout_s
        self._client = MqttClient(self.endpoint,
                                  Session(f"installer-sim-{uuid.uuid4().hex[:8]}"),
                                  name="installer-sim")
        self._loop = LoopThread("installer-sim")

    def __enter__(self) -> SimulatedHome:
        self._loop.start()
        try:
            self._loop.run(self._client.connect(self.timeout_s))
        except ConnectError as exc:
            self._loop.close()
            raise InstallerError(f"the home broker: {exc}") from exc
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self._loop.run(self._client.stop(), 10.0)
        finally:
            self._loop.close()

    def _publish(self, messages: list[Any]) -> None:
        for m in messages:
            try:
                self._loop.run(self._client.publish_confirmed(
                    m.topic, m.payload, qos=max(m.qos, 1), retain=m.retain,
                    timeout_s=self.timeout_s))
            except PublishError as exc:
                raise InstallerError(f"the home broker did not take {m.topic}: "
                                     f"{exc.reason}") from exc

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
