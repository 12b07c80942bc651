"""The installer's debugging command, run as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from eldercare_protocols import serial_frame as sf


def run(*args: str, stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "eldercare_protocols.cli", *args], input=stdin,
                          capture_output=True, timeout=60, check=False)


def test_decode_native() -> None:
    payload = b'{"v":1,"seq":5,"ts":"2026-11-23T03:12:05Z","type":"call_button","kind":"sos"}'
    res = run("decode", "eldercare/h1-btn/event", stdin=payload)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert [(e["kind"], e["device_id"], e["seq"]) for e in out] == [("sos", "h1-btn", 5)]


def test_decode_z2m_door_and_empty_action() -> None:
    res = run("decode", "zigbee2mqtt/front_door", "--model", "TS0203",
              stdin=b'{"contact": true, "tamper": true, "battery": 90}')
    assert [e["kind"] for e in json.loads(res.stdout)] == ["door_close", "tamper"]
    res = run("decode", "zigbee2mqtt/b", "--model", "TS0215A_sos", stdin=b'{"action": ""}')
    assert res.returncode == 0 and json.loads(res.stdout) == []


def test_decode_z2m_by_the_bridge_device_list() -> None:
    """No model typed: the device's exposes come from a saved bridge/devices message."""
    devices = Path(__file__).parent / "fixtures" / "z2m_bridge_devices.json"
    res = run("decode", "zigbee2mqtt/living_fall", "--devices", str(devices),
              stdin=b'{"fall_status": "fall_alarm", "occupancy": true}')
    assert res.returncode == 0, res.stderr
    assert [e["kind"] for e in json.loads(res.stdout)] == ["fall", "motion"]
    res = run("decode", "zigbee2mqtt/front_door", "--devices", str(devices),
              stdin=b'{"contact": "yes"}')
    assert res.returncode == 0 and json.loads(res.stdout) == []
    assert b"contact='yes'" in res.stderr and b"zigbee2mqtt/front_door" in res.stderr


def test_decode_serial() -> None:
    line = sf.encode(sf.Frame(sf.FrameType.EVENT, "rf-1", 9, (("kind", "fall"),)))
    res = run("decode", "--serial", stdin=line)
    assert json.loads(res.stdout)[0]["kind"] == "fall"


def test_malformed_input_is_one_line_and_exit_2() -> None:
    for args, stdin in [
        (("decode", "eldercare/h1-btn/event"), b"{not json"),
        (("decode", "zigbee2mqtt/door"), b'{"contact": true}'),
        (("decode", "--serial"), b"$EC1,EVT,x,1,kind=sos*0000\r\n"),
        (("decode", "weird/topic"), b"{}"),
    ]:
        res = run(*args, stdin=stdin)
        assert res.returncode == 2, (args, res.stdout)
        assert res.stdout == b""
        lines = res.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr


def test_catalogue_command() -> None:
    res = subprocess.run([sys.executable, "-m", "eldercare_protocols.cli", "catalogue"],
                         capture_output=True, timeout=60, check=True)
    cat = json.loads(res.stdout)
    assert cat["call_button"]["label_zh"] == "红绿双键呼叫器"
