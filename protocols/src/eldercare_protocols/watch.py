"""The common "3G" watch protocol of GPS wristbands and SOS watches (SeTracker-style).

These watches connect over the mobile network straight to a server by TCP and speak
ASCII frames::

    [SG*8800000015*0009*LK,0,0,87]
     |  |          |    `- content: TYPE[,field,...]
     |  |          `- content length in bytes, 4 hex digits (ZJ puts a 4-hex-digit
     |  |             frame index before it; real watches often get the length wrong)
     |  `- the watch's id (usually 10 digits, printed on it and registered as its device id)
     `- vendor: 3G, SG, CS (and a few others); the reply uses the same vendor

* ``LK[,steps,tumbles,battery]``: link / heartbeat; the server answers ``LK``.
* ``UD`` / ``UD2`` / ``UD3`` / ``UD_LTE`` / ``UD_WCDMA`` / ``WT``: a position report (no
  answer).
* ``AL`` (and ``AL_LTE``, ``ALCUSTOMER1``, ...): an alarm with a position; the server
  answers ``AL`` (the watch repeats it until then).
* ``heart`` / ``PULSE`` / ``bphrt`` / ``BLOOD`` / ``btemp2``: vital signs (acknowledged by
  type); ``TKQ``: a time query (acknowledged, nothing stored).

An alarm's status word says which alarm in its high bits: 16 SOS, 17 low battery, 18 left
the fence, 19 entered the fence, 20 strap removed, 21 fall.

Position fields (after the type): date ``ddMMyy``, time ``HHmmss`` (UTC), ``A``/``V``
(valid fix or not), latitude, ``N``/``S`` (or empty; a ``-`` sign is kept), longitude,
``E``/``W``, speed, course, altitude, satellites, GSM signal, battery %, steps, tumbles,
status (hex), then cell and Wi-Fi data.

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
MAX_FRAME = MAX_CONTENT + 48
WATCH_ID_RE = re.compile(r"^[0-9]{6,20}$")
#: ``VENDOR*ID*[INDEX*]LEN*CONTENT``: the ZJ variant numbers its frames with a 4-hex-digit
#: index before the length, and expects it back in the reply
_FRAME_RE = re.compile(r"([0-9A-Z]{2})\*([^*]*)\*(?:([0-9A-Fa-f]{4})\*)?([^*,]*)\*(.*)",
                       re.DOTALL)
_TYPE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,15}")
#: the alarm types answered with ``AL``: AL, AL_LTE, ALCUSTOMER1, ...
ALARM_PREFIX = "AL"
#: the vital-sign frames: (type, the attribute of each field); no alarm, acknowledged
VITALS_FIELDS: dict[str, tuple[str, ...]] = {
    "heart": ("heart_rate",),
    "PULSE": ("heart_rate",),
    "bphrt": ("systolic", "diastolic", "heart_rate"),
    "BLOOD": ("systolic", "diastolic"),
    "btemp2": ("temperature_mode", "temperature"),
}
#: frames acknowledged with their own type and otherwise ignored (TKQ: "time query")
ACK_ONLY_TYPES = frozenset({"TKQ", "TKQ2"})
#: the alarm bits of the status word (bits 0-15 are states, not alarms: a low battery
#: state, inside/outside a fence, worn or not; they repeat in every frame)
ALARM_BITS: tuple[tuple[int, EventKind], ...] = (
    (16, EventKind.SOS),
    (17, EventKind.BATTERY_LOW),
    (18, EventKind.GEOFENCE_EXIT),
    (19, EventKind.GEOFENCE_ENTER),
    (20, EventKind.STRAP_REMOVED),
    (21, EventKind.FALL),
)


def is_position_type(kind: str) -> bool:
    """The frames that carry a position, as Traccar reads them: UD, UD2, UD3, UD_LTE,
    UD_WCDMA, WT, and every alarm type (AL, AL_LTE, ALCUSTOMER1, ...)."""
    return (kind in ("UD", "UD2", "UD3", "WT") or kind.startswith("UD_")
            or is_alarm_type(kind))


def is_alarm_type(kind: str) -> bool:
    return kind.startswith(ALARM_PREFIX)


@dataclass(frozen=True)
class Frame:
    vendor: str
    watch_id: str
    type: str
    fields: tuple[str, ...] = ()
    #: the ZJ variant's frame index (4 hex digits), echoed in the reply
    index: str | None = None
    #: the length the watch declared (None: it matched the content). Real watches get it
    #: wrong (the frames Traccar tests with declare 1 byte for 8, or 16 too many), and
    #: Traccar ends a frame at its ``]``, so a mismatch is tolerated and counted
    declared_length: int | None = None

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


def encode(vendor: str, watch_id: str, content: str, index: str | None = None) -> bytes:
    body = content.encode("ascii")
    idx = b"%s*" % index.encode() if index is not None else b""
    return b"[%s*%s*%s%04X*%s]" % (vendor.encode(), watch_id.encode(), idx, len(body), body)


def encode_frame(frame: Frame) -> bytes:
    return encode(frame.vendor, frame.watch_id, frame.content, frame.index)


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
    m = _FRAME_RE.fullmatch(text)
    if m is None:
        raise DecodeError("expected VENDOR*ID*LEN*CONTENT", payload=raw)
    vendor, watch_id, index, length, content = m.groups()
    if vendor not in VENDORS:
        raise DecodeError(f"unknown vendor {vendor!r}", payload=raw)
    if not WATCH_ID_RE.match(watch_id):
        raise DecodeError(f"bad watch id {watch_id!r}", payload=raw)
    if not re.fullmatch(r"[0-9A-Fa-f]{4}", length):
        raise DecodeError(f"bad length {length!r}", payload=raw)
    if len(content) > MAX_CONTENT:
        raise DecodeError(f"content of {len(content)} bytes exceeds {MAX_CONTENT}",
                          payload=raw[:200])
    declared = int(length, 16)
    kind, _, rest = content.partition(",")
    if not _TYPE_RE.fullmatch(kind):
        raise DecodeError(f"bad frame type {kind!r}", payload=raw)
    return Frame(vendor, watch_id, kind, tuple(rest.split(",")) if rest else (), index,
                 None if declared == len(content) else declared)


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


def _coordinate(value: str, hemisphere: str, negative: str, what: str, frame: Frame) -> float:
    """As Traccar reads them: a signed number; an ``S``/``W`` hemisphere makes it negative
    whatever its sign, ``N``/``E`` or nothing leaves the sign the watch wrote."""
    out = _float(value, what, frame)
    return -abs(out) if hemisphere == negative else out


def position(frame: Frame) -> Position:
    """The position of a UD/UD2/UD_LTE/WT/AL frame."""
    f = frame.fields
    if len(f) < 7:
        raise DecodeError(f"{frame.type} needs at least 7 position fields, got {len(f)}",
                          payload=encode_frame(frame))
    try:
        ts = datetime.strptime(f[0] + f[1], "%d%m%y%H%M%S").replace(tzinfo=UTC)
    except ValueError as exc:
        raise DecodeError(f"bad date/time {f[0]!r} {f[1]!r}", payload=encode_frame(frame)) \
            from exc
    if f[2] not in ("A", "V") or f[4] not in ("N", "S", "") or f[6] not in ("E", "W", ""):
        raise DecodeError("bad fix flag or hemisphere", payload=encode_frame(frame))
    lat = _coordinate(f[3], f[4], "S", "latitude", frame)
    lon = _coordinate(f[5], f[6], "W", "longitude", frame)
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


def vitals(frame: Frame) -> dict[str, float]:
    """The readings of a heart / PULSE / bphrt / BLOOD / btemp2 frame; empty fields (and
    the 0 a watch sends when it measured nothing) are left out."""
    names = VITALS_FIELDS.get(frame.type, ())
    out: dict[str, float] = {}
    for name, value in zip(names, frame.fields, strict=False):
        if value.strip():
            number = _float(value, name, frame)
            if number != 0 or name == "temperature_mode":
                out[name] = number
    out.pop("temperature_mode", None)
    return out


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
    known fix (``position: "last_known"``) so a responder still has somewhere to go, or
    failing that the coordinates the watch wrote (``position: "no_fix"``) if not 0,0."""
    def ev(kind: EventKind, ts: datetime | None, data: dict[str, Any]) -> CanonicalEvent:
        return CanonicalEvent(device_id=device_id, kind=kind, ts=ts, data=data, source="watch")

    if frame.type == "LK":
        battery = link_battery(frame)
        return [ev(EventKind.HEARTBEAT, None, {"battery": battery} if battery is not None
                   else {})]
    if frame.type in VITALS_FIELDS:
        readings = vitals(frame)
        return [ev(EventKind.VITALS, None, dict(readings))] if readings else []
    if not is_position_type(frame.type):
        return []
    pos = position(frame)
    where: dict[str, Any] = {}
    if pos.valid:
        where = {"lat": pos.lat, "lon": pos.lon, "position": "fix"}
    elif last is not None:
        where = {"lat": last.lat, "lon": last.lon, "position": "last_known",
                 "position_ts": last.ts.isoformat()}
    elif (pos.lat, pos.lon) != (0.0, 0.0):
        where = {"lat": pos.lat, "lon": pos.lon, "position": "no_fix"}
    out: list[CanonicalEvent] = []
    if is_alarm_type(frame.type):
        for bit, kind in ALARM_BITS:
            if pos.status >> bit & 1:
                data = dict(where)
                if kind is EventKind.BATTERY_LOW and pos.battery is not None:
                    data["battery"] = pos.battery
                out.append(ev(kind, pos.ts, data))
    if pos.valid:
        out.append(ev(EventKind.LOCATION, pos.ts, {"lat": pos.lat, "lon": pos.lon}))
    return out


def alarm_key(frame: Frame) -> str | None:
    """What makes an alarm frame the same alarm when the watch resends it (it repeats an
    AL until it hears the reply): the watch, the frame's own date and time and its status
    word. None for frames that are not alarms."""
    if not is_alarm_type(frame.type) or len(frame.fields) < 2:
        return None
    status = frame.fields[15].upper().zfill(8) if len(frame.fields) > 15 else "0"
    return f"{frame.watch_id}-{frame.fields[0]}{frame.fields[1]}-{status}"


def reply(frame: Frame) -> bytes | None:
    """The frame the watch expects back, if any: LK, every alarm type (answered ``AL``),
    TKQ, and the vital-sign frames are acknowledged by type; positions are not."""
    if is_alarm_type(frame.type):
        return encode(frame.vendor, frame.watch_id, ALARM_PREFIX, frame.index)
    if frame.type == "LK" or frame.type in ACK_ONLY_TYPES or frame.type in VITALS_FIELDS:
        return encode(frame.vendor, frame.watch_id, frame.type, frame.index)
    return None
