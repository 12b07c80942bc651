"""Real ``eldercare-cloud`` processes for the tests that kill, freeze or restart one
(imported by plain name, like ``ingest_support``; holds no tests).

``start_cloud`` runs ``python -m eldercare_cloud.cli run [--role ROLE]`` (or a test entry
point such as ``tests/crash_entry.py``) with the test's settings as ``ELDERCARE_CLOUD_*``
variables and its output in ``tmp_path/NAME.log``. ``CloudProcess`` sends the signals the
tests need (SIGKILL, SIGSTOP/SIGCONT, SIGTERM to stop), and ``until`` waits for a
condition while checking that the processes it depends on are still alive, so a crashed
process fails the test with its log instead of a timeout.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from broker_support import Broker

#: how long a stopped (SIGTERM) process may take to exit before it is killed
STOP_TIMEOUT_S = 20.0
#: how much of a log an assertion message carries
TAIL_CHARS = 3000


@dataclass
class CloudProcess:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def alive(self) -> bool:
        return self.proc.poll() is None

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def tail(self) -> str:
        return self.text()[-TAIL_CHARS:]

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (what a crash or an OOM kill does)."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def freeze(self) -> None:
        """SIGSTOP: the process reads and acks nothing until ``thaw``."""
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM (after SIGCONT, in case it is frozen) and wait; SIGKILL if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        assert self.proc.returncode is not None
        return self.proc.returncode


def cloud_env(broker: Broker, data_dir: Path, client_id: str,
              settings: Mapping[str, str] = {}) -> dict[str, str]:
    """The process environment: the test's own plus the cloud settings (``settings`` keys
    are nested names without the prefix, e.g. ``{"HTTP__ENABLED": "false"}``)."""
    return {
        **os.environ,
        "ELDERCARE_CLOUD_ENVIRONMENT": "test",
        "ELDERCARE_CLOUD_DATA_DIR": str(data_dir),
        "ELDERCARE_CLOUD_MQTT__URL": broker.url,
        "ELDERCARE_CLOUD_MQTT__CLIENT_ID": client_id,
        "ELDERCARE_CLOUD_INGEST__BATCH_WAIT_MS": "0",
        **{f"ELDERCARE_CLOUD_{key}": value for key, value in settings.items()},
    }


def start_cloud(tmp_path: Path, broker: Broker, name: str, *, role: str | None = None,
                data_dir: str | None = None, client_id: str | None = None,
                settings: Mapping[str, str] = {}, entry: Path | None = None) -> CloudProcess:
    """One cloud process named ``name`` (its log is ``tmp_path/NAME.log``; its data
    directory ``tmp_path/DATA_DIR``, by default ``tmp_path/NAME``; its MQTT client id
    ``cloud-NAME`` unless given). ``entry``: a script run instead of the cloud's CLI."""
    if entry is not None:
        command = [sys.executable, str(entry)]
    else:
        command = [sys.executable, "-m", "eldercare_cloud.cli", "run"]
        if role is not None:
            command += ["--role", role]
    env = cloud_env(broker, tmp_path / (data_dir or name), client_id or f"cloud-{name}",
                    settings)
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    return CloudProcess(name, proc, log)


@contextmanager
def stopping(*procs: CloudProcess) -> Iterator[list[CloudProcess]]:
    """Stop every process on the way out, whatever happened inside, the last started
    first; processes started inside are appended to the list it yields."""
    running = list(procs)
    try:
        yield running
    finally:
        for proc in reversed(running):
            proc.stop()


async def until(predicate: Callable[[], bool], what: str, *,
                procs: tuple[CloudProcess, ...] = (),
                timeout: float = 60) -> None:  # noqa: ASYNC109
    """Poll ``predicate`` (state owned by another process) until it holds; fail with the
    log of any of ``procs`` that exits meanwhile, or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        for proc in procs:
            assert proc.alive(), (f"{proc.name} exited ({proc.returncode}) while waiting "
                                  f"for {what}:\n{proc.tail()}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def wait_for_log(proc: CloudProcess, text: str, timeout: float = 60) -> None:  # noqa: ASYNC109
    await until(lambda: text in proc.text(), f"{text!r} in {proc.log.name}", procs=(proc,),
                timeout=timeout)
