"""Zigbee2MQTT samples for every supported device type, with the semantics that matter."""

from __future__ import annotations

import json

import pytest

from eldercare_protocols.errors import DecodeError
from eldercare_protocols.events import EventKind
from eldercare_protocols.z2m import Z2MAdapter, parse_topic


def kinds(adapter: Z2MAdapter, name: str, model: str, payload: dict[str, object]) -> list[str]:
    events = adapter.decode(f"zigbee2mqtt/{name}", json.dumps(payload).encode(), model)
    return [e.kind.value for e in events]


def test_door_contact_true_means_closed() -> None:
    a = Z2MAdapter()
    door = ("front_door", "MCCGQ11LM")
    assert kinds(a, *door, {"contact": False, "battery": 91, "linkquality": 96}) == ["door_open"]
    # the bridge repeats the whole state: an unchanged contact is not a new event, only a
    # sign of life (heartbeat) that keeps the device from being reported offline
    assert kinds(a, *door, {"contact": False, "battery": 91, "linkquality": 90}) == ["heartbeat"]
    assert kinds(a, *door, {"contact": True, "battery": 91, "linkquality": 90}) == ["door_close"]
    assert kinds(a, *door, {"contact": False, "battery": 91}) == ["door_open"]


def test_gas_alarm_density_and_clear() -> None:
    a = Z2MAdapter()
    gas = ("kitchen_gas", "JTQJ-BF-01LM/BW")
    assert kinds(a, *gas, {"gas": False, "gas_density": 0}) == ["gas_level"]
    out = a.decode("zigbee2mqtt/kitchen_gas", b'{"gas": true, "gas_density": 18}',
                   "JTQJ-BF-01LM/BW")
    assert [e.kind for e in out] == [EventKind.GAS_ALARM, EventKind.GAS_LEVEL]
    assert out[1].data == {"lel": 18.0}
    assert kinds(a, *gas, {"gas": True, "gas_density": 20}) == ["gas_level"]
    assert kinds(a, *gas, {"gas": False, "gas_density": 1}) == ["gas_clear", "gas_level"]


def test_smoke_alarm_and_test_button_is_not_an_alarm() -> None:
    a = Z2MAdapter()
    smoke = ("hall_smoke", "JTYJ-GD-01LM/BW")
    out = a.decode("zigbee2mqtt/hall_smoke", b'{"smoke": true, "test": true}', smoke[1])
    assert [(e.kind, e.test) for e in out] == [(EventKind.SELF_TEST, True)]
    assert not any(e.life_safety for e in out)
    assert kinds(a, *smoke, {"smoke": True, "battery": 80}) == ["smoke_alarm"]
    assert kinds(a, *smoke, {"smoke": False}) == ["smoke_clear"]
    b = Z2MAdapter()
    out = b.decode("zigbee2mqtt/x", b'{"smoke": true, "selftest": true}', "TS0205")
    assert [e.kind for e in out] == [EventKind.SELF_TEST]


def test_pir_occupancy_is_motion() -> None:
    a = Z2MAdapter()
    assert kinds(a, "pir", "RTCGQ11LM", {"occupancy": True, "illuminance": 12}) == ["motion"]
    assert kinds(a, "pir", "RTCGQ11LM", {"occupancy": False}) == []
    assert kinds(a, "pir", "RTCGQ11LM", {"occupancy": True}) == ["motion"]


def test_fall_radar_status_and_fall_down_status() -> None:
    a = Z2MAdapter()
    assert kinds(a, "radar", "ZG-205Z", {"status": "falling", "presence": True}) == [
        "fall", "presence"]
    assert kinds(a, "radar", "ZG-205Z", {"status": "falling", "presence": True}) == []
    assert kinds(a, "radar", "ZG-205Z", {"status": "none", "presence": True}) == []
    b = Z2MAdapter()
    assert kinds(b, "radar2", "TS0601_fall", {"fall_down_status": "1"}) == ["fall"]
    assert kinds(b, "radar2", "TS0601_fall", {"fall_down_status": "0"}) == []


@pytest.mark.parametrize(
    ("model", "sequence", "expected"),
    [
        # 1. action "emergency" followed by the empty action a moment later
        ("TS0215A_sos", [{"action": "emergency"}, {"action": ""}], ["sos"]),
        # 2. a boolean sos field that goes true then false
        ("HS1EB", [{"sos": True, "battery": 90}, {"sos": False, "battery": 90}], ["sos"]),
        # 3. an emergency button whose presses are single/double/hold actions
        ("SOS-BTN-01", [{"action": "single"}, {"action": ""}], ["sos"]),
        ("SOS-BTN-01", [{"action": "hold"}], ["sos"]),
    ],
)
def test_three_sos_encodings_each_become_one_sos(model: str, sequence: list[dict[str, object]],
                                                 expected: list[str]) -> None:
    a = Z2MAdapter()
    got: list[str] = []
    for payload in sequence:
        got += [k for k in kinds(a, "sos_button", model, payload) if k != "heartbeat"]
    assert got == expected


def test_empty_action_alone_means_nothing() -> None:
    assert kinds(Z2MAdapter(), "b", "TS0215A_sos", {"action": ""}) == []


def test_sos_test_press_is_marked_test() -> None:
    out = Z2MAdapter().decode("zigbee2mqtt/b", b'{"action": "emergency", "test": true}',
                              "TS0215A_sos")
    sos = [e for e in out if e.kind is EventKind.SOS]
    assert sos and all(e.test for e in sos) and not any(e.life_safety for e in out)


def test_battery_low_tamper_and_unknown_fields() -> None:
    a = Z2MAdapter()
    payload = {"contact": True, "battery_low": True, "tamper": True, "battery": 9,
               "linkquality": 40, "brand_new_field": {"x": 1}}
    assert kinds(a, "door", "SNZB-04", payload) == ["door_close", "battery_low", "tamper"]
    assert kinds(a, "door", "SNZB-04", payload) == ["heartbeat"]
    only_state = kinds(Z2MAdapter(), "door", "SNZB-04", {"battery": 50, "linkquality": 80})
    assert only_state == ["heartbeat"]


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
