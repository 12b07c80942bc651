"""Mosquitto on a free loopback port for the benchmarks (one copy, not one per script).

The scripts run as ``uv run python bench/NAME.py``, so this folder is on sys.path.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import IO, Any

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"

#: what every benchmark broker has: loopback only, queues deep enough for a backlog
BASE_CONF = ("allow_anonymous true\nmax_queued_messages 1000000\n"
             "max_inflight_messages 1000\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, limit: float = 10) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def write_conf(directory: Path, port: int, extra: str = "persistence false\n") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\n{extra}{BASE_CONF}")
    return conf


def spawn(conf: Path, port: int, log: IO[bytes] | None = None) -> subprocess.Popen[bytes]:
    out: IO[bytes] | int = log if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=out,
                            stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL)
    wait_port(port)
    return proc


def start_mosquitto(directory: Path, extra: str = "persistence false\n"
                    ) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    return spawn(write_conf(directory, port, extra), port), port


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
