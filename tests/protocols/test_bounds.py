"""Issue 15: every decoder rejects out-of-bounds values with DecodeError, and whatever it
accepts encodes again (the gateway's outbox and the cloud's database never see a value
they cannot store)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from eldercare_protocols import bounds, native, serial_frame, uplink
from eldercare_protocols.errors import DecodeError
from eldercare_protocols.events import CanonicalEvent, EventKind
from eldercare_protocols.z2m import Z2MAdapter
from hostile_support import (
    LONG_Z2M_TOPIC,
    NATIVE_POISON,
    Z2M_POISON,
    native_event,
    nested,
    raw_json,
    uplink_event,
    uplink_poison,
)

NOW = datetime(2026, 11, 23, 3, 12, tzinfo=UTC)
GAS = "JTQJ-BF-01LM/BW"


@pytest.mark.parametrize(("name", "payload"), NATIVE_POISON, ids=[n for n, _ in NATIVE_POISON])
def test_native_poison_is_a_decode_error(name: str, payload: bytes) -> None:
    with pytest.raises(DecodeError):
        native.decode("eldercare/btn-1/event", payload)


@pytest.mark.parametrize(("name", "payload"), Z2M_POISON, ids=[n for n, _ in Z2M_POISON])
def test_z2m_poison_is_a_decode_error(name: str, payload: bytes) -> None:
    with pytest.raises(DecodeError):
        Z2MAdapter().decode("zigbee2mqtt/gas", payload, GAS)


def test_z2m_topic_over_64_characters_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="friendly name"):
        Z2MAdapter().decode(LONG_Z2M_TOPIC, b'{"gas": true}', GAS)


POISON = uplink_poison("gw-1")


@pytest.mark.parametrize(("name", "payload"), POISON, ids=[n for n, _ in POISON])
def test_uplink_poison_is_a_decode_error(name: str, payload: bytes) -> None:
    with pytest.raises(DecodeError):
        uplink.decode_uplink("ec/v1/gw-1/up/events", payload)


def test_uplink_bounds_hold_at_the_limit() -> None:
    """2**63-1 is a valid seq (SQLite and PostgreSQL store it); one more is not."""
    top = bounds.INT64_MAX
    _, msg = uplink.decode_uplink("ec/v1/gw-1/up/events",
                                  raw_json(uplink_event("gw-1", top, device_seq=top)))
    assert isinstance(msg, uplink.EventEnvelope) and msg.seq == top
    for bad in ({"seq": top + 1}, {"device_seq": top + 1}, {"seq": -1}):
        with pytest.raises(DecodeError):
            uplink.decode_uplink("ec/v1/gw-1/up/events", raw_json(uplink_event("gw-1", 1) | bad))


def test_nesting_limit_is_32_levels() -> None:
    ok = raw_json(native_event(data=nested(bounds.MAX_DEPTH - 2)))
    assert native.decode("eldercare/btn-1/event", ok)
    with pytest.raises(DecodeError, match="nested deeper"):
        native.decode("eldercare/btn-1/event",
                      raw_json(native_event(data=nested(bounds.MAX_DEPTH))))


def test_nan_as_a_string_is_not_a_reading() -> None:
    body = {"v": 1, "seq": 1, "ts": "2026-11-23T03:12:00Z", "type": "vitals_monitor",
            "kind": "vitals", "values": {"heart_rate": "NaN"}}
    with pytest.raises(DecodeError):
        native.decode("eldercare/vit-1/telemetry", raw_json(body))
    batch = {"v": 1, "type": "telemetry", "id": "gw-1-000001", "seq": 1, "gateway_id": "gw-1",
             "gateway_ts": "2026-11-23T03:12:00Z", "records": [
                 {"device_id": "vit-1", "kind": "vitals", "ts": "2026-11-23T03:12:00Z",
                  "values": {"heart_rate": "Infinity"}}]}
    with pytest.raises(DecodeError):
        uplink.decode_uplink("ec/v1/gw-1/up/telemetry", raw_json(batch))


def test_serial_frame_values_stay_bounded() -> None:
    body = "EC1,TEL,vit-0001,1,kind=vitals;heart_rate=1e400"
    line = f"${body}*{serial_frame.crc16_ccitt(body.encode()):04X}\r\n".encode()
    with pytest.raises(DecodeError, match="finite"):
        serial_frame.decode_canonical(line)


def test_models_built_in_python_are_held_to_the_same_bounds() -> None:
    with pytest.raises(ValueError):
        CanonicalEvent(device_id="d", kind=EventKind.SOS, data={"x": nested(100)})
    with pytest.raises(ValueError):
        CanonicalEvent(device_id="d", kind=EventKind.SOS, data={"x": "\ud800"})
    with pytest.raises(ValueError):
        CanonicalEvent(device_id="d", kind=EventKind.SOS, seq=2**63)
    with pytest.raises(ValueError):
        CanonicalEvent(device_id="d", kind=EventKind.SOS, data={"x": float("nan")})


def test_check_json_is_iterative() -> None:
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(bounds.BoundsError, match="nested deeper"):
        bounds.check_json(deep)
    with pytest.raises(bounds.BoundsError, match="not a JSON value"):
        bounds.check_json({"t": NOW})


def test_what_decodes_encodes_and_decodes_the_same() -> None:
    payload = raw_json(native_event(data={"a": [1, 2.5, "中文", None], "b": {"c": True}}))
    device_id, msg = native.decode("eldercare/btn-1/event", payload)
    again = native.decode("eldercare/btn-1/event", native.encode(msg))[1]
    assert again == msg
    [ev] = native.to_canonical(device_id, msg)
    env = uplink.EventEnvelope(id="gw-1-000001", seq=1, gateway_id="gw-1", gateway_ts=NOW,
                               device_id=ev.device_id, kind=ev.kind, data=ev.data)
    assert json.loads(uplink.encode(env))["data"]["a"][2] == "中文"
