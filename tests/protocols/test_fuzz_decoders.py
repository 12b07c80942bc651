"""Property tests: arbitrary bytes on any topic raise nothing but DecodeError."""

from __future__ import annotations

import contextlib
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from eldercare_protocols import native, uplink
from eldercare_protocols.errors import DecodeError
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
