"""The README's run command (scripts/run.py behind scripts/run.sh), as a new user runs it:
brokers, cloud, gateway processes and simulated homes come up, committed alarms are
printed, and the stop leaves no process behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _leftovers(marker: str) -> list[str]:
    """Command lines of live processes that mention this run's data folder."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmd and str(os.getpid()) != proc.name:
            found.append(cmd)
    return found


def run(tmp_path: Path, *args: str, sigint_after: float | None = None
        ) -> tuple[int, str]:
    data = tmp_path / "data"
    cmd = [sys.executable, str(ROOT / "scripts" / "run.py"), "--data-dir", str(data),
           "--press-every", "2", "--seed", "7", *args]
    if sigint_after is None:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=ROOT)
        return out.returncode, out.stdout + out.stderr
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=ROOT)
    try:
        proc.wait(sigint_after)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # what Ctrl-C does
    out_text, _ = proc.communicate(timeout=120)
    return proc.returncode, out_text


def test_run_command_with_mosquitto_prints_committed_alarms_and_stops_cleanly_on_ctrl_c(
        tmp_path: Path) -> None:
    http = _free_port()
    code, out = run(tmp_path, "--homes", "2", "--http-port", str(http), sigint_after=18)
    assert code == 0, out
    assert "Mosquitto, per-gateway accounts" in out
    assert f"http://127.0.0.1:{http}" in out
    assert "网关上线 gateway online  GW-XH-001" in out
    alarms = [line for line in out.splitlines() if "报警" in line and "ALARM SOS" in line]
    assert alarms, out
    assert "committed in" in alarms[0] and "[GW-XH-00" in alarms[0]
    assert "已停止 stopped" in out
    assert _leftovers(str(tmp_path)) == []
    # a second start on the same data folder reuses its accounts and database
    code, out = run(tmp_path, "--homes", "2", "--no-console", "--duration", "8")
    assert code == 0, out
    assert "网关上线 gateway online  GW-XH-002" in out
    assert _leftovers(str(tmp_path)) == []


def test_run_command_falls_back_to_the_embedded_broker(tmp_path: Path) -> None:
    code, out = run(tmp_path, "--homes", "1", "--broker", "embedded", "--no-console",
                    "--duration", "15")
    assert code == 0, out
    assert "embedded Python broker" in out
    assert any("报警" in line and "GW-XH-001" in line for line in out.splitlines()), out
    assert _leftovers(str(tmp_path)) == []
