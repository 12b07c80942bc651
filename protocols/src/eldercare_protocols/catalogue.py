"""The device catalogue: each device type is data, composed from capability blocks.

A capability block says what a piece of hardware can report and accept (a battery,
a door contact, a gas cell, vital-sign sensing). A device type is the sum of its
blocks plus a heartbeat interval. Rules, the simulator, the installer's walk-test
and the Zigbee2MQTT adapter all read this table instead of knowing device types
by heart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from eldercare_protocols.errors import UnknownDeviceError
from eldercare_protocols.events import EventKind
from eldercare_protocols.z2m_codecs import (
    Contact,
    Expose,
    FallState,
    FieldCodec,
    Level,
    Occupancy,
    Reading,
    SosAction,
    SosFlag,
    StateReport,
    TestFlag,
)


@dataclass(frozen=True)
class Measurement:
    """A numeric quantity with its unit, the range a sensor can physically mean,
    and the normal band used as the safe default alarm threshold."""

    name: str
    unit: str
    valid_min: float
    valid_max: float
    normal_low: float | None = None
    normal_high: float | None = None

    def is_valid(self, value: float) -> bool:
        return self.valid_min <= value <= self.valid_max

    def is_normal(self, value: float) -> bool:
        low_ok = self.normal_low is None or value >= self.normal_low
        high_ok = self.normal_high is None or value <= self.normal_high
        return low_ok and high_ok


@dataclass(frozen=True)
class Command:
    name: str
    description: str
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Capability:
    name: str
    events: frozenset[EventKind] = frozenset()
    telemetry_kind: EventKind | None = None
    measurements: tuple[Measurement, ...] = ()
    state_fields: tuple[str, ...] = ()
    commands: tuple[Command, ...] = ()
    #: what an installer does to make this capability speak during a walk-test
    walk_test: str | None = None
    walk_test_event: EventKind | None = None
    #: the Zigbee2MQTT properties this capability owns, each with its codec
    z2m: tuple[FieldCodec, ...] = ()


@dataclass(frozen=True)
class DeviceType:
    name: str
    label_zh: str
    label_en: str
    capabilities: tuple[Capability, ...]
    heartbeat_s: int
    #: Zigbee2MQTT models of off-the-shelf devices of this type
    z2m_models: tuple[str, ...] = ()

    @property
    def events(self) -> frozenset[EventKind]:
        out: set[EventKind] = set()
        for cap in self.capabilities:
            out |= cap.events
        return frozenset(out)

    @property
    def telemetry_kinds(self) -> frozenset[EventKind]:
        return frozenset(c.telemetry_kind for c in self.capabilities if c.telemetry_kind)

    @property
    def measurements(self) -> Mapping[str, Measurement]:
        return MappingProxyType(
            {m.name: m for cap in self.capabilities for m in cap.measurements}
        )

    @property
    def state_fields(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for cap in self.capabilities:
            for f in cap.state_fields:
                seen[f] = None
        return tuple(seen)

    @property
    def commands(self) -> Mapping[str, Command]:
        return MappingProxyType({c.name: c for cap in self.capabilities for c in cap.commands})

    @property
    def z2m_codecs(self) -> tuple[FieldCodec, ...]:
        seen: dict[int, FieldCodec] = {}
        for cap in self.capabilities:
            for codec in cap.z2m:
                seen.setdefault(id(codec), codec)
        return tuple(seen.values())

    @property
    def walk_tests(self) -> tuple[tuple[str, EventKind], ...]:
        return tuple(
            (c.walk_test, c.walk_test_event)
            for c in self.capabilities
            if c.walk_test and c.walk_test_event
        )

    @property
    def offline_after_s(self) -> int:
        """Missed-heartbeat window: three intervals, the usual field tolerance."""
        return self.heartbeat_s * 3


# ---------------------------------------------------------------- capability blocks

BASE = Capability(
    name="base",
    events=frozenset({EventKind.DEVICE_ONLINE, EventKind.DEVICE_OFFLINE, EventKind.HEARTBEAT}),
    state_fields=("online", "rssi", "firmware"),
    commands=(
        Command("ping", "ask the device to answer with its state"),
        Command("set_heartbeat", "change the heartbeat interval", ("interval_s",)),
    ),
)
BATTERY = Capability(
    name="battery",
    events=frozenset({EventKind.BATTERY_LOW}),
    state_fields=("battery",),
    measurements=(Measurement("battery", "%", 0, 100, 20, None),),
    z2m=(Level("battery_low", EventKind.BATTERY_LOW, None), StateReport()),
)
MAINS = Capability(name="mains", state_fields=("mains",))
TAMPER = Capability(name="tamper", events=frozenset({EventKind.TAMPER}),
                    z2m=(Level("tamper", EventKind.TAMPER, None),))
#: a detector's or a button's test bit: a self-test, never an alarm
SELF_TEST = TestFlag()
CALL_BUTTONS = Capability(
    name="call_buttons",
    events=frozenset({EventKind.SOS, EventKind.SERVICE_REQUEST, EventKind.CANCEL}),
    state_fields=("led",),
    commands=(
        Command("led", "show the resident what happened to the call (and which call)",
                ("state", "alarm", "alarms")),
    ),
    walk_test="press the red button",
    walk_test_event=EventKind.SOS,
    z2m=(SosAction(), SosFlag(), SELF_TEST),
)
CONTACT = Capability(
    name="contact",
    events=frozenset({EventKind.DOOR_OPEN, EventKind.DOOR_CLOSE}),
    state_fields=("contact",),
    walk_test="open the door",
    walk_test_event=EventKind.DOOR_OPEN,
    z2m=(Contact(),),
)
ALARM_COMMANDS = (
    Command("self_test", "run the detector's self-test"),
    Command("mute_buzzer", "silence the local buzzer for a while", ("seconds",)),
)
GAS = Capability(
    name="gas",
    events=frozenset({EventKind.GAS_ALARM, EventKind.GAS_CLEAR, EventKind.SELF_TEST}),
    telemetry_kind=EventKind.GAS_LEVEL,
    measurements=(Measurement("lel", "%LEL", 0, 100, None, 10),),
    state_fields=("alarm", "buzzer_muted", "last_self_test"),
    commands=ALARM_COMMANDS,
    walk_test="press the gas detector's test button",
    walk_test_event=EventKind.SELF_TEST,
    z2m=(Level("gas", EventKind.GAS_ALARM, EventKind.GAS_CLEAR, alarm=True),
         Reading("gas_density", EventKind.GAS_LEVEL, "lel", 0, 100), SELF_TEST),
)
SMOKE = Capability(
    name="smoke",
    events=frozenset({EventKind.SMOKE_ALARM, EventKind.SMOKE_CLEAR, EventKind.SELF_TEST}),
    state_fields=("alarm", "buzzer_muted", "last_self_test"),
    commands=ALARM_COMMANDS,
    walk_test="press the smoke alarm's test button",
    walk_test_event=EventKind.SELF_TEST,
    z2m=(Level("smoke", EventKind.SMOKE_ALARM, EventKind.SMOKE_CLEAR, alarm=True), SELF_TEST),
)
WATER_LEAK = Capability(
    name="water_leak",
    events=frozenset({EventKind.WATER_LEAK, EventKind.WATER_CLEAR}),
    state_fields=("water_leak",),
    walk_test="put the water sensor's probes in a wet cloth",
    walk_test_event=EventKind.WATER_LEAK,
    z2m=(Level("water_leak", EventKind.WATER_LEAK, EventKind.WATER_CLEAR, alarm=True),
         SELF_TEST),
)
VITALS = Capability(
    name="vitals",
    events=frozenset({EventKind.VITALS_ALARM}),
    telemetry_kind=EventKind.VITALS,
    measurements=(
        Measurement("heart_rate", "bpm", 20, 250, 50, 120),
        Measurement("respiration_rate", "breaths/min", 4, 60, 10, 28),
        Measurement("spo2", "%", 50, 100, 90, None),
        Measurement("systolic", "mmHg", 50, 260, 90, 180),
        Measurement("diastolic", "mmHg", 30, 160, 50, 110),
        Measurement("body_temperature", "°C", 30, 43, 35.5, 38.5),
        Measurement("blood_glucose", "mmol/L", 1, 35, 3.9, 16.7),
    ),
    walk_test="take one reading with the monitor",
    walk_test_event=EventKind.VITALS,
)
BED = Capability(
    name="bed",
    events=frozenset({EventKind.BED_ENTER, EventKind.BED_EXIT}),
    telemetry_kind=EventKind.VITALS,
    measurements=(
        Measurement("heart_rate", "bpm", 20, 250, 45, 120),
        Measurement("respiration_rate", "breaths/min", 4, 60, 8, 28),
        Measurement("movement", "index", 0, 100),
    ),
    state_fields=("in_bed",),
    walk_test="lie on the bed and get up",
    walk_test_event=EventKind.BED_ENTER,
)
MOTION = Capability(
    name="motion",
    events=frozenset({EventKind.MOTION}),
    state_fields=("occupancy",),
    walk_test="walk in front of the motion sensor",
    walk_test_event=EventKind.MOTION,
    z2m=(Occupancy(),),
)
FALL = Capability(
    name="fall",
    events=frozenset({EventKind.FALL, EventKind.FALL_WARNING}),
    telemetry_kind=EventKind.PRESENCE,
    measurements=(Measurement("presence", "bool", 0, 1),),
    state_fields=("presence",),
    walk_test="walk through the radar's field of view",
    walk_test_event=EventKind.PRESENCE,
    z2m=(FallState(),),
)
GPS = Capability(
    name="gps",
    events=frozenset(
        {
            EventKind.SOS,
            EventKind.GEOFENCE_EXIT,
            EventKind.GEOFENCE_ENTER,
            EventKind.STRAP_REMOVED,
        }
    ),
    telemetry_kind=EventKind.LOCATION,
    measurements=(
        Measurement("lat", "°", -90, 90),
        Measurement("lon", "°", -180, 180),
        Measurement("accuracy", "m", 0, 10000),
    ),
    commands=(Command("locate", "report a position now"),),
    walk_test="press the wristband's SOS key",
    walk_test_event=EventKind.SOS,
)


def _types(*types: DeviceType) -> Mapping[str, DeviceType]:
    return MappingProxyType({t.name: t for t in types})


CATALOGUE: Mapping[str, DeviceType] = _types(
    DeviceType(
        "call_button", "红绿双键呼叫器", "Red/green call button",
        (BASE, BATTERY, CALL_BUTTONS), heartbeat_s=300,
        z2m_models=("TS0215A_sos", "TS0601_sos", "HS1EB/HS1EB-E", "SEB01ZB"),
    ),
    DeviceType(
        "door_contact", "门磁", "Door contact",
        (BASE, BATTERY, TAMPER, CONTACT), heartbeat_s=600,
        z2m_models=("MCCGQ11LM", "MCCGQ14LM", "SNZB-04", "TS0203"),
    ),
    DeviceType(
        "gas_detector", "燃气报警器", "Gas detector",
        (BASE, MAINS, TAMPER, GAS), heartbeat_s=300,
        z2m_models=("JT-BZ-01AQ/A", "HS1CG", "HS3CG", "TS0204", "JTQJ-BF-01LM/BW"),
    ),
    DeviceType(
        "smoke_detector", "烟雾报警器", "Smoke detector",
        (BASE, BATTERY, TAMPER, SMOKE), heartbeat_s=600,
        z2m_models=("HS3SA/HS1SA", "TS0205", "JTYJ-GD-01LM/BW"),
    ),
    DeviceType(
        "vitals_monitor", "生命体征监测仪", "Vital-sign monitor",
        (BASE, BATTERY, VITALS), heartbeat_s=300,
    ),
    DeviceType(
        "bed_sensor", "睡眠监测带", "Bed / sleep sensor",
        (BASE, MAINS, BED), heartbeat_s=300,
    ),
    DeviceType(
        "motion_sensor", "人体红外传感器", "PIR motion sensor",
        (BASE, BATTERY, TAMPER, MOTION), heartbeat_s=600,
        z2m_models=("RTCGQ11LM", "SNZB-03", "RTCZCGQ11LM", "TS0202"),
    ),
    DeviceType(
        "fall_radar", "毫米波跌倒雷达", "mmWave fall radar",
        (BASE, MAINS, FALL), heartbeat_s=120,
        z2m_models=("MIR-HE200-TY", "HS2FD-EF1-3.0", "FDS315"),
    ),
    DeviceType(
        "gps_tracker", "定位手环", "GPS wristband",
        (BASE, BATTERY, GPS), heartbeat_s=600,
    ),
)


_Z2M_INDEX = {model: t for t in CATALOGUE.values() for model in t.z2m_models}

#: capability blocks no device type of the catalogue has yet, whose Zigbee2MQTT fields are
#: still decoded on any device that exposes them (a door sensor with a leak probe)
DECODE_ONLY_BLOCKS: tuple[Capability, ...] = (WATER_LEAK,)


def _all_codecs() -> tuple[FieldCodec, ...]:
    seen: dict[int, FieldCodec] = {}
    for cap in [c for t in CATALOGUE.values() for c in t.capabilities] + list(DECODE_ONLY_BLOCKS):
        for codec in cap.z2m:
            seen.setdefault(id(codec), codec)
    return tuple(seen.values())


#: every Zigbee2MQTT field codec the catalogue knows, in block order
Z2M_CODECS: tuple[FieldCodec, ...] = _all_codecs()


def device_type(name: str) -> DeviceType:
    try:
        return CATALOGUE[name]
    except KeyError as exc:
        raise UnknownDeviceError(f"unknown device type {name!r}") from exc


def device_type_for_z2m_model(model: str) -> DeviceType:
    try:
        return _Z2M_INDEX[model]
    except KeyError as exc:
        raise UnknownDeviceError(f"unknown Zigbee2MQTT model {model!r}") from exc


#: when a device's exposes fit several types, the first wins: what it is for comes before
#: what it also does (a fall radar also senses presence, a smoke alarm has a battery)
_EXPOSES_ORDER = ("call_button", "fall_radar", "gas_detector", "smoke_detector",
                  "door_contact", "motion_sensor")
#: capability blocks that say nothing about what a device is for
_GENERIC = frozenset({"base", "battery", "mains", "tamper"})


def device_type_for_exposes(model: str | None, exposes: tuple[Expose, ...]
                            ) -> DeviceType | None:
    """The catalogue type of a Zigbee2MQTT device: its model when the catalogue lists it,
    else the first type one of whose own capability blocks claims an exposed property
    (ignoring the test flag, which detectors and buttons share)."""
    if model and model in _Z2M_INDEX:
        return _Z2M_INDEX[model]
    published = [e for e in exposes if e.published]
    for name in _EXPOSES_ORDER:
        t = CATALOGUE[name]
        for cap in t.capabilities:
            if cap.name in _GENERIC:
                continue
            for codec in cap.z2m:
                if not codec.early and any(codec.claims(e) for e in published):
                    return t
    return None
