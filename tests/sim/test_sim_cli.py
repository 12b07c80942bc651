"""eldercare-sim on the command line: press, run (a small fleet over shared connections),
and errors that are one line with a non-zero exit."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from broker_support import Broker, free_port
from eldercare_protocols import native
from eldercare_protocols.events import EventKind
from eldercare_protocols.native import DeviceEvent
from eldercare_sim.cli import app

from .conftest import Collector

pytestmark = pytest.mark.integration


def sim(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "eldercare_sim", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_press_publishes_one_native_event(mosquitto: Broker, collector: Collector) -> None:
    proc = sim("press", "--broker", mosquitto.url, "--device", "h1-btn", "--button", "green",
               "--press", "double")
    assert proc.returncode == 0, proc.stderr
    msgs = collector.wait_for(lambda m: len(m) >= 1)
    dev, event = native.decode(msgs[0].topic, msgs[0].payload)
    assert dev == "h1-btn" and isinstance(event, DeviceEvent)
    assert event.kind is EventKind.SERVICE_REQUEST
    assert event.data == {"button": "green", "press": "double"}
    second = sim("press", "--broker", mosquitto.url, "--device", "h1-btn", "--button", "red")
    assert second.returncode == 0
    msgs = collector.wait_for(lambda m: len(m) >= 2)
    _, again = native.decode(msgs[1].topic, msgs[1].payload)
    assert isinstance(again, DeviceEvent) and again.seq > event.seq  # time-based seq grows


@pytest.mark.parametrize(("args", "code", "message"), [
    (["press", "--broker", "mqtt://127.0.0.1:{dead}", "--device", "b1"], 1,
     "error: cannot reach broker mqtt://127.0.0.1:{dead}: Connection refused"),
    (["press", "--broker", "http://x", "--device", "b1"], 1, "error: unsupported broker URL"),
    (["press", "--broker", "mqtt://127.0.0.1:1883", "--device", "b1", "--button", "blue"], 2,
     "error: --button must be red or green"),
    (["press", "--broker", "mqtt://127.0.0.1:1883", "--device", "bad id!"], 2,
     "error: invalid device id"),
    (["run", "--broker", "mqtt://127.0.0.1:{dead}", "--homes", "1", "--duration", "1"], 1,
     "error: cannot reach broker"),
    (["run", "--broker", "mqtt://127.0.0.1:1883", "--scenario", "/nonexistent.yaml"], 1,
     "error: cannot read scenario /nonexistent.yaml"),
    (["check", "/nonexistent.yaml"], 1, "error: cannot read scenario"),
])
def test_errors_are_one_line_and_non_zero(args: list[str], code: int, message: str) -> None:
    dead = str(free_port())
    result = CliRunner().invoke(app, [a.replace("{dead}", dead) for a in args])
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message.replace("{dead}", dead)), lines
    assert "Traceback" not in result.stderr


def test_an_unreachable_broker_is_one_line_from_a_real_process() -> None:
    proc = sim("press", "--broker", f"mqtt://127.0.0.1:{free_port()}", "--device", "b1")
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_run_a_small_fleet_over_shared_connections(mosquitto: Broker,
                                                   collector: Collector) -> None:
    proc = sim("run", "--broker", mosquitto.url, "--homes", "30", "--connections", "3",
               "--speed", "0", "--duration", "1800", "--seed", "4")
    assert proc.returncode == 0, proc.stderr
    assert "30 homes, 270 devices over 3 connections" in proc.stderr
    assert "msg/s" in proc.stdout.splitlines()[-1]
    msgs = collector.wait_for(lambda m: sum(b'"shutdown"' in x.payload for x in m) >= 270)
    device_ids = set()
    for m in msgs:
        if m.topic.startswith("eldercare/"):
            dev, _ = native.decode(m.topic, m.payload)
            device_ids.add(dev)
    assert len(device_ids) == 270
    links = [m for m in msgs if m.topic.startswith("eldercare-sim/links/")]
    assert {m.payload for m in links} == {b"online", b"offline"}  # bridge-style Wills
