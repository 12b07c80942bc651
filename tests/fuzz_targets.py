"""Fuzz targets for every decoder (issue 15), shared by the coverage-guided runner
(tests/fuzz/atheris_decoders.py), its budgeted CI run and bench/bench_hostile.py.

Each target takes arbitrary bytes and checks the decoder's contract: it raises
DecodeError and nothing else, and whatever it accepts encodes again and decodes to the
same message (and, for device input, makes uplink envelopes that encode and decode).
Any other exception, or a failed assert, is a finding.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from eldercare_protocols import native, serial_frame, uplink
from eldercare_protocols.errors import DecodeError
from eldercare_protocols.events import CanonicalEvent
from eldercare_protocols.z2m import Z2MAdapter

NOW = datetime(2026, 11, 23, 3, 12, tzinfo=UTC)
GOLDEN = Path(__file__).parent / "protocols" / "golden"
NATIVE_CHANNELS = list(native.Channel)
UP_CHANNELS = list(uplink.Up)
Z2M_MODELS = ["MCCGQ11LM", "JTQJ-BF-01LM/BW", "TS0205", "RTCGQ11LM", "ZG-205Z",
              "TS0215A_sos", "SOS-BTN-01"]


def _envelope(ev: CanonicalEvent) -> None:
    env = uplink.EventEnvelope(id="gw-1-000001", seq=1, gateway_id="gw-1", gateway_ts=NOW,
                               device_id=ev.device_id, kind=ev.kind, test=ev.test,
                               device_ts=ev.ts, device_seq=ev.seq, source=ev.source,
                               data=ev.data)
    again = uplink.decode_uplink("ec/v1/gw-1/up/events", uplink.encode(env))[1]
    assert again == env, (again, env)


def fuzz_native(data: bytes) -> None:
    if not data:
        return
    topic = native.topic("btn-1", NATIVE_CHANNELS[data[0] % len(NATIVE_CHANNELS)])
    try:
        device_id, msg = native.decode(topic, data[1:])
    except DecodeError:
        return
    again = native.decode(topic, native.encode(msg))[1]
    assert again == msg, (again, msg)
    for ev in native.to_canonical(device_id, msg):
        _envelope(ev)


def fuzz_z2m(data: bytes) -> None:
    if not data:
        return
    model = Z2M_MODELS[data[0] % len(Z2M_MODELS)]
    topic = "zigbee2mqtt/dev/availability" if data[0] & 0x80 else "zigbee2mqtt/dev"
    try:
        events = Z2MAdapter().decode(topic, data[1:], model, device_id="dev-1")
    except DecodeError:
        return
    for ev in events:
        _envelope(ev)


def fuzz_uplink(data: bytes) -> None:
    if not data:
        return
    topic = uplink.up_topic("gw-1", UP_CHANNELS[data[0] % len(UP_CHANNELS)])
    try:
        _, msg = uplink.decode_uplink(topic, data[1:])
    except DecodeError:
        return
    again = uplink.decode_uplink(topic, uplink.encode(msg))[1]
    assert again == msg, (again, msg)


def fuzz_serial(data: bytes) -> None:
    try:
        events = serial_frame.decode_canonical(data)
    except DecodeError:
        return
    for ev in events:
        _envelope(ev)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "native": fuzz_native, "z2m": fuzz_z2m, "uplink": fuzz_uplink, "serial": fuzz_serial}


def seeds(target: str) -> list[bytes]:
    """Valid inputs from the golden files (with the target's selector byte), so the fuzzer
    starts inside the formats rather than at random bytes."""
    out: list[bytes] = []
    for path in sorted(GOLDEN.iterdir()):
        if path.suffix == ".line":
            if target == "serial":
                out.append(path.read_bytes())
            continue
        doc = json.loads(path.read_text(encoding="utf-8"))
        topic: str = doc["topic"]
        payload = json.dumps(doc["payload"]).encode()
        if target == "native" and topic.startswith("eldercare/"):
            channel = native.Channel(topic.split("/", 2)[2])
            out.append(bytes([NATIVE_CHANNELS.index(channel)]) + payload)
        elif target == "uplink" and "/up/" in topic:
            out.append(bytes([UP_CHANNELS.index(uplink.Up(topic.rsplit("/", 1)[1]))])
                       + payload)
    if target == "z2m":
        out += [bytes([i]) + p for i in range(len(Z2M_MODELS)) for p in (
            b'{"contact": false, "battery": 90}', b'{"gas": true, "gas_density": 12.5}',
            b'{"action": "emergency"}', b'{"sos": true, "test": false}',
            b'{"occupancy": true, "presence": false, "tamper": true}')]
        out.append(bytes([0x80]) + b"online")
    return out
