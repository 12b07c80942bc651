"""The run command's demo shows the green half too: a few seconds after the start the
first home presses its green button once, the run prints the committed service request,
and the console's service queue (GET /api/v1/service-requests, what the 服务 tab shows)
holds it as a button request of that home's resident."""

from __future__ import annotations

import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LOGIN = re.compile(r"值班员 Operator:\s+(\S+) / (\S+)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_demo_presses_a_green_button_that_reaches_the_service_queue(
        tmp_path: Path) -> None:
    http = _free_port()
    # red presses far apart (the first after 5 s): this run is about the green one
    cmd = [sys.executable, str(ROOT / "scripts" / "run.py"), "--data-dir",
           str(tmp_path / "data"), "--homes", "2", "--http-port", str(http),
           "--press-every", "600", "--green-after", "2", "--seed", "7", "--duration", "60"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=ROOT)
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    out = proc.stdout
    reader = threading.Thread(target=lambda: [lines.put(line) for line in out], daemon=True)
    reader.start()
    seen: list[str] = []
    login = None
    try:
        deadline = time.monotonic() + 50
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            seen.append(line)
            login = login or LOGIN.search(line)
            if "服务请求 SERVICE REQUEST" in line:
                break
        text = "".join(seen)
        green = [line for line in seen if "服务请求 SERVICE REQUEST" in line]
        assert green, text
        assert "[GW-XH-001 btn-xh001]" in green[0] and "王秀英" in green[0]
        assert "a green button (service request) once after 2 s" in text
        assert login is not None, text
        with httpx.Client(base_url=f"http://127.0.0.1:{http}", timeout=10) as client:
            token = client.post("/api/v1/auth/token", data={
                "username": login.group(1), "password": login.group(2)}).json()["access_token"]
            requests: list[dict[str, object]] = []
            until = time.monotonic() + 15
            while not requests and time.monotonic() < until:
                requests = client.get("/api/v1/service-requests",
                                      headers={"Authorization": f"Bearer {token}"}).json()
                if not requests:
                    time.sleep(0.2)
        assert [(r["resident_id"], r["source"], r["presses"]) for r in requests] == [
            ("R-XH-001", "button", 1)]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    reader.join(10)
    assert proc.returncode == 0
