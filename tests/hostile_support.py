"""Hostile inputs (issue 15): the exact payloads that once stopped the alarm path, and a
seeded generator of more of their kind, for the tests, the fuzz targets and the bench.

A plain module (imported as ``from hostile_support import ...``; the bench puts tests/ on
its path). Nothing here reads the clock: timestamps are fixed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

TS = "2026-11-23T03:12:00+00:00"
GATEWAY_TS = "2026-11-23T03:12:00.500000+00:00"
BIG = [2**63, 2**64, -(2**63) - 1, 10**400]


def nested(depth: int) -> Any:
    value: Any = {"leaf": 1}
    for _ in range(depth):
        value = {"x": value}
    return value


def native_event(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"v": 1, "seq": 1, "ts": TS, "type": "call_button", "kind": "sos",
                            "data": {"button": "red"}}
    body.update(over)
    return body


def raw_json(obj: Any) -> bytes:
    """JSON as Python writes it: big ints verbatim, lone surrogates as \\ud800 escapes."""
    return json.dumps(obj).encode()


# -- the exact inputs of the issue ----------------------------------------------------------

#: native events a gateway received: (name, payload) on eldercare/{device}/event
NATIVE_POISON: list[tuple[str, bytes]] = [
    ("data nested 400 deep", raw_json(native_event(data=nested(400)))),
    ("data nested 40 deep", raw_json(native_event(data=nested(40)))),
    ("lone surrogate in data", raw_json(native_event(data={"note": "\ud800"}))),
    ("lone surrogate in a key", raw_json(native_event(data={"\udfff": 1}))),
    ("surrogate as raw UTF-8 bytes", raw_json(native_event(data={"note": "X"})).replace(
        b'"X"', b'"\xed\xa0\x80"')),
    ("seq 2**63", raw_json(native_event(seq=2**63))),
    ("seq as a 30-digit string", raw_json(native_event(seq="9" * 30))),
    ("int of 400 digits in data", b'{"v":1,"seq":1,"ts":"' + TS.encode()
     + b'","type":"call_button","kind":"sos","data":{"n":' + b"9" * 400 + b"}}"),
    ("NaN in data", b'{"v":1,"seq":1,"ts":"' + TS.encode()
     + b'","type":"call_button","kind":"sos","data":{"n":NaN}}'),
    ("Infinity in data", b'{"v":1,"seq":1,"ts":"' + TS.encode()
     + b'","type":"call_button","kind":"sos","data":{"n":-Infinity}}'),
    ("timestamp that overflows in UTC", raw_json(native_event(ts="9999-12-31T23:59:59-23:00"))),
    ("string of 60,000 characters", raw_json(native_event(data={"s": "x" * 60_000}))),
]

#: Zigbee2MQTT payloads for a gas detector on zigbee2mqtt/{friendly}
Z2M_POISON: list[tuple[str, bytes]] = [
    ("gas_density of 400 digits", b'{"gas_density": ' + b"9" * 400 + b"}"),
    ("gas_density 2**64", raw_json({"gas_density": 2**64})),
    ("lone surrogate", raw_json({"gas": False, "note": "\ud800"})),
    ("nested 400 deep", raw_json({"gas": False, "x": nested(400)})),
    ("NaN gas_density", b'{"gas_density": NaN}'),
]
LONG_Z2M_TOPIC = "zigbee2mqtt/" + "n" * 70


def uplink_event(gateway_id: str, seq: int, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"v": 1, "type": "event", "id": f"{gateway_id}-poison-{seq:06d}",
                            "seq": seq, "gateway_id": gateway_id, "gateway_ts": GATEWAY_TS,
                            "device_id": "btn-1", "kind": "door_open", "device_seq": 1,
                            "device_ts": TS, "source": "native", "data": {}}
    body.update(over)
    return body


def uplink_poison(gateway_id: str) -> list[tuple[str, bytes]]:
    """Records a gateway (buggy or compromised) sends on ec/v1/{gw}/up/events."""
    gap = {"v": 1, "type": "gap", "id": f"{gateway_id}-poison-gap", "seq": 7,
           "gateway_id": gateway_id, "gateway_ts": GATEWAY_TS, "dropped": 2**64,
           "first_seq": 1, "last_seq": 2, "oldest_ts": TS, "newest_ts": TS}
    sms = {"v": 1, "type": "sms_report", "id": f"{gateway_id}-poison-sms", "seq": 8,
           "gateway_id": gateway_id, "gateway_ts": GATEWAY_TS,
           "alarm_id": f"{gateway_id}-000001", "to": "+8613800000001", "status": "sent",
           "attempts": 2**63}
    return [
        ("event seq 2**63", raw_json(uplink_event(gateway_id, 2**63))),
        ("device_seq 2**64", raw_json(uplink_event(gateway_id, 3, device_seq=2**64))),
        ("gap dropped 2**64", raw_json(gap)),
        ("sms attempts 2**63", raw_json(sms)),
        ("lone surrogate in data", raw_json(uplink_event(gateway_id, 4, data={"a": "\ud800"}))),
        ("surrogate as raw UTF-8 bytes", raw_json(uplink_event(gateway_id, 10, data={
            "a": "X"})).replace(b'"X"', b'"\xed\xa0\x80"')),
        ("data nested 400 deep", raw_json(uplink_event(gateway_id, 5, data=nested(400)))),
        ("seq as a 30-digit string", raw_json(uplink_event(gateway_id, 6) | {"seq": "9" * 30})),
        ("gateway_ts that overflows in UTC",
         raw_json(uplink_event(gateway_id, 9, gateway_ts="9999-12-31T23:59:59-23:00"))),
    ]


# -- a seeded generator of more of the same -------------------------------------------------

def _hostile_value(rng: random.Random) -> Any:
    choice = rng.randrange(9)
    if choice == 0:
        return rng.choice(BIG) * rng.choice((1, -1))
    if choice == 1:
        return "\ud800" if rng.random() < 0.5 else "ok\udc80ok"
    if choice == 2:
        return nested(rng.randrange(33, 300))
    if choice == 3:
        return "x" * rng.randrange(5000, 20_000)
    if choice == 4:
        return [[[]] * 3] * rng.randrange(1, 50)
    if choice == 5:
        return rng.random() * 10 ** rng.randrange(0, 300)
    if choice == 6:
        return {"k": rng.randbytes(8).hex()}
    if choice == 7:
        return rng.choice((True, None, 0, -1, ""))
    return rng.randrange(-(2**70), 2**70)


def _raw_constant(rng: random.Random) -> bytes:
    return rng.choice((b"NaN", b"Infinity", b"-Infinity", b"1e400", b"9" * 500))


def hostile_native(rng: random.Random) -> bytes:
    """A native event payload with one hostile value somewhere, or plain garbage."""
    roll = rng.randrange(10)
    if roll == 0:
        return rng.randbytes(rng.randrange(0, 300))
    if roll == 1:
        return (b'{"v":1,"seq":1,"ts":"' + TS.encode() + b'","type":"call_button",'
                b'"kind":"sos","data":{"n":' + _raw_constant(rng) + b"}}")
    field = rng.choice(("seq", "data", "ts", "type", "kind", "test", "v"))
    value = _hostile_value(rng)
    if field == "data" and not isinstance(value, dict):
        value = {"v": value}
    return raw_json(native_event(**{field: value}))


def hostile_z2m(rng: random.Random) -> bytes:
    roll = rng.randrange(8)
    if roll == 0:
        return rng.randbytes(rng.randrange(0, 200))
    if roll == 1:
        return b'{"gas_density": ' + _raw_constant(rng) + b"}"
    field = rng.choice(("gas_density", "gas", "battery", "action", "sos", "test", "x"))
    return raw_json({field: _hostile_value(rng)})


def hostile_uplink(rng: random.Random, gateway_id: str, seq: int) -> bytes:
    roll = rng.randrange(10)
    if roll == 0:
        return rng.randbytes(rng.randrange(0, 300))
    if roll == 1:
        return raw_json(uplink_event(gateway_id, seq, data={"n": 1})).replace(
            b'"n": 1', b'"n": ' + _raw_constant(rng))
    field = rng.choice(("seq", "device_seq", "data", "gateway_ts", "device_id", "kind"))
    value = _hostile_value(rng)
    if field == "data" and not isinstance(value, dict):
        value = {"v": value}
    return raw_json(uplink_event(gateway_id, seq) | {field: value})


def hostile_serial(rng: random.Random) -> bytes:
    roll = rng.randrange(4)
    if roll == 0:
        return rng.randbytes(rng.randrange(0, 300)) + b"\r\n"
    if roll == 1:
        return b"$EC1,EVT,btn-0001,99999999999,kind=sos*0000\r\n"
    if roll == 2:
        return b"$EC1,TEL,vit-0001,1,kind=vitals;heart_rate=1e400*0000\r\n"
    return b"$" + rng.randbytes(rng.randrange(250, 2000)) + b"\r\n"


def stream(seed: int, n: int, gateway_id: str = "gw-1") -> Iterator[tuple[str, bytes]]:
    """``n`` (kind, payload) pairs from every class above, reproducible from ``seed``."""
    rng = random.Random(seed)
    kinds = ("native", "z2m", "uplink", "serial")
    for i in range(n):
        kind = kinds[i % len(kinds)]
        if kind == "native":
            yield kind, hostile_native(rng)
        elif kind == "z2m":
            yield kind, hostile_z2m(rng)
        elif kind == "uplink":
            yield kind, hostile_uplink(rng, gateway_id, 10_000 + i)
        else:
            yield kind, hostile_serial(rng)
