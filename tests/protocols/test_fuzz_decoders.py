"""Property tests: arbitrary bytes on any topic raise nothing but DecodeError, and whatever
a decoder accepts encodes again and decodes to the same message (issue 15)."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

import hostile_support
from eldercare_protocols import bounds, native, serial_frame, uplink
from eldercare_protocols.errors import DecodeError
from eldercare_protocols.events import CanonicalEvent
from eldercare_protocols.z2m import Z2MAdapter

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
NATIVE_TOPICS = [native.topic("d1", ch) for ch in native.Channel]
UP_TOPICS = [uplink.up_topic("gw-1", ch) for ch in uplink.Up]


@given(st.binary(max_size=300), st.sampled_from(NATIVE_TOPICS))
@settings(max_examples=300)
def test_native_bytes(data: bytes, topic: str) -> None:
    with contextlib.suppress(DecodeError):
        native.decode(topic, data)


@given(st.dictionaries(st.sampled_from(["v", "seq", "ts", "type", "kind", "test", "data",
                                        "values", "online", "reason", "battery", "id", "ok"]),
                       json_values, max_size=8),
       st.sampled_from(NATIVE_TOPICS))
@settings(max_examples=300)
def test_native_json_objects(obj: dict[str, object], topic: str) -> None:
    with contextlib.suppress(DecodeError):
        native.decode(topic, json.dumps(obj).encode())


@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()),
       st.sampled_from(UP_TOPICS))
@settings(max_examples=300)
def test_uplink_bytes(data: bytes, topic: str) -> None:
    with contextlib.suppress(DecodeError):
        uplink.decode_uplink(topic, data)


@given(st.dictionaries(st.sampled_from(["contact", "gas", "smoke", "occupancy", "action", "sos",
                                        "battery_low", "tamper", "status", "fall_down_status",
                                        "presence", "gas_density", "test", "battery",
                                        "fall_status", "water_leak"]),
                       json_values, max_size=6),
       st.sampled_from(["MCCGQ11LM", "JTQJ-BF-01LM/BW", "TS0205", "RTCGQ11LM", "MIR-HE200-TY",
                        "TS0215A_sos", "HS1EB/HS1EB-E", "FDS315", "SEB01ZB"]))
@settings(max_examples=400)
def test_z2m_objects(obj: dict[str, object], model: str) -> None:
    with contextlib.suppress(DecodeError):
        Z2MAdapter().decode("zigbee2mqtt/dev", json.dumps(obj).encode(), model)


# -- issue 15: hostile values, and encode-after-decode round trips --------------------------

NOW = datetime(2026, 11, 23, 3, 12, tzinfo=UTC)

hostile_scalars = (
    st.none() | st.booleans() | st.integers()
    | st.sampled_from([2**63, 2**64, -(2**63) - 1, 2**63 - 1, 10**30])
    | st.floats()   # NaN and ±Infinity included: json.dumps writes them as bare words
    | st.text(max_size=8) | st.sampled_from(["\ud800", "a\udfffb", "x" * 5000])
)
hostile_values = st.recursive(
    hostile_scalars,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=4) | st.just("\ud800"), children, max_size=3),
    max_leaves=10,
) | st.integers(min_value=0, max_value=120).map(hostile_support.nested)


@given(hostile_values, st.sampled_from(["ascii", "utf8", "raw-surrogate"]))
@settings(max_examples=500)
def test_the_loader_fast_path_lets_no_surrogate_through(value: object, form: str) -> None:
    """bounds.loads skips its walk when the raw bytes rule out what the walk looks for;
    whatever it returns must encode as UTF-8 anyway (numbers and depth are checked where
    they land: typed fields, free-form fields)."""
    try:
        text = json.dumps({"v": value}, ensure_ascii=form == "ascii")
        payload = text.encode("utf-8", "surrogatepass" if form == "raw-surrogate" else "strict")
    except (UnicodeEncodeError, ValueError, RecursionError):
        return
    try:
        obj = bounds.loads(payload)
    except ValueError:   # BoundsError, or json's own
        return
    json.dumps(obj, ensure_ascii=False).encode("utf-8")


def _event_body(field: str, value: object) -> dict[str, object]:
    body: dict[str, object] = {"v": 1, "seq": 1, "ts": "2026-11-23T03:12:00Z",
                               "type": "call_button", "kind": "sos", "data": {}}
    body[field] = {"v": value} if field == "data" else value
    return body


def _envelope_of(ev: CanonicalEvent) -> bytes:
    """What the gateway does with a decoded event: envelope it and encode it."""
    env = uplink.EventEnvelope(id="gw-1-000001", seq=1, gateway_id="gw-1", gateway_ts=NOW,
                               device_id=ev.device_id, kind=ev.kind, test=ev.test,
                               device_ts=ev.ts, device_seq=ev.seq, source=ev.source,
                               data=ev.data)
    encoded = uplink.encode(env)
    assert uplink.decode_uplink("ec/v1/gw-1/up/events", encoded)[1] == env
    return encoded


@given(st.sampled_from(["seq", "ts", "type", "kind", "test", "data", "v"]), hostile_values)
@settings(max_examples=400)
def test_native_hostile_values_round_trip(field: str, value: object) -> None:
    payload = json.dumps(_event_body(field, value)).encode()
    try:
        device_id, msg = native.decode("eldercare/btn-1/event", payload)
    except DecodeError:
        return
    assert native.decode("eldercare/btn-1/event", native.encode(msg))[1] == msg
    for ev in native.to_canonical(device_id, msg):
        _envelope_of(ev)


@given(st.sampled_from(["seq", "device_seq", "gateway_ts", "device_ts", "data", "device_id"]),
       hostile_values)
@settings(max_examples=400)
def test_uplink_hostile_values_round_trip(field: str, value: object) -> None:
    body = hostile_support.uplink_event("gw-1", 1)
    body[field] = {"v": value} if field == "data" else value
    try:
        _, msg = uplink.decode_uplink("ec/v1/gw-1/up/events", json.dumps(body).encode())
    except DecodeError:
        return
    again = uplink.decode_uplink("ec/v1/gw-1/up/events", uplink.encode(msg))[1]
    assert again == msg
    assert isinstance(msg, uplink.EventEnvelope)
    for n in (msg.seq, msg.device_seq or 0):
        assert -(2**63) <= n < 2**63


@given(st.dictionaries(st.sampled_from(["contact", "gas", "smoke", "occupancy", "action", "sos",
                                        "battery_low", "tamper", "status", "gas_density",
                                        "battery", "linkquality", "presence", "test"]),
                       hostile_values, max_size=5),
       st.sampled_from(["MCCGQ11LM", "JTQJ-BF-01LM/BW", "TS0205", "RTCGQ11LM", "ZG-205Z",
                        "TS0215A_sos", "SOS-BTN-01"]),
       st.text(min_size=1, max_size=80).filter(lambda s: "/" not in s and s != "bridge"))
@settings(max_examples=400)
def test_z2m_hostile_values_round_trip(obj: dict[str, object], model: str, name: str) -> None:
    try:
        events = Z2MAdapter().decode(f"zigbee2mqtt/{name}", json.dumps(obj).encode(), model,
                                     device_id="dev-1")
    except DecodeError:
        return
    for ev in events:
        _envelope_of(ev)


def _framed(body: str) -> bytes:
    return f"${body}*{serial_frame.crc16_ccitt(body.encode()):04X}\r\n".encode()


@given(st.sampled_from(["EVT", "TEL", "STA", "CFG"]),
       st.integers(min_value=0, max_value=10**12),
       st.lists(st.tuples(st.sampled_from(["kind", "heart_rate", "spo2", "battery", "rssi",
                                           "type", "reason", "button", "x"]),
                          st.text(max_size=12) | st.sampled_from(
                              ["sos", "vitals", "1e400", "nan", "-inf", "72", "%ED%A0%80"])),
                max_size=4))
@settings(max_examples=400)
def test_serial_frames_round_trip(typ: str, seq: int, fields: list[tuple[str, str]]) -> None:
    kv = ";".join(f"{k}={v}" for k, v in fields)
    try:
        line = _framed(f"EC1,{typ},dev-0001,{seq},{kv}")
        events = serial_frame.decode_canonical(line)
    except (DecodeError, UnicodeEncodeError):
        return
    for ev in events:
        _envelope_of(ev)


@given(st.binary(max_size=400))
@settings(max_examples=300)
def test_serial_bytes(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        serial_frame.decode_canonical(data)
