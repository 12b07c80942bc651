"""An RF-receiver dongle on a pseudo-terminal, writing the protocols serial frames.

The gateway opens :attr:`SimDongle.port` with pyserial as if it were
/dev/ttyUSB0 and reads one frame per line. Frames for the devices bound to the
dongle are built with :mod:`eldercare_protocols.serial_frame`; corrupt ones
(bad checksum, truncated, oversized, garbage) come on cue. CFG frames written
by the gateway or the installer's tool are recorded and answered with a CFG
frame ``op=ack`` carrying the same sequence number.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterable
from typing import Any

from eldercare_protocols import serial_frame
from eldercare_protocols.catalogue import device_type
from eldercare_protocols.errors import DecodeError
from eldercare_protocols.events import EventKind
from eldercare_protocols.serial_frame import Frame, FrameType
from eldercare_sim.errors import SimError
from eldercare_sim.pty import PtyDevice
from eldercare_sim.render import frame_fields

log = logging.getLogger(__name__)

CORRUPTIONS = ("bad_checksum", "truncated", "oversized", "garbage", "no_start", "bad_field")


class SimDongle(PtyDevice):
    name = "dongle"

    def __init__(self, devices: dict[str, str], *, seed: int = 0,
                 heartbeat_s: float | None = None, events_s: float | None = None) -> None:
        super().__init__()
        for dev_id, type_name in devices.items():
            device_type(type_name)  # UnknownDeviceError for a type not in the catalogue
            try:
                serial_frame.encode(Frame(FrameType.STATE, dev_id, 0, ()))
            except ValueError as exc:
                raise SimError(f"device id {dev_id!r} cannot travel in a serial frame") from exc
        self.devices = dict(devices)
        self.heartbeat_s = heartbeat_s
        self.events_s = events_s
        self.rng = random.Random(seed)
        self.written: list[bytes] = []
        self.received: list[Frame] = []
        self.bad_input = 0
        self._seq: dict[str, int] = dict.fromkeys(devices, 0)
        self._corrupt_n = 0
        self._lock = threading.Lock()
        self._rx = b""
        self._door_open: dict[str, bool] = {}

    def start(self) -> None:
        super().start()
        if self.heartbeat_s or self.events_s:
            self.spawn(self._chatter, "sim-dongle-tx")

    # ------------------------------------------------------------------ frames

    def _next_seq(self, device_id: str) -> int:
        with self._lock:
            self._seq[device_id] = self._seq.get(device_id, 0) + 1
            return self._seq[device_id]

    def _type(self, device_id: str) -> str:
        try:
            return self.devices[device_id]
        except KeyError:
            raise KeyError(f"device {device_id!r} is not bound to this dongle") from None

    def send_raw(self, data: bytes) -> bool:
        if self._pty is None:
            raise RuntimeError("the dongle is not running")
        with self._lock:
            self.written.append(data)
            return self.write(data)

    def write_line(self, line: bytes) -> None:
        """A frame rendered elsewhere (a simulated device bound to this dongle)."""
        self.send_raw(line)

    def corrupt(self, n: int) -> None:
        self.send_corrupt(n)

    def send_frame(self, frame: Frame) -> bytes:
        line = serial_frame.encode(frame)
        self.send_raw(line)
        return line

    def send_event(self, device_id: str, kind: str, test: bool = False, **data: Any) -> bytes:
        dtype = device_type(self._type(device_id))
        ekind = EventKind(kind)
        if ekind not in dtype.events:
            raise ValueError(f"a {dtype.name} does not emit {kind!r}")
        fields = frame_fields(kind=ekind.value, test=True if test else None, **data)
        return self.send_frame(Frame(FrameType.EVENT, device_id, self._next_seq(device_id),
                                     fields))

    def send_telemetry(self, device_id: str, kind: str, **values: float) -> bytes:
        dtype = device_type(self._type(device_id))
        ekind = EventKind(kind)
        if ekind not in dtype.telemetry_kinds:
            raise ValueError(f"a {dtype.name} does not report {kind!r}")
        fields = frame_fields(kind=ekind.value, **values)
        return self.send_frame(Frame(FrameType.TELEMETRY, device_id,
                                     self._next_seq(device_id), fields))

    def send_state(self, device_id: str, reason: str = "heartbeat", battery: float | None = None,
                   rssi: int | None = None) -> bytes:
        type_name = self._type(device_id)
        if rssi is None:
            rssi = self.rng.randint(-85, -45)
        fields = frame_fields(type=type_name, reason=reason, battery=battery, rssi=rssi)
        return self.send_frame(Frame(FrameType.STATE, device_id, self._next_seq(device_id),
                                     fields))

    def send_corrupt(self, n: int = 1) -> list[bytes]:
        """Send ``n`` broken lines, cycling through the ways a radio link breaks frames."""
        out = []
        for _ in range(n):
            kind = CORRUPTIONS[self._corrupt_n % len(CORRUPTIONS)]
            self._corrupt_n += 1
            line = self._corrupt_line(kind)
            self.send_raw(line)
            out.append(line)
        return out

    def _a_good_line(self) -> bytes:
        dev = next(iter(self.devices), "dev-0001")
        seq = self._next_seq(dev)
        return serial_frame.encode(Frame(FrameType.STATE, dev, seq, frame_fields(
            type=self.devices.get(dev, "call_button"), reason="heartbeat", battery=87,
            rssi=-61)))

    def _corrupt_line(self, kind: str) -> bytes:
        good = self._a_good_line().rstrip(b"\r\n")
        if kind == "bad_checksum":
            star = good.rindex(b"*")
            crc = int(good[star + 1:], 16) ^ (1 << self.rng.randrange(16))
            line = good[:star + 1] + f"{crc:04X}".encode()
        elif kind == "truncated":
            line = good[: self.rng.randrange(5, good.rindex(b"*"))]
        elif kind == "oversized":
            line = good + b"X" * (serial_frame.MAX_FRAME + 40)
        elif kind == "garbage":
            line = bytes(self.rng.choice(range(0x80, 0x100)) for _ in range(24))
        elif kind == "no_start":
            line = good[1:]
        else:  # bad_field: a well-framed body with a broken key=value, correct CRC
            body = good[1:good.rindex(b"*")] + b";=oops"
            line = b"$" + body + f"*{serial_frame.crc16_ccitt(body):04X}".encode()
        return line + b"\r\n"

    # ------------------------------------------------------------------ background

    def on_bytes(self, data: bytes) -> None:
        self._rx += data
        while b"\n" in self._rx:
            line, self._rx = self._rx.split(b"\n", 1)
            if line.strip():
                self._on_line(line + b"\n")
        if len(self._rx) > 4096:  # no line end in sight: noise on the line
            self._rx = b""
            self.bad_input += 1

    def _on_line(self, line: bytes) -> None:
        try:
            frame = serial_frame.decode(line)
        except DecodeError as exc:
            self.bad_input += 1
            log.warning("dongle: bad frame from the host: %s", exc)
            return
        self.received.append(frame)
        if frame.type is FrameType.CONFIG and frame.get("op") != "ack":
            fields = (("op", "ack"), *tuple((k, v) for k, v in frame.fields if k != "op"))
            self.send_frame(Frame(FrameType.CONFIG, frame.device_id, frame.seq, fields))

    def _chatter(self) -> None:
        """Periodic heartbeats and plausible events, for the command-line dongle."""
        hb = self.heartbeat_s or 0.0
        ev = self.events_s or 0.0
        next_hb = 0.0
        next_ev = ev * self.rng.uniform(0.5, 1.5) if ev else None
        t = 0.0
        tick = 0.25
        while not self._stop.wait(tick):
            t += tick
            if hb and t >= next_hb:
                next_hb = t + hb
                for dev, type_name in self.devices.items():
                    has_battery = any(c.name == "battery"
                                      for c in device_type(type_name).capabilities)
                    self.send_state(dev, battery=round(self.rng.uniform(60, 100))
                                    if has_battery else None)
            if next_ev is not None and t >= next_ev:
                next_ev = t + ev * self.rng.uniform(0.5, 1.5)
                self._random_event()

    def _random_event(self) -> None:
        dev = self.rng.choice(list(self.devices))
        for kind, data in self._plausible(dev):
            self.send_event(dev, kind.value, **data)

    def _plausible(self, dev: str) -> Iterable[tuple[EventKind, dict[str, Any]]]:
        type_name = self.devices[dev]
        if type_name == "door_contact":
            now_open = not self._door_open.get(dev, False)
            self._door_open[dev] = now_open
            return [(EventKind.DOOR_OPEN if now_open else EventKind.DOOR_CLOSE, {})]
        if type_name == "motion_sensor":
            return [(EventKind.MOTION, {})]
        if type_name == "call_button":
            return [(EventKind.SERVICE_REQUEST, {"button": "green", "press": "single"})]
        if type_name == "bed_sensor":
            return [(self.rng.choice((EventKind.BED_ENTER, EventKind.BED_EXIT)), {})]
        return []
