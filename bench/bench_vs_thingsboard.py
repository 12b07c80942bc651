"""Our gateway and the ThingsBoard IoT Gateway side by side, on the same brokers and payloads.

Run from the repository root::

    uv run python bench/bench_vs_thingsboard.py --install-peer     # installs the peer first
    uv run python bench/bench_vs_thingsboard.py [--peer-venv DIR] [--messages 20000]
                                                [--alarms 400] [--kill-sos-rate 50]

The peer is the ``thingsboard-gateway`` package from PyPI, run from its own virtual
environment (never the project's lock): ``--install-peer`` creates it with ``uv`` in
``--peer-venv`` (default: a folder in the system temp dir) and installs the package;
without it, a peer that is not installed there is skipped with the reason, and only our
gateway is measured.

Everything runs on 127.0.0.1, each gateway as its own process, each scenario on two fresh
Mosquitto brokers: the home broker the devices publish to, and the uplink broker (our
cloud broker; for the peer, its "ThingsBoard server", where this script subscribes to
``v1/gateway/telemetry`` and answers the peer's ``getSessionLimits`` RPC with no limits).
The peer's MQTT connector subscribes to the same device topics with a persistent session
(fixed client id, clean session off, QoS 1) and the SQLite storage, its durable option;
ours runs with its defaults (persistent home session, SQLite outbox) and a stand-in cloud
that acks every record (as the cloud ingest does after its commit).

Scenarios, the same native device payloads for both:

* throughput: ``--messages`` vital-sign readings published as fast as four QoS 1
  publishers go; readings per second from the first publish to the last reading seen on
  the uplink broker;
* alarm latency: ``--alarms`` SOS at 20/s with 200 telemetry msg/s behind them; device
  publish to the SOS seen on the uplink broker, p50/p99/max;
* SIGKILL: SOS at ``--kill-sos-rate`` per second for 8 s, the gateway killed with SIGKILL
  after 3 s and started again 2 s later; SOS that never reached the uplink broker are lost.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

import bench_gateway as bg
from _broker import free_port, spawn, stop, write_conf
from eldercare_protocols import native
from eldercare_protocols.events import EventKind

PEER = "thingsboard-gateway"
MONITORS = [f"vit-{i}" for i in range(10)]
BUTTONS = [f"btn-{i}" for i in range(5)]


# ---------------------------------------------------------------- device traffic

def reading(dev: str, seq: int) -> tuple[str, bytes]:
    return (native.topic(dev, native.Channel.TELEMETRY), native.encode(native.DeviceTelemetry(
        seq=seq, ts=datetime.now(UTC), type="vitals_monitor", kind=EventKind.VITALS,
        values={"heart_rate": 60.0 + seq % 30, "spo2": 97.0})))


def sos(dev: str, seq: int) -> tuple[str, bytes]:
    return (native.topic(dev, native.Channel.EVENT), native.encode(native.DeviceEvent(
        seq=seq, ts=datetime.now(UTC), type="call_button", kind=EventKind.SOS)))


def percentiles(values: list[float]) -> dict[str, float]:
    s = sorted(values)
    if not s:
        return {"p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    return {"p50": s[int(0.50 * (len(s) - 1))], "p99": s[int(0.99 * (len(s) - 1))],
            "max": s[-1]}


# ---------------------------------------------------------------- what arrives upstream

class Uplink:
    """Subscribes on the uplink broker: readings counted, SOS first-arrival times by
    (device, seq)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.readings = 0
        self.last_at = 0.0
        self.sos: dict[tuple[str, int], float] = {}

    def saw_readings(self, n: int) -> None:
        with self.lock:
            self.readings += n
            self.last_at = time.time()

    def saw_sos(self, dev: str, seq: int) -> None:
        with self.lock:
            self.sos.setdefault((dev, seq), time.time())


class OurCloud(bg.Cloud):
    """The stand-in cloud of bench_gateway (acks every record), watching for SOS too."""

    def __init__(self, port: int, up: Uplink) -> None:
        super().__init__(port)
        self.up = up

    def _on_message(self, c: mqtt.Client, u: Any, m: mqtt.MQTTMessage) -> None:
        if "/up/state" not in m.topic:
            obj = json.loads(m.payload)
            if obj.get("type") == "telemetry":
                self.up.saw_readings(len(obj["records"]))
            elif obj.get("type") == "event" and obj.get("kind") == "sos":
                self.up.saw_sos(obj["device_id"], int(obj["device_seq"]))
        super()._on_message(c, u, m)


class PeerServer:
    """The peer's "ThingsBoard server": reads v1/gateway/telemetry, answers its RPC."""

    def __init__(self, port: int, up: Uplink) -> None:
        self.up = up
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-tb-server")
        ready = threading.Event()
        self.c.on_connect = lambda c, *a: c.subscribe("v1/#", qos=1)
        self.c.on_subscribe = lambda *a: ready.set()
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        if not ready.wait(10):
            raise RuntimeError("the peer's server stand-in did not subscribe")

    def _on_message(self, c: mqtt.Client, u: Any, m: mqtt.MQTTMessage) -> None:
        if m.topic.startswith("v1/devices/me/rpc/request/") and b"getSessionLimits" in m.payload:
            rid = m.topic.rsplit("/", 1)[1]
            limits = {"maxPayloadSize": 65536, "maxInflightMessages": 1000, "rateLimits": {
                "messages": "0:0,", "telemetryMessages": "0:0,", "telemetryDataPoints": "0:0,"}}
            c.publish(f"v1/devices/me/rpc/response/{rid}", json.dumps(limits), qos=1)
            return
        if m.topic != "v1/gateway/telemetry":
            return
        n = 0
        for dev, entries in json.loads(m.payload).items():
            for entry in entries:
                values = entry.get("values", entry)
                if values.get("kind") == "sos":
                    self.up.saw_sos(dev, int(values["seq"]))
                elif "heart_rate" in values:
                    n += 1
        if n:
            self.up.saw_readings(n)

    def stop(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


# ---------------------------------------------------------------- the two gateways

class Gateway:
    name = ""

    def __init__(self, root: Path, home: int, uplink: int) -> None:
        self.root, self.home, self.uplink = root, home, uplink
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        raise NotImplementedError

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Ours(Gateway):
    name = "eldercare gateway"

    def __init__(self, root: Path, home: int, uplink: int, up: Uplink) -> None:
        super().__init__(root, home, uplink)
        self.cloud = OurCloud(uplink, up)
        self.cloud.start()
        self.config = bg.write_config(root, home, uplink, window=1000, read_batch=500)

    def start(self) -> None:
        self.proc = bg.start_gateway(self.config)

    def stop(self) -> None:
        super().stop()
        self.cloud.stop()


class Peer(Gateway):
    name = "ThingsBoard IoT Gateway"

    def __init__(self, root: Path, home: int, uplink: int, up: Uplink, exe: Path,
                 storage: str) -> None:
        super().__init__(root, home, uplink)
        self.exe = exe
        self.server = PeerServer(uplink, up)
        self.conf = root / "tb-config"
        self.work = root / "tb-work"
        for d in (self.conf, self.work / "logs", root / "tb-data"):
            d.mkdir(parents=True, exist_ok=True)
        gw = {"thingsboard": {
            "host": "127.0.0.1", "port": uplink, "remoteShell": False,
            "remoteConfiguration": False, "latencyDebugMode": False,
            "statistics": {"enable": False, "statsSendPeriodInSeconds": 3600,
                           "customStatsSendPeriodInSeconds": 3600},
            "deviceFiltering": {"enable": False, "filterFile": "list.json"},
            "maxPayloadSizeBytes": 65536, "minPackSendDelayMS": 50, "minPackSizeToSend": 500,
            "checkConnectorsConfigurationInSeconds": 60, "handleDeviceRenaming": True,
            "security": {"type": "accessToken", "accessToken": "bench-token"}, "qos": 1,
            "reportStrategy": {"type": "ON_RECEIVED"},
            "checkingDeviceActivity": {"checkDeviceInactivity": False,
                                       "inactivityTimeoutSeconds": 300,
                                       "inactivityCheckPeriodSeconds": 10}},
            "storage": ({"type": "sqlite", "data_file_path": f"{root / 'tb-data'}/",
                         "messages_ttl_check_in_hours": 1, "messages_ttl_in_days": 7}
                        if storage == "sqlite" else
                        {"type": "memory", "read_records_count": 100,
                         "max_records_count": 1_000_000}),
            "grpc": {"enabled": False},
            "connectors": [{"type": "mqtt", "name": "home", "configuration": "mqtt.json"}]}
        (self.conf / "tb_gateway.json").write_text(json.dumps(gw))

        def mapping(channel: str, timeseries: list[dict[str, str]]) -> dict[str, Any]:
            return {"topicFilter": f"eldercare/+/{channel}", "subscriptionQos": 1,
                    "converter": {"type": "json", "deviceInfo": {
                        "deviceNameExpressionSource": "topic",
                        "deviceNameExpression": f"(?<=eldercare/)(.*?)(?=/{channel})",
                        "deviceProfileExpressionSource": "constant",
                        "deviceProfileExpression": "default"},
                        "timeout": 60000, "attributes": [],
                        "timeseries": [{"type": "integer", "key": "seq", "value": "${seq}"},
                                       *timeseries]}}

        connector = {
            "broker": {"host": "127.0.0.1", "port": home, "clientId": "tb-gw-home",
                       "version": 4, "cleanSession": False, "keepAlive": 30,
                       "maxMessageNumberPerWorker": 10, "maxNumberOfWorkers": 100,
                       "security": {"type": "anonymous"}},
            "mapping": [
                mapping("telemetry", [{"type": "double", "key": "heart_rate",
                                       "value": "${values.heart_rate}"},
                                      {"type": "double", "key": "spo2",
                                       "value": "${values.spo2}"}]),
                mapping("event", [{"type": "string", "key": "kind", "value": "${kind}"}])]}
        (self.conf / "mqtt.json").write_text(json.dumps(connector))
        logs = {"version": 1, "disable_existing_loggers": False,
                "handlers": {"null": {"class": "logging.NullHandler"}},
                "root": {"level": "ERROR", "handlers": ["null"]}}
        (self.conf / "logs.json").write_text(json.dumps(logs))

    def start(self) -> None:
        env = {**os.environ, "TB_GW_CONFIG_DIR": str(self.conf)}
        env.pop("VIRTUAL_ENV", None)
        self.proc = subprocess.Popen([str(self.exe)], cwd=self.work, env=env,
                                     stdout=(self.root / "tb.log").open("ab"),
                                     stderr=subprocess.STDOUT)

    def stop(self) -> None:
        super().stop()
        self.server.stop()


# ---------------------------------------------------------------- scenarios

class Brokers:
    """A fresh home broker (its sessions kept, as a home broker with persistence keeps
    them) and a fresh uplink broker."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: list[subprocess.Popen[bytes]] = []
        self.home = self._start("home")
        self.uplink = self._start("uplink")

    def _start(self, name: str) -> int:
        port = free_port()
        conf = write_conf(self.root / name, port, "persistence false\nset_tcp_nodelay true\n")
        self.procs.append(spawn(conf, port))
        return port

    def stop(self) -> None:
        for p in self.procs:
            stop(p)


Make = Callable[[Path, int, int, Uplink], Gateway]


def wait_ready(gw: Gateway, brokers: Brokers, up: Uplink) -> None:
    """Until a probe reading goes through end to end (the peer takes seconds to start)."""
    probe = bg.client(brokers.home, f"bench-probe-{time.monotonic_ns()}")
    try:
        deadline = time.monotonic() + 60
        seq = 9_000_000
        while time.monotonic() < deadline:
            before = up.readings
            probe.publish(*reading(MONITORS[-1], seq), qos=1)
            seq += 1
            t = time.monotonic() + 1.0
            while time.monotonic() < t:
                if up.readings > before:
                    time.sleep(1.0)   # late probes arrive before the measured traffic
                    return
                time.sleep(0.02)
        raise RuntimeError(f"{gw.name}: no reading came through within 60 s")
    finally:
        probe.disconnect()
        probe.loop_stop()


def scenario(root: Path, make: Make, name: str, run: Callable[[Gateway, Brokers, Uplink],
                                                                 Any]) -> Any:
    where = root / name
    where.mkdir(parents=True)
    brokers = Brokers(where)
    up = Uplink()
    gw = make(where, brokers.home, brokers.uplink, up)
    try:
        gw.start()
        wait_ready(gw, brokers, up)
        return run(gw, brokers, up)
    finally:
        gw.stop()
        brokers.stop()


def throughput(n: int) -> Callable[[Gateway, Brokers, Uplink], float]:
    def run(gw: Gateway, brokers: Brokers, up: Uplink) -> float:
        base = up.readings
        msgs = (reading(MONITORS[i % len(MONITORS)], i) for i in range(n))
        t0 = time.time()
        bg.publish_all(brokers.home, msgs)
        bg.wait_until(lambda: up.readings - base >= n, 600, f"{gw.name}: {n} readings")
        return n / (up.last_at - t0)
    return run


def latency(alarms: int) -> Callable[[Gateway, Brokers, Uplink], list[float]]:
    def run(gw: Gateway, brokers: Brokers, up: Uplink) -> list[float]:
        buttons = bg.client(brokers.home, "bench-buttons")
        monitors = bg.client(brokers.home, "bench-monitors")
        sent: dict[tuple[str, int], float] = {}
        step = 1.0 / 220      # 20 SOS/s and 200 readings/s, one message every 1/220 s
        t_next = time.perf_counter()
        try:
            i = a = 0
            while a < alarms:
                now = time.perf_counter()
                if now < t_next:
                    time.sleep(t_next - now)
                t_next += step
                if i % 11 == 0:
                    dev = BUTTONS[a % len(BUTTONS)]
                    seq = 1_000_000 + i
                    sent[(dev, seq)] = time.time()
                    buttons.publish(*sos(dev, seq), qos=1)
                    a += 1
                else:
                    monitors.publish(*reading(MONITORS[i % len(MONITORS)], i), qos=1)
                i += 1
            bg.wait_until(lambda: all(k in up.sos for k in sent), 60,
                          f"{gw.name}: every SOS upstream")
        finally:
            for c in (buttons, monitors):
                c.disconnect()
                c.loop_stop()
        return [(up.sos[k] - t) * 1000 for k, t in sent.items()]
    return run


def killed(rate: float) -> Callable[[Gateway, Brokers, Uplink], tuple[int, int]]:
    def run(gw: Gateway, brokers: Brokers, up: Uplink) -> tuple[int, int]:
        buttons = bg.client(brokers.home, "bench-sos")
        sent: list[tuple[str, int]] = []
        t0 = time.perf_counter()
        killed_at = restarted = False
        i = 0
        try:
            while time.perf_counter() - t0 < 8.0:
                t = time.perf_counter() - t0
                if t >= 3.0 and not killed_at:
                    gw.kill()
                    killed_at = True
                if t >= 5.0 and not restarted:
                    threading.Thread(target=gw.start, daemon=True).start()
                    restarted = True
                dev = BUTTONS[i % len(BUTTONS)]
                seq = 2_000_000 + i
                buttons.publish(*sos(dev, seq), qos=1)
                sent.append((dev, seq))
                i += 1
                time.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not all(k in up.sos for k in sent):
                time.sleep(0.2)
            time.sleep(1.0)
        finally:
            buttons.disconnect()
            buttons.loop_stop()
        return len(sent), sum(1 for k in sent if k not in up.sos)
    return run


# ---------------------------------------------------------------- the peer

def find_peer(venv: Path, install: bool, spec: str) -> tuple[Path | None, str]:
    exe = venv / "bin" / PEER
    if exe.exists():
        return exe, "found"
    if not install:
        return None, (f"not installed in {venv} (run with --install-peer to install"
                      f" {spec} there from PyPI)")
    uv = shutil.which("uv")
    if uv is None:
        return None, "uv is not on PATH, cannot make the peer's virtual environment"
    steps = [[uv, "venv", "--quiet", "--python", "3.11", str(venv)],
             [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), spec]]
    for cmd in steps:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            return None, (f"`{' '.join(cmd)}` failed ({done.returncode}):"
                          f" {(done.stderr or done.stdout).strip()[-400:]}")
    return (exe, "installed") if exe.exists() else (None, f"no {exe} after installing")


def peer_version(venv: Path) -> str:
    done = subprocess.run([str(venv / "bin" / "python"), "-c",
                           "import importlib.metadata as m;"
                           f"print(m.version('{PEER}'))"],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() or "?"


# ---------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=20_000, help="readings for throughput")
    ap.add_argument("--alarms", type=int, default=400, help="SOS for the latency figure")
    ap.add_argument("--kill-sos-rate", type=float, default=50.0,
                    help="SOS per second around the SIGKILL")
    ap.add_argument("--peer-venv", type=Path,
                    default=Path(tempfile.gettempdir()) / "eldercare-bench-tbgw",
                    help="the ThingsBoard gateway's own virtual environment")
    ap.add_argument("--install-peer", action="store_true",
                    help="create --peer-venv with uv and install the peer from PyPI")
    ap.add_argument("--peer-spec", default="thingsboard-gateway",
                    help="what to install (e.g. thingsboard-gateway==3.8.5)")
    ap.add_argument("--peer-storage", choices=("sqlite", "memory"), default="sqlite")
    ap.add_argument("--only", choices=("throughput", "latency", "kill"), action="append",
                    help="run only these scenarios (repeatable)")
    args = ap.parse_args()
    wanted = args.only or ["throughput", "latency", "kill"]

    exe, how = find_peer(args.peer_venv, args.install_peer, args.peer_spec)
    if exe is None:
        print(f"peer      ThingsBoard IoT Gateway: SKIPPED, {how}")
    else:
        print(f"peer      ThingsBoard IoT Gateway {peer_version(args.peer_venv)} ({how},"
              f" {exe}); MQTT connector, persistent session, {args.peer_storage} storage")
    print(f"machine   {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
          " (shared: figures are noisy, compare within the run)")

    makers: list[tuple[str, Make]] = [("ours", lambda r, h, u, up: Ours(r, h, u, up))]
    if exe is not None:
        makers.append(("peer", lambda r, h, u, up: Peer(r, h, u, up, exe,
                                                         args.peer_storage)))
    root = Path(tempfile.mkdtemp(prefix="bench-vs-tb-"))
    results: dict[str, dict[str, Any]] = {key: {} for key, _ in makers}
    try:
        for key, make in makers:
            label = "eldercare gateway" if key == "ours" else "ThingsBoard IoT Gateway"
            res = results[key]
            if "throughput" in wanted:
                res["rate"] = scenario(root, make, f"{key}-throughput",
                                       throughput(args.messages))
                print(f"{label:<24} throughput {res['rate']:8,.0f} readings/s"
                      f" ({args.messages:,} readings, QoS 1, 4 publishers)")
            if "latency" in wanted:
                p = percentiles(scenario(root, make, f"{key}-latency", latency(args.alarms)))
                res["lat"] = p
                print(f"{label:<24} SOS publish -> uplink broker, {args.alarms} SOS at 20/s"
                      f" + 200 readings/s: p50 {p['p50']:.2f} ms, p99 {p['p99']:.2f} ms,"
                      f" max {p['max']:.2f} ms")
            if "kill" in wanted:
                sent, lost = scenario(root, make, f"{key}-kill", killed(args.kill_sos_rate))
                res["lost"] = (sent, lost)
                print(f"{label:<24} SIGKILL at 3 s, restart 2 s later: {lost} of {sent} SOS"
                      " lost")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if results.get("peer"):
        ours, peer = results["ours"], results["peer"]
        print("ratios    (ours vs ThingsBoard IoT Gateway, same run)")
        if "rate" in ours:
            print(f"          throughput ours / peer = {ours['rate'] / peer['rate']:.2f}x")
        if "lat" in ours:
            print(f"          SOS latency peer / ours: p50 "
                  f"{peer['lat']['p50'] / ours['lat']['p50']:.1f}x, p99 "
                  f"{peer['lat']['p99'] / ours['lat']['p99']:.1f}x")
        if "lost" in ours:
            print(f"          SOS lost across SIGKILL + restart: ours {ours['lost'][1]},"
                  f" peer {peer['lost'][1]}")


if __name__ == "__main__":
    main()
