"""Many homes from one process: one scheduler, a few shared MQTT connections.

A thousand homes of eight devices are eight thousand timers in one heap and
four sockets, not eight thousand threads. The fleet reports the message rate
the broker actually took (QoS 1 acknowledged, QoS 0 written).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from eldercare_sim.clock import SimClock
from eldercare_sim.household import TYPICAL_HOME, Household, default_devices
from eldercare_sim.links import Links, SerialSink, Tap
from eldercare_sim.render import Z2MRenderer
from eldercare_sim.scheduler import Scheduler
from eldercare_transport import Endpoint

#: above this many outstanding messages the scheduler waits for the sockets (paho scans
#: its whole QoS 1 queue on every PUBACK, so a long queue costs quadratic time)
HIGH_WATER = 2_000
LOW_WATER = 500


@dataclass(frozen=True)
class Progress:
    sim_seconds: float
    real_seconds: float
    published: int
    completed: int
    rate: float  # messages per real second over the last interval
    homes: int
    devices: int
    connections: int


def home_ids(n: int) -> list[str]:
    return [f"h{i:04d}" for i in range(1, n + 1)]


class Fleet:
    def __init__(self, broker_url: str, homes: int = 1, *, seed: int = 0,
                 clock: SimClock | None = None, z2m: bool = False,
                 connections: int | None = None, heartbeat_scale: float = 1.0,
                 routine: bool = True, device_types: tuple[str, ...] = TYPICAL_HOME,
                 serial_devices: frozenset[str] = frozenset(), serial: SerialSink | None = None,
                 tap: Tap | None = None) -> None:
        if homes < 1:
            raise ValueError("a fleet needs at least one home")
        self.broker = Endpoint.parse(broker_url)
        self.clock = clock or SimClock()
        self.sched = Scheduler(self.clock, fast=self.clock.speed == 0)
        self.routine = routine
        n_devices = homes * len(device_types)
        if connections is None:
            connections = 0 if n_devices <= 64 else 4
        z2m_renderer = Z2MRenderer()
        self.households = [
            Household(hid, self.sched, devices=default_devices(hid, device_types), seed=seed,
                      z2m=z2m, heartbeat_scale=heartbeat_scale, z2m_renderer=z2m_renderer,
                      serial=serial_devices)
            for hid in home_ids(homes)
        ]
        self.links = Links(self.broker, self.sched, self.households, shared=connections,
                           tap=tap, serial=serial, client_prefix=f"sim-{seed}")
        self.sched.pause = self._pause
        self._t0_real = 0.0
        self._t0_sim = 0.0
        self._c0 = 0

    @property
    def devices(self) -> int:
        return len(self.links.devices)

    def household(self, key: str | int) -> Household:
        """A home by id (``h0001``) or 1-based number."""
        if isinstance(key, int) or key.isdigit():
            idx = int(key) - 1
            if not 0 <= idx < len(self.households):
                raise KeyError(f"no home number {key} (the fleet has {len(self.households)})")
            return self.households[idx]
        for h in self.households:
            if h.home_id == key:
                return h
        raise KeyError(f"no home {key!r}")

    async def __aenter__(self) -> Fleet:
        await self.links.connect()
        self._t0_real = time.monotonic()
        self._t0_sim = self.clock.monotonic()

        def start_all() -> None:
            for h in self.households:
                h.start(routine=self.routine)

        self.sched.call(start_all)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        def stop_all() -> None:
            for h in self.households:
                h.shutdown()

        self.sched.call(stop_all)
        await self.links.close()

    async def _pause(self) -> None:
        """Backpressure: let the sockets catch up when too much is queued in paho."""
        if self.links.outstanding > HIGH_WATER:
            await self.links.drain_below(LOW_WATER)
        else:
            await asyncio.sleep(0)

    async def run(self, duration_s: float | None = None,
                  on_progress: Callable[[Progress], None] | None = None,
                  every_s: float = 2.0) -> Progress:
        """Run for ``duration_s`` simulated seconds (None: until cancelled)."""
        await self.links.drain(30.0)  # the boot burst is not the steady rate
        self._t0_real, self._t0_sim = time.monotonic(), self.clock.monotonic()
        self._c0 = self.links.completed
        until = None if duration_s is None else self._t0_sim + duration_s
        task = asyncio.create_task(self.sched.run(until), name="sim-fleet-scheduler")
        last_t, last_n = time.monotonic(), self.links.completed
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=every_s)
                now, n = time.monotonic(), self.links.completed
                if on_progress is not None and not task.done():
                    on_progress(self._progress((n - last_n) / max(now - last_t, 1e-9)))
                last_t, last_n = now, n
            await task
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self.links.drain(10.0)
        return self.summary()

    def summary(self) -> Progress:
        real = time.monotonic() - self._t0_real
        return self._progress((self.links.completed - self._c0) / max(real, 1e-9))

    def _progress(self, rate: float) -> Progress:
        return Progress(
            sim_seconds=self.sched.position() - self._t0_sim,
            real_seconds=time.monotonic() - self._t0_real,
            published=self.links.published - self._c0,
            completed=self.links.completed - self._c0,
            rate=rate,
            homes=len(self.households),
            devices=self.devices,
            connections=len(self.links.all()),
        )
