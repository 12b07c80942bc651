"""The RF dongle on a pseudo-terminal: good frames decode, corrupt ones fail on cue."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import pytest
import serial
from typer.testing import CliRunner

from eldercare_protocols import serial_frame
from eldercare_protocols.errors import DecodeError
from eldercare_protocols.events import EventKind
from eldercare_protocols.serial_frame import Frame, FrameType
from eldercare_sim.cli import app
from eldercare_sim.dongle import CORRUPTIONS, SimDongle

pytestmark = pytest.mark.integration

DEVICES = {"btn-0001": "call_button", "door-0001": "door_contact", "vit-0001": "vitals_monitor"}


def read_lines(ser: serial.Serial, n: int, timeout: float = 3.0) -> list[bytes]:
    lines: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(lines) < n and time.monotonic() < deadline:
        line = ser.readline()
        if line:
            lines.append(line)
    assert len(lines) == n, f"got {len(lines)} of {n} lines: {lines!r}"
    return lines


def test_frames_decode_with_protocols() -> None:
    with SimDongle(DEVICES) as dongle, serial.Serial(dongle.port, 115200, timeout=0.2) as ser:
        dongle.send_event("btn-0001", "sos", button="red", press="single")
        dongle.send_event("door-0001", "door_open")
        dongle.send_event("btn-0001", "sos", test=True, button="red", press="long")
        dongle.send_telemetry("vit-0001", "vitals", heart_rate=72, spo2=97.5)
        dongle.send_state("door-0001", battery=87, rssi=-61)
        lines = read_lines(ser, 5)
    canon = [serial_frame.decode_canonical(line)[0] for line in lines]
    assert [c.kind for c in canon] == [EventKind.SOS, EventKind.DOOR_OPEN, EventKind.SOS,
                                       EventKind.VITALS, EventKind.HEARTBEAT]
    assert canon[0].data == {"button": "red", "press": "single"} and not canon[0].test
    assert canon[2].test
    assert canon[3].data == {"heart_rate": 72.0, "spo2": 97.5}
    assert canon[4].data["battery"] == 87.0
    # sequence numbers are per device and grow
    frames = [serial_frame.decode(line) for line in lines]
    assert [(f.device_id, f.seq) for f in frames if f.device_id == "btn-0001"] == [
        ("btn-0001", 1), ("btn-0001", 2)]
    assert all(c.source == "serial" for c in canon)


def test_corrupt_frames_on_cue_fail_with_decode_error_and_good_ones_still_pass() -> None:
    with SimDongle(DEVICES, seed=1) as dongle, \
            serial.Serial(dongle.port, 115200, timeout=0.2) as ser:
        bad = dongle.send_corrupt(len(CORRUPTIONS) * 2)
        dongle.send_event("door-0001", "door_close")
        lines = read_lines(ser, len(bad) + 1)
    assert lines[:-1] == bad
    for line in lines[:-1]:
        with pytest.raises(DecodeError):
            serial_frame.decode_canonical(line)
    assert serial_frame.decode_canonical(lines[-1])[0].kind is EventKind.DOOR_CLOSE
    # the corruptions vary: checksum, truncation, oversize, garbage, framing, fields
    reasons = set()
    for line in bad:
        try:
            serial_frame.decode(line)
        except DecodeError as exc:
            reasons.add(re.sub(r"[0-9A-F]{4}|\d+|'.*'", "_", exc.reason))
    assert len(reasons) >= 5, reasons


def test_config_frames_from_the_host_are_acknowledged() -> None:
    with SimDongle(DEVICES) as dongle, serial.Serial(dongle.port, 115200, timeout=0.2) as ser:
        cfg = Frame(FrameType.CONFIG, "btn-0001", 7, (("op", "set"), ("heartbeat_s", "120")))
        ser.write(serial_frame.encode(cfg))
        ser.write(b"$EC1,CFG,garbage\r\n")
        (ack_line,) = read_lines(ser, 1)
        ack = serial_frame.decode(ack_line)
        assert ack.type is FrameType.CONFIG and ack.seq == 7 and ack.get("op") == "ack"
        assert ack.get("heartbeat_s") == "120"
        deadline = time.monotonic() + 2
        while dongle.bad_input < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert dongle.received == [cfg] and dongle.bad_input == 1


def test_unknown_devices_and_kinds_are_refused() -> None:
    with pytest.raises(Exception, match="unknown device type"):
        SimDongle({"x-1": "toaster"})
    with SimDongle(DEVICES) as dongle:
        with pytest.raises(KeyError, match="not bound"):
            dongle.send_event("nobody", "sos")
        with pytest.raises(ValueError, match="does not emit"):
            dongle.send_event("door-0001", "sos")


def test_cli_dongle_prints_port_and_chatters() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "eldercare_sim", "dongle", "--devices",
                             "door-1:door_contact,pir-1:motion_sensor", "--heartbeat", "1",
                             "--events", "0.5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        path = proc.stdout.readline().decode().strip()
        with serial.Serial(path, 115200, timeout=0.2) as ser:
            lines = read_lines(ser, 4, timeout=5)
        frames = [serial_frame.decode(line) for line in lines]
        assert {f.device_id for f in frames} <= {"door-1", "pir-1"}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    bad = CliRunner().invoke(app, ["dongle", "--devices", "door-1:toaster"])
    assert bad.exit_code == 2
    assert bad.stderr.strip().startswith("error: --devices: unknown device type 'toaster'")
    assert len(bad.stderr.strip().splitlines()) == 1
