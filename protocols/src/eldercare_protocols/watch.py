"""The common "3G" watch protocol of GPS wristbands and SOS watches (SeTracker-style).

These watches connect over the mobile network straight to a server by TCP and speak
ASCII frames::

    [SG*8800000015*0009*LK,0,0,87]
     |  |          |    `- content: TYPE[,field,...]
     |  |          `- content length in bytes, 4 hex digits
     |  `- the watch's id (usually 10 digits, printed on it and registered as its device id)
     `- vendor: 3G, SG, CS (and a few others); the reply uses the same vendor

* ``LK[,steps,tumbles,battery]``: link / heartbeat; the server answers ``LK``.
* ``UD`` / ``UD2`` / ``UD_LTE``: a position report (no answer).
* ``AL``: an alarm with a position; the server answers ``AL`` (the watch repeats it until
  then). The status word's high bits say which alarm: 16 SOS, 17 low battery, 18 left the
  fence, 19 entered the fence, 20 strap removed, 21 fall.

Position fields (after the type): date ``ddMMyy``, time ``HHmmss`` (UTC), ``A``/``V``
(valid fix or not), latitude, ``N``/``S``, longitude, ``E``/``W``, speed, course, altitude,
satellites, GSM signal, battery %, steps, tumbles, status (hex), then cell and Wi-Fi data.

Everything here is pure: :class:`FrameReader` turns a byte stream into frames (raising
:class:`DecodeError` on anything malformed, truncated or oversized), :func:`to_canonical`
turns a frame into canonical events, :func:`reply` gives the frame the watch expects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from eldercare_protocols.errors import DecodeError
from eldercare_protocols.events import CanonicalEvent, EventKind

VENDORS = frozenset({"3G", "SG", "CS", "ZJ", "HM", "DW", "YS"})
#: content longer than this is refused (real frames are under 1 KiB; photos are not taken)
MAX_CONTENT = 2048
MAX_FRAME = MAX_CONTENT + 32
WATCH_ID_RE = re.compile(r"^[0-9]{6,20}$")
#: the frames that carry a position
POSITION_TYPES = frozenset({"UD", "UD2", "UD_LTE", "UD_WCDMA", "AL", "AL_LTE"})
ALARM_TYPES = frozenset({"AL", "AL_LTE"})
#: the alarm bits of the status word
ALARM_BITS: tuple[tuple[int, EventKind], ...] = (
    (16, EventKind.SOS),
    (17, EventKind.BATTERY_LOW),
    (18, EventKind.GEOFENCE_EXIT),
    (19, EventKind.GEOFENCE_ENTER),
    (20, EventKind.STRAP_REMOVED),
    (21, EventKind.FALL),
)


@dataclass(frozen=True)
class Frame:
    vendor: str
    watch_id: str
    type: str
    fields: tuple[str, ...] = ()

    @property
    def content(self) -> str:
        return ",".join((self.type, *self.fields))


@dataclass(frozen=True)
class Position:
    ts: datetime
    valid: bool
    lat: float
    lon: float
    speed_kmh: float | None = None
    battery: float | None = None
    status: int = 0


def encode(vendor: str, watch_id: str, content: str) -> bytes:
    body = content.encode("ascii")
    return b"[%s*%s*%04X*%s]" % (vendor.encode(), watch_id.encode(), len(body), body)


def encode_frame(frame: Frame) -> bytes:
    return encode(frame.vendor, frame.watch_id, frame.content)


def parse_frame(raw: bytes) -> Frame:
    """One complete frame ``[...]``; raises DecodeError for anything else."""
    if len(raw) > MAX_FRAME:
        raise DecodeError(f"frame of {len(raw)} bytes exceeds {MAX_FRAME}", payload=raw[:200])
    if not (raw.startswith(b"[") and raw.endswith(b"]")):
        raise DecodeError("a frame starts with [ and ends with ]", payload=raw)
    try:
        text = raw[1:-1].decode("ascii")
    except UnicodeDecodeError as exc:
        raise DecodeError("frame is not ASCII", payload=raw) from exc
    parts = text.split("*", 3)
    if len(parts) != 4:
        raise DecodeError("expected VENDOR*ID*LEN*CONTENT", payload=raw)
    vendor, watch_id, length, content = parts
    if vendor not in VENDORS:
        raise DecodeError(f"unknown vendor {vendor!r}", payload=raw)
    if not WATCH_ID_RE.match(watch_id):
        raise DecodeError(f"bad watch id {watch_id!r}", payload=raw)
    if not re.fullmatch(r"[0-9A-Fa-f]{4}", length):
        raise DecodeError(f"bad length {length!r}", payload=raw)
    if int(length, 16) != len(content):
        raise DecodeError(f"length says {int(length, 16)} bytes, content has {len(content)}",
                          payload=raw)
    kind, _, rest = content.partition(",")
    if not re.fullmatch(r"[A-Z][A-Z0-9_]{0,15}", kind):
        raise DecodeError(f"bad frame type {kind!r}", payload=raw)
    return Frame(vendor, watch_id, kind, tuple(rest.split(",")) if rest else ())


@dataclass
class FrameReader:
    """Splits a TCP byte stream into frames. A byte outside a frame, a frame that is not
    closed within MAX_FRAME bytes, or a malformed frame raises DecodeError: the caller
    counts it and closes the connection (a stream that lost sync cannot be trusted)."""

    _buf: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        out: list[Frame] = []
        while self._buf:
            first = bytes(self._buf[0:1])
            if first != b"[":
                if first in (b"\r", b"\n"):
                    del self._buf[0]
                    continue
                raise DecodeError("bytes outside a frame", payload=bytes(self._buf[:120]))
            end = self._buf.find(b"]")
            if end < 0:
                if len(self._buf) > MAX_FRAME:
                    raise DecodeError(f"no frame end within {MAX_FRAME} bytes",
                                      payload=bytes(self._buf[:120]))
                break
            raw = bytes(self._buf[:end + 1])
            del self._buf[:end + 1]
            out.append(parse_frame(raw))
        return out

    @property
    def pending(self) -> int:
        return len(self._buf)


def _float(value: str, what: str, frame: Frame) -> float:
    try:
        out = float(value)
    except ValueError as exc:
        raise DecodeError(f"{what} {value!r} is not a number",
                          payload=encode_frame(frame)) from exc
    if out != out or out in (float("inf"), float("-inf")):
        raise DecodeError(f"{what} {value!r} is not a number", payload=encode_frame(frame))
    return out


def position(frame: Frame) -> Position:
    """The position of a UD/UD2/AL frame."""
    f = frame.fields
    if len(f) < 7:
        raise DecodeError(f"{frame.type} needs at least 7 position fields, got {len(f)}",
                          payload=encode_frame(frame))
    try:
        ts = datetime.strptime(f[0] + f[1], "%d%m%y%H%M%S").replace(tzinfo=UTC)
    except ValueError as exc:
        raise DecodeError(f"bad date/time {f[0]!r} {f[1]!r}", payload=encode_frame(frame)) \
            from exc
    if f[2] not in ("A", "V") or f[4] not in ("N", "S") or f[6] not in ("E", "W"):
        raise DecodeError("bad fix flag or hemisphere", payload=encode_frame(frame))
    lat = _float(f[3], "latitude", frame) * (1 if f[4] == "N" else -1)
    lon = _float(f[5], "longitude", frame) * (1 if f[6] == "E" else -1)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise DecodeError(f"position {lat},{lon} out of range", payload=encode_frame(frame))
    speed = _float(f[7], "speed", frame) if len(f) > 7 and f[7] else None
    battery = _float(f[12], "battery", frame) if len(f) > 12 and f[12] else None
    if battery is not None and not 0 <= battery <= 100:
        raise DecodeError(f"battery {battery} out of 0..100", payload=encode_frame(frame))
    status = 0
    if len(f) > 15 and f[15]:
        if not re.fullmatch(r"[0-9A-Fa-f]{1,8}", f[15]):
            raise DecodeError(f"bad status word {f[15]!r}", payload=encode_frame(frame))
        status = int(f[15], 16)
    return Position(ts, f[2] == "A", lat, lon, speed, battery, status)


def link_battery(frame: Frame) -> float | None:
    """The battery of an ``LK,steps,tumbles,battery`` heartbeat (None when absent)."""
    if len(frame.fields) >= 3 and frame.fields[2]:
        value = _float(frame.fields[2], "battery", frame)
        if not 0 <= value <= 100:
            raise DecodeError(f"battery {value} out of 0..100", payload=encode_frame(frame))
        return value
    return None


def to_canonical(frame: Frame, device_id: str, last: Position | None = None
                 ) -> list[CanonicalEvent]:
    """The canonical events a frame means. An alarm without a valid fix carries the last
    known position (``position: "last_known"``) so a responder still has somewhere to go."""
    def ev(kind: EventKind, ts: datetime | None, data: dict[str, Any]) -> CanonicalEvent:
        return CanonicalEvent(device_id=device_id, kind=kind, ts=ts, data=data, source="watch")

    if frame.type == "LK":
        battery = link_battery(frame)
        return [ev(EventKind.HEARTBEAT, None, {"battery": battery} if battery is not None
                   else {})]
    if frame.type not in POSITION_TYPES:
        return []
    pos = position(frame)
    where: dict[str, Any] = {}
    if pos.valid:
        where = {"lat": pos.lat, "lon": pos.lon, "position": "fix"}
    elif last is not None:
        where = {"lat": last.lat, "lon": last.lon, "position": "last_known",
                 "position_ts": last.ts.isoformat()}
    out: list[CanonicalEvent] = []
    if frame.type in ALARM_TYPES:
        for bit, kind in ALARM_BITS:
            if pos.status >> bit & 1:
                data = dict(where)
                if kind is EventKind.BATTERY_LOW and pos.battery is not None:
                    data["battery"] = pos.battery
                out.append(ev(kind, pos.ts, data))
    if pos.valid:
        out.append(ev(EventKind.LOCATION, pos.ts, {"lat": pos.lat, "lon": pos.lon}))
    return out


def reply(frame: Frame) -> bytes | None:
    """The frame the watch expects back, if any (LK and AL are acknowledged by type)."""
    if frame.type == "LK" or frame.type in ALARM_TYPES:
        return encode(frame.vendor, frame.watch_id, frame.type)
    return None
