"""Gateway benchmark: ingest rate, CPU and RSS, and backlog drain after a cloud outage.

Run from the repository root::

    uv run python bench/bench_gateway.py [--messages 40000] [--backlog 20000] [--drains 3]
    uv run --with py-spy python bench/bench_gateway.py --messages 0 --profile drain.txt

``--messages 0`` skips the ingest figure; ``--drains N`` repeats the outage and drain
(median, best and worst are printed: the figure is noisy on a shared machine, the
gateway's CPU per record is the steadier one); ``--profile FILE`` /
``--profile-ingest FILE`` record the gateway process with py-spy (collapsed stacks).

Everything runs on 127.0.0.1: two Mosquitto brokers started here (home and cloud),
the gateway as its own process (``eldercare-edge run``) so its CPU and memory are
its own, paho clients as devices, and a stand-in cloud that acks every record in
batches (as the cloud ingest does after its commit).

Baseline, measured in the same run: a bare QoS 1 relay through Mosquitto (publisher →
broker → relay client → broker → subscriber), the floor any gateway pays for two hops.
Targets (issue 4): ingest >= 2,000 device msg/s within one core, RSS <= 150 MB;
backlog drain >= 5,000 records/s with alarms first.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from _broker import prepare
from eldercare_protocols import native
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import CLOUD_SUBSCRIPTION, Ack, encode

GW = "gw-bench"
CLK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- infrastructure

class Broker:
    def __init__(self, root: Path, name: str, persistent: bool = False) -> None:
        self.dir = root / name
        # the cloud broker keeps sessions across its restart, as a production one does
        keep = (f"user {getpass.getuser()}\npersistence true\n"
                f"persistence_location {self.dir}/\n") if persistent else "persistence false\n"
        self.broker = prepare(self.dir, keep)
        self.port = self.broker.port

    def start(self) -> None:
        self.broker.start()

    def stop(self) -> None:
        self.broker.stop(5)


def client(port: int, cid: str, inflight: int = 1000) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid)
    c.max_inflight_messages_set(inflight)
    c.max_queued_messages_set(0)
    ready = threading.Event()
    c.on_connect = lambda *a: ready.set()
    c.connect("127.0.0.1", port)
    c.loop_start()
    if not ready.wait(10):
        raise RuntimeError(f"{cid} did not connect")
    return c


def wait_until(cond: Any, limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not cond():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.01)


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def proc_mem_mb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


# ---------------------------------------------------------------- baseline

def baseline_relay(port: int, n: int) -> float:
    """msgs/s through publisher → Mosquitto → relay client → Mosquitto → subscriber, QoS 1."""
    got = threading.Event()
    count = [0]
    sink = client(port, "bl-sink")
    relay = client(port, "bl-relay")
    done_sub = threading.Event()

    def on_sink(c: mqtt.Client, u: Any, m: mqtt.MQTTMessage) -> None:
        count[0] += 1
        if count[0] >= n:
            got.set()

    def on_relay(c: mqtt.Client, u: Any, m: mqtt.MQTTMessage) -> None:
        c.publish("bench/out", m.payload, qos=1)

    sink.on_message = on_sink
    relay.on_message = on_relay
    sink.on_subscribe = lambda *a: done_sub.set()
    sink.subscribe("bench/out", qos=1)
    done_sub.wait(5)
    done_sub.clear()
    relay.on_subscribe = lambda *a: done_sub.set()
    relay.subscribe("bench/in", qos=1)
    done_sub.wait(5)
    pub = client(port, "bl-pub")
    payload = b"x" * 180
    t0 = time.perf_counter()
    for _ in range(n):
        pub.publish("bench/in", payload, qos=1)
    if not got.wait(120):
        raise RuntimeError(f"baseline relay: only {count[0]} of {n} arrived")
    dt = time.perf_counter() - t0
    for c in (sink, relay, pub):
        c.disconnect()
        c.loop_stop()
    return n / dt


# ---------------------------------------------------------------- stand-in cloud

@dataclass
class Cloud:
    """Acks every record in batches; remembers the order records first arrived in."""

    port: int
    records: int = 0
    readings: int = 0
    order: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    first_at: float | None = None
    last_at: float = 0.0

    def start(self) -> None:
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-cloud",
                             clean_session=False)
        self.c.reconnect_delay_set(1, 1)
        self.c.max_inflight_messages_set(1000)
        ready = threading.Event()

        def on_connect(c: mqtt.Client, *a: Any) -> None:
            c.subscribe(CLOUD_SUBSCRIPTION, qos=1)

        self.c.on_connect = on_connect
        self.c.on_subscribe = lambda *a: ready.set()
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", self.port)
        self.c.loop_start()
        if not ready.wait(10):
            raise RuntimeError("cloud did not subscribe")
        self._t = threading.Thread(target=self._acker, daemon=True)
        self._t.start()

    def _on_message(self, c: mqtt.Client, u: Any, m: mqtt.MQTTMessage) -> None:
        if "/up/state" in m.topic:
            return
        obj = json.loads(m.payload)
        rid = obj["id"]
        with self._lock:
            if rid not in self.seen:
                self.seen.add(rid)
                self.records += 1
                self.last_at = time.perf_counter()
                if self.first_at is None:
                    self.first_at = self.last_at
                kind = obj.get("type")
                if kind == "telemetry":
                    self.readings += len(obj["records"])
                    self.order.append("telemetry")
                elif kind == "event":
                    self.readings += 1
                    lane = "alarm" if obj["kind"] in {"sos", "fall", "gas_alarm",
                                                      "smoke_alarm", "vitals_alarm"} \
                        and not obj.get("test") else "event"
                    self.order.append(lane)
                else:
                    self.order.append(kind)
            self._pending.append(rid)

    def _acker(self) -> None:
        while not self._stop.wait(0.005):
            with self._lock:
                ids, self._pending = self._pending, []
            for i in range(0, len(ids), 2000):
                ack = Ack(ids=ids[i:i + 2000], committed_at=datetime.now(UTC))
                self.c.publish(f"ec/v1/{GW}/down/ack", encode(ack), qos=1)

    def stop(self) -> None:
        self._stop.set()
        self.c.disconnect()
        self.c.loop_stop()


# ---------------------------------------------------------------- devices

def device_stream(n: int, alarms: int, seed_seq: int = 0, mix: str = "default"
                  ) -> Iterator[tuple[str, bytes]]:
    """Device messages, made as they are published (a million of them built up front cost
    the bench ~1 GB). ``default``: vital-sign telemetry from 10 monitors (3 in 4, batched
    200 to a record by the gateway), door events from 5 doors, and alarms; ``events``: door
    events and alarms only, one outbox record per message (a backlog of a million records
    from a million messages instead of four)."""
    now = datetime.now(UTC)
    door_state: dict[str, bool] = {}
    alarm_every = max(1, n // max(1, alarms)) if alarms else 0
    for i in range(n):
        seq = seed_seq + i
        if alarm_every and i % alarm_every == 0:
            dev = f"btn-{i % 5}"
            yield (native.topic(dev, native.Channel.EVENT), native.encode(
                native.DeviceEvent(seq=seq, ts=now, type="call_button", kind=EventKind.SOS)))
        elif mix == "events" or i % 4 == 0:
            dev = f"door-{i % 5}"
            door_state[dev] = not door_state.get(dev, False)
            kind = EventKind.DOOR_OPEN if door_state[dev] else EventKind.DOOR_CLOSE
            yield (native.topic(dev, native.Channel.EVENT), native.encode(
                native.DeviceEvent(seq=seq, ts=now, type="door_contact", kind=kind)))
        else:
            dev = f"vit-{i % 10}"
            yield (native.topic(dev, native.Channel.TELEMETRY), native.encode(
                native.DeviceTelemetry(seq=seq, ts=now, type="vitals_monitor",
                                       kind=EventKind.VITALS,
                                       values={"heart_rate": 60 + i % 30, "spo2": 97})))


def device_messages(n: int, alarms: int, seed_seq: int = 0) -> list[tuple[str, bytes]]:
    return list(device_stream(n, alarms, seed_seq))


class Devices:
    """Publishers for the home broker: QoS 1, round robin over a few clients."""

    def __init__(self, port: int, clients_n: int = 4) -> None:
        self.cs = [client(port, f"bench-dev-{i}") for i in range(clients_n)]
        self.sent = 0

    def publish(self, msgs: Iterable[tuple[str, bytes]]) -> int:
        """Publish and wait for the broker's PUBACKs; returns how many were published."""
        last: list[mqtt.MQTTMessageInfo] = []
        n = 0
        cs = self.cs
        for topic, payload in msgs:
            info = cs[n % len(cs)].publish(topic, payload, qos=1)
            n += 1
            if n % 5000 == 0:   # paho keeps every unacked message: keep that bounded
                info.wait_for_publish(60)
            last = [info, *last[:len(cs) - 1]]
        for info in last:
            info.wait_for_publish(60)
        self.sent += n
        return n

    def close(self) -> None:
        for c in self.cs:
            c.disconnect()
            c.loop_stop()


def publish_all(port: int, msgs: Iterable[tuple[str, bytes]], clients_n: int = 4) -> None:
    devices = Devices(port, clients_n)
    try:
        devices.publish(msgs)
    finally:
        devices.close()


# ---------------------------------------------------------------- the gateway process

def write_config(root: Path, home: int, cloud: int, window: int = 5000,
                 read_batch: int = 1000, mqtt_inflight: int | None = None,
                 inflight_max_bytes: int | None = None) -> Path:
    devices = ([{"device_id": f"btn-{i}", "type": "call_button"} for i in range(5)]
               + [{"device_id": f"door-{i}", "type": "door_contact"} for i in range(5)]
               + [{"device_id": f"vit-{i}", "type": "vitals_monitor"} for i in range(10)])
    cfg: dict[str, Any] = {
        "gateway_id": GW, "data_dir": str(root / "gw"), "log_level": "ERROR",
        "home_broker": {"url": f"mqtt://127.0.0.1:{home}", "reconnect_min_s": 1,
                        "reconnect_max_s": 1},
        "cloud": {"url": f"mqtt://127.0.0.1:{cloud}", "reconnect_min_s": 1,
                  "reconnect_max_s": 1, "inflight_window": window, "read_batch": read_batch,
                  "resend_after_s": 60},
        "outbox": {"telemetry_flush_s": 0.2, "max_bytes": 4_000_000_000},
        "home": {"resident": {"name": "测试", "address": "杭州"}, "devices": devices,
                 "extra": {"routine": {"door_open_max_s": 3600}}},
    }
    if mqtt_inflight is not None:
        cfg["cloud"]["mqtt_inflight"] = mqtt_inflight
    if inflight_max_bytes is not None:
        cfg["cloud"]["inflight_max_bytes"] = inflight_max_bytes
    path = root / "edge.json.yaml"
    path.write_text(json.dumps(cfg))  # JSON is valid YAML
    return path


def start_gateway(config: Path) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).parent / "eldercare-edge"
    proc = subprocess.Popen([str(exe), "run", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("gateway exited early")
        if b"home broker connected" in line:
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep draining
            return proc
    raise RuntimeError("gateway did not connect to the home broker")


def outbox_rows(root: Path) -> dict[str, int]:
    db = sqlite3.connect(f"file:{root / 'gw' / 'outbox.sqlite'}?mode=ro", uri=True, timeout=5)
    try:
        rows = db.execute("SELECT lane, COUNT(*) FROM outbox GROUP BY lane").fetchall()
    finally:
        db.close()
    return {str(lane): int(n) for lane, n in rows}


def outbox_items(root: Path) -> tuple[int, int]:
    """(records, device readings) in the outbox: a telemetry record holds many readings."""
    db = sqlite3.connect(f"file:{root / 'gw' / 'outbox.sqlite'}?mode=ro", uri=True, timeout=5)
    try:
        row = db.execute("SELECT COUNT(*), COALESCE(SUM(items), 0) FROM outbox").fetchone()
    finally:
        db.close()
    return int(row[0]), int(row[1])


def reset_peak(pid: int) -> None:
    """Reset the process's VmHWM (Linux: clear_refs 5), so each phase has its own peak."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


class RssSampler:
    """Samples the gateway's RSS and the outbox depth every ``every`` seconds."""

    def __init__(self, pid: int, root: Path, every: float = 0.5) -> None:
        self.pid, self.root, self.every = pid, root, every
        self.samples: list[tuple[float, int, float]] = []   # (t, records, rss MB)
        self.peak = 0.0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                records = outbox_items(self.root)[0]
            except sqlite3.Error:
                continue
            rss = proc_mem_mb(self.pid, "VmRSS")
            self.peak = max(self.peak, rss, proc_mem_mb(self.pid, "VmHWM"))
            self.samples.append((time.perf_counter(), records, rss))

    def stop(self) -> None:
        self._stop.set()
        self._t.join(5)

    def at_depths(self, depths: list[int]) -> list[tuple[int, int, float]]:
        """For each depth, the first sample at or past it: (depth, records, rss MB)."""
        out = []
        for d in depths:
            hit = next(((rec, rss) for _, rec, rss in self.samples if rec >= d), None)
            if hit is not None:
                out.append((d, hit[0], hit[1]))
        return out


def build_backlog(gw: subprocess.Popen[bytes], root: Path, home: Broker,
                  args: argparse.Namespace, run: int) -> tuple[int, float]:
    """Devices talk while the cloud is away. ``paced``: in chunks, each stored before the
    next is published (a home's devices never outrun their gateway: the backlog is on disk,
    not in memory); ``flood``: everything at once, as fast as four publishers go (how the
    bench built it before: the gateway's inbox then holds the lag, bounded by
    ``inbox_max`` / ``inbox_max_bytes``, and drops past them). Returns (device messages
    published, seconds)."""
    msgs = device_stream(args.backlog, args.alarms, 10_000_000 * (run + 1), args.mix)
    _, readings0 = outbox_items(root)
    devices = Devices(home.port)
    t0 = time.perf_counter()
    try:
        if args.backlog_mode == "flood":
            devices.publish(msgs)
        else:
            while devices.publish(islice(msgs, args.chunk)):
                # stored (the telemetry batcher flushes within 0.2 s) before the next chunk
                want = readings0 + devices.sent
                deadline = time.monotonic() + 120
                while outbox_items(root)[1] < want and time.monotonic() < deadline:
                    time.sleep(0.05)
    finally:
        devices.close()
    # wait for the gateway to have stored everything (the rows stop growing)
    last, still = -1, 0
    while still < 5:
        rows = outbox_items(root)[1]
        still = still + 1 if rows == last else 0
        last = rows
        time.sleep(0.2)
    return devices.sent, time.perf_counter() - t0


def start_profiler(pid: int, out: Path) -> subprocess.Popen[bytes]:
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    spy = subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", "250", "--format",
                            "raw", "--output", str(out), "--nonblocking"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached before the broker comes back
    return spy


def stop_profiler(spy: subprocess.Popen[bytes], out: Path, phase: str) -> None:
    spy.send_signal(signal.SIGINT)
    try:
        spy.wait(20)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait(5)
    print(f"profile   py-spy collapsed stacks of the gateway during the {phase}: {out}")


def ingest(gw: subprocess.Popen[bytes], port: int, cloud: Cloud, n: int, base: float) -> None:
    msgs = device_messages(n, alarms=n // 200)
    expected = len(msgs)
    cpu0, t0 = proc_cpu_s(gw.pid), time.perf_counter()
    publish_all(port, msgs)
    wait_until(lambda: cloud.readings >= expected, 300, "every device message uplinked")
    dt = time.perf_counter() - t0
    cpu = proc_cpu_s(gw.pid) - cpu0
    rate = expected / dt
    rss = proc_mem_mb(gw.pid, "VmHWM")
    print(f"ingest    {expected:,} device msgs in {dt:.2f}s = {rate:,.0f} msg/s "
          f"(target >= 2,000); gateway CPU {cpu / dt * 100:.0f}% of one core; "
          f"peak RSS {rss:.0f} MB (target <= 150)")
    print(f"          ratio ingest / baseline relay = {rate / base:.2f}")


def drain_once(gw: subprocess.Popen[bytes], root: Path, home: Broker, cloud_b: Broker,
               cloud: Cloud, args: argparse.Namespace, run: int, base: float) -> float:
    """One outage: the cloud broker goes away, devices keep talking, the broker comes back;
    returns records/s from the first to the last record arriving at the stand-in cloud."""
    cloud_b.stop()
    mark_records = cloud.records
    reset_peak(gw.pid)
    sampler = RssSampler(gw.pid, root)
    rss0 = proc_mem_mb(gw.pid, "VmRSS")
    _, readings0 = outbox_items(root)
    sent, took = build_backlog(gw, root, home, args, run)
    depth = outbox_rows(root)
    records, readings = outbox_items(root)
    sampler.stop()
    build_peak = max(sampler.peak, proc_mem_mb(gw.pid, "VmHWM"))
    print(f"outage {run + 1}  {sent:,} device msgs ({args.mix} mix, {args.backlog_mode}) in"
          f" {took:.1f}s = {sent / took:,.0f} msg/s stored as {records:,} records holding"
          f" {readings - readings0:,} readings ({sent - (readings - readings0):,} not stored)")
    marks = sorted({*(d for d in (100_000, 250_000, 500_000, 750_000, 1_000_000)
                      if d <= records), max(1, records // 10), records})
    print("          gateway RSS by backlog: " + ", ".join(
        f"{rec:,} records {rss:.0f} MB" for _, rec, rss in sampler.at_depths(marks))
        + f" (at the start {rss0:.0f} MB); peak while the backlog built {build_peak:.0f} MB")
    reset_peak(gw.pid)
    cloud.order.clear()
    cloud.first_at = None
    spy = start_profiler(gw.pid, args.profile) if args.profile and run == 0 else None
    cloud_b.start()
    assert cloud_b.broker.pid is not None
    t1 = time.perf_counter()
    cpu_gw, cpu_me = proc_cpu_s(gw.pid), time.process_time()
    wait_until(lambda: cloud.records - mark_records >= records, max(300, records / 500),
               "backlog drained")
    total = time.perf_counter() - t1
    cpu_gw, cpu_me = proc_cpu_s(gw.pid) - cpu_gw, time.process_time() - cpu_me
    cpu_broker = proc_cpu_s(cloud_b.broker.pid)
    if spy is not None:
        stop_profiler(spy, args.profile, "drain")
    assert cloud.first_at is not None
    drain = cloud.last_at - cloud.first_at
    order = cloud.order[:]
    n_alarms = order.count("alarm")
    alarms_first = all(k == "alarm" for k in order[:n_alarms])
    last_alarm = max((i for i, k in enumerate(order) if k == "alarm"), default=-1)
    drain_rate = records / drain
    print(f"drain {run + 1}   {records:,} records ({depth}) in {drain:.2f}s from the first to"
          f" the last arrival = {drain_rate:,.0f} records/s (target >= 5,000); "
          f"{total:.2f}s including broker start and reconnect")
    print(f"          alarms first: {alarms_first} (last alarm at position "
          f"{last_alarm + 1} of {len(order)}, {n_alarms} alarms)")
    print(f"          CPU over {total:.2f}s: gateway {cpu_gw / total * 100:.0f}% of one core"
          f" ({cpu_gw / records * 1e6:.0f} us/record), cloud broker"
          f" {cpu_broker / total * 100:.0f}%, stand-in cloud {cpu_me / total * 100:.0f}%"
          f" ({os.cpu_count()} cores)")
    print(f"          ratio drain / baseline relay = {drain_rate / base:.2f}")
    wait_until(lambda: sum(outbox_rows(root).values()) == 0, 120, "outbox acked empty")
    # VmHWM is the process's peak since it started (run with --messages 0 for the outage
    # and drain alone): the bound is RSS <= 150 MB however large the backlog
    print(f"          gateway peak RSS during the drain {proc_mem_mb(gw.pid, 'VmHWM'):.0f} MB,"
          f" over the whole outage {max(build_peak, proc_mem_mb(gw.pid, 'VmHWM')):.0f} MB,"
          f" now {proc_mem_mb(gw.pid, 'VmRSS'):.0f} MB (target <= 150 MB)")
    return drain_rate


# ---------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=40_000,
                    help="device messages for ingest (0: skip the ingest figure)")
    ap.add_argument("--backlog", type=int, default=20_000, help="device messages in the outage")
    ap.add_argument("--alarms", type=int, default=500, help="alarms among the outage backlog")
    ap.add_argument("--drains", type=int, default=3, help="outage + drain cycles")
    ap.add_argument("--mix", choices=("default", "events"), default="default",
                    help="outage messages: default (3 in 4 telemetry, batched by the"
                         " gateway) or events (one record per message)")
    ap.add_argument("--backlog-mode", choices=("paced", "flood"), default="paced",
                    help="paced: devices never outrun the gateway (the backlog is on disk);"
                         " flood: all at once (the previous bench: the lag sits in the"
                         " gateway's inbox)")
    ap.add_argument("--chunk", type=int, default=20_000,
                    help="paced: device messages published per step")
    ap.add_argument("--inflight-max-bytes", type=int, default=None,
                    help="cloud.inflight_max_bytes (default: the gateway's own default)")
    ap.add_argument("--window", type=int, default=5000, help="cloud.inflight_window")
    ap.add_argument("--read-batch", type=int, default=1000, help="cloud.read_batch")
    ap.add_argument("--mqtt-inflight", type=int, default=None,
                    help="cloud.mqtt_inflight (default: the gateway's own default)")
    ap.add_argument("--profile", type=Path, default=None,
                    help="record the gateway with py-spy during the drain into this file"
                         " (collapsed stacks; run with `uv run --with py-spy ...`)")
    ap.add_argument("--profile-ingest", type=Path, default=None,
                    help="the same for the ingest phase")
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-gw-"))
    home, cloud_b = Broker(root, "home"), Broker(root, "cloud", persistent=True)
    home.start()
    cloud_b.start()
    gw: subprocess.Popen[bytes] | None = None
    cloud = Cloud(cloud_b.port)
    try:
        base = baseline_relay(home.port, args.messages or 20_000)
        print(f"baseline  bare QoS 1 relay through Mosquitto: {base:,.0f} msg/s")

        cloud.start()
        gw = start_gateway(write_config(root, home.port, cloud_b.port, args.window,
                                        args.read_batch, args.mqtt_inflight,
                                        args.inflight_max_bytes))
        wait_until(lambda: cloud.c.is_connected(), 10, "cloud")
        if args.messages:
            spy = start_profiler(gw.pid, args.profile_ingest) if args.profile_ingest else None
            ingest(gw, home.port, cloud, args.messages, base)
            if spy is not None:
                stop_profiler(spy, args.profile_ingest, "ingest")
        wait_until(lambda: sum(outbox_rows(root).values()) == 0, 60, "outbox drained")

        rates = [drain_once(gw, root, home, cloud_b, cloud, args, run, base)
                 for run in range(args.drains)]
        rates.sort()
        if rates:
            print(f"drains    {len(rates)} runs: median {rates[len(rates) // 2]:,.0f}, best"
                  f" {rates[-1]:,.0f}, worst {rates[0]:,.0f} records/s (target >= 5,000);"
                  f" median / baseline relay = {rates[len(rates) // 2] / base:.2f}")
    finally:
        if gw is not None and gw.poll() is None:
            gw.send_signal(signal.SIGTERM)
            try:
                gw.wait(20)
            except subprocess.TimeoutExpired:
                gw.kill()
        if hasattr(cloud, "c"):
            cloud.stop()
        home.stop()
        cloud_b.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
