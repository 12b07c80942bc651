"""One simulated home on a real broker: each device its own MQTT connection and Last Will.

Typical use in a test::

    async with SimHome(broker.url, "h1", clock=SimClock(speed=0)) as home:
        await home.press("h1-btn", "red")
        assert home.led_state("h1-btn") == "received"   # once the gateway answered

Device ids default to ``{home_id}-{short}``: btn, door, gas, smoke, vitals, bed,
pir, radar, gps (see :data:`eldercare_sim.devices.SHORT_NAMES`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType, TracebackType
from typing import Any, TypeVar

from eldercare_protocols.native import DeviceCommand
from eldercare_sim.clock import SimClock
from eldercare_sim.devices import (
    BedSensor,
    CallButton,
    DoorContact,
    FallRadar,
    GasDetector,
    GpsTracker,
    MotionSensor,
    SimDevice,
    SmokeDetector,
    VitalsMonitor,
    _Alarm,
)
from eldercare_sim.household import Household
from eldercare_sim.links import Links
from eldercare_sim.render import Outgoing, Z2MRenderer
from eldercare_sim.scheduler import Scheduler
from eldercare_transport import Endpoint, MqttClient

log = logging.getLogger(__name__)

__all__ = ["SimHome"]

D = TypeVar("D", bound=SimDevice)


class SimHome:
    def __init__(self, broker_url: str, home_id: str, *,
                 devices: list[tuple[str, str]] | None = None, z2m: bool = False,
                 clock: SimClock | None = None, seed: int = 0, heartbeat_scale: float = 1.0,
                 routine: bool = False, tap: Callable[[Outgoing], None] | None = None) -> None:
        self.broker = Endpoint.parse(broker_url)
        self.home_id = home_id
        self.clock = clock or SimClock()
        self.sched = Scheduler(self.clock)
        self.z2m = z2m
        self.routine = routine
        self.tap = tap
        self.house = Household(home_id, self.sched, devices=devices, seed=seed, z2m=z2m,
                               heartbeat_scale=heartbeat_scale, z2m_renderer=Z2MRenderer())
        self.links: Links | None = None
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ introspection

    @property
    def devices(self) -> Mapping[str, str]:
        """device id → catalogue type."""
        return MappingProxyType({d: dev.type_name for d, dev in self.house.devices.items()})

    def device(self, device_id: str) -> SimDevice:
        try:
            return self.house.devices[device_id]
        except KeyError:
            raise KeyError(f"home {self.home_id} has no device {device_id!r}") from None

    def led_state(self, device_id: str) -> str | None:
        return self._dev(device_id, CallButton).led

    def z2m_model(self, device_id: str) -> str | None:
        """The Zigbee2MQTT model the device is published as (None: it speaks native)."""
        self.device(device_id)
        return self.house.models.get(device_id)

    def connection(self, device_id: str) -> MqttClient:
        """The MQTT connection the device publishes on (a bridge's for a Zigbee device)."""
        self.device(device_id)
        if self.links is None:
            raise RuntimeError("the home is not running")
        return self.links.route[device_id]

    @property
    def commands(self) -> list[DeviceCommand]:
        """Commands the gateway sent to this home's devices, in arrival order."""
        return self.links.commands if self.links else []

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> SimHome:
        self.links = Links(self.broker, self.sched, [self.house], tap=self.tap)
        await self.links.connect()
        self.sched.call(lambda: self.house.start(routine=self.routine))
        self._task = asyncio.create_task(self.sched.run(), name=f"sim-home-{self.home_id}")
        await self.links.drain()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._stop_scheduler()
        if self.links is not None:
            self.sched.call(self.house.shutdown)
            await self.links.close()

    async def _stop_scheduler(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _dev(self, device_id: str, cls: type[D]) -> D:
        dev = self.device(device_id)
        if not isinstance(dev, cls):
            raise ValueError(f"{device_id} is a {dev.type_name}, not a {cls.type_name or 'alarm'}")
        return dev

    async def _do(self, dev: SimDevice, fn: Callable[[], Any]) -> Any:
        out: list[Any] = []
        self.sched.call(lambda: out.append(fn()))
        if self.links is not None:
            await self.links.drain_device(dev.device_id)
        return out[0]

    # ------------------------------------------------------------------ what a person does

    async def press(self, device_id: str, button: str = "red", press: str = "single") -> bool:
        """Press a call button; False when the firmware's debounce swallowed the press."""
        dev = self._dev(device_id, CallButton)
        return bool(await self._do(dev, lambda: dev.press(button, press)))

    async def cancel(self, device_id: str) -> None:
        dev = self._dev(device_id, CallButton)
        await self._do(dev, dev.cancel)

    async def door(self, device_id: str, open: bool) -> bool:
        dev = self._dev(device_id, DoorContact)
        return bool(await self._do(dev, lambda: dev.set_open(open)))

    async def gas_leak(self, device_id: str, lel: float, ramp_s: float = 0.0) -> None:
        dev = self._dev(device_id, GasDetector)
        await self._do(dev, lambda: dev.gas_leak(lel, ramp_s))

    async def smoke(self, device_id: str, on: bool = True) -> None:
        dev = self._dev(device_id, SmokeDetector)
        await self._do(dev, lambda: dev.smoke(on))

    async def fall(self, device_id: str) -> None:
        dev = self._dev(device_id, FallRadar)
        await self._do(dev, dev.fall)

    async def vitals(self, device_id: str, **values: float) -> None:
        dev = self._dev(device_id, VitalsMonitor)
        await self._do(dev, lambda: dev.reading(values))

    async def episode(self, device_id: str, name: str, duration_s: float = 600.0) -> None:
        """bradycardia, spo2_drop, hypertensive_crisis, tachycardia or fever."""
        dev = self._dev(device_id, VitalsMonitor)
        await self._do(dev, lambda: dev.episode(name, duration_s))

    async def motion(self, device_id: str) -> bool:
        dev = self._dev(device_id, MotionSensor)
        return bool(await self._do(dev, dev.motion))

    async def bed(self, device_id: str, in_bed: bool) -> bool:
        dev = self._dev(device_id, BedSensor)
        return bool(await self._do(dev, lambda: dev.set_in_bed(in_bed)))

    async def self_test(self, device_id: str) -> None:
        dev = self._dev(device_id, _Alarm)
        await self._do(dev, dev.self_test)

    async def tamper(self, device_id: str) -> None:
        dev = self.device(device_id)
        await self._do(dev, dev.tamper)

    async def wander(self, device_id: str) -> None:
        dev = self._dev(device_id, GpsTracker)
        await self._do(dev, dev.wander)

    async def set_battery(self, device_id: str, level: float,
                          drain_to_zero_s: float | None = None) -> None:
        dev = self.device(device_id)
        await self._do(dev, lambda: dev.set_battery(level, drain_to_zero_s))

    async def heartbeat(self, device_id: str) -> None:
        dev = self.device(device_id)
        await self._do(dev, dev.heartbeat)

    # ------------------------------------------------------------------ failures

    async def unplug(self, device_id: str) -> None:
        """Pull the plug: the device stops and its connection drops, so the Will fires.
        (A Zigbee device has no connection of its own: the bridge marks it offline.)"""
        dev = self.device(device_id)
        dev.stop()
        if self.links is not None:
            self.links.gone(dev)
        await asyncio.sleep(0)

    async def replug(self, device_id: str) -> None:
        """Power the device back on: it reconnects and boots."""
        dev = self.device(device_id)
        if dev.running or self.links is None:
            return
        dev.dead = False
        await self.links.revive(dev)
        await self._do(dev, dev.start)

    async def kill(self) -> None:
        """Every connection dropped without DISCONNECT (the simulator process died)."""
        await self._stop_scheduler()
        self.house.stop()
        if self.links is not None:
            self.links.kill_all()
        await asyncio.sleep(0)

    async def outage(self, seconds: float) -> None:
        """Lose the broker for ``seconds`` of simulated time, then reconnect with backoff."""
        if self.links is not None:
            self.links.outage(seconds)
        await asyncio.sleep(0)
