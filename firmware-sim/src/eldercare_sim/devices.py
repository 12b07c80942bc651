"""Simulated devices: one class per catalogue type, behaving like the firmware would.

A device owns its timers on the shared :class:`Scheduler`, its battery, its
sequence counter and its local state; it never sees a socket. What it says goes
through a renderer (native, Zigbee2MQTT or serial) to ``device.publish``, which
the home or fleet connects to a transport.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

from eldercare_protocols.catalogue import DeviceType, device_type
from eldercare_protocols.events import EventKind
from eldercare_protocols.native import DeviceCommand, DeviceCommandAck, StateReason
from eldercare_sim.battery import Battery
from eldercare_sim.geo import Route, distance_m, home_position
from eldercare_sim.render import NativeRenderer, Outgoing, Renderer
from eldercare_sim.scheduler import Scheduler, Timer
from eldercare_sim.vitals import Episode, VitalsModel

log = logging.getLogger(__name__)

FIRMWARE = "ec-fw 2.4.1"
CHINA = timezone(timedelta(hours=8))


class Resident:
    """What the devices of one home can sense about the person who lives there."""

    def __init__(self, rng: random.Random, tz: timezone = CHINA) -> None:
        self.tz = tz
        self.vitals = VitalsModel(rng)
        self.asleep = False
        self.in_bed = False
        self.away = False
        self.last_meal: datetime | None = None
        #: "normal", "inactive" (collapsed / unwell: nothing moves) or "wandering"
        self.condition = "normal"

    def local_hour(self, now: datetime) -> float:
        t = now.astimezone(self.tz)
        return t.hour + t.minute / 60 + t.second / 3600

    def hours_since_meal(self, now: datetime) -> float:
        if self.last_meal is None:
            return 5.0
        return (now - self.last_meal).total_seconds() / 3600


class SimDevice:
    type_name: ClassVar[str] = ""
    #: how often a periodic reading is taken, simulated seconds (0: none)
    report_s: ClassVar[float] = 0.0

    def __init__(self, device_id: str, sched: Scheduler, *, rng: random.Random | None = None,
                 renderer: Renderer | None = None, resident: Resident | None = None,
                 heartbeat_scale: float = 1.0) -> None:
        self.device_id = device_id
        self.dtype: DeviceType = device_type(self.type_name)
        self.sched = sched
        self.rng = rng or random.Random(device_id)
        self.renderer: Renderer = renderer or NativeRenderer()
        self.resident = resident or Resident(self.rng)
        self.heartbeat_s = self.dtype.heartbeat_s * heartbeat_scale
        caps = {c.name for c in self.dtype.capabilities}
        self.battery: Battery | None = (
            Battery(level=self.rng.uniform(70, 100)) if "battery" in caps else None)
        self.firmware = FIRMWARE
        self.props: dict[str, Any] = {}
        self.seq = 0
        self.running = False
        self.dead = False
        self.sent = 0
        self._rssi_base = self.rng.uniform(-82, -48)
        self._timers: list[Timer] = []
        self._hb_timer: Timer | None = None
        #: where rendered messages go; the home or fleet sets it
        self.publish: Callable[[Outgoing], None] = lambda _m: None
        #: called once when the battery dies (the home drops the connection: the Will fires)
        self.on_dead: Callable[[SimDevice], None] = lambda _d: None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.device_id}>"

    # ------------------------------------------------------------------ basics

    def now(self) -> datetime:
        return self.sched.now()

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def rssi(self) -> int:
        return int(max(-110, min(-30, self._rssi_base + self.rng.gauss(0, 3))))

    def battery_level(self) -> float | None:
        return self.battery.reported if self.battery is not None else None

    def z2m_levels(self) -> dict[str, Any]:
        """The Zigbee2MQTT level fields this device's state carries."""
        return {}

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Power on: boot state, then heartbeats and periodic readings."""
        if self.dead:
            return
        self.running = True
        if self.battery is not None:
            self.battery.elapse(self.sched.time())
        self._send(self.renderer.boot(self))
        self._schedule_heartbeat(first=True)
        if self.report_s > 0:
            self.every(self.report_s, self.report, jitter=True)
        self.on_start()

    def on_start(self) -> None:
        """Subclass hook: timers beyond heartbeat and periodic reading."""

    def stop(self) -> None:
        """Power off without a word (unplugged, dead battery, process killed)."""
        self.running = False
        for t in self._timers:
            t.cancel()
        self._timers.clear()
        if self._hb_timer is not None:
            self._hb_timer.cancel()
            self._hb_timer = None

    def shutdown(self) -> None:
        """Orderly power-off: say so, then stop."""
        if self.running:
            self._send(self.renderer.shutdown(self))
        self.stop()

    def later(self, delay: float, fn: Callable[[], None]) -> Timer:
        timer = self.sched.after(delay, self._guard(fn))
        self._timers.append(timer)
        if len(self._timers) > 64:
            self._timers = [t for t in self._timers if not t.cancelled and
                            t.when >= self.sched.time()]
        return timer

    def every(self, interval: float, fn: Callable[[], None], *, jitter: bool = False) -> None:
        def tick() -> None:
            fn()
            self.later(interval, tick)

        first = interval * self.rng.uniform(0.05, 1.0) if jitter else interval
        self.later(first, tick)

    def _guard(self, fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            if self.running:
                fn()
        return run

    # ------------------------------------------------------------------ speaking

    def _send(self, msgs: list[Outgoing]) -> None:
        if not self.running:
            return
        for m in msgs:
            if self.battery is not None:
                self.battery.transmit()
            self.sent += 1
            self.publish(m)
        self._check_battery()

    def emit_event(self, kind: EventKind, *, test: bool = False, **data: Any) -> None:
        self._send(self.renderer.event(self, kind, test, data))

    def emit_telemetry(self, kind: EventKind, **values: float) -> None:
        self._send(self.renderer.telemetry(self, kind, values))

    def emit_state(self, reason: StateReason = StateReason.CHANGE) -> None:
        self._send(self.renderer.state(self, reason))

    def emit_level(self) -> None:
        self._send(self.renderer.level(self))

    # ------------------------------------------------------------------ heartbeat, battery

    def _schedule_heartbeat(self, first: bool = False) -> None:
        if self._hb_timer is not None:
            self._hb_timer.cancel()
        # a fleet boots together but devices in the field beat at random phases
        delay = self.heartbeat_s * (self.rng.uniform(0.05, 1.0) if first else 1.0)
        self._hb_timer = self.sched.after(delay, self._guard(self.heartbeat))

    def heartbeat(self) -> None:
        if self.battery is not None:
            self.battery.elapse(self.sched.time())
        self.emit_state(StateReason.HEARTBEAT)
        if self.running:
            self._schedule_heartbeat()

    def _check_battery(self) -> None:
        b = self.battery
        if b is None or not self.running:
            return
        if b.take_low_edge():
            self._send(self.renderer.event(self, EventKind.BATTERY_LOW, False,
                                           {"battery": b.reported}))
        if b.dead and not self.dead:
            self.dead = True
            log.info("%s: battery dead, the device stops", self.device_id)
            self.stop()
            self.on_dead(self)

    def set_battery(self, level: float, drain_to_zero_s: float | None = None) -> None:
        """Set the level now; optionally drain to empty over the given simulated seconds."""
        if self.battery is None:
            raise ValueError(f"{self.device_id} is mains powered")
        self.battery.set_level(level, self.sched.time())
        if drain_to_zero_s:
            self.battery.extra_per_s = self.battery.level / drain_to_zero_s
        self._check_battery()

    # ------------------------------------------------------------------ periodic reading

    def report(self) -> None:
        """Subclass hook: one periodic reading."""

    # ------------------------------------------------------------------ commands

    def handle_command(self, cmd: DeviceCommand) -> DeviceCommandAck:
        """Carry out one command from the gateway and say how it went."""
        ts = self.now()
        if not self.running:
            return DeviceCommandAck(id=cmd.id, ok=False, error="device is off", ts=ts)
        if cmd.command not in self.dtype.commands:
            return DeviceCommandAck(id=cmd.id, ok=False,
                                    error=f"unknown command {cmd.command!r}", ts=ts)
        handler = getattr(self, f"cmd_{cmd.command}", None)
        if handler is None:
            return DeviceCommandAck(id=cmd.id, ok=False,
                                    error=f"command {cmd.command!r} not implemented", ts=ts)
        try:
            handler(**cmd.args)
        except (TypeError, ValueError) as exc:
            return DeviceCommandAck(id=cmd.id, ok=False, error=f"bad arguments: {exc}", ts=ts)
        return DeviceCommandAck(id=cmd.id, ok=True, ts=ts)

    def cmd_ping(self) -> None:
        self.emit_state(StateReason.CHANGE)

    def cmd_set_heartbeat(self, interval_s: float) -> None:
        interval = float(interval_s)
        if not 10 <= interval <= 86400:
            raise ValueError("interval_s must be between 10 and 86400")
        self.heartbeat_s = interval
        self._schedule_heartbeat()

    def tamper(self) -> None:
        if EventKind.TAMPER not in self.dtype.events:
            raise ValueError(f"a {self.type_name} has no tamper switch")
        self.emit_event(EventKind.TAMPER)


# ---------------------------------------------------------------------- call button

LED_STATES = ("received", "help_coming", "off")
BUTTON_KIND = {"red": EventKind.SOS, "green": EventKind.SERVICE_REQUEST}
PRESSES = ("single", "long", "double")


class CallButton(SimDevice):
    type_name = "call_button"
    #: presses of the same button closer than this are one press (contact bounce, a
    #: frightened resident hammering the button)
    debounce_s: ClassVar[float] = 1.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.led: str | None = None
        self.props["led"] = "off"
        self._last_press: dict[str, float] = {}
        self.debounced = 0

    def press(self, button: str = "red", press: str = "single") -> bool:
        """Returns False when the press was swallowed by the debounce (or the button is off)."""
        if button not in BUTTON_KIND:
            raise ValueError(f"button must be red or green, not {button!r}")
        if press not in PRESSES:
            raise ValueError(f"press must be one of {', '.join(PRESSES)}, not {press!r}")
        if not self.running:
            return False
        now = self.sched.time()
        last = self._last_press.get(button)
        if last is not None and now - last < self.debounce_s:
            self.debounced += 1
            return False
        self._last_press[button] = now
        self.emit_event(BUTTON_KIND[button], button=button, press=press)
        return True

    def cancel(self) -> None:
        """Both buttons held: the resident cancels a call made by mistake."""
        self.emit_event(EventKind.CANCEL, button="both", press="long")

    def cmd_led(self, state: str, alarm: str | None = None,
                alarms: list[str] | None = None) -> None:
        """``alarm``: the gateway's record id of the call this light confirms."""
        if state not in LED_STATES:
            raise ValueError(f"led state must be one of {', '.join(LED_STATES)}")
        self.led = state
        self.props["led"] = state
        if alarm is not None:
            self.props["led_alarm"] = str(alarm)


# ---------------------------------------------------------------------- door contact


class DoorContact(SimDevice):
    type_name = "door_contact"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.is_open = False
        self.props["contact"] = "closed"

    def set_open(self, is_open: bool) -> bool:
        """A reed switch reports changes only; returns False when nothing changed."""
        if is_open == self.is_open:
            return False
        self.is_open = is_open
        self.props["contact"] = "open" if is_open else "closed"
        self.emit_event(EventKind.DOOR_OPEN if is_open else EventKind.DOOR_CLOSE)
        return True

    def z2m_levels(self) -> dict[str, Any]:
        return {"contact": not self.is_open}


# ---------------------------------------------------------------------- alarms


class _Alarm(SimDevice):
    alarm_kind: ClassVar[EventKind]
    clear_kind: ClassVar[EventKind]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.alarm = False
        self.buzzer_muted = False
        self.props.update(alarm=False, buzzer_muted=False)
        self._unmute: Timer | None = None

    def _set_alarm(self, on: bool, **data: Any) -> None:
        if on == self.alarm:
            return
        self.alarm = on
        self.props["alarm"] = on
        self.emit_event(self.alarm_kind if on else self.clear_kind, **data)

    def self_test(self) -> None:
        """The test button (or the gateway's self_test command): a test event, never an alarm."""
        self.props["last_self_test"] = self.now().astimezone(UTC).isoformat()
        self.emit_event(EventKind.SELF_TEST, test=True, result="pass")

    def cmd_self_test(self) -> None:
        self.self_test()

    def cmd_mute_buzzer(self, seconds: float = 300) -> None:
        secs = float(seconds)
        if not 0 < secs <= 3600:
            raise ValueError("seconds must be between 0 and 3600")
        self.buzzer_muted = True
        self.props["buzzer_muted"] = True
        if self._unmute is not None:
            self._unmute.cancel()
        self._unmute = self.later(secs, self._unmute_now)
        self.emit_state(StateReason.CHANGE)

    def _unmute_now(self) -> None:
        self.buzzer_muted = False
        self.props["buzzer_muted"] = False
        self.emit_state(StateReason.CHANGE)


class GasDetector(_Alarm):
    type_name = "gas_detector"
    alarm_kind = EventKind.GAS_ALARM
    clear_kind = EventKind.GAS_CLEAR
    report_s = 60.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        m = self.dtype.measurements["lel"]
        self.threshold = float(m.normal_high or 10.0)
        self.drift = self.rng.uniform(0.0, 1.2)
        self.cooking_until = 0.0
        self.leak = 0.0
        self._leak_from = 0.0
        self._leak_to = 0.0
        self._leak_t0 = 0.0
        self._leak_ramp = 0.0
        self.lel = self.drift

    def _leak_now(self) -> float:
        if self._leak_ramp <= 0:
            return self._leak_to
        f = min(1.0, (self.sched.time() - self._leak_t0) / self._leak_ramp)
        return self._leak_from + (self._leak_to - self._leak_from) * f

    def _measure(self) -> float:
        # the electrochemical cell's zero drifts slowly and never below 0
        self.drift += (0.6 - self.drift) * 0.02 + self.rng.gauss(0, 0.05)
        self.drift = max(0.0, min(3.0, self.drift))
        cooking = self.rng.uniform(1.0, 3.5) if self.sched.time() < self.cooking_until else 0.0
        noise = self.rng.gauss(0, 0.15)
        value = max(0.0, min(100.0, self.drift + cooking + self._leak_now() + noise))
        return round(value, 1)

    def report(self) -> None:
        self.lel = self._measure()
        self.emit_telemetry(EventKind.GAS_LEVEL, lel=self.lel)
        self._evaluate()

    def _evaluate(self) -> None:
        if not self.alarm and self.lel >= self.threshold:
            self._set_alarm(True, lel=self.lel, threshold=self.threshold)
        elif self.alarm and self.lel < self.threshold * 0.8:  # hysteresis
            self._set_alarm(False, lel=self.lel)

    def gas_leak(self, lel: float, ramp_s: float = 0.0) -> None:
        """Gas builds up to ``lel`` %LEL (0 stops the leak), now or over ``ramp_s`` seconds."""
        if not 0 <= lel <= 100:
            raise ValueError("lel must be between 0 and 100")
        self._leak_from = self._leak_now()
        self._leak_to = float(lel)
        self._leak_t0 = self.sched.time()
        self._leak_ramp = ramp_s
        if ramp_s <= 0:
            self.report()

    def cook(self, duration_s: float) -> None:
        self.cooking_until = self.sched.time() + duration_s

    def z2m_levels(self) -> dict[str, Any]:
        return {"gas": self.alarm, "gas_density": self.lel}


class SmokeDetector(_Alarm):
    type_name = "smoke_detector"
    alarm_kind = EventKind.SMOKE_ALARM
    clear_kind = EventKind.SMOKE_CLEAR

    def smoke(self, on: bool = True) -> None:
        self._set_alarm(on, obscuration=round(self.rng.uniform(8, 20), 1) if on else 0.0)

    def z2m_levels(self) -> dict[str, Any]:
        return {"smoke": self.alarm}


# ---------------------------------------------------------------------- vitals


class VitalsMonitor(SimDevice):
    type_name = "vitals_monitor"
    report_s = 60.0
    #: every n-th reading also takes blood pressure, temperature and glucose
    full_every: ClassVar[int] = 10

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._n = 0
        self._abnormal: frozenset[str] = frozenset()

    def report(self) -> None:
        now = self.now()
        r = self.resident
        values = r.vitals.reading(r.local_hour(now), self.sched.time(), asleep=r.asleep,
                                  hours_since_meal=r.hours_since_meal(now),
                                  full=self._n % self.full_every == 0)
        self._n += 1
        self.reading(values)

    def reading(self, values: dict[str, float]) -> None:
        """Publish one reading (clamped to what the sensor can mean) and raise the
        monitor's own alarm when a value leaves its normal band."""
        ranges = self.dtype.measurements
        clean: dict[str, float] = {}
        for name, v in values.items():
            m = ranges.get(name)
            if m is None:
                raise ValueError(f"a vitals monitor does not measure {name!r}")
            clean[name] = round(min(m.valid_max, max(m.valid_min, float(v))), 1)
        if not clean:
            raise ValueError("a reading needs at least one value")
        self.emit_telemetry(EventKind.VITALS, **clean)
        abnormal = {n: v for n, v in clean.items() if not ranges[n].is_normal(v)}
        keys = frozenset(abnormal)
        # measurements taken this time that are normal again leave the abnormal set
        still = (self._abnormal - frozenset(clean)) | keys
        if keys - self._abnormal:
            data: dict[str, Any] = {"abnormal": abnormal}
            if self.resident.vitals.episode is not None:
                data["episode"] = self.resident.vitals.episode.value
            self.emit_event(EventKind.VITALS_ALARM, **data)
        self._abnormal = still

    def episode(self, name: str, duration_s: float = 600.0) -> None:
        self.resident.vitals.start_episode(Episode(name), self.sched.time(), duration_s)
        self.report()


class BedSensor(SimDevice):
    type_name = "bed_sensor"
    report_s = 60.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.props["in_bed"] = False

    def set_in_bed(self, in_bed: bool) -> bool:
        if in_bed == self.resident.in_bed and self.props["in_bed"] == in_bed:
            return False
        self.resident.in_bed = in_bed
        self.props["in_bed"] = in_bed
        self.emit_event(EventKind.BED_ENTER if in_bed else EventKind.BED_EXIT)
        return True

    def report(self) -> None:
        if not self.props["in_bed"]:
            return
        r = self.resident
        now = self.now()
        v = r.vitals.reading(r.local_hour(now), self.sched.time(), asleep=r.asleep, full=False)
        movement = self.rng.uniform(0, 8) if r.asleep else self.rng.uniform(10, 45)
        if r.condition == "inactive":
            movement = 0.0
        self.emit_telemetry(EventKind.VITALS, heart_rate=v["heart_rate"],
                            respiration_rate=v["respiration_rate"], movement=round(movement, 1))


# ---------------------------------------------------------------------- motion, radar


class MotionSensor(SimDevice):
    type_name = "motion_sensor"
    #: after a trigger the PIR is blind for this long (saves battery, as the real ones do)
    blind_s: ClassVar[float] = 30.0
    occupancy_s: ClassVar[float] = 90.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.occupancy = False
        self.props["occupancy"] = False
        self._last = -1e12
        self._clear: Timer | None = None

    def motion(self) -> bool:
        now = self.sched.time()
        if now - self._last < self.blind_s:
            return False
        self._last = now
        self.occupancy = True
        self.props["occupancy"] = True
        self.emit_event(EventKind.MOTION)
        if self._clear is not None:
            self._clear.cancel()
        self._clear = self.later(self.occupancy_s, self._no_occupancy)
        return True

    def _no_occupancy(self) -> None:
        self.occupancy = False
        self.props["occupancy"] = False
        self.emit_level()

    def z2m_levels(self) -> dict[str, Any]:
        return {"occupancy": self.occupancy}


class FallRadar(SimDevice):
    type_name = "fall_radar"
    #: a fall stays reported until the person is seen up again, or this long
    fall_hold_s: ClassVar[float] = 600.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.presence = False
        self.fallen = False
        self.props["presence"] = False

    def set_presence(self, present: bool) -> None:
        if present == self.presence:
            return
        self.presence = present
        self.props["presence"] = present
        self.emit_telemetry(EventKind.PRESENCE, presence=1.0 if present else 0.0)

    def fall(self) -> None:
        self.set_presence(True)
        self.fallen = True
        self.emit_event(EventKind.FALL, posture="lying", confidence=round(
            self.rng.uniform(0.85, 0.99), 2))
        self.later(self.fall_hold_s, self.recover)

    def recover(self) -> None:
        if self.fallen:
            self.fallen = False
            self.emit_level()

    def z2m_levels(self) -> dict[str, Any]:
        return {"presence": self.presence, "fall_down_status": "fall" if self.fallen else "none"}


# ---------------------------------------------------------------------- GPS


class GpsTracker(SimDevice):
    type_name = "gps_tracker"
    #: position reports: every minute while walking, every 30 minutes at rest
    moving_report_s: ClassVar[float] = 60.0
    still_report_s: ClassVar[float] = 1800.0
    geofence_m: ClassVar[float] = 300.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.home = home_position(self.rng)
        self.position = self.home
        self.inside = True
        self.route: Route | None = None
        self._route_t0 = 0.0
        self._walk: Timer | None = None

    def on_start(self) -> None:
        self.every(self.still_report_s, self._still_fix, jitter=True)

    def _still_fix(self) -> None:
        if self.route is None:
            self.fix()

    def fix(self) -> None:
        lat, lon = self.position
        self.emit_telemetry(EventKind.LOCATION, lat=round(lat, 6), lon=round(lon, 6),
                            accuracy=round(self.rng.uniform(4, 25), 1))

    def walk(self, route: Route) -> None:
        self.route = route
        self._route_t0 = self.sched.time()
        if self._walk is not None:
            self._walk.cancel()
        self._step()

    def errand(self) -> None:
        self.walk(Route.errand(self.home, self.rng, self.geofence_m))

    def wander(self) -> None:
        """Walk away from home and out of the geofence."""
        self.walk(Route.wander(self.home, self.rng, self.geofence_m))

    def _step(self) -> None:
        route = self.route
        if route is None:
            return
        elapsed = self.sched.time() - self._route_t0
        self.position = route.position(elapsed)
        self.fix()
        dist = distance_m(self.home, self.position)
        inside = dist <= self.geofence_m
        if inside != self.inside:
            self.inside = inside
            lat, lon = self.position
            self.emit_event(EventKind.GEOFENCE_ENTER if inside else EventKind.GEOFENCE_EXIT,
                            lat=round(lat, 6), lon=round(lon, 6), distance_m=round(dist))
        if elapsed >= route.duration_s():
            self.route = None
            return
        self._walk = self.later(self.moving_report_s, self._step)

    def sos(self) -> None:
        lat, lon = self.position
        self.emit_event(EventKind.SOS, button="sos", press="long", lat=round(lat, 6),
                        lon=round(lon, 6))

    def strap_removed(self) -> None:
        self.emit_event(EventKind.STRAP_REMOVED)

    def cmd_locate(self) -> None:
        self.fix()


DEVICE_CLASSES: dict[str, type[SimDevice]] = {
    cls.type_name: cls
    for cls in (CallButton, DoorContact, GasDetector, SmokeDetector, VitalsMonitor, BedSensor,
                MotionSensor, FallRadar, GpsTracker)
}

#: the short names used in default device ids ``{home_id}-{short}``
SHORT_NAMES: dict[str, str] = {
    "call_button": "btn",
    "door_contact": "door",
    "gas_detector": "gas",
    "smoke_detector": "smoke",
    "vitals_monitor": "vitals",
    "bed_sensor": "bed",
    "motion_sensor": "pir",
    "fall_radar": "radar",
    "gps_tracker": "gps",
}


def make_device(type_name: str, device_id: str, sched: Scheduler, **kwargs: Any) -> SimDevice:
    try:
        cls = DEVICE_CLASSES[type_name]
    except KeyError as exc:
        device_type(type_name)  # raises UnknownDeviceError for names not in the catalogue
        raise ValueError(f"no simulated device for {type_name!r}") from exc
    return cls(device_id, sched, **kwargs)
