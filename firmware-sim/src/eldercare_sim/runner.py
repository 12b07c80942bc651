"""``eldercare-sim run``: a fleet, optionally driven by a scenario, optionally with a dongle."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from eldercare_sim import scenario as sc
from eldercare_sim.clock import SimClock
from eldercare_sim.devices import SimDevice
from eldercare_sim.dongle import SimDongle
from eldercare_sim.errors import ScenarioError
from eldercare_sim.fleet import Fleet, Progress, home_ids
from eldercare_sim.household import TYPICAL_HOME, default_devices
from eldercare_sim.render import SERIAL_TOPIC, Outgoing


@dataclass
class RunConfig:
    broker: str
    homes: int | None = None
    seed: int | None = None
    speed: float = 1.0
    duration: float | None = None
    z2m: bool = False
    scenario: sc.Scenario | None = None
    connections: int | None = None
    routine: bool | None = None
    start: datetime | None = None
    heartbeat_scale: float = 1.0
    device_types: tuple[str, ...] = (*TYPICAL_HOME, "gps_tracker")
    record: Path | None = None
    tap: Callable[[Outgoing], None] | None = None


@dataclass
class RunInfo:
    homes: int
    devices: int
    connections: int
    seed: int
    start: datetime
    dongle_port: str | None = None
    steps: int = 0
    notes: list[str] = field(default_factory=list)


class Recorder:
    """Every message a run sends, one JSON line each, in the order they were sent."""

    def __init__(self, fh: IO[str], clock_time: Callable[[], float]) -> None:
        self.fh = fh
        self.time = clock_time

    def __call__(self, m: Outgoing) -> None:
        try:
            payload = m.payload.decode("utf-8")
        except UnicodeDecodeError:
            payload = m.payload.hex()
        self.fh.write(json.dumps({"t": round(self.time(), 3), "topic": m.topic,
                                  "payload": payload}, ensure_ascii=False) + "\n")


async def run(cfg: RunConfig, *, on_ready: Callable[[RunInfo], None] | None = None,
              on_progress: Callable[[Progress], None] | None = None) -> Progress:
    scn = cfg.scenario
    seed = cfg.seed if cfg.seed is not None else (scn.seed if scn else 0)
    homes = cfg.homes or (scn.homes if scn else 1)
    start = cfg.start or (scn.start if scn and scn.start else datetime.now(UTC))
    duration = cfg.duration if cfg.duration is not None else (scn.duration if scn else None)
    routine = cfg.routine if cfg.routine is not None else (scn.routine if scn else True)
    z2m = cfg.z2m or bool(scn and scn.z2m)
    clock = SimClock(start, speed=cfg.speed)

    dongle: SimDongle | None = None
    serial_ids: dict[str, str] = {}
    if scn and scn.serial:
        first = home_ids(1)[0]
        by_short = {d.split("-", 1)[1]: (d, t) for d, t in default_devices(first,
                                                                            cfg.device_types)}
        for name in scn.serial:
            if name not in by_short:
                raise ScenarioError(f"serial: home {first} has no device {name!r} (known: "
                                    f"{', '.join(sorted(by_short))})")
            dev_id, type_name = by_short[name]
            serial_ids[dev_id] = type_name
        dongle = SimDongle(serial_ids, seed=seed)

    record_fh = cfg.record.open("w", encoding="utf-8") if cfg.record else None
    taps: list[Callable[[Outgoing], None]] = [t for t in (cfg.tap,) if t is not None]
    fleet_ref: list[Fleet] = []
    if record_fh is not None:
        taps.append(Recorder(record_fh, lambda: fleet_ref[0].sched.time()))

    def tap(m: Outgoing) -> None:
        for t in taps:
            t(m)

    try:
        if dongle is not None:
            dongle.start()
        fleet = Fleet(cfg.broker, homes, seed=seed, clock=clock, z2m=z2m,
                      connections=cfg.connections, heartbeat_scale=cfg.heartbeat_scale,
                      routine=routine, device_types=cfg.device_types,
                      serial_devices=frozenset(serial_ids),
                      serial=dongle.write_line if dongle else None,
                      tap=tap if taps else None)
        fleet_ref.append(fleet)
        steps = 0
        if scn is not None:
            def revive(dev: SimDevice) -> None:
                async def go() -> None:
                    dev.dead = False
                    await fleet.links.revive(dev)
                    fleet.sched.call(dev.start)

                fleet.sched.hold(go())  # the device boots at its place in simulated time

            def schedule(when: float, fn: Callable[[], None]) -> None:
                fleet.sched.at(when, fn)

            ctx = sc.Context(outage=fleet.links.outage, gone=fleet.links.gone, revive=revive,
                             corrupt_serial=dongle.corrupt if dongle else None)
            steps = sc.bind(scn, fleet.households, fleet.household, ctx, clock.start, schedule)
        async with fleet:
            info = RunInfo(homes=homes, devices=fleet.devices,
                           connections=len(fleet.links.all()), seed=seed, start=clock.start,
                           dongle_port=dongle.port if dongle else None, steps=steps)
            if on_ready is not None:
                on_ready(info)
            return await fleet.run(duration, on_progress=on_progress)
    finally:
        if dongle is not None:
            dongle.close()
        if record_fh is not None:
            record_fh.close()


__all__ = ["SERIAL_TOPIC", "Recorder", "RunConfig", "RunInfo", "run"]
