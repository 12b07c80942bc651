"""Mosquitto on a free loopback port for the benchmarks: the one launcher
(``eldercare_transport.mosquitto``) with the benchmarks' deep queues.

The scripts run as ``uv run python bench/NAME.py``, so this folder is on sys.path.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from eldercare_transport import mosquitto
from eldercare_transport.mosquitto import Mosquitto, free_port, stop_process

__all__ = ["Mosquitto", "free_port", "prepare", "start_mosquitto", "stop"]


def options(extra: str = "persistence false\n") -> mosquitto.Options:
    """What every benchmark broker has: loopback only, anonymous, queues deep enough for a
    backlog; ``extra`` lines after those."""
    return mosquitto.Options(max_queued=1_000_000, max_inflight=1000, extra=extra)


def prepare(directory: Path, extra: str = "persistence false\n") -> Mosquitto:
    """Configured on a free port, not started (``.start()``/``.stop()`` for outages)."""
    return mosquitto.prepare(directory, options(extra))


def start_mosquitto(directory: Path, extra: str = "persistence false\n"
                    ) -> tuple[Mosquitto, int]:
    broker = mosquitto.start(directory, options(extra))
    return broker, broker.port


def stop(proc: Mosquitto | subprocess.Popen[Any]) -> None:
    """Stop a broker, or any child process of a benchmark (SIGTERM, then SIGKILL)."""
    if isinstance(proc, Mosquitto):
        proc.stop(20)
    else:
        stop_process(proc, 20)
