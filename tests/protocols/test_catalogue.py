"""Tests over the whole device catalogue: every type is complete and self-consistent."""

from __future__ import annotations

import pytest

from eldercare_protocols.catalogue import CATALOGUE, device_type, device_type_for_z2m_model
from eldercare_protocols.errors import UnknownDeviceError
from eldercare_protocols.events import EventCategory, EventKind, category_of

REQUIRED = {"call_button", "door_contact", "gas_detector", "smoke_detector", "vitals_monitor",
            "bed_sensor", "motion_sensor", "fall_radar", "gps_tracker"}
TYPES = sorted(CATALOGUE)


def test_catalogue_has_every_required_type() -> None:
    assert set(CATALOGUE) >= REQUIRED


def test_vocabulary_has_the_agreed_names() -> None:
    names = {k.value for k in EventKind}
    assert {"sos", "fall", "gas_alarm", "smoke_alarm", "vitals_alarm", "service_request",
            "cancel", "door_open", "door_close", "motion", "bed_enter", "bed_exit",
            "geofence_exit", "strap_removed", "gas_clear", "smoke_clear", "battery_low",
            "tamper", "device_online", "device_offline", "self_test", "vitals", "gas_level",
            "location", "presence"} <= names
    for kind in EventKind:
        category_of(kind)  # every kind has a category
    life = {k for k in EventKind if category_of(k) is EventCategory.LIFE_SAFETY}
    assert life == {EventKind.SOS, EventKind.FALL, EventKind.GAS_ALARM, EventKind.SMOKE_ALARM,
                    EventKind.VITALS_ALARM}


@pytest.mark.parametrize("name", TYPES)
def test_type_is_complete(name: str) -> None:
    t = CATALOGUE[name]
    assert t.name == name and t.label_zh and t.label_en
    assert 30 <= t.heartbeat_s <= 3600
    assert t.offline_after_s > t.heartbeat_s
    # every device says when it is online, offline, alive, and how well it hears
    assert {EventKind.DEVICE_ONLINE, EventKind.DEVICE_OFFLINE, EventKind.HEARTBEAT} <= t.events
    assert {"online", "rssi", "firmware"} <= set(t.state_fields)
    assert "battery" in t.state_fields or "mains" in t.state_fields
    assert "ping" in t.commands
    # telemetry kinds are telemetry, events are not
    for kind in t.telemetry_kinds:
        assert category_of(kind) is EventCategory.TELEMETRY
    for kind in t.events:
        assert category_of(kind) is not EventCategory.TELEMETRY
    assert t.walk_tests, f"{name} has no walk-test step for installers"
    for m in t.measurements.values():
        assert m.unit and m.valid_min < m.valid_max
        if m.normal_low is not None:
            assert m.valid_min <= m.normal_low
        if m.normal_high is not None:
            assert m.normal_high <= m.valid_max


def test_vitals_monitor_measures_everything_with_units() -> None:
    m = CATALOGUE["vitals_monitor"].measurements
    assert {n: m[n].unit for n in m} == {
        "heart_rate": "bpm", "respiration_rate": "breaths/min", "spo2": "%",
        "systolic": "mmHg", "diastolic": "mmHg", "body_temperature": "°C",
        "blood_glucose": "mmol/L", "battery": "%"}
    assert m["heart_rate"].is_valid(72) and not m["heart_rate"].is_valid(400)
    assert m["spo2"].is_normal(97) and not m["spo2"].is_normal(85)


def test_capabilities_per_type() -> None:
    assert {EventKind.SOS, EventKind.SERVICE_REQUEST} <= CATALOGUE["call_button"].events
    assert "led" in CATALOGUE["call_button"].commands
    gas = CATALOGUE["gas_detector"]
    assert {"self_test", "mute_buzzer"} <= set(gas.commands)
    assert EventKind.GAS_LEVEL in gas.telemetry_kinds and "lel" in gas.measurements
    assert {EventKind.GEOFENCE_EXIT, EventKind.STRAP_REMOVED, EventKind.SOS} <= \
        CATALOGUE["gps_tracker"].events
    assert EventKind.FALL in CATALOGUE["fall_radar"].events
    assert {EventKind.BED_ENTER, EventKind.BED_EXIT} <= CATALOGUE["bed_sensor"].events


def test_z2m_models_are_unique_and_resolve() -> None:
    seen: dict[str, str] = {}
    for t in CATALOGUE.values():
        for model in t.z2m_models:
            assert model not in seen, f"{model} claimed by {seen.get(model)} and {t.name}"
            seen[model] = t.name
            assert device_type_for_z2m_model(model) is t


def test_unknown_lookups_raise_the_package_error() -> None:
    with pytest.raises(UnknownDeviceError):
        device_type("toaster")
    with pytest.raises(UnknownDeviceError):
        device_type_for_z2m_model("NOT-A-MODEL")
