"""Mosquitto on a free loopback port, for tests and benchmarks.

A plain module (not a conftest.py): pytest imports every conftest.py outside a package
under the one name "conftest", so ``from conftest import ...`` finds whichever was
loaded last. Import these from here instead: ``from broker_support import Broker``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Broker:
    host: str
    port: int
    proc: subprocess.Popen[bytes]
    conf: Path
    log: Path

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def start(self) -> None:
        """(Re)start on the same port, e.g. after stop() in an outage test."""
        self.proc = _spawn(self.conf, self.log)
        _wait_port(self.host, self.port, self.proc)


def _spawn(conf: Path, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    return subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)


def _wait_port(host: str, port: int, proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited with {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"mosquitto did not listen on {host}:{port}")


def start_mosquitto(directory: Path, extra_conf: str = "") -> Broker:
    """Start Mosquitto on 127.0.0.1 with anonymous access (auth tests pass extra_conf)."""
    if not Path(MOSQUITTO).exists():
        pytest.fail("mosquitto is not installed: run the README's test command (it installs it)")
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "mosquitto.conf"
    log = directory / "mosquitto.log"
    body = extra_conf or "allow_anonymous true\n"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        "persistence false\n"
        # the cloud's sessions sized for a stall, as every broker the project ships
        # (eldercare_cloud.broker.files.QUEUE_CONF; test_ingest_stall.py proves it)
        "max_queued_messages 100000\n"
        "max_inflight_messages 100\n"
        "max_queued_bytes 0\n"
        f"{body}"
    )
    proc = _spawn(conf, log)
    _wait_port("127.0.0.1", port, proc)
    return Broker("127.0.0.1", port, proc, conf, log)
