"""Local rules: what the home decides on its own, with or without the cloud.

Pure logic over canonical events and an injectable clock, so a test can live a
whole day in milliseconds. Device-reported life-safety events (sos, fall, gas,
smoke) need no rule: they travel as alarms themselves. The rules here add the
alerts a single device cannot know:

* ``vitals_sustained``: a vital sign outside its band for ``vitals_sustain_s``
  (the first abnormal reading only starts the clock, a later abnormal reading
  past the window raises; one spike never does);
* ``wake_by`` / ``inactive_hours``: no door, motion or bed activity by the
  routine's wake-up time, or for ``inactive_hours`` in waking hours;
* ``night_wandering``: a door opened in the night window by a resident flagged
  at risk of wandering;
* ``door_left_open``: open longer than ``door_open_max_s``;
* ``missed_heartbeat``: a device silent for its catalogue type's
  ``offline_after_s``; ``battery_state``: a state report under the battery floor.

Person alerts (inactivity) name the gateway as their device: no single sensor owns them.
Device offline is never person inactive: inactivity is only judged while at
least one activity sensor is online, otherwise the device alert says it all.
Test events (``test=True``) never raise anything.

What the rules know survives a restart (:meth:`Rules.snapshot` / :meth:`Rules.restore`,
stored by the gateway). ``urgent`` says a change must be written with the records of
the same moment (an alert raised, a door opened, a device declared offline); ``dirty``
covers the rest (last-seen times, battery, signal), which the gateway saves
periodically: losing a few seconds of those is harmless.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from eldercare_edge.clock import Clock, aware_now
from eldercare_edge.devices import DeviceInfo, Registry
from eldercare_edge.rule_state import DeviceSnapshot, RulesSnapshot, gap_s
from eldercare_protocols.events import (
    ACTIVITY_KINDS,
    CanonicalEvent,
    EventCategory,
    EventKind,
    category_of,
)
from eldercare_protocols.uplink import GatewayConfig, Routine

log = logging.getLogger(__name__)

#: activity a sensor observes (a green-button press is activity too, but a home whose only
#: device is a call button has nothing that could notice a person being still)
SENSING_KINDS = ACTIVITY_KINDS - {EventKind.SERVICE_REQUEST}
BATTERY_HYSTERESIS = 5.0
_CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")


@dataclass(frozen=True)
class Alert:
    """An alert a rule raised; it becomes an EventEnvelope with ``source=gateway``."""

    device_id: str
    kind: EventKind
    rule: str
    data: dict[str, Any] = field(default_factory=dict)


def _hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _in_window(now: time, start: time, end: time) -> bool:
    """Half-open [start, end), wrapping past midnight when end <= start."""
    if start <= end:
        return start <= now < end
    return now >= start or now < end


def zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("time zone %r not available here; using UTC+8", name)
        return _CHINA


class Rules:
    def __init__(self, config: GatewayConfig, registry: Registry, clock: Clock) -> None:
        self._registry = registry
        self._clock = clock
        #: when this process started listening (a device never heard from is timed from here)
        self.started_at = aware_now(clock)
        #: since when the home has been watched without a long interruption (inactivity)
        self.watched_since = self.started_at
        self.config = config
        self._tz = zone(config.routine.timezone)
        self.last_activity: datetime | None = None
        self._wake_checked: date | None = None
        self._inactive_raised_at: datetime | None = None
        self._abnormal_since: dict[tuple[str, str], datetime] = {}
        self._vitals_raised: set[tuple[str, str]] = set()
        self._door_open_since: dict[str, datetime] = {}
        self._door_raised: set[str] = set()
        self._battery_raised: set[str] = set()
        #: after a restart, a device's silence is counted from here, not from its last
        #: message: the time the gateway was not listening is not the device's fault
        self._silence_from: dict[str, datetime] = {}
        self.dirty = False
        self.urgent = False

    def apply_config(self, config: GatewayConfig) -> None:
        self.config = config
        self._tz = zone(config.routine.timezone)

    @property
    def routine(self) -> Routine:
        return self.config.routine

    def now(self) -> datetime:
        return aware_now(self._clock)

    # ---------------------------------------------------------------- events

    def on_event(self, ev: CanonicalEvent, info: DeviceInfo) -> list[Alert]:
        """Update what is known about the device and the person; return alerts to raise."""
        now = self.now()
        self.dirty = True
        alerts = self._liveness(ev, info, now)
        if ev.test:
            return alerts
        kind = ev.kind
        if kind in ACTIVITY_KINDS:
            self.last_activity = now
            self.urgent = True
        if kind is EventKind.DOOR_OPEN:
            alerts += self._door_opened(info, now)
        elif kind is EventKind.DOOR_CLOSE:
            self._door_open_since.pop(info.device_id, None)
            self._door_raised.discard(info.device_id)
            self.urgent = True
        elif kind is EventKind.VITALS:
            alerts += self._vitals(ev, info, now)
        elif kind is EventKind.BATTERY_LOW and info.device_id not in self._battery_raised:
            self._battery_raised.add(info.device_id)
            self.urgent = True
        battery = ev.data.get("battery")
        if isinstance(battery, int | float) and not isinstance(battery, bool):
            alerts += self._battery(info, float(battery))
        return alerts

    def _liveness(self, ev: CanonicalEvent, info: DeviceInfo, now: datetime) -> list[Alert]:
        was = info.online
        info.last_seen = now
        rssi = ev.data.get("rssi")
        if isinstance(rssi, int | float) and not isinstance(rssi, bool):
            info.rssi = int(rssi)
        if ev.kind is EventKind.DEVICE_OFFLINE:
            info.online = False
            self.urgent = self.urgent or was is not False
            return []
        info.online = True
        self.urgent = self.urgent or was is not True
        if was is False and ev.kind is not EventKind.DEVICE_ONLINE:
            # it was declared offline (missed heartbeats) and speaks again
            return [Alert(info.device_id, EventKind.DEVICE_ONLINE, "heartbeat_resumed",
                          {"type": info.dtype.name})]
        return []

    def _door_opened(self, info: DeviceInfo, now: datetime) -> list[Alert]:
        self._door_open_since.setdefault(info.device_id, now)
        self.urgent = True
        resident = self.config.resident
        local = now.astimezone(self._tz).time()
        r = self.routine
        if (resident is not None and resident.wandering_risk
                and _in_window(local, _hhmm(r.night_start), _hhmm(r.night_end))):
            return [Alert(info.device_id, EventKind.NIGHT_WANDERING, "night_wandering",
                          {"room": info.binding.room, "local_time": local.strftime("%H:%M")})]
        return []

    def _band(self, name: str, info: DeviceInfo) -> tuple[float | None, float | None] | None:
        override = self.config.thresholds.get(name)
        if override is not None:
            return override.low, override.high
        m = info.dtype.measurements.get(name)
        if m is None:
            return None
        return m.normal_low, m.normal_high

    def _vitals(self, ev: CanonicalEvent, info: DeviceInfo, now: datetime) -> list[Alert]:
        alerts: list[Alert] = []
        sustain = timedelta(seconds=self.config.vitals_sustain_s)
        for name, value in ev.data.items():
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            band = self._band(name, info)
            if band is None:
                continue
            low, high = band
            key = (info.device_id, name)
            abnormal = (low is not None and value < low) or (high is not None and value > high)
            if not abnormal:
                if key in self._abnormal_since or key in self._vitals_raised:
                    self._abnormal_since.pop(key, None)
                    self._vitals_raised.discard(key)
                    self.urgent = True
                continue
            since = self._abnormal_since.get(key)
            if since is None:
                since = self._abnormal_since[key] = now
                self.urgent = True
            if key not in self._vitals_raised and now - since >= sustain:
                self._vitals_raised.add(key)
                self.urgent = True
                alerts.append(Alert(info.device_id, EventKind.VITALS_ALARM, "vitals_sustained", {
                    "measurement": name, "value": float(value), "low": low, "high": high,
                    "abnormal_since": since.isoformat(),
                    "sustained_s": (now - since).total_seconds()}))
        return alerts

    def _battery(self, info: DeviceInfo, battery: float) -> list[Alert]:
        info.battery = battery
        override = self.config.thresholds.get("battery")
        m = info.dtype.measurements.get("battery")
        floor = override.low if override is not None else (m.normal_low if m else None)
        if floor is None:
            return []
        if battery < floor and info.device_id not in self._battery_raised:
            self._battery_raised.add(info.device_id)
            self.urgent = True
            return [Alert(info.device_id, EventKind.BATTERY_LOW, "battery_state",
                          {"battery": battery, "floor": floor})]
        if battery >= floor + BATTERY_HYSTERESIS and info.device_id in self._battery_raised:
            self._battery_raised.discard(info.device_id)
            self.urgent = True
        return []

    # ---------------------------------------------------------------- time

    def tick(self) -> list[Alert]:
        """Time-driven rules; call every ``rules_tick_s`` (or after moving a fake clock)."""
        now = self.now()
        alerts = self._offline(now)
        alerts += self._doors(now)
        alerts += self._inactivity(now)
        if alerts:
            self.dirty = self.urgent = True
        return alerts

    def _offline(self, now: datetime) -> list[Alert]:
        alerts: list[Alert] = []
        for info in self._registry.all():
            if info.online is False:
                continue
            last = info.last_seen or self.started_at
            resumed = self._silence_from.get(info.device_id)
            if resumed is not None and resumed > last:
                last = resumed
            silent = (now - last).total_seconds()
            if silent >= info.dtype.offline_after_s:
                info.online = False
                alerts.append(Alert(info.device_id, EventKind.DEVICE_OFFLINE, "missed_heartbeat", {
                    "type": info.dtype.name, "silent_s": round(silent, 1),
                    "offline_after_s": info.dtype.offline_after_s,
                    "last_seen": info.last_seen.isoformat() if info.last_seen else None}))
        return alerts

    def _doors(self, now: datetime) -> list[Alert]:
        alerts: list[Alert] = []
        limit = timedelta(seconds=self.routine.door_open_max_s)
        for device_id, since in self._door_open_since.items():
            if device_id not in self._door_raised and now - since >= limit:
                self._door_raised.add(device_id)
                alerts.append(Alert(device_id, EventKind.DOOR_LEFT_OPEN, "door_left_open", {
                    "open_since": since.isoformat(),
                    "open_s": (now - since).total_seconds()}))
        return alerts

    def sensors_online(self) -> list[str]:
        return [i.device_id for i in self._registry.all()
                if i.online and i.dtype.events & SENSING_KINDS]

    def _local_at(self, day: date, hhmm: str) -> datetime:
        return datetime.combine(day, _hhmm(hhmm), tzinfo=self._tz)

    def _inactivity(self, now: datetime) -> list[Alert]:
        if self.config.resident is None:
            return []
        r = self.routine
        local = now.astimezone(self._tz)
        today = local.date()
        alerts: list[Alert] = []
        sensors = self.sensors_online()
        wake_by = _hhmm(r.wake_by)
        if local.time() >= wake_by and self._wake_checked != today:
            self._wake_checked = today
            self.dirty = self.urgent = True
            night_end = _hhmm(r.night_end)
            morning = self._local_at(today, r.night_end if night_end < wake_by else "00:00")
            idle = self.last_activity is None or self.last_activity < morning
            watched = self.watched_since <= morning
            if idle and watched and sensors:
                alerts.append(Alert(self.config.gateway_id, EventKind.INACTIVITY, "wake_by", {
                    "wake_by": r.wake_by, "since": morning.isoformat(), "sensors": sensors}))
            elif idle and watched:
                log.info("no activity by %s but no activity sensor is online: a device alert,"
                         " not an inactivity alert", r.wake_by)
        start, end = _hhmm(r.waking_start), _hhmm(r.waking_end)
        if _in_window(local.time(), start, end) and sensors:
            waking = self._local_at(today, r.waking_start)
            if waking > now:  # window wraps midnight and started yesterday
                waking -= timedelta(days=1)
            refs = [waking, self.watched_since]
            if self.last_activity is not None:
                refs.append(self.last_activity)
            ref = max(refs)
            idle_for = now - ref
            fresh = self._inactive_raised_at is None or self._inactive_raised_at < ref
            if idle_for >= timedelta(hours=r.inactive_hours) and fresh:
                self._inactive_raised_at = now
                alerts.append(Alert(self.config.gateway_id, EventKind.INACTIVITY,
                                    "inactive_hours", {
                                        "inactive_hours": r.inactive_hours,
                                        "since": ref.isoformat(), "sensors": sensors}))
        return alerts


    # ---------------------------------------------------------------- persistence

    def snapshot(self) -> RulesSnapshot:
        """What a restarted gateway needs; taking it clears ``dirty`` and ``urgent``."""
        snap = RulesSnapshot(
            saved_at=self.now(), watched_since=self.watched_since,
            last_activity=self.last_activity, wake_checked=self._wake_checked,
            inactive_raised_at=self._inactive_raised_at,
            abnormal_since=[(d, m, t) for (d, m), t in self._abnormal_since.items()],
            vitals_raised=sorted(self._vitals_raised),
            door_open_since=dict(self._door_open_since),
            door_raised=sorted(self._door_raised),
            battery_raised=sorted(self._battery_raised),
            devices={i.device_id: DeviceSnapshot(online=i.online, last_seen=i.last_seen,
                                                 battery=i.battery, rssi=i.rssi)
                     for i in self._registry.all()
                     if i.online is not None or i.last_seen is not None})
        self.dirty = self.urgent = False
        return snap

    def mark_unsaved(self) -> None:
        """A snapshot could not be written: keep it due."""
        self.dirty = self.urgent = True

    def restore(self, snap: RulesSnapshot, max_gap_s: float) -> float:
        """Take up where the previous run stopped; returns the seconds it was not listening.

        After a short gap (``max_gap_s`` or less: a reboot, an update) the watch is
        continuous: nobody seen moving since 21:00 yesterday is still nobody, and a vital
        sign abnormal before the reboot keeps its start. After a longer one the gateway
        cannot claim it watched the home, so inactivity and vital-sign windows start again.
        Either way what was raised stays raised (nothing is reported twice), open doors
        keep their start, devices declared offline stay offline, and a device's silence is
        not blamed for the time the gateway itself was not listening.
        """
        now = self.now()
        gap = gap_s(snap, now)
        continuous = gap <= max_gap_s
        known = {i.device_id for i in self._registry.all()}
        self.last_activity = snap.last_activity
        self._wake_checked = snap.wake_checked
        self._inactive_raised_at = snap.inactive_raised_at
        self._vitals_raised = {(d, m) for d, m in snap.vitals_raised if d in known}
        self._door_open_since = {d: t for d, t in snap.door_open_since.items() if d in known}
        self._door_raised = {d for d in snap.door_raised if d in known}
        self._battery_raised = {d for d in snap.battery_raised if d in known}
        if continuous:
            self.watched_since = min(snap.watched_since, self.started_at)
            self._abnormal_since = {(d, m): t for d, m, t in snap.abnormal_since if d in known}
        else:
            log.info("the gateway was not listening for %.0f s (more than %.0f s): inactivity"
                     " and vital-sign windows start again", gap, max_gap_s)
        for device_id, dev in snap.devices.items():
            info = self._registry.get(device_id)
            if info is None:
                continue
            info.online, info.last_seen = dev.online, dev.last_seen
            info.battery, info.rssi = dev.battery, dev.rssi
            if dev.last_seen is not None:
                self._silence_from[device_id] = dev.last_seen + timedelta(seconds=gap)
        self.dirty = True
        return gap


def is_telemetry(kind: EventKind) -> bool:
    return category_of(kind) is EventCategory.TELEMETRY
