"""One home's devices and resident, independent of how the devices reach a broker.

:class:`~eldercare_sim.home.SimHome` gives a household one MQTT connection per
device (like Wi-Fi firmware); :class:`~eldercare_sim.fleet.Fleet` runs many
households over a few shared connections. Scenarios act on households.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from eldercare_protocols.catalogue import CATALOGUE, device_type
from eldercare_sim.devices import (
    CHINA,
    SHORT_NAMES,
    BedSensor,
    DoorContact,
    FallRadar,
    GasDetector,
    GpsTracker,
    MotionSensor,
    Resident,
    SimDevice,
    make_device,
)
from eldercare_sim.render import NativeRenderer, Renderer, SerialRenderer, Z2MRenderer
from eldercare_sim.routine import Routine
from eldercare_sim.scheduler import Scheduler

#: the eight devices of a typical adapted home (fleet default)
TYPICAL_HOME = ("call_button", "door_contact", "gas_detector", "smoke_detector",
                "vitals_monitor", "bed_sensor", "motion_sensor", "fall_radar")


def default_devices(home_id: str, types: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    """``[(f"{home_id}-{short}", type), ...]``, one of each catalogue type by default."""
    return [(f"{home_id}-{SHORT_NAMES[t]}", t) for t in (types or tuple(CATALOGUE))]


def z2m_model(type_name: str) -> str | None:
    """The Zigbee2MQTT model a device of this type is sold as (None: our own firmware only)."""
    models = device_type(type_name).z2m_models
    return models[0] if models else None


class Household:
    def __init__(self, home_id: str, sched: Scheduler, *,
                 devices: list[tuple[str, str]] | None = None, seed: int = 0,
                 z2m: bool = False, serial: frozenset[str] = frozenset(),
                 heartbeat_scale: float = 1.0, z2m_renderer: Z2MRenderer | None = None) -> None:
        self.home_id = home_id
        self.sched = sched
        self.seed = seed
        self.rng = random.Random(f"{seed}/{home_id}")
        self.resident = Resident(random.Random(f"{seed}/{home_id}/resident"), CHINA)
        self.z2m = z2m
        self.devices: dict[str, SimDevice] = {}
        self.models: dict[str, str] = {}
        self.routine: Routine | None = None
        self.running = False
        native = NativeRenderer()
        zr = z2m_renderer or Z2MRenderer()
        sr = SerialRenderer()
        for device_id, type_name in devices or default_devices(home_id):
            renderer: Renderer = native
            if device_id in serial:
                renderer = sr
            elif z2m and (model := z2m_model(type_name)) is not None:
                renderer = zr
                self.models[device_id] = model
            dev = make_device(type_name, device_id, sched,
                              rng=random.Random(f"{seed}/{device_id}"), renderer=renderer,
                              resident=self.resident, heartbeat_scale=heartbeat_scale)
            self.devices[device_id] = dev

    # ------------------------------------------------------------------ lookup

    def find(self, name: str) -> SimDevice:
        """A device by id, by short name (``btn``) or by catalogue type (``call_button``)."""
        if name in self.devices:
            return self.devices[name]
        full = f"{self.home_id}-{name}"
        if full in self.devices:
            return self.devices[full]
        for dev in self.devices.values():
            if dev.type_name == name:
                return dev
        raise KeyError(f"home {self.home_id} has no device {name!r}")

    def first(self, cls: type[SimDevice]) -> Any:
        for dev in self.devices.values():
            if isinstance(dev, cls) and dev.running:
                return dev
        return None

    # ------------------------------------------------------------------ lifecycle

    def start(self, *, routine: bool = False) -> None:
        self.running = True
        for dev in self.devices.values():
            dev.start()
        if routine:
            self.routine = Routine(self, random.Random(f"{self.seed}/{self.home_id}/routine"))
            self.routine.start()

    def shutdown(self) -> None:
        self.running = False
        for dev in self.devices.values():
            dev.shutdown()

    def stop(self) -> None:
        self.running = False
        for dev in self.devices.values():
            dev.stop()

    def set_publisher(self, fn: Callable[[SimDevice], Callable[..., None]]) -> None:
        for dev in self.devices.values():
            dev.publish = fn(dev)

    # ------------------------------------------------------------------ the resident's actions

    def act(self, action: str, arg: float = 0.0) -> None:
        """One step of the resident's life, as the devices perceive it."""
        if not self.running:
            return
        r = self.resident
        if r.condition == "inactive" and action not in {"fall_asleep"}:
            return
        handler: Callable[[float], None] = getattr(self, f"_act_{action}")
        handler(arg)

    def _motion(self) -> None:
        if (pir := self.first(MotionSensor)) is not None:
            pir.motion()
        if (radar := self.first(FallRadar)) is not None:
            radar.set_presence(True)

    def _bed(self, in_bed: bool) -> None:
        if (bed := self.first(BedSensor)) is not None:
            bed.set_in_bed(in_bed)
        else:
            self.resident.in_bed = in_bed

    def _act_wake(self, _arg: float) -> None:
        self.resident.asleep = False
        self._bed(False)
        self._motion()

    def _act_go_to_bed(self, _arg: float) -> None:
        self._motion()
        self._bed(True)

    def _act_fall_asleep(self, _arg: float) -> None:
        if self.resident.in_bed:
            self.resident.asleep = True

    def _act_toilet_trip(self, minutes: float) -> None:
        self.resident.asleep = False
        self._bed(False)
        self._motion()
        self.sched.after(minutes, lambda: self.act("back_to_bed"))

    def _act_back_to_bed(self, _arg: float) -> None:
        self._motion()
        self._bed(True)
        self.resident.asleep = True

    def _act_cook(self, duration: float) -> None:
        self._motion()
        if (gas := self.first(GasDetector)) is not None:
            gas.cook(duration)
        self.resident.last_meal = self.sched.now()

    def _act_move_about(self, _arg: float) -> None:
        if not self.resident.away and not self.resident.asleep:
            self._motion()

    def _door_cycle(self) -> None:
        if (door := self.first(DoorContact)) is not None:
            door.set_open(True)
            self.sched.after(self.rng.uniform(4, 20), lambda: self._close_door(door))

    def _close_door(self, door: DoorContact) -> None:
        if self.running:
            door.set_open(False)

    def _act_go_out(self, _arg: float) -> None:
        self._motion()
        self._door_cycle()
        self.resident.away = True
        if (radar := self.first(FallRadar)) is not None:
            self.sched.after(60, lambda: radar.set_presence(False) if self.resident.away else None)
        if (gps := self.first(GpsTracker)) is not None:
            gps.errand()

    def _act_come_back(self, _arg: float) -> None:
        if not self.resident.away:
            return
        self.resident.away = False
        self._door_cycle()
        self._motion()

    def _act_nap_start(self, _arg: float) -> None:
        self._bed(True)
        self.resident.asleep = True

    def _act_nap_end(self, _arg: float) -> None:
        if self.resident.in_bed:
            self.resident.asleep = False
            self._bed(False)
            self._motion()
