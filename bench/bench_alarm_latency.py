"""Alarm latency, device publish -> committed in the cloud, with telemetry running.

Run from the repository root::

    uv run python bench/bench_alarm_latency.py [--alarms 10000] [--alarm-rate 100]
                                               [--telemetry-rate 1000] [--quick]
                                               [--database-url postgresql://…/EMPTY_DB]

Everything runs on 127.0.0.1: a home Mosquitto and a cloud Mosquitto started here, the
gateway as its own process (``eldercare-edge run``), the cloud as its own process
(``eldercare-cloud run``, ingest only, fresh SQLite). Devices are paho clients in this
process: 20 call buttons pressing SOS at ``--alarm-rate`` and 50 vital-sign monitors
sending ``--telemetry-rate`` readings per second, all QoS 1, paced.

"Committed" is observed as the cloud's ``Ack`` naming the alarm's record id, seen on the
cloud broker: the cloud publishes it right after its SQLite commit returned (fsync), so
publish -> ack-seen bounds publish -> committed from above by one loopback hop. Publish
and ack times come from the same clock in this process.

Baseline, measured in the same run with the same paced traffic: the bare two-hop relay
through the same two brokers (device -> home broker -> relay process -> cloud broker ->
subscriber), no gateway and no cloud. Target (issue 4): p99 <= 50 ms.

``--database-url`` (an empty PostgreSQL database) measures the system a second time with
the cloud as two worker processes on PostgreSQL (each ``eldercare-cloud run`` as the
one-box run is, on the shared subscription ``$share/bench/...``, so the gateway's records
are spread over both) and prints the ratio of their p99 to one worker's on SQLite
(target, issue 14: <= 1.2).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from _broker import start_mosquitto, stop
from eldercare_protocols import native
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import Ack

GW = "gw-latency"
BUTTONS = [f"btn-{i}" for i in range(20)]
MONITORS = [f"vit-{i}" for i in range(50)]

RELAY = textwrap.dedent("""
    import sys
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    home_port, cloud_port = int(sys.argv[1]), int(sys.argv[2])
    up = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="relay-up")
    up.max_inflight_messages_set(1000)
    up.connect("127.0.0.1", cloud_port)
    up.loop_start()
    down = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="relay-down")
    def on_connect(c, u, f, rc, p):
        c.subscribe([("eldercare/+/event", 1), ("eldercare/+/telemetry", 1)])
    def on_subscribe(*a):
        print("ready", flush=True)
    def on_message(c, u, m):
        up.publish(m.topic, m.payload, qos=1)
    down.on_connect, down.on_subscribe, down.on_message = on_connect, on_subscribe, on_message
    down.connect("127.0.0.1", home_port)
    down.loop_forever()
""")


def start_home_or_cloud(root: Path, name: str, nodelay: bool
                        ) -> tuple[subprocess.Popen[bytes], int]:
    return start_mosquitto(root / name, "persistence false\n"
                           + ("set_tcp_nodelay true\n" if nodelay else ""))


def client(port: int, name: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{name}-{uuid.uuid4().hex[:6]}")
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    ready = threading.Event()
    c.on_connect = lambda *a: ready.set()
    c.connect("127.0.0.1", port)
    c.loop_start()
    if not ready.wait(10):
        raise RuntimeError(f"{name} did not connect")
    return c


def percentiles(values: list[float]) -> dict[str, float]:
    s = sorted(values)
    n = len(s)
    return {"p50": s[int(0.50 * (n - 1))], "p95": s[int(0.95 * (n - 1))],
            "p99": s[int(0.99 * (n - 1))],
            "p99.9": s[int(0.999 * (n - 1))], "max": s[-1]}


class Devices:
    """Paced QoS 1 traffic: alarms from the buttons, readings from the monitors.

    Returns {(device_id, seq): publish time} for the alarms."""

    def __init__(self, home_port: int) -> None:
        self.buttons = client(home_port, "bench-buttons")
        self.monitors = client(home_port, "bench-monitors")

    def run(self, alarms: int, alarm_rate: float, telemetry_rate: float,
            seq0: int) -> dict[tuple[str, int], float]:
        sent: dict[tuple[str, int], float] = {}
        total_rate = alarm_rate + telemetry_rate
        every = max(1, round(total_rate / alarm_rate))
        step = 1.0 / total_rate
        t_next = time.perf_counter()
        i = 0
        a = 0
        while a < alarms:
            now = time.perf_counter()
            if now < t_next:
                time.sleep(t_next - now)
            t_next += step
            seq = seq0 + i
            if i % every == 0:
                dev = BUTTONS[a % len(BUTTONS)]
                ts = datetime.now(UTC)
                payload = native.encode(native.DeviceEvent(
                    seq=seq, ts=ts, type="call_button", kind=EventKind.SOS,
                    data={"button": "red"}))
                sent[(dev, seq)] = time.time()
                self.buttons.publish(native.topic(dev, native.Channel.EVENT), payload, qos=1)
                a += 1
            else:
                dev = MONITORS[i % len(MONITORS)]
                payload = native.encode(native.DeviceTelemetry(
                    seq=seq, ts=datetime.now(UTC), type="vitals_monitor",
                    kind=EventKind.VITALS, values={"heart_rate": 60.0 + i % 30,
                                                   "spo2": 97.0}))
                self.monitors.publish(native.topic(dev, native.Channel.TELEMETRY), payload,
                                      qos=1)
            i += 1
        return sent

    def close(self) -> None:
        for c in (self.buttons, self.monitors):
            c.disconnect()
            c.loop_stop()


# -- baseline: the bare two-hop relay -----------------------------------------------------------

def baseline(home: int, cloud: int, args: argparse.Namespace) -> list[float]:
    relay = subprocess.Popen([sys.executable, "-c", RELAY, str(home), str(cloud)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert relay.stdout is not None
    if relay.stdout.readline().strip() != b"ready":
        raise RuntimeError("relay did not start")
    arrived: dict[tuple[str, int], float] = {}
    lock = threading.Lock()
    sink = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-sink")
    ready = threading.Event()

    def on_message(c: mqtt.Client, u: Any, m: mqtt.MQTTMessage) -> None:
        t = time.time()
        device_id, _ = native.parse_topic(m.topic)
        seq = json.loads(m.payload)["seq"]
        with lock:
            arrived[(device_id, seq)] = t

    sink.on_connect = lambda c, *a: c.subscribe("eldercare/+/event", qos=1)
    sink.on_subscribe = lambda *a: ready.set()
    sink.on_message = on_message
    sink.connect("127.0.0.1", cloud)
    sink.loop_start()
    devices = Devices(home)
    try:
        if not ready.wait(10):
            raise RuntimeError("sink did not subscribe")
        devices.run(200, args.alarm_rate, args.telemetry_rate, 0)  # warm-up
        sent = devices.run(args.alarms, args.alarm_rate, args.telemetry_rate, 10_000_000)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with lock:
                if all(k in arrived for k in sent):
                    break
            time.sleep(0.05)
        with lock:
            missing = [k for k in sent if k not in arrived]
            if missing:
                raise RuntimeError(f"baseline: {len(missing)} alarms never arrived")
            return [(arrived[k] - t) * 1000 for k, t in sent.items()]
    finally:
        devices.close()
        sink.disconnect()
        sink.loop_stop()
        stop(relay)


# -- the system: gateway + cloud ------------------------------------------------------------

def gateway_config(root: Path, home: int, cloud: int) -> Path:
    devices = ([{"device_id": b, "type": "call_button"} for b in BUTTONS]
               + [{"device_id": m, "type": "vitals_monitor"} for m in MONITORS])
    cfg = {"gateway_id": GW, "data_dir": str(root / "gw"), "log_level": "ERROR",
           "home_broker": {"url": f"mqtt://127.0.0.1:{home}"},
           "cloud": {"url": f"mqtt://127.0.0.1:{cloud}", "inflight_window": 5000,
                     "mqtt_inflight": 1000, "resend_after_s": 60},
           "outbox": {"telemetry_flush_s": 1.0, "max_bytes": 500_000_000},
           "home": {"resident": {"name": "测试", "address": "杭州"}, "devices": devices},
           "health_interval_s": 30}
    path = root / "edge.yaml"
    path.write_text(json.dumps(cfg))  # JSON is valid YAML
    return path


def register(target: Path | str) -> None:
    from eldercare_cloud.db import Database
    from eldercare_cloud.ingest import IngestStore

    async def go() -> None:
        async with Database(target) as db, IngestStore(db) as store:
            await store.add_gateway(GW)

    asyncio.run(go())


def query(target: Path | str, sql: str) -> list[tuple[Any, ...]]:
    """Rows through the cloud's own data layer, whichever engine it ran on."""
    from eldercare_cloud.db import Database

    async def go() -> list[tuple[Any, ...]]:
        async with Database(target) as db:
            return [tuple(r) for r in await db.conn.execute_fetchall(sql)]

    return asyncio.run(go())


def wait_text(path: Path, needle: str, limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if path.exists() and needle in path.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{needle!r} never appeared in {path}")


Stages = dict[str, list[float]]


def system(root: Path, home: int, cloud: int, args: argparse.Namespace,
           workers: int = 1, database_url: str | None = None,
           ) -> tuple[list[float], list[float], Stages]:
    """The gateway and the cloud as ``workers`` processes (several share
    ``$share/bench/...``; they need ``database_url``, else one SQLite file)."""
    root.mkdir(parents=True, exist_ok=True)
    target: Path | str = database_url or root / "cloud" / "cloud.sqlite3"
    (root / "cloud").mkdir(exist_ok=True)
    register(target)
    bindir = Path(sys.executable).parent
    env = {**os.environ, "ELDERCARE_CLOUD_ENVIRONMENT": "test",
           "ELDERCARE_CLOUD_DATA_DIR": str(root / "cloud"),
           "ELDERCARE_CLOUD_MQTT__URL": f"mqtt://127.0.0.1:{cloud}",
           "ELDERCARE_CLOUD_HTTP__ENABLED": "false"}
    if database_url:
        env["ELDERCARE_CLOUD_DB__URL"] = database_url
    clouds = []
    for i in range(workers):
        wenv = env if workers == 1 else {
            **env, "ELDERCARE_CLOUD_MQTT__CLIENT_ID": f"bench-cloud-{i}",
            "ELDERCARE_CLOUD_MQTT__SHARED_GROUP": "bench"}
        clouds.append(subprocess.Popen([str(bindir / "eldercare-cloud"), "run"], env=wenv,
                                       stdout=(root / f"cloud-{i}.log").open("wb"),
                                       stderr=subprocess.STDOUT))
    gw_proc = subprocess.Popen([str(bindir / "eldercare-edge"), "run", "--config",
                                str(gateway_config(root, home, cloud))],
                               stdout=(root / "gateway.log").open("wb"),
                               stderr=subprocess.STDOUT)
    acked: dict[str, float] = {}
    #: (device, seq) -> when the gateway's record of that SOS reached the cloud broker
    upstream: dict[tuple[str, int], float] = {}
    lock = threading.Lock()
    watcher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-ack-watch")
    ready = threading.Event()

    def on_ack(c: mqtt.Client, u: Any, m: mqtt.MQTTMessage) -> None:
        t = time.time()
        if m.topic.endswith("/up/events"):
            obj = json.loads(m.payload)
            if obj.get("kind") == "sos" and obj.get("device_seq") is not None:
                with lock:
                    upstream.setdefault((obj["device_id"], int(obj["device_seq"])), t)
            return
        ids = Ack.model_validate_json(m.payload).ids
        with lock:
            for rid in ids:
                acked.setdefault(rid, t)

    # the SOS records on the cloud broker too: device -> cloud broker is the gateway's
    # own path (no cloud ingest), the figure to hold against the bare relay
    watcher.on_connect = lambda c, *a: c.subscribe([(f"ec/v1/{GW}/down/ack", 1),
                                                    (f"ec/v1/{GW}/up/events", 1)])
    watcher.on_subscribe = lambda *a: ready.set()
    watcher.on_message = on_ack
    watcher.connect("127.0.0.1", cloud)
    watcher.loop_start()
    devices: Devices | None = None
    try:
        for i in range(workers):
            wait_text(root / f"cloud-{i}.log", "connected to")
        wait_text(root / "gateway.log", "home broker connected")
        if not ready.wait(10):
            raise RuntimeError("ack watcher did not subscribe")
        devices = Devices(home)
        devices.run(200, args.alarm_rate, args.telemetry_rate, 0)  # warm-up
        sent = devices.run(args.alarms, args.alarm_rate, args.telemetry_rate, 10_000_000)
        deadline = time.monotonic() + 120
        ids: dict[tuple[str, int], str] = {}
        while time.monotonic() < deadline:
            rows = query(target, "SELECT device_id, device_seq, id FROM events WHERE kind ="
                         " 'sos' AND device_seq >= 10000000")
            ids = {(d, s): rid for d, s, rid in rows}
            with lock:
                if len(ids) >= len(sent) and all(rid in acked for rid in ids.values()):
                    break
            time.sleep(0.2)
        if len(ids) != len(sent):
            raise RuntimeError(f"only {len(ids)} of {len(sent)} alarms committed")
        rows = query(target, "SELECT id, device_ts, gateway_ts, received_at, committed_at"
                     " FROM events WHERE kind = 'sos' AND device_seq >= 10000000")
        stages: Stages = {"device -> gateway stamped it": [],
                          "gateway stamp -> cloud received": [],
                          "cloud received -> its commit began": [],
                          "commit began -> ack seen": []}
        with lock:
            for rid, dts, gts, rts, cts in rows:
                d, g, r, c = (datetime.fromisoformat(x).timestamp()
                              for x in (dts, gts, rts, cts))
                stages["device -> gateway stamped it"].append((g - d) * 1000)
                stages["gateway stamp -> cloud received"].append((r - g) * 1000)
                stages["cloud received -> its commit began"].append((c - r) * 1000)
                stages["commit began -> ack seen"].append((acked[rid] - c) * 1000)
            return ([(acked[ids[k]] - t) * 1000 for k, t in sent.items()],
                    [(upstream[k] - t) * 1000 for k, t in sent.items() if k in upstream],
                    stages)
    finally:
        if devices is not None:
            devices.close()
        watcher.disconnect()
        watcher.loop_stop()
        stop(gw_proc)
        for c in clouds:
            stop(c)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--alarms", type=int, default=10_000)
    ap.add_argument("--alarm-rate", type=float, default=100.0, help="alarms per second")
    ap.add_argument("--telemetry-rate", type=float, default=1000.0,
                    help="telemetry messages per second alongside")
    ap.add_argument("--nodelay", action="store_true",
                    help="Mosquitto set_tcp_nodelay true on both brokers")
    ap.add_argument("--quick", action="store_true", help="2,000 alarms")
    ap.add_argument("--database-url", help="an empty PostgreSQL database: measures the "
                    "system again with two cloud workers on it, and prints the ratio of "
                    "their p99 to one worker's on SQLite")
    args = ap.parse_args()
    if args.quick:
        args.alarms = min(args.alarms, 2_000)
    print("command: " + shlex.join([Path(sys.executable).name, *sys.argv]))
    print(f"1 cloud worker on SQLite{', then 2 on PostgreSQL' if args.database_url else ''};"
          f" load average {os.getloadavg()[0]:.1f}")
    print(f"load: {args.alarms:,} SOS alarms at {args.alarm_rate:g}/s from {len(BUTTONS)} "
          f"buttons with {args.telemetry_rate:g} telemetry msgs/s from {len(MONITORS)} "
          f"monitors, QoS 1; Mosquitto set_tcp_nodelay {'on' if args.nodelay else 'off'}; "
          f"{os.cpu_count()} CPUs")
    root = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    home, home_port = start_home_or_cloud(root, "home", args.nodelay)
    cloud, cloud_port = start_home_or_cloud(root, "cloud", args.nodelay)
    pg: tuple[dict[str, float], dict[str, float], Stages] | None = None
    try:
        base = percentiles(baseline(home_port, cloud_port, args))
        latencies, upstream, stages = system(root / "sqlite-1", home_port, cloud_port, args)
        got = percentiles(latencies)
        up = percentiles(upstream)
        if args.database_url:
            pg_lat, pg_up, pg_stages = system(root / "postgres-2", home_port, cloud_port,
                                              args, 2, args.database_url)
            pg = percentiles(pg_lat), percentiles(pg_up), pg_stages
    finally:
        stop(home)
        stop(cloud)
        shutil.rmtree(root, ignore_errors=True)

    def row(name: str, p: dict[str, float]) -> str:
        return (f"{name:<44} p50 {p['p50']:7.2f} ms   p95 {p['p95']:7.2f} ms   "
                f"p99 {p['p99']:7.2f} ms   "
                f"p99.9 {p['p99.9']:7.2f} ms   max {p['max']:7.2f} ms")

    print(row("device -> gateway -> cloud committed (acked)", got))
    print(row("device -> gateway -> cloud broker", up))
    print(row("baseline: bare two-hop relay", base))
    print(f"{'gateway own (to cloud broker) - relay':<44} p50 {up['p50'] - base['p50']:7.2f} ms"
          f"   p99 {up['p99'] - base['p99']:7.2f} ms   ratio p99"
          f" {up['p99'] / base['p99']:.1f}x")
    print(f"{'ratio system / baseline':<44} p50 {got['p50'] / base['p50']:7.1f}x      "
          f"p99 {got['p99'] / base['p99']:7.1f}x      p99.9 {got['p99.9'] / base['p99.9']:7.1f}x")
    print("where the time goes (timestamps of the stored alarm, same host clock):")
    for name, values in stages.items():
        print(row(f"  {name}", percentiles(values)))
    ok = got["p99"] <= 50
    print(f"target p99 <= 50 ms: {'met' if ok else 'MISSED'}"
          + ("" if ok else f" by {got['p99'] - 50:.1f} ms"))
    if pg is not None:
        pg_got, pg_up, pg_stages = pg
        print("the same with two cloud workers on PostgreSQL ($share/bench):")
        print(row("device -> gateway -> cloud committed (acked)", pg_got))
        print(row("device -> gateway -> cloud broker", pg_up))
        for name, values in pg_stages.items():
            print(row(f"  {name}", percentiles(values)))
        ratio = pg_got["p99"] / got["p99"]
        print(f"p99 2 workers on PostgreSQL / 1 worker on SQLite: {pg_got['p99']:.2f} / "
              f"{got['p99']:.2f} ms = {ratio:.2f} (target <= 1.2: "
              f"{'met' if ratio <= 1.2 else 'MISSED'}); p50 "
              f"{pg_got['p50'] / got['p50']:.2f}")


if __name__ == "__main__":
    main()
