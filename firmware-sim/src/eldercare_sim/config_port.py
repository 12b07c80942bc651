"""A device in configuration mode on a pseudo-terminal (what an installer's cable reaches).

Real call buttons and detectors enter a configuration mode when a service cable is
plugged in; the installer's tool then writes the device id, the home broker and its
credentials and the heartbeat interval with ``CFG`` frames (see
``eldercare_protocols.serial_config``), reads them back and commits. This simulator
keeps the settings in memory and, when given a state file, on disk (written
atomically at commit, so a device "keeps its settings" across simulator restarts).

Faults on cue for tests: ``corrupt_replies`` (answers with a wrong checksum),
``corrupt_reply_to`` (only the answers to these ops), ``silent`` (a device that does
not answer at all). Every received line is kept in ``received`` so a test can show
what reached the device.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from eldercare_protocols import serial_frame
from eldercare_protocols.errors import DecodeError
from eldercare_protocols.serial_config import (
    UNSET_DEVICE,
    DeviceSettings,
    Op,
    answer,
    op_of,
    settings_from_fields,
)
from eldercare_protocols.serial_frame import Frame
from eldercare_sim.pty import PtyDevice

log = logging.getLogger(__name__)


def _corrupt(line: bytes) -> bytes:
    """Flip one checksum digit: still a well-formed line, now with a wrong CRC."""
    star = line.rindex(b"*")
    digit = line[star + 1:star + 2]
    flipped = b"0" if digit != b"0" else b"1"
    return line[:star + 1] + flipped + line[star + 2:]


class SimConfigPort(PtyDevice):
    """The pty, its reader thread and the start/stop life cycle come from ``PtyDevice``
    (as for the modem and the dongle); this class is the device's configuration mode."""

    name = "sim-config-port"

    def __init__(self, *, settings: DeviceSettings | None = None,
                 state_file: Path | None = None) -> None:
        super().__init__()
        self.state_file = Path(state_file) if state_file is not None else None
        loaded = self._load() if settings is None else None
        self._settings: DeviceSettings | None = settings or loaded
        self._staged: DeviceSettings | None = None
        self.corrupt_replies = False
        self.corrupt_reply_to: set[Op] = set()
        self.silent = False
        self.received: list[bytes] = []
        self.errors = 0
        self._lock = threading.Lock()
        self._buf = bytearray()

    # ------------------------------------------------------------------ control from tests

    @property
    def settings(self) -> DeviceSettings | None:
        with self._lock:
            return self._settings

    @property
    def device_id(self) -> str:
        current = self.settings
        return current.device_id if current is not None else UNSET_DEVICE

    # ------------------------------------------------------------------ persistence

    def _load(self) -> DeviceSettings | None:
        if self.state_file is None or not self.state_file.exists():
            return None
        try:
            return DeviceSettings.model_validate_json(self.state_file.read_text())
        except ValueError as exc:
            log.warning("config state %s is unreadable, starting unset: %s", self.state_file,
                        exc)
            return None

    def _save(self, settings: DeviceSettings) -> None:
        if self.state_file is None:
            return
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(settings.model_dump_json())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.state_file)

    # ------------------------------------------------------------------ the device

    def on_bytes(self, data: bytes) -> None:
        for byte in data:
            if byte == 0x0A:  # LF ends a frame (CR LF on the wire)
                line = bytes(self._buf)
                self._buf.clear()
                if line.strip():
                    self._line(line)
            elif len(self._buf) < 1024:  # a runaway line is cut, then fails to decode
                self._buf.append(byte)

    def _reply(self, frame: Frame, to: Op | None = None) -> None:
        if self.silent:
            return
        line = serial_frame.encode(frame)
        if self.corrupt_replies or (to is not None and to in self.corrupt_reply_to):
            line = _corrupt(line)
        self.write(line)  # nothing when the port is closed

    def _err(self, seq: int, reason: str) -> None:
        self.errors += 1
        self._reply(answer(self.device_id, seq, Op.ERR, (("reason", reason[:120]),)))

    def _line(self, line: bytes) -> None:
        self.received.append(line)
        try:
            frame = serial_frame.decode(line)
            op = op_of(frame)
        except DecodeError as exc:
            log.warning("config port: bad frame %r: %s", line[:80], exc)
            with self._lock:
                self._staged = None  # a garbled exchange never leads to a commit
            reason = "checksum" if "checksum" in str(exc) else "malformed"
            self._err(0, reason)
            return
        if op is Op.GET:
            with self._lock:
                self._staged = None
                current = self._settings
            self._reply(self._cfg(frame.seq, current, "active"), op)
        elif op is Op.SET:
            try:
                staged = settings_from_fields(frame.as_dict())
            except DecodeError as exc:
                with self._lock:
                    self._staged = None
                self._err(frame.seq, str(exc))
                return
            with self._lock:
                self._staged = staged
            self._reply(self._cfg(frame.seq, staged, "staged"), op)
        elif op is Op.COMMIT:
            with self._lock:
                pending, self._staged = self._staged, None
            if pending is None:
                self._err(frame.seq, "nothing staged")
                return
            self._save(pending)
            with self._lock:
                self._settings = pending
            self._reply(answer(self.device_id, frame.seq, Op.OK), op)
        elif op is Op.ABORT:
            with self._lock:
                self._staged = None
            self._reply(answer(self.device_id, frame.seq, Op.OK))
        else:
            self._err(frame.seq, f"op {op.value} is an answer, not a request")

    def _cfg(self, seq: int, settings: DeviceSettings | None, state: str) -> Frame:
        values = settings.readback() if settings is not None else {}
        return answer(self.device_id, seq, Op.CFG,
                      (("state", state), *values.items()))


def describe(settings: DeviceSettings | None) -> str:
    """One line for the console (no password)."""
    if settings is None:
        return "unset"
    return json.dumps(settings.model_dump(exclude={"password"}), ensure_ascii=False)


def config_port_command(
    state: Annotated[Path | None, typer.Option(
        help="keep the device's settings in this JSON file across runs")] = None,
) -> None:
    """Serve a device in configuration mode on a pseudo-terminal; prints its path first,
    runs until SIGTERM/SIGINT. Mounted as ``eldercare-sim config-port``."""
    stop = threading.Event()

    def handler(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    with SimConfigPort(state_file=state) as port:
        print(port.port, flush=True)
        stop.wait()
