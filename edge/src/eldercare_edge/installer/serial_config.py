"""Write a device's settings over a serial cable, read them back, verify, then commit.

The device only stages what ``set`` sends and reads it back; the tool compares the
read-back with what it meant to write and sends ``commit`` only when they match, so
a corrupt frame, a device that does not answer or a value the device refuses leaves
the device as it was (see ``eldercare_protocols.serial_config``). After the commit a
final ``get`` confirms the device now runs the new settings.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass

import serial

from eldercare_edge.installer.errors import DeviceConfigError
from eldercare_protocols import serial_frame
from eldercare_protocols.errors import DecodeError
from eldercare_protocols.serial_config import DeviceSettings, Op, op_of, request
from eldercare_protocols.serial_frame import Frame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConfigResult:
    previous: dict[str, str]
    written: dict[str, str]


class ConfigLink:
    """One request, one answer, over an open pyserial port."""

    def __init__(self, port: serial.Serial, timeout_s: float) -> None:
        self.port = port
        self.timeout_s = timeout_s
        self._seq = int(time.time()) % 100000  # a fresh seq per session: stale answers differ

    def exchange(self, op: Op, fields: tuple[tuple[str, str], ...] = ()) -> Frame:
        self._seq += 1
        seq = self._seq
        try:
            line = serial_frame.encode(request(op, seq, fields))
        except ValueError as exc:
            raise DeviceConfigError(f"settings do not fit in one serial frame: {exc}") from exc
        self.port.reset_input_buffer()
        self.port.write(line)
        self.port.flush()
        deadline = time.monotonic() + self.timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeviceConfigError(f"the device did not answer '{op.value}' within "
                                        f"{self.timeout_s:g}s (is it in configuration mode?)")
            self.port.timeout = remaining
            raw = self.port.readline()
            if not raw:
                continue
            if not raw.endswith(b"\n"):
                continue  # the timeout cut a line: the deadline check above decides
            try:
                answer = serial_frame.decode(raw)
                ans_op = op_of(answer)
            except DecodeError as exc:
                raise DeviceConfigError(f"corrupt answer from the device to '{op.value}': "
                                        f"{exc}") from exc
            if ans_op is Op.ERR and answer.seq in (seq, 0):
                raise DeviceConfigError(f"the device refused '{op.value}': "
                                        f"{answer.get('reason', 'no reason given')}")
            if answer.seq != seq:
                log.debug("skipping a stale answer %r", raw)
                continue
            return answer


def _readback(frame: Frame) -> dict[str, str]:
    return {k: v for k, v in frame.fields if k not in {"op", "state"}}


def _expect(frame: Frame, op: Op, what: str) -> Frame:
    got = op_of(frame)
    if got is not op:
        raise DeviceConfigError(f"unexpected answer to {what}: op={got.value}")
    return frame


def configure(link: ConfigLink, settings: DeviceSettings) -> ConfigResult:
    previous = _readback(_expect(link.exchange(Op.GET), Op.CFG, "get"))
    wanted = settings.readback()
    committed = False
    try:
        staged = _readback(_expect(link.exchange(Op.SET, settings.to_fields()), Op.CFG,
                                   "set"))
        if staged != wanted:
            diff = ", ".join(sorted(k for k in wanted if staged.get(k) != wanted[k]))
            raise DeviceConfigError(f"the device read back different settings ({diff}); "
                                    "nothing was committed")
        _expect(link.exchange(Op.COMMIT), Op.OK, "commit")
        committed = True
    finally:
        if not committed:
            # any request discards what is staged; abort says so explicitly
            with contextlib.suppress(DeviceConfigError):
                link.exchange(Op.ABORT)
    active = _readback(_expect(link.exchange(Op.GET), Op.CFG, "get"))
    if active != wanted:
        raise DeviceConfigError("the device committed but reads back different settings; "
                                "run configure-device again")
    return ConfigResult(previous, active)


def configure_device(port: str, settings: DeviceSettings, *, baud: int = 115200,
                     timeout_s: float = 3.0) -> ConfigResult:
    """Open ``port``, write ``settings``, verify; DeviceConfigError with one clear line."""
    try:
        ser = serial.Serial(port, baud, timeout=timeout_s, write_timeout=timeout_s)
    except (serial.SerialException, OSError) as exc:
        raise DeviceConfigError(f"cannot open serial port {port}: {exc}") from exc
    with ser:
        try:
            return configure(ConfigLink(ser, timeout_s), settings)
        except serial.SerialException as exc:
            raise DeviceConfigError(f"serial port {port} failed: {exc}") from exc
