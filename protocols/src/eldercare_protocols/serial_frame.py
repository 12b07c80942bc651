"""The serial frame format spoken by RF receiver dongles and RS-485 buses.

One frame is one human-readable ASCII line, so an installer can read it in any
serial terminal::

    $EC1,EVT,btn-0001,42,kind=sos;button=red;press=single*3F2A\\r\\n
    $EC1,TEL,vit-0001,43,kind=vitals;heart_rate=72;spo2=97*1B0C\\r\\n
    $EC1,STA,btn-0001,44,type=call_button;reason=heartbeat;battery=87;rssi=-61*A001\\r\\n
    $EC1,CFG,dev-0001,1,op=set;heartbeat_s=300*7C3E\\r\\n

Fields: ``$`` start, protocol ``EC1``, frame type, device id, per-device
sequence number, a body of ``key=value`` pairs separated by ``;`` (values
percent-encoded), ``*`` and the CRC-16/CCITT-FALSE of everything between ``$``
and ``*`` as four upper-case hex digits, then CR LF. A frame is at most 255
bytes before CR LF. A corrupt, truncated or oversized frame raises
:class:`DecodeError` and nothing else.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import quote, unquote

from pydantic import ValidationError

from eldercare_protocols.catalogue import device_type
from eldercare_protocols.errors import DecodeError, UnknownDeviceError
from eldercare_protocols.events import CanonicalEvent, EventKind

MAGIC = "EC1"
MAX_FRAME = 255
_SAFE = "-._~:+"
_FRAME_RE = re.compile(
    r"^\$(?P<body>EC1,(?P<typ>[A-Z]{3}),(?P<dev>[A-Za-z0-9][A-Za-z0-9_.-]{0,63}),"
    r"(?P<seq>\d{1,10}),(?P<kv>[^*]*))\*(?P<crc>[0-9A-F]{4})$"
)


class FrameType(StrEnum):
    EVENT = "EVT"
    TELEMETRY = "TEL"
    STATE = "STA"
    CONFIG = "CFG"


@dataclass(frozen=True)
class Frame:
    type: FrameType
    device_id: str
    seq: int
    fields: tuple[tuple[str, str], ...]

    def get(self, key: str, default: str | None = None) -> str | None:
        for k, v in self.fields:
            if k == key:
                return v
        return default

    def as_dict(self) -> dict[str, str]:
        return dict(self.fields)


def crc16_ccitt(data: bytes, crc: int = 0xFFFF) -> int:
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def encode(frame: Frame) -> bytes:
    for key, _ in frame.fields:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", key):
            raise ValueError(f"invalid field name {key!r}")
    kv = ";".join(f"{k}={quote(v, safe=_SAFE)}" for k, v in frame.fields)
    body = f"{MAGIC},{frame.type.value},{frame.device_id},{frame.seq},{kv}"
    line = f"${body}*{crc16_ccitt(body.encode()):04X}"
    if len(line) > MAX_FRAME:
        raise ValueError(f"frame of {len(line)} bytes exceeds {MAX_FRAME}")
    if not _FRAME_RE.match(line):
        raise ValueError(f"cannot frame device id {frame.device_id!r}")
    return line.encode("ascii") + b"\r\n"


def decode(line: bytes) -> Frame:
    """Decode one line (with or without CR LF). Raises DecodeError only."""
    raw = line.rstrip(b"\r\n")
    if len(raw) > MAX_FRAME:
        raise DecodeError(f"frame of {len(raw)} bytes exceeds {MAX_FRAME}", payload=line)
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise DecodeError("frame is not ASCII", payload=line) from exc
    if not text.startswith("$"):
        raise DecodeError("frame does not start with '$'", payload=line)
    if "*" not in text:
        raise DecodeError("truncated frame: no checksum", payload=line)
    m = _FRAME_RE.match(text)
    if m is None:
        raise DecodeError("malformed frame", payload=line)
    expected = crc16_ccitt(m["body"].encode())
    if int(m["crc"], 16) != expected:
        raise DecodeError(f"checksum mismatch: frame says {m['crc']}, computed {expected:04X}",
                          payload=line)
    try:
        ftype = FrameType(m["typ"])
    except ValueError as exc:
        raise DecodeError(f"unknown frame type {m['typ']!r}", payload=line) from exc
    fields: list[tuple[str, str]] = []
    if m["kv"]:
        for pair in m["kv"].split(";"):
            key, sep, value = pair.partition("=")
            if not sep or not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", key):
                raise DecodeError(f"malformed field {pair!r}", payload=line)
            try:
                fields.append((key, unquote(value, errors="strict")))
            except UnicodeDecodeError as exc:
                raise DecodeError(f"field {pair!r} is not percent-encoded UTF-8",
                                  payload=line) from exc
    return Frame(ftype, m["dev"], int(m["seq"]), tuple(fields))


_RESERVED = {"kind", "test", "type", "reason"}


def _number(key: str, value: str, line: bytes | None) -> float:
    try:
        number = float(value)
    except ValueError as exc:
        raise DecodeError(f"{key}={value!r} is not a number", payload=line) from exc
    if not math.isfinite(number):
        raise DecodeError(f"{key}={value!r} is not a finite number", payload=line)
    return number


def to_canonical(frame: Frame, ts: datetime | None = None, *, line: bytes | None = None
                 ) -> list[CanonicalEvent]:
    """The canonical events a frame means. CFG frames mean none. Raises DecodeError only
    (a canonical event that refuses the frame's values is the frame's fault)."""
    try:
        return _to_canonical(frame, ts, line)
    except ValidationError as exc:
        raise DecodeError(f"cannot convert: {exc.errors()[0]['msg']}", payload=line) from exc


def _to_canonical(frame: Frame, ts: datetime | None, line: bytes | None
                  ) -> list[CanonicalEvent]:
    fields = frame.as_dict()
    if frame.type is FrameType.CONFIG:
        return []
    if frame.type is FrameType.STATE:
        data: dict[str, object] = {}
        for k, v in fields.items():
            data[k] = _number(k, v, line) if k in {"battery", "rssi"} else v
        if "type" in fields:
            try:
                device_type(fields["type"])
            except UnknownDeviceError as exc:
                raise DecodeError(str(exc), payload=line) from exc
        offline = fields.get("reason") == "will" or fields.get("online") == "0"
        kind = EventKind.DEVICE_OFFLINE if offline else EventKind.HEARTBEAT
        return [CanonicalEvent(device_id=frame.device_id, kind=kind, ts=ts, seq=frame.seq,
                               data=data, source="serial")]
    try:
        kind = EventKind(fields.get("kind", ""))
    except ValueError as exc:
        raise DecodeError(f"unknown or missing kind {fields.get('kind')!r}", payload=line) from exc
    test = fields.get("test") in {"1", "true"}
    if frame.type is FrameType.TELEMETRY:
        values = {k: _number(k, v, line) for k, v in fields.items() if k not in _RESERVED}
        if not values:
            raise DecodeError("telemetry frame without values", payload=line)
        return [CanonicalEvent(device_id=frame.device_id, kind=kind, ts=ts, seq=frame.seq,
                               data=dict(values), source="serial")]
    extra = {k: v for k, v in fields.items() if k not in _RESERVED}
    return [CanonicalEvent(device_id=frame.device_id, kind=kind, ts=ts, seq=frame.seq,
                           test=test, data=extra, source="serial")]


def decode_canonical(line: bytes, ts: datetime | None = None) -> list[CanonicalEvent]:
    return to_canonical(decode(line), ts, line=line)
