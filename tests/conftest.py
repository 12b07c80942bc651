"""Shared fixtures: a real Mosquitto broker on a free loopback port, per test or per module."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Wall-clock deadlines make property tests flaky on a loaded 2-core machine; timing belongs
# in bench/, not in tests.
settings.register_profile("eldercare", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("eldercare")

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
        "max_queued_messages 100000\n"
        "max_inflight_messages 100\n"
        f"{body}"
    )
    proc = _spawn(conf, log)
    _wait_port("127.0.0.1", port, proc)
    return Broker("127.0.0.1", port, proc, conf, log)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Broker]:
    broker = start_mosquitto(tmp_path / "mosquitto")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def mosquitto_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    broker = start_mosquitto(tmp_path_factory.mktemp("mosquitto"))
    try:
        yield broker
    finally:
        broker.stop()
