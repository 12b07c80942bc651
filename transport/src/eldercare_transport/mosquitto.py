"""One Mosquitto launcher: for the tests, the benchmarks and the one-command run.

Writes a mosquitto.conf, starts the broker on a free 127.0.0.1 port, waits until it
listens, and stops it by its pid (SIGTERM, then SIGKILL). It lives in this package, not
in a test helper, because the run command (``scripts/run.py``) needs it at runtime; it
uses only the standard library, so it costs a gateway image nothing.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eldercare_transport.errors import TransportError

HOST = "127.0.0.1"
SEARCH = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto")
CONF_FILE = "mosquitto.conf"
LOG_FILE = "mosquitto.log"


class MosquittoError(TransportError):
    """Mosquitto is missing, exited at start, or did not listen in time."""


def find_mosquitto() -> str | None:
    """The mosquitto executable on PATH or in the usual sbin folders (None: not installed)."""
    return shutil.which("mosquitto") or next((p for p in SEARCH if Path(p).exists()), None)


def free_port(host: str = HOST) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_free(port: int, host: str = HOST) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def run_as_current_user() -> str:
    """Started by root, Mosquitto switches to its own user, who cannot read a private temp
    dir or data folder: ``user root`` keeps it running as whoever started it."""
    return "user root\n" if hasattr(os, "geteuid") and os.geteuid() == 0 else ""


def stop_process(proc: subprocess.Popen[Any], within_s: float = 10.0) -> None:
    """Stop a child by its pid: SIGTERM, then SIGKILL if it is still there after
    ``within_s`` (a broker, or a gateway process of the run command)."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(within_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@dataclass(frozen=True)
class TlsListener:
    """A second listener with TLS (the plain one stays for local clients)."""

    certfile: Path
    keyfile: Path
    cafile: Path | None = None
    #: None: a free port
    port: int | None = None
    require_certificate: bool = False
    tls_version: str = "tlsv1.2"


@dataclass(frozen=True)
class Dynsec:
    """Mosquitto's dynamic-security plugin and its JSON state file."""

    plugin: Path
    config_file: Path


def queue_lines(max_queued: int | None, max_inflight: int | None,
                max_queued_bytes: int | None) -> list[str]:
    """The per-client queue limits as mosquitto.conf lines (None: Mosquitto's default)."""
    lines = []
    if max_queued is not None:
        lines.append(f"max_queued_messages {max_queued}")
    if max_inflight is not None:
        lines.append(f"max_inflight_messages {max_inflight}")
    if max_queued_bytes is not None:
        lines.append(f"max_queued_bytes {max_queued_bytes}")
    return lines


@dataclass(frozen=True)
class Options:
    """What goes into mosquitto.conf besides the loopback listener."""

    anonymous: bool = True
    #: None: persistence off; else sessions and queued messages kept in this folder
    persistence_dir: Path | None = None
    #: per client: messages queued while it is away or its window is full, and its
    #: QoS 1 in-flight window
    max_queued: int | None = 100_000
    max_inflight: int | None = 100
    #: the byte cap on those queues (0: none; the message count above bounds them)
    max_queued_bytes: int | None = 0
    #: no Nagle on the broker's sockets: an alarm is one small packet
    nodelay: bool = False
    tls: TlsListener | None = None
    dynsec: Dynsec | None = None
    #: further lines, appended as they are (password_file, sys_interval, ...)
    extra: str = ""


def config_text(port: int, options: Options, *, host: str = HOST,
                tls_port: int | None = None) -> str:
    o = options
    lines = [f"listener {port} {host}"]
    if o.tls is not None:
        assert tls_port is not None
        lines.append(f"listener {tls_port} {host}")
        if o.tls.cafile is not None:
            lines.append(f"cafile {o.tls.cafile}")
        lines += [f"certfile {o.tls.certfile}", f"keyfile {o.tls.keyfile}",
                  f"tls_version {o.tls.tls_version}"]
        if o.tls.require_certificate:
            lines.append("require_certificate true")
    if o.persistence_dir is not None:
        lines += ["persistence true", f"persistence_location {o.persistence_dir}/"]
    else:
        lines.append("persistence false")
    lines += queue_lines(o.max_queued, o.max_inflight, o.max_queued_bytes)
    if o.nodelay:
        lines.append("set_tcp_nodelay true")
    if o.dynsec is not None:
        # listeners share the plugin's accounts
        lines += ["per_listener_settings false", "allow_anonymous false",
                  f"plugin {o.dynsec.plugin}", f"plugin_opt_config_file {o.dynsec.config_file}"]
    elif o.anonymous:
        lines.append("allow_anonymous true")
    user = run_as_current_user()
    # files the broker must read or write as whoever started it: the dynsec file, the
    # persistence folder, a TLS key kept private (0600) to its owner
    if user and (o.dynsec is not None or o.persistence_dir is not None or o.tls is not None):
        lines.append(user.strip())
    text = "\n".join(lines) + "\n"
    return text + o.extra if not o.extra or o.extra.endswith("\n") else f"{text}{o.extra}\n"


@dataclass
class Mosquitto:
    """A running (or stopped) Mosquitto with its config, log and ports."""

    port: int
    directory: Path
    conf: Path
    log: Path
    executable: str
    host: str = HOST
    tls_port: int | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def tls_url(self) -> str | None:
        return None if self.tls_port is None else f"mqtts://{self.host}:{self.tls_port}"

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, within_s: float = 10.0, **popen: Any) -> Mosquitto:
        """(Re)start on the same ports (after ``stop`` in an outage test) and wait until
        it listens. ``popen``: extra ``subprocess.Popen`` arguments (``preexec_fn``)."""
        if self.running:
            return self
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([self.executable, "-c", str(self.conf)], stdout=out,
                                         stderr=subprocess.STDOUT, **popen)
        self.wait_ready(within_s)
        return self

    def wait_ready(self, within_s: float = 10.0) -> None:
        deadline = time.monotonic() + within_s
        ports = [p for p in (self.port, self.tls_port) if p is not None]
        while ports:
            if self.proc is not None and self.proc.poll() is not None:
                raise MosquittoError(f"mosquitto exited with {self.proc.returncode} "
                                     f"(see {self.log}): {self.log_tail()}")
            try:
                with socket.create_connection((self.host, ports[0]), timeout=0.2):
                    ports.pop(0)
                    continue
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise MosquittoError(f"mosquitto did not listen on {self.host}:{ports[0]} "
                                     f"within {within_s:g}s")
            time.sleep(0.05)

    def stop(self, within_s: float = 10.0) -> None:
        """SIGTERM by pid, SIGKILL if it does not exit in ``within_s``."""
        if self.proc is not None:
            stop_process(self.proc, within_s)

    def kill(self) -> None:
        """SIGKILL: the broker dies without saving anything (a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def log_tail(self, chars: int = 400) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:].strip()
        except OSError:
            return ""


def prepare(directory: Path, options: Options | None = None, *, port: int | None = None,
            conf: str | None = None, executable: str | None = None) -> Mosquitto:
    """Write the config (``conf`` as given, or made from ``options``) without starting.
    ``conf=""`` keeps a mosquitto.conf already in ``directory`` (written by someone else,
    e.g. the cloud's ``broker init``)."""
    exe = executable or find_mosquitto()
    if exe is None:
        raise MosquittoError("mosquitto is not installed (sudo apt-get install mosquitto)")
    directory.mkdir(parents=True, exist_ok=True)
    options = options or Options()
    port = port or free_port()
    tls_port = None
    if options.tls is not None:
        tls_port = options.tls.port or free_port()
    path = directory / CONF_FILE
    if conf is None:
        path.write_text(config_text(port, options, tls_port=tls_port))
    elif conf:
        path.write_text(conf)
    elif not path.exists():
        raise MosquittoError(f"no {CONF_FILE} in {directory}")
    return Mosquitto(port, directory, path, directory / LOG_FILE, exe, tls_port=tls_port)


def start(directory: Path, options: Options | None = None, *, port: int | None = None,
          conf: str | None = None, executable: str | None = None, within_s: float = 10.0,
          **popen: Any) -> Mosquitto:
    """Write the config, start Mosquitto on ``port`` (a free one by default) and wait
    until it listens; MosquittoError if it is missing, exits, or does not listen."""
    broker = prepare(directory, options, port=port, conf=conf, executable=executable)
    return broker.start(within_s, **popen)

