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
import json
import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType, TracebackType
from typing import Any, TypeVar

from eldercare_protocols import native
from eldercare_protocols.errors import DecodeError
from eldercare_protocols.native import Channel, DeviceCommand
from eldercare_protocols.z2m import BASE_TOPIC

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
from eldercare_sim.mqtt import BrokerAddress, MqttConnection, Will
from eldercare_sim.render import NativeRenderer, Outgoing, Z2MRenderer
from eldercare_sim.scheduler import Scheduler

log = logging.getLogger(__name__)

D = TypeVar("D", bound=SimDevice)

BRIDGE_STATE = f"{BASE_TOPIC}/bridge/state"


class SimHome:
    def __init__(self, broker_url: str, home_id: str, *,
                 devices: list[tuple[str, str]] | None = None, z2m: bool = False,
                 clock: SimClock | None = None, seed: int = 0, heartbeat_scale: float = 1.0,
                 routine: bool = False, tap: Callable[[Outgoing], None] | None = None) -> None:
        self.broker = BrokerAddress.parse(broker_url)
        self.home_id = home_id
        self.clock = clock or SimClock()
        self.sched = Scheduler(self.clock)
        self.z2m = z2m
        self.routine = routine
        self.tap = tap
        self.house = Household(home_id, self.sched, devices=devices, seed=seed, z2m=z2m,
                               heartbeat_scale=heartbeat_scale, z2m_renderer=Z2MRenderer())
        self._conns: dict[str, MqttConnection] = {}
        self._bridge: MqttConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self.decode_errors = 0
        self.commands: list[DeviceCommand] = []

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

    def connection(self, device_id: str) -> MqttConnection:
        conn = self._conns.get(device_id) or (
            self._bridge if device_id in self.house.models else None)
        if conn is None:
            raise KeyError(f"{device_id} has no connection")
        return conn

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> SimHome:
        if self.house.models:
            self._bridge = MqttConnection(
                self.broker, f"zigbee2mqtt-{self.home_id}",
                will=Will(BRIDGE_STATE, b'{"state":"offline"}', 1, True))
        for dev_id in self.house.devices:
            if dev_id not in self.house.models:
                self._conns[dev_id] = self._native_connection(dev_id)
        conns = list(self._conns.values()) + ([self._bridge] if self._bridge else [])
        try:
            await asyncio.gather(*(c.connect() for c in conns))
        except BaseException:
            for c in conns:
                c.kill()
            raise
        if self._bridge is not None:
            self._bridge.publish(BRIDGE_STATE, b'{"state":"online"}', 1, True)
        for dev in self.house.devices.values():
            self._wire(dev)
        self.sched.call(lambda: self.house.start(routine=self.routine))
        self._task = asyncio.create_task(self.sched.run(), name=f"sim-home-{self.home_id}")
        await self._drain()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._stop_scheduler()
        self.sched.call(self.house.shutdown)
        await self._drain(timeout=2.0)
        await asyncio.gather(*(c.disconnect() for c in self._all_conns()),
                             return_exceptions=True)

    async def _stop_scheduler(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def _all_conns(self) -> list[MqttConnection]:
        return list(self._conns.values()) + ([self._bridge] if self._bridge else [])

    def _native_connection(self, dev_id: str) -> MqttConnection:
        will = NativeRenderer.will(dev_id)
        conn = MqttConnection(self.broker, dev_id, will=Will(will.topic, will.payload, 1, True),
                              on_message=lambda t, p: self._on_command(dev_id, t, p))
        conn.subscribe(native.topic(dev_id, Channel.CMD), 1)
        return conn

    def _wire(self, dev: SimDevice) -> None:
        conn = self.connection(dev.device_id)

        def publish(m: Outgoing) -> None:
            if self.tap is not None:
                self.tap(m)
            conn.publish(m.topic, m.payload, m.qos, m.retain)

        dev.publish = publish
        dev.on_dead = self._died

    def _died(self, dev: SimDevice) -> None:
        conn = self._conns.get(dev.device_id)
        if conn is not None:
            conn.kill()  # the broker notices the silence: the Will says offline
        elif self._bridge is not None:
            self._bridge.publish(f"{BASE_TOPIC}/{dev.device_id}/availability",
                                 b'{"state":"offline"}', 1, True)

    def _on_command(self, dev_id: str, topic: str, payload: bytes) -> None:
        dev = self.house.devices[dev_id]
        try:
            _, msg = native.decode(topic, payload)
        except DecodeError as exc:
            self.decode_errors += 1
            log.warning("%s: ignoring bad command on %s: %s (%s)", dev_id, topic, exc.reason,
                        exc.preview())
            return
        if not isinstance(msg, DeviceCommand):
            return
        self.commands.append(msg)
        acks: list[Any] = []
        self.sched.call(lambda: acks.append(dev.handle_command(msg)))
        if dev.running:
            self._conns[dev_id].publish(native.topic(dev_id, Channel.CMD_ACK),
                                        native.encode(acks[0]), 1, False)

    async def _drain(self, timeout: float = 5.0) -> None:
        await asyncio.gather(*(c.drain(timeout) for c in self._all_conns() if c.connected))

    async def _flush(self, dev: SimDevice) -> None:
        conn = self._conns.get(dev.device_id) or self._bridge
        if conn is not None and conn.connected:
            await conn.drain()

    def _dev(self, device_id: str, cls: type[D]) -> D:
        dev = self.device(device_id)
        if not isinstance(dev, cls):
            raise ValueError(f"{device_id} is a {dev.type_name}, not a {cls.type_name or 'alarm'}")
        return dev

    async def _do(self, dev: SimDevice, fn: Callable[[], Any]) -> Any:
        out: list[Any] = []
        self.sched.call(lambda: out.append(fn()))
        await self._flush(dev)
        return out[0]

    # ------------------------------------------------------------------ what a person does

    async def press(self, device_id: str, button: str = "red", press: str = "single") -> bool:
        """Press a call button; False when the firmware's debounce swallowed the press."""
        dev = self._dev(device_id, CallButton)
        return bool(await self._do(dev, lambda: dev.press(button, press)))

    async def cancel(self, device_id: str) -> None:
        dev = self._dev(device_id, CallButton)
        await self._do(dev, dev.cancel)

    async def door(self, device_id: str, open: bool) -> bool:  # noqa: A002 - the API's word
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
        self._died(dev)
        await asyncio.sleep(0)

    async def replug(self, device_id: str) -> None:
        """Power the device back on: it reconnects and boots."""
        dev = self.device(device_id)
        if dev.running:
            return
        dev.dead = False
        if device_id in self._conns:
            old = self._conns[device_id]
            old.kill()
            conn = self._native_connection(device_id)
            self._conns[device_id] = conn
            await conn.connect()
            self._wire(dev)
        self.sched.call(dev.start)
        await self._flush(dev)

    async def kill(self) -> None:
        """Every connection dropped without DISCONNECT (the simulator process died)."""
        await self._stop_scheduler()
        self.house.stop()
        for conn in self._all_conns():
            conn.kill()
        await asyncio.sleep(0)

    async def outage(self, seconds: float) -> None:
        """Lose the broker for ``seconds`` of simulated time, then reconnect with backoff."""
        for conn in self._all_conns():
            conn.drop()
        self.sched.after(seconds, lambda: [c.resume() for c in self._all_conns()])
        await asyncio.sleep(0)

    def describe(self) -> str:
        return json.dumps(dict(self.devices), indent=2)
