"""Zigbee2MQTT: devices learned from the bridge's own device list, decoded by what they expose.

The device list is a real ``bridge/devices`` payload whose definitions come from
zigbee-herdsman-converters (see fixtures/README.md); the state payloads are what those
models' converters publish.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eldercare_protocols.catalogue import CATALOGUE, Z2M_CODECS, device_type_for_exposes
from eldercare_protocols.errors import DecodeError
from eldercare_protocols.events import EventKind
from eldercare_protocols.z2m import Z2MAdapter, parse_bridge_devices, parse_topic
from eldercare_protocols.z2m_codecs import FieldProblem, flatten_exposes

FIXTURE = Path(__file__).parent / "fixtures" / "z2m_bridge_devices.json"
BRIDGE = FIXTURE.read_bytes()
BY_MODEL = {d["definition"]["model"]: d for d in json.loads(BRIDGE) if d["definition"]}

#: the models the issue names, under the names Zigbee2MQTT reports, and what they are
MODELS = {
    "MCCGQ11LM": "door_contact", "MCCGQ14LM": "door_contact", "SNZB-04": "door_contact",
    "TS0203": "door_contact",
    "HS1CG": "gas_detector", "HS3CG": "gas_detector", "JT-BZ-01AQ/A": "gas_detector",
    "TS0204": "gas_detector", "JTQJ-BF-01LM/BW": "gas_detector",
    "HS3SA/HS1SA": "smoke_detector", "TS0205": "smoke_detector",
    "JTYJ-GD-01LM/BW": "smoke_detector",
    "TS0215A_sos": "call_button", "TS0601_sos": "call_button", "HS1EB/HS1EB-E": "call_button",
    "SEB01ZB": "call_button",
    "FDS315": "fall_radar", "MIR-HE200-TY": "fall_radar", "HS2FD-EF1-3.0": "fall_radar",
    "RTCGQ11LM": "motion_sensor", "SNZB-03": "motion_sensor", "RTCZCGQ11LM": "motion_sensor",
    "TS0202": "motion_sensor",
}


class Problems:
    def __init__(self) -> None:
        self.seen: list[tuple[str, FieldProblem]] = []

    def __call__(self, topic: str, problem: FieldProblem) -> None:
        self.seen.append((topic, problem))


def learned(problems: Problems | None = None) -> Z2MAdapter:
    a = Z2MAdapter(on_problem=problems or Problems())
    a.learn(BRIDGE)
    return a


def name_of(model: str) -> str:
    return str(BY_MODEL[model]["friendly_name"])


def feed(a: Z2MAdapter, model: str, *payloads: dict[str, Any]) -> list[str]:
    """Kinds of every payload in turn (heartbeats left out), for the fixture's device."""
    out: list[str] = []
    for p in payloads:
        events = a.decode(f"zigbee2mqtt/{name_of(model)}", json.dumps(p).encode(), None)
        out += [e.kind.value for e in events if e.kind is not EventKind.HEARTBEAT]
    return out


# ---------------------------------------------------------------- learning


def test_bridge_devices_give_name_model_and_type_for_every_listed_model() -> None:
    devices = {d.model: d for d in parse_bridge_devices(BRIDGE)}
    assert "Coordinator" not in {d.friendly_name for d in devices.values()}
    for model, type_name in MODELS.items():
        d = devices[model]
        assert d.friendly_name == name_of(model) and d.ieee_address.startswith("0x")
        dtype = d.device_type
        assert dtype is not None and dtype.name == type_name, model
        # the catalogue lists each of them under the name Zigbee2MQTT reports
        assert model in CATALOGUE[type_name].z2m_models


def test_type_from_exposes_alone_without_a_catalogue_model() -> None:
    """A model nobody listed still works by what it exposes."""
    for model, type_name in MODELS.items():
        exposes = flatten_exposes(BY_MODEL[model]["definition"]["exposes"])
        if model == "HS1EB/HS1EB-E":
            # single/double/hold is also what any remote sends: only the model says SOS
            assert device_type_for_exposes("NEW-MODEL", exposes) is None
            continue
        dtype = device_type_for_exposes("NEW-MODEL", exposes)
        assert dtype is not None and dtype.name == type_name, model
    # a 5.8 GHz presence sensor has no fall state: a motion sensor, never a fall radar
    zg = flatten_exposes(BY_MODEL["ZG-205Z"]["definition"]["exposes"])
    zg_type = device_type_for_exposes("ZG-205Z", zg)
    assert zg_type is not None and zg_type.name == "motion_sensor"


def test_catalogue_lists_only_names_zigbee2mqtt_reports() -> None:
    real = set(BY_MODEL)
    for t in CATALOGUE.values():
        assert set(t.z2m_models) <= real, (t.name, set(t.z2m_models) - real)
    assert "ZG-205Z" not in CATALOGUE["fall_radar"].z2m_models   # no fall state
    for gone in ("SOS-BTN-01", "HS1EB", "HS1SA", "TS0601_fall"):
        assert all(gone not in t.z2m_models for t in CATALOGUE.values())


def test_each_property_has_one_codec() -> None:
    owners: dict[str, str] = {}
    for codec in Z2M_CODECS:
        for prop in codec.properties:
            assert prop not in owners, f"{prop} owned by {owners[prop]} and {codec!r}"
            owners[prop] = repr(codec)
    for prop in ("contact", "gas", "smoke", "water_leak", "sos", "action", "occupancy",
                 "presence", "fall_status", "fall_down_status", "tamper", "battery",
                 "battery_low", "test"):
        assert prop in owners


def test_bad_device_lists_are_decode_errors() -> None:
    for raw in (b"{}", b"not json", b'"x"', b"[" * 100_000):
        with pytest.raises(DecodeError):
            parse_bridge_devices(raw)
    # entries it cannot use are skipped, the rest is kept
    mixed = json.dumps([1, {"friendly_name": "x"}, {"type": "Coordinator"},
                        json.loads(BRIDGE)[1]]).encode()
    assert len(parse_bridge_devices(mixed)) == 1


# ---------------------------------------------------------------- each model, real payloads


@pytest.mark.parametrize(("model", "payloads", "expected"), [
    # doors: contact true = closed; an unchanged contact is no new event
    ("MCCGQ11LM", [{"battery": 100, "contact": True, "device_temperature": 25,
                    "linkquality": 120, "power_outage_count": 3, "voltage": 3025},
                   {"battery": 100, "contact": False, "device_temperature": 25,
                    "linkquality": 117, "power_outage_count": 3, "voltage": 3025}],
     ["door_close", "door_open"]),
    ("MCCGQ14LM", [{"contact": True, "battery": 98}, {"contact": True, "battery": 97},
                   {"contact": False, "battery": 97}], ["door_close", "door_open"]),
    ("SNZB-04", [{"battery": 100, "battery_low": False, "contact": True, "voltage": 3100},
                 {"battery": 100, "battery_low": False, "contact": False, "voltage": 3100}],
     ["door_close", "door_open"]),
    ("TS0203", [{"battery": 90, "battery_low": False, "contact": True, "tamper": False,
                 "voltage": 2900},
                {"battery": 90, "battery_low": False, "contact": True, "tamper": True,
                 "voltage": 2900}], ["door_close", "tamper"]),
    # gas
    ("HS1CG", [{"battery_low": False, "gas": False, "tamper": False},
               {"battery_low": False, "gas": True, "tamper": False},
               {"battery_low": False, "gas": False, "tamper": False}],
     ["gas_alarm", "gas_clear"]),
    ("HS3CG", [{"battery_low": False, "gas": True, "tamper": False}], ["gas_alarm"]),
    ("JT-BZ-01AQ/A", [{"gas": False, "gas_density": 0, "state": "work", "test": False},
                      {"gas": True, "gas_density": 18, "state": "work", "test": False}],
     ["gas_level", "gas_alarm", "gas_level"]),
    ("TS0204", [{"gas": True, "tamper": False}], ["gas_alarm"]),
    # smoke, with the test button
    ("HS3SA/HS1SA", [{"battery": 100, "battery_low": False, "smoke": True, "test": True},
                     {"battery": 100, "battery_low": False, "smoke": False, "test": False},
                     {"battery": 100, "battery_low": False, "smoke": True, "test": False}],
     ["self_test", "smoke_alarm"]),
    ("TS0205", [{"battery": 80, "smoke": True, "tamper": False}], ["smoke_alarm"]),
    # SOS
    ("TS0215A_sos", [{"action": "emergency", "battery": 100, "voltage": 3000},
                     {"action": "", "battery": 100, "voltage": 3000}], ["sos"]),
    ("TS0601_sos", [{"action": "emergency", "battery": 100}], ["sos"]),
    ("HS1EB/HS1EB-E", [{"action": "single", "battery": 100}, {"action": "off"},
                       {"action": "hold", "battery": 100}], ["sos", "sos"]),
    ("SEB01ZB", [{"battery": 90, "battery_low": False, "sos": True, "tamper": False},
                 {"battery": 90, "battery_low": False, "sos": False, "tamper": False}],
     ["sos"]),
    # falls
    ("FDS315", [{"status": "occupied", "breathing_rate": 16},
                {"status": "falling", "breathing_rate": 18}], ["presence", "fall"]),
    ("MIR-HE200-TY", [{"presence": True, "occupancy": True, "fall_down_status": "none"},
                      {"presence": True, "occupancy": True, "fall_down_status": "maybe_fall"},
                      {"presence": True, "occupancy": True, "fall_down_status": "fall"}],
     ["motion", "presence", "fall_warning", "fall"]),
    ("HS2FD-EF1-3.0", [{"occupancy": True, "sensor_status": "activity",
                        "fall_status": "normal"},
                       {"occupancy": True, "sensor_status": "activity",
                        "fall_status": "fall_warning"},
                       {"occupancy": True, "sensor_status": "activity",
                        "fall_status": "fall_alarm"}],
     ["motion", "fall_warning", "fall"]),
    # motion and presence: someone arriving is motion; staying is not more motion
    ("RTCGQ11LM", [{"battery": 100, "illuminance": 12, "occupancy": True},
                   {"battery": 100, "illuminance": 15, "occupancy": True},
                   {"occupancy": False}, {"occupancy": True}], ["motion", "motion"]),
    ("SNZB-03", [{"battery": 100, "battery_low": False, "occupancy": True}], ["motion"]),
    ("RTCZCGQ11LM", [{"presence": True, "presence_event": "enter"},
                     {"presence": False, "presence_event": "leave"}],
     ["motion", "presence", "presence"]),
    ("TS0202", [{"occupancy": True, "battery_low": False, "tamper": False}], ["motion"]),
])
def test_real_models(model: str, payloads: list[dict[str, Any]], expected: list[str]) -> None:
    problems = Problems()
    assert feed(learned(problems), model, *payloads) == expected
    assert problems.seen == []


def test_a_device_without_the_bridge_list_is_decoded_by_its_bound_type() -> None:
    a = Z2MAdapter()
    door = CATALOGUE["door_contact"]
    out = a.decode("zigbee2mqtt/d", b'{"contact": true}', None, dtype=door)
    assert [e.kind for e in out] == [EventKind.DOOR_CLOSE]
    out = a.decode("zigbee2mqtt/d", b'{"contact": false, "battery": 50}', None, dtype=door)
    assert [e.kind for e in out] == [EventKind.DOOR_OPEN]
    # or by a model the catalogue lists
    out = a.decode("zigbee2mqtt/s", b'{"smoke": true}', "TS0205")
    assert [e.kind for e in out] == [EventKind.SMOKE_ALARM]


def test_any_device_exposing_a_known_property_works_without_code_changes() -> None:
    """A made-up leak sensor with a probe and a battery: decoded by its exposes."""
    bridge = json.dumps([{"friendly_name": "sink", "ieee_address": "0x1", "type": "EndDevice",
                          "definition": {"model": "LEAK-9000", "vendor": "Nobody",
                                         "exposes": [
                                             {"type": "binary", "property": "water_leak",
                                              "name": "water_leak", "access": 1,
                                              "value_on": True, "value_off": False},
                                             {"type": "numeric", "property": "battery",
                                              "name": "battery", "access": 1}]}}]).encode()
    a = Z2MAdapter()
    a.learn(bridge)
    kinds = [[e.kind.value for e in a.decode("zigbee2mqtt/sink", json.dumps(p).encode(), None)]
             for p in ({"water_leak": False, "battery": 90}, {"water_leak": True, "battery": 90},
                       {"water_leak": False, "battery": 90})]
    assert kinds == [["heartbeat"], ["water_leak"], ["water_clear"]]


# ---------------------------------------------------------------- subtle semantics


def test_maybe_fall_is_a_concern_not_a_fall() -> None:
    a = learned()
    events = a.decode(f"zigbee2mqtt/{name_of('MIR-HE200-TY')}",
                      b'{"fall_down_status": "maybe_fall"}', None)
    assert [e.kind for e in events] == [EventKind.FALL_WARNING]
    assert not any(e.life_safety for e in events)
    events = a.decode(f"zigbee2mqtt/{name_of('HS2FD-EF1-3.0')}",
                      b'{"fall_status": "fall_alarm"}', None)
    assert [e.kind for e in events] == [EventKind.FALL] and events[0].life_safety
    assert events[0].data == {"state": "fall_alarm"}


def test_a_second_sos_true_without_release_is_a_second_press() -> None:
    a = learned()
    press = {"battery": 90, "battery_low": False, "sos": True, "tamper": False,
             "linkquality": 80}
    again = dict(press, linkquality=76)        # the same zone status, heard again
    battery = dict(again, battery=89)           # a battery report repeating the state
    assert feed(a, "SEB01ZB", press, again) == ["sos", "sos"]
    assert feed(a, "SEB01ZB", battery) == []
    assert feed(a, "SEB01ZB", dict(battery, sos=False), dict(battery, sos=True)) == ["sos"]


def test_memory_survives_a_restart_so_reports_invent_no_door_event() -> None:
    a = learned()
    door = "TS0203"
    assert feed(a, door, {"contact": True, "battery": 90, "tamper": False},
                {"contact": False, "battery": 90, "tamper": False}) == ["door_close",
                                                                        "door_open"]
    saved = a.snapshot()
    b = Z2MAdapter()
    b.restore(saved)
    assert b.device(name_of(door)) is not None        # the bridge list came back too
    # a battery report and a tamper report after the restart repeat the open door
    assert feed(b, door, {"contact": False, "battery": 85, "tamper": False}) == []
    assert feed(b, door, {"contact": False, "battery": 85, "tamper": True}) == ["tamper"]
    assert feed(b, door, {"contact": True, "battery": 85, "tamper": False}) == ["door_close"]
    # the replayed state of an SOS button after a restart is not a second press
    feed(a, "SEB01ZB", {"sos": True, "battery": 90})
    c = Z2MAdapter()
    c.restore(a.snapshot())
    assert feed(c, "SEB01ZB", {"sos": True, "battery": 90}) == []
    assert feed(c, "SEB01ZB", {"sos": True, "battery": 90}) == ["sos"]


def test_bridge_restart_replays_cached_state_without_a_press() -> None:
    a = learned()
    a.bridge_state(b'{"state":"online"}')
    state = {"sos": True, "battery": 90, "battery_low": False, "tamper": False}
    assert feed(a, "SEB01ZB", state) == ["sos"]
    a.bridge_state(b'{"state":"offline"}')
    a.bridge_state(b"online")
    assert feed(a, "SEB01ZB", state) == []          # cache_state_send_on_startup
    with pytest.raises(DecodeError):
        a.bridge_state(b'{"state":"sleepy"}')


def test_unreadable_snapshot_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        Z2MAdapter().restore(b'{"memory": 3}')


def test_test_press_and_self_test_never_alarm() -> None:
    a = learned()
    out = a.decode(f"zigbee2mqtt/{name_of('HS3SA/HS1SA')}",
                   b'{"smoke": true, "test": true, "battery": 90}', None)
    assert [(e.kind, e.test) for e in out] == [(EventKind.SELF_TEST, True)]
    assert not any(e.life_safety for e in out)
    out = a.decode(f"zigbee2mqtt/{name_of('JT-BZ-01AQ/A')}",
                   b'{"gas": true, "test": true, "selftest": ""}', None)
    assert [e.kind for e in out] == [EventKind.SELF_TEST]
    # an SOS press during a test is marked test
    b = Z2MAdapter()
    out = b.decode("zigbee2mqtt/b", b'{"action": "emergency", "test": true}', "TS0215A_sos")
    sos = [e for e in out if e.kind is EventKind.SOS]
    assert sos and all(e.test for e in sos) and not any(e.life_safety for e in out)
    # a set-only selftest button value cached in the state never silences an alarm
    out = a.decode(f"zigbee2mqtt/{name_of('JT-BZ-01AQ/A')}",
                   b'{"gas": true, "test": false, "selftest": "selftest"}', None)
    assert EventKind.GAS_ALARM in [e.kind for e in out]


def test_wrong_type_values_are_warnings_with_the_topic() -> None:
    problems = Problems()
    a = learned(problems)
    topic = f"zigbee2mqtt/{name_of('SNZB-04')}"
    out = a.decode(topic, b'{"contact": "yes", "battery_low": true, "battery": 9}', None)
    # the good fields still count
    assert [e.kind for e in out] == [EventKind.BATTERY_LOW]
    assert out[0].data == {"battery": 9}
    assert [(t, p.property) for t, p in problems.seen] == [(topic, "contact")]
    assert "yes" in str(problems.seen[0][1])
    fall = f"zigbee2mqtt/{name_of('HS2FD-EF1-3.0')}"
    a.decode(fall, b'{"fall_status": "tumbling"}', None)
    a.decode(fall, b'{"fall_status": 2}', None)
    a.decode(topic, b'{"battery": "full"}', None)
    assert [p.property for _, p in problems.seen[1:]] == ["fall_status", "fall_status",
                                                         "battery"]


def test_the_default_problem_sink_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING"):
        Z2MAdapter().decode("zigbee2mqtt/door", b'{"contact": "yes"}', "MCCGQ11LM")
    assert "zigbee2mqtt/door" in caplog.text and "contact='yes'" in caplog.text


def test_remote_buttons_are_not_sos() -> None:
    """single/double/hold is SOS only on a device bound as a call button."""
    a = Z2MAdapter()
    remote = CATALOGUE["door_contact"]
    assert a.decode("zigbee2mqtt/r", b'{"action": "single"}', None, dtype=remote) == []


def test_empty_action_alone_means_nothing() -> None:
    assert Z2MAdapter().decode("zigbee2mqtt/b", b'{"action": ""}', "TS0215A_sos") == []


def test_battery_low_tamper_and_unknown_fields() -> None:
    a = Z2MAdapter()
    payload = {"contact": True, "battery_low": True, "tamper": True, "battery": 9,
               "linkquality": 40, "brand_new_field": {"x": 1}}
    out = a.decode("zigbee2mqtt/door", json.dumps(payload).encode(), "SNZB-04")
    assert [e.kind.value for e in out] == ["door_close", "battery_low", "tamper"]
    out = a.decode("zigbee2mqtt/door", json.dumps(payload).encode(), "SNZB-04")
    assert [e.kind.value for e in out] == ["heartbeat"]
    assert out[0].data == {"battery": 9, "linkquality": 40}


def test_availability() -> None:
    a = Z2MAdapter()
    on = a.decode("zigbee2mqtt/door/availability", b'{"state":"online"}', "")
    off = a.decode("zigbee2mqtt/door/availability", b"offline", "")
    assert [on[0].kind, off[0].kind] == [EventKind.DEVICE_ONLINE, EventKind.DEVICE_OFFLINE]
    with pytest.raises(DecodeError):
        a.decode("zigbee2mqtt/door/availability", b'{"state":"sleepy"}', "")


@pytest.mark.parametrize("payload", [b"not json", b"[1,2]", b'"str"', b"\xff\xfe", b""])
def test_malformed_payloads_raise_decode_error(payload: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        Z2MAdapter().decode("zigbee2mqtt/door", payload, "MCCGQ11LM")
    assert info.value.topic == "zigbee2mqtt/door"


def test_unknown_model_and_bad_topics() -> None:
    with pytest.raises(DecodeError, match="unknown Zigbee2MQTT model"):
        Z2MAdapter().decode("zigbee2mqtt/door", b'{"contact": true}', "NOPE")
    for topic in ("zigbee2mqtt/bridge/state", "zigbee2mqtt", "other/door", "zigbee2mqtt/a/b/c"):
        with pytest.raises(DecodeError):
            parse_topic(topic)
