"""A live hostile flood (issue 15): a real gateway process and a real cloud ingest process,
thousands of hostile messages on both brokers, valid SOS presses interleaved.

Used by tests/e2e/test_hostile_flood.py (asserts) and bench/bench_hostile.py (prints
figures). A plain module: ``from hostile_flood import run_flood``. The brokers are
passed in as (host, port) pairs, so the tests' and the bench's Mosquitto both fit.

What is sent, from ``hostile_support.stream`` and beside it:

* native events, Zigbee2MQTT states and serial-looking lines with one hostile value
  each (ints beyond 64 bits, lone surrogates, nesting hundreds deep, NaN, huge strings,
  timestamps that overflow) and plain random bytes, on the home broker;
* uplink records a compromised gateway sends (the classes above, and ``seq`` 2**63,
  ``dropped`` 2**64, ...) on the cloud broker, under the real gateway's own topic;
* retained garbage (every 50th message), payloads over 64 KiB (every 200th), topic
  names over 64 characters;
* a valid SOS from one of 20 buttons every ``sos_every`` messages.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from db_support import env_target, rows
from eldercare_cloud.db import Database
from eldercare_cloud.ingest import IngestStore
from hostile_support import LONG_Z2M_TOPIC, TS, native_event, raw_json, stream

GW = "gw-flood-01"
BUTTONS = [f"btn-{i:02d}" for i in range(20)]
EDGE = Path(sys.executable).parent / "eldercare-edge"
Addr = tuple[str, int]


@dataclass
class FloodResult:
    hostile_home: int = 0
    hostile_cloud: int = 0
    sos_sent: int = 0
    sos_committed: int = 0
    missing: list[tuple[str, int]] = field(default_factory=list)
    peak_rss_kb: dict[str, int] = field(default_factory=dict)
    log_growth: dict[str, int] = field(default_factory=dict)
    alive_after: dict[str, bool] = field(default_factory=dict)
    exit_codes: dict[str, int | None] = field(default_factory=dict)
    flood_s: float = 0.0
    logs: dict[str, Path] = field(default_factory=dict)

    @property
    def delivery(self) -> float:
        return 100.0 * self.sos_committed / self.sos_sent if self.sos_sent else 0.0


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class _Sampler(threading.Thread):
    """Peak RSS of each process, sampled every 0.1 s (a bound, not a timing)."""

    def __init__(self, procs: dict[str, subprocess.Popen[bytes]]) -> None:
        super().__init__(daemon=True)
        self.procs = procs
        self.peak = dict.fromkeys(procs, 0)
        self.stopped = threading.Event()

    def run(self) -> None:
        # sample first, then every 0.1 s until stopped: a flood shorter than one interval
        # still has its processes measured
        while True:
            for name, proc in self.procs.items():
                self.peak[name] = max(self.peak[name], rss_kb(proc.pid))
            if self.stopped.wait(0.1):
                return


def _client(addr: Addr, name: str) -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"{name}-{uuid.uuid4().hex[:6]}")
    client.max_inflight_messages_set(200)
    client.max_queued_messages_set(0)
    connected = threading.Event()
    client.on_connect = lambda *a: connected.set()
    client.connect(addr[0], addr[1], keepalive=30)
    client.loop_start()
    if not connected.wait(10):
        raise RuntimeError(f"{name} did not connect to {addr}")
    return client


def _wait_log(proc: subprocess.Popen[bytes], log: Path, needle: bytes, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{log.name}: exited with {proc.returncode}:\n"
                               f"{log.read_text(errors='replace')[-3000:]}")
        if needle in log.read_bytes():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{log.name}: no {needle!r} within {within_s}s")


def _committed_sos(target: str | Path) -> set[tuple[str, int]]:
    if isinstance(target, Path) and not target.exists():
        return set()
    try:
        found = rows(target, "SELECT device_id, device_seq FROM events WHERE kind = 'sos'"
                             " AND device_seq IS NOT NULL")
    except sqlite3.OperationalError:
        return set()
    return {(str(d), int(s)) for d, s in found}


async def _register(target: str | Path) -> None:
    async with Database(target) as db, IngestStore(db) as store:
        await store.add_gateway(GW)


def start_services(work: Path, home: Addr, cloud: Addr
                   ) -> tuple[dict[str, subprocess.Popen[bytes]], dict[str, Path], str | Path]:
    """The cloud (``eldercare-cloud run``) and the gateway (``eldercare-edge run``) as
    processes, each logging to a file; returns the processes, their logs, the cloud DB."""
    work.mkdir(parents=True, exist_ok=True)
    cloud_dir = work / "cloud"
    # the cloud process opens what its environment names: this SQLite file, or the test's
    # PostgreSQL database in the PostgreSQL run
    db_path = env_target(cloud_dir / "cloud.sqlite3")
    asyncio.run(_register(db_path))
    logs = {"gateway": work / "gateway.log", "cloud": work / "cloud.log"}
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "ELDERCARE_CLOUD_ENVIRONMENT": "test", "ELDERCARE_CLOUD_DATA_DIR": str(cloud_dir),
           "ELDERCARE_CLOUD_MQTT__URL": f"mqtt://{cloud[0]}:{cloud[1]}",
           "ELDERCARE_CLOUD_MQTT__CLIENT_ID": f"ingest-flood-{uuid.uuid4().hex[:6]}",
           "ELDERCARE_CLOUD_HTTP__ENABLED": "false", "ELDERCARE_CLOUD_INGEST__BATCH_WAIT_MS": "0"}
    cloud_proc = subprocess.Popen([sys.executable, "-m", "eldercare_cloud.cli", "run"], env=env,
                                  stdout=logs["cloud"].open("wb"), stderr=subprocess.STDOUT)
    devices: list[dict[str, object]] = [{"device_id": b, "type": "call_button"}
                                        for b in BUTTONS]
    devices += [{"device_id": "gas-z", "type": "gas_detector", "source": "z2m",
                 "z2m_name": "kitchen_gas", "z2m_model": "JTQJ-BF-01LM/BW"},
                {"device_id": "door-z", "type": "door_contact", "source": "z2m",
                 "z2m_name": "front_door", "z2m_model": "MCCGQ11LM"}]
    config = {
        "gateway_id": GW, "data_dir": str(work / "gw"), "log_level": "WARNING",
        "home_broker": {"url": f"mqtt://{home[0]}:{home[1]}", "reconnect_min_s": 0.2,
                        "reconnect_max_s": 0.5},
        "cloud": {"url": f"mqtt://{cloud[0]}:{cloud[1]}", "reconnect_min_s": 0.2,
                  "reconnect_max_s": 0.5, "resend_after_s": 2.0},
        "home": {"resident": {"name": "张秀英", "address": "杭州市西湖区文三路 100 号"},
                 "devices": devices},
    }
    config_path = work / "edge.yaml"
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    gw_proc = subprocess.Popen([str(EDGE), "run", "--config", str(config_path)],
                               stdout=logs["gateway"].open("wb"), stderr=subprocess.STDOUT,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    procs = {"gateway": gw_proc, "cloud": cloud_proc}
    try:
        _wait_log(cloud_proc, logs["cloud"], b"cloud role all: broker", 30)
        _wait_log(gw_proc, logs["gateway"], b"home broker connected", 30)
    except BaseException:
        stop_services(procs)
        raise
    return procs, logs, db_path


def stop_services(procs: dict[str, subprocess.Popen[bytes]], within_s: float = 30
                  ) -> dict[str, int | None]:
    """SIGTERM, then wait (bounded); SIGKILL only what did not exit in time."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    codes: dict[str, int | None] = {}
    for name, proc in procs.items():
        try:
            codes[name] = proc.wait(within_s)
        except subprocess.TimeoutExpired:
            codes[name] = None
            proc.kill()
            proc.wait(10)
    return codes


def _sos(seq: int) -> tuple[str, bytes, tuple[str, int]]:
    button = BUTTONS[seq % len(BUTTONS)]
    body = native_event(seq=seq, ts=TS, data={"button": "red", "press": "single"})
    return f"eldercare/{button}/event", raw_json(body), (button, seq)


def run_flood(work: Path, home: Addr, cloud: Addr, *, n_hostile: int = 4000,
              sos_every: int = 40, seed: int = 15, settle_s: float = 60,
              hostile: bool = True) -> FloodResult:
    """Start both services, flood them, wait (bounded) for every valid SOS in the cloud's
    database, then stop them with SIGTERM. Never raises for a failed property: the caller
    asserts on the result. ``hostile=False`` sends only the SOS presses, at the same
    cadence (the bench's baseline)."""
    result = FloodResult()
    procs, logs, db_path = start_services(work, home, cloud)
    result.logs = logs
    sampler = _Sampler(procs)
    sampler.start()
    start_sizes = {name: path.stat().st_size for name, path in logs.items()}
    home_client = _client(home, "flooder")
    rogue = _client(cloud, "rogue-gateway")
    rng = random.Random(seed)
    expected: set[tuple[str, int]] = set()
    sos_seq = 1000
    try:
        t0 = time.monotonic()
        infos = []
        for i, (kind, payload) in enumerate(stream(seed, n_hostile, GW)):
            if i % sos_every == 0:
                sos_seq += 1
                topic, body, key = _sos(sos_seq)
                infos.append(home_client.publish(topic, body, qos=1))
                expected.add(key)
            if not hostile:
                continue
            retain = i % 50 == 0
            if i % 200 == 0:
                payload = b'{"v":1,"data":"' + b"x" * 70_000 + b'"}'
            if kind == "uplink":
                rogue.publish(f"ec/v1/{GW}/up/events", payload, qos=1)
                result.hostile_cloud += 1
                continue
            if kind == "z2m":
                topic = rng.choice(("zigbee2mqtt/kitchen_gas", "zigbee2mqtt/front_door",
                                    "zigbee2mqtt/kitchen_gas/availability", LONG_Z2M_TOPIC))
            else:
                button = rng.choice(BUTTONS)
                topic = f"eldercare/{button}/" + rng.choice(
                    ("event", "event", "telemetry", "state", "cmd/ack"))
            home_client.publish(topic, payload, qos=1, retain=retain)
            result.hostile_home += 1
        for info in infos:
            info.wait_for_publish(30)
        result.sos_sent = len(expected)
        result.flood_s = time.monotonic() - t0
        deadline = time.monotonic() + settle_s
        while time.monotonic() < deadline:
            if expected <= _committed_sos(db_path):
                break
            if any(p.poll() is not None for p in procs.values()):
                break
            time.sleep(0.2)
        committed = _committed_sos(db_path)
        result.sos_committed = len(expected & committed)
        result.missing = sorted(expected - committed)
        result.alive_after = {name: p.poll() is None for name, p in procs.items()}
    finally:
        for c in (home_client, rogue):
            c.disconnect()
            c.loop_stop()
        result.exit_codes = stop_services(procs)
        sampler.stopped.set()
        sampler.join(5)
        result.peak_rss_kb = dict(sampler.peak)
        result.log_growth = {name: path.stat().st_size - start_sizes[name]
                             for name, path in logs.items()}
    return result
