"""10,000 simulated gateways in one process against the cloud's ingest (issue 14).

Run from the repository root::

    uv run python bench/bench_fleet_10k.py [--gateways 10000] [--rates auto]
        [--duration 10] [--setups relay,sqlite,pg1,pg2]
        [--database-url postgresql://USER@HOST:PORT/EMPTY_DB]

Everything runs on 127.0.0.1: a Mosquitto started here (``max_connections -1``, the
cloud's queues as every shipped config sizes them), the cloud as ``eldercare-cloud run
--role ingest`` worker processes on ``$share/bench/...``, and one load generator holding
every gateway's own MQTT connection in one asyncio loop (gmqtt: pure asyncio transports,
no thread or select loop per client, so 10,000 connections cost one event loop; on uvloop
when it is installed, as the bench dependency group installs it). The file-descriptor
limit of this process is raised to its hard limit first.

The rate. ``--rates auto`` (the default) starts at the realistic rate of the fleet at the
morning peak, derived from the same figures as the paper model in cloud/README.md: 219
device messages per home per hour (bench/bench_sim_fleet.py, every device message
forwarded as its own record) plus one health report per ``health_interval_s`` (the
edge's default, 60 s): 0.0775 msg/s per gateway, 775 msg/s for 10,000. It then steps up
(1,500, 2,000, 3,000, 4,000, 6,000 msg/s) and stops a run at its first step that is not
sustained. The message mix follows the same model: 21.5 % health reports (no id, no
Ack), the device messages as telemetry (one reading per record) and door/motion events.

Each gateway sends the real uplink payloads (``eldercare_protocols.uplink`` models,
encoded as the edge encodes them once per step; each message fills its ids and sequence
numbers into that encoding) on its own topic: a birth (retained), then its share of the
step's rate, and waits for the cloud's Ack on its down topic. One scheduler loop paces
every gateway (no task per gateway). Meanwhile an SOS from a random gateway every 50 ms
(latency: publish to the Ack naming it, at the gateway), and mid-step some gateways
vanish without DISCONNECT (their Last Will; latency: the socket's abort to
``online = 0`` in the database, polled every 10 ms). The bench broker has no ACL (the
gateways need no per-gateway credentials here; test_broker_security.py covers the
dynamic-security ACLs).

Per run and step: records sent, acked, lost (unacked ``--drain`` seconds after the step:
lost, or still queued), the lag at the end of the step, SOS p50/p99, offline-after-Will
max, and the CPU (share of one core) of the cloud workers (or the relay), the broker and
the generator itself. A step is "sustained" when the generator offered at least 95 % of
the rate, nothing was left unacked and the lag at the end was under one second.
Runs: the bare QoS 1 relay (baseline, echoing each message to the down topic; alone it
measures the generator's own ceiling: ``--setups relay --rates 2000,4000,6000,8000``),
one worker on SQLite, and with ``--database-url`` one and two workers on PostgreSQL; the
summary prints the ratio of SOS p99 of two workers on PostgreSQL to one worker on SQLite
at the first (realistic) step.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import re
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gmqtt import Client, Message
from gmqtt.mqtt.constants import MQTTv311

from _broker import Mosquitto, start_mosquitto, stop
from bench_cloud_ingest import RELAY, proc_cpu_s, start_cloud, wait_log
from eldercare_edge.settings import EdgeSettings
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import Down as DownChannel
from eldercare_protocols.uplink import (
    EventEnvelope,
    GatewayState,
    TelemetryBatch,
    TelemetryRecord,
    Up,
    down_topic,
    encode,
    up_topic,
)

SOS_EVERY_S = 0.05
CONNECT_CONCURRENCY = 200

#: the paper model's inputs (cloud/README.md "Paper model"): device messages per home in
#: the morning peak hour, measured by bench/bench_sim_fleet.py (firmware-sim/README.md)
DEVICE_MSGS_PER_HOUR = 219
#: the edge's health report interval (default of ``health_interval_s``)
HEALTH_INTERVAL_S = float(EdgeSettings.model_fields["health_interval_s"].default)
DEVICE_RATE = DEVICE_MSGS_PER_HOUR / 3600
HEALTH_RATE = 1 / HEALTH_INTERVAL_S
#: the device messages' split between telemetry (one reading per record, as the paper
#: model's upper bound) and door/motion events, as this bench has always sent them
TELEMETRY_SHARE_OF_DEVICE = 15 / 23
STEPS_ABOVE = (1500, 2000, 3000, 4000, 6000)

IDS_RE = re.compile(rb'"ids":(\[[^\]]*\])')
ID_RE = re.compile(rb'"id":"([^"]+)"')

# sentinels filled into the one encoding per step (see Templates)
_GW = "GWSENTINEL"
_RID = "RIDSENTINEL"
_SEQ = 987_654_321


def realistic_rate(gateways: int) -> float:
    return gateways * (DEVICE_RATE + HEALTH_RATE)


def raise_fd_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def _template(payload: bytes) -> str:
    """A %-format string from one encoding: the sentinels become named fields."""
    text = payload.decode().replace("%", "%%")
    for sentinel, slot in ((_RID, "%(rid)s"), (_GW, "%(gw)s"),
                           (f'"seq":{_SEQ}', '"seq":%(seq)d'),
                           (f'"device_seq":{_SEQ}', '"device_seq":%(seq)d'),
                           (f'"uptime_s":{float(_SEQ)}', '"uptime_s":%(seq)d.0'),
                           (f'"sent":{_SEQ}', '"sent":%(seq)d')):
        text = text.replace(sentinel, slot)
    return text


class Templates:
    """The real uplink messages, encoded by the protocols package once per step; each
    message only fills in its gateway, record id and sequence numbers (pydantic's
    validation and serialisation cost ~60 us a message, more than the publish)."""

    def __init__(self, now: datetime) -> None:
        rid, seq = f"{_GW}-{_RID}", _SEQ
        self.telemetry = _template(encode(TelemetryBatch(
            id=rid, seq=seq, gateway_id=_GW, gateway_ts=now,
            records=[TelemetryRecord(device_id=f"{_GW}-vit", kind=EventKind.VITALS, ts=now,
                                     device_seq=seq, values={"heart_rate": 61.0,
                                                             "spo2": 97.0})])))
        self.door = _template(encode(EventEnvelope(
            id=rid, seq=seq, gateway_id=_GW, gateway_ts=now, device_id=f"{_GW}-door",
            kind=EventKind.DOOR_OPEN, device_ts=now, device_seq=seq)))
        self.motion = _template(encode(EventEnvelope(
            id=rid, seq=seq, gateway_id=_GW, gateway_ts=now, device_id=f"{_GW}-pir",
            kind=EventKind.MOTION, device_ts=now, device_seq=seq)))
        self.sos = _template(encode(EventEnvelope(
            id=rid, seq=seq, gateway_id=_GW, gateway_ts=now, device_id=f"{_GW}-btn",
            kind=EventKind.SOS, device_ts=now, device_seq=seq, data={"button": "red"})))
        self.health = _template(encode(GatewayState(
            gateway_id=_GW, status="health", ts=now, uptime_s=float(seq),
            counters={"sent": seq})))

    @staticmethod
    def fill(template: str, gw: str, seq: int) -> tuple[str, bytes]:
        rid = f"{gw}-{seq:08d}"
        return rid, (template % {"gw": gw, "rid": f"{seq:08d}", "seq": seq}).encode()


def message_mix(n: int = 400, seed: int = 14) -> list[str]:
    """The kinds of ``n`` consecutive messages, in the paper model's proportions."""
    health = round(n * HEALTH_RATE / (DEVICE_RATE + HEALTH_RATE))
    telemetry = round((n - health) * TELEMETRY_SHARE_OF_DEVICE)
    events = n - health - telemetry
    kinds = (["health"] * health + ["telemetry"] * telemetry
             + ["door", "motion"] * (events // 2) + ["door"] * (events % 2))
    random.Random(seed).shuffle(kinds)
    return kinds


@dataclass
class Gw:
    gateway_id: str
    client: Client
    topics: dict[str, str]
    seq: int = 0
    alive: bool = True

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


@dataclass
class Tally:
    sent: dict[str, float] = field(default_factory=dict)
    acked: set[str] = field(default_factory=set)
    sos: dict[str, float] = field(default_factory=dict)
    sos_latency: list[float] = field(default_factory=list)
    #: wall-clock times of each SOS's publish and Ack, to set against the times the
    #: cloud stored with it (received, commit began)
    sos_wall: dict[str, tuple[float, float]] = field(default_factory=dict)
    unnamed_acks: int = 0


class Fleet:
    def __init__(self, port: int, ids: list[str], reserve: int) -> None:
        self.port = port
        self.ids = ids
        #: the last ``reserve`` gateways send nothing but their birth: each step's Last
        #: Wills come from them, a fresh few each time (a vanished gateway's unacked
        #: records would be resent by a real gateway, not by this generator)
        self.reserve = reserve
        self.gws: list[Gw] = []
        self.tally = Tally()
        self.templates = Templates(datetime.now(UTC))
        self.mix = message_mix()

    async def connect(self) -> None:
        sem = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one(gateway_id: str) -> Gw:
            will = Message(up_topic(gateway_id, Up.STATE),
                           encode(GatewayState(gateway_id=gateway_id, status="offline")),
                           qos=1, retain=True)
            client = Client(f"{gateway_id}-load", will_message=will)
            client.on_message = self._on_message
            async with sem:
                await client.connect("127.0.0.1", self.port, keepalive=120, version=MQTTv311)
            client.subscribe(down_topic(gateway_id, DownChannel.ACK), qos=1)
            topics = {"telemetry": up_topic(gateway_id, Up.TELEMETRY),
                      "door": up_topic(gateway_id, Up.EVENTS),
                      "motion": up_topic(gateway_id, Up.EVENTS),
                      "sos": up_topic(gateway_id, Up.EVENTS),
                      "health": up_topic(gateway_id, Up.STATE)}
            return Gw(gateway_id, client, topics)

        self.gws = list(await asyncio.gather(*(one(g) for g in self.ids)))

    def _on_message(self, client: Client, topic: str, payload: bytes, qos: int,
                    properties: object) -> int:
        t = time.perf_counter()
        ids: list[str]
        found = IDS_RE.search(payload)
        if found is not None:  # the cloud's Ack
            ids = json.loads(found.group(1))
        else:  # the relay echoes the uplink message itself
            one = ID_RE.search(payload)
            if one is None:
                self.tally.unnamed_acks += 1
                return 0
            ids = [one.group(1).decode()]
        tally = self.tally
        for rid in ids:
            if rid in tally.acked:
                continue
            tally.acked.add(rid)
            sent = tally.sos.pop(rid, None)
            if sent is not None:
                tally.sos_latency.append(t - sent)
                tally.sos_wall[rid] = (tally.sos_wall[rid][0], time.time())
        return 0

    def birth(self) -> None:
        now = datetime.now(UTC)
        for g in (x for x in self.gws if x.alive):
            g.client.publish(up_topic(g.gateway_id, Up.STATE), encode(GatewayState(
                gateway_id=g.gateway_id, status="online", ts=now, version="bench")),
                qos=1, retain=True)

    async def settle(self, limit: float = 120) -> float:
        """Waits until the system under test has worked through the births: one door
        event from each of 50 gateways spread over the fleet, published after them, all
        acked (each worker of a shared subscription gets some). Seconds it took."""
        self.tally = Tally()
        t0 = time.perf_counter()
        live = self.gws[:len(self.gws) - self.reserve]
        for g in live[::max(1, len(live) // 50)][:50]:
            rid, payload = Templates.fill(self.templates.door, g.gateway_id, g.next_seq())
            self.tally.sent[rid] = t0
            g.client.publish(g.topics["door"], payload, qos=1)
        while len(self.tally.acked) < len(self.tally.sent):
            if time.perf_counter() - t0 > limit:
                raise RuntimeError(f"the births were not worked through in {limit:g} s")
            await asyncio.sleep(0.05)
        return time.perf_counter() - t0

    def _record(self, g: Gw, n: int) -> None:
        """One uplink message of the mix (health reports carry no id and get no Ack)."""
        kind = self.mix[n % len(self.mix)]
        rid, payload = Templates.fill(getattr(self.templates, kind), g.gateway_id,
                                      g.next_seq())
        if kind != "health":
            self.tally.sent[rid] = time.perf_counter()
        g.client.publish(g.topics[kind], payload, qos=1)

    def sos(self) -> None:
        g = random.choice(self.gws[:200])
        rid, payload = Templates.fill(self.templates.sos, g.gateway_id, g.next_seq())
        t = time.perf_counter()
        self.tally.sent[rid] = t
        self.tally.sos[rid] = t
        self.tally.sos_wall[rid] = (time.time(), 0.0)
        g.client.publish(g.topics["sos"], payload, qos=1)

    async def step(self, rate: float, duration: float, drain: float, wills: int,
                   offline_probe: OfflineProbe | None, cpu: CpuMeter) -> dict[str, float]:
        self.tally = Tally()
        self.templates = Templates(datetime.now(UTC))
        n = 0
        cpu.start()
        t0 = time.perf_counter()
        next_sos = t0
        will_at = t0 + duration / 2
        will_done = False
        live = self.gws[:len(self.gws) - self.reserve]
        while (now := time.perf_counter()) - t0 < duration:
            due = int((now - t0) * rate)
            while n < due:
                self._record(live[n % len(live)], n)
                n += 1
            if now >= next_sos:
                self.sos()
                next_sos += SOS_EVERY_S
            if not will_done and now >= will_at and wills:
                will_done = True
                victims = [g for g in self.gws[len(live):] if g.alive][:wills]
                for g in victims:
                    g.alive = False
                    # gone for good, as a dead gateway is (gmqtt's stop_reconnect()
                    # still allows one attempt)
                    g.client._temporarily_stop_reconnect()
                    g.client._connection._transport.abort()  # no DISCONNECT: Last Will
                if offline_probe is not None:
                    offline_probe.start([g.gateway_id for g in victims])
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - t0
        shares = cpu.stop(elapsed)
        at_end = len(self.tally.acked)
        sent = len(self.tally.sent)
        drain_until = time.perf_counter() + drain
        while len(self.tally.acked) < sent and time.perf_counter() < drain_until:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        offline = await offline_probe.wait() if offline_probe is not None else []
        stages = (await sos_stages(offline_probe.target, self.tally.sos_wall)
                  if offline_probe is not None else {})
        return {"target": rate, "rate": n / elapsed, "sent": sent,
                "acked": len(self.tally.acked),
                "lag_s": (sent - at_end) / max(n / elapsed, 1),
                "sos_n": len(self.tally.sos_latency),
                "sos_p50": pct(self.tally.sos_latency, 0.5),
                "sos_p99": pct(self.tally.sos_latency, 0.99),
                "offline_max": max(offline) if offline else float("nan"),
                "offline_n": len(offline), **shares, **stages}

    async def close(self) -> None:
        for g in self.gws:
            g.client.stop_reconnect()
        await asyncio.gather(*(g.client.disconnect() for g in self.gws if g.alive),
                             return_exceptions=True)


class CpuMeter:
    """CPU shares of one core over a step: the system under test (summed over its
    processes), the broker, and this generator process."""

    def __init__(self, under_test: Callable[[], list[int]], broker: int | None) -> None:
        self.under_test = under_test
        self.broker = broker
        self._t0: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def _now(self) -> tuple[float, float, float]:
        return (sum(proc_cpu_s(p) for p in self.under_test()),
                proc_cpu_s(self.broker) if self.broker else 0.0, time.process_time())

    def start(self) -> None:
        self._t0 = self._now()

    def stop(self, elapsed: float) -> dict[str, float]:
        t1 = self._now()
        sut, broker, gen = ((b - a) / elapsed for a, b in zip(self._t0, t1, strict=True))
        return {"cpu_sut": sut, "cpu_broker": broker, "cpu_gen": gen}


class OfflineProbe:
    """Polls the cloud's database for gateways marked offline after their Last Will."""

    def __init__(self, target: str | Path) -> None:
        self.target = target
        self.task: asyncio.Task[list[float]] | None = None

    def start(self, ids: list[str]) -> None:
        self.task = asyncio.create_task(self._poll(ids, time.perf_counter()))

    async def _poll(self, ids: list[str], t0: float) -> list[float]:
        from eldercare_cloud.db import Database

        out: dict[str, float] = {}
        marks = ",".join("?" * len(ids))
        async with Database(self.target) as db:
            while len(out) < len(ids) and time.perf_counter() - t0 < 10:
                rows = await db.conn.execute_fetchall(
                    f"SELECT id FROM gateways WHERE online = 0 AND id IN ({marks})", ids)
                t = time.perf_counter()
                for (gid,) in rows:
                    out.setdefault(str(gid), t - t0)
                await asyncio.sleep(0.01)
        return list(out.values())

    async def wait(self) -> list[float]:
        return await self.task if self.task is not None else []


STAGES = (("publish -> worker received", "st_recv"),
          ("received -> commit began", "st_queue"),
          ("commit began -> Ack at the gateway", "st_commit"))


async def sos_stages(target: str | Path, walls: dict[str, tuple[float, float]]
                     ) -> dict[str, float]:
    """Where an SOS's time went, p50 and p99 of each stage, from the times the cloud
    stored with it (same host clock)."""
    from eldercare_cloud.db import Database

    acked = {rid: w for rid, w in walls.items() if w[1]}
    if not acked:
        return {}
    ids = list(acked)
    async with Database(target) as db:
        rows = await db.conn.execute_fetchall(
            "SELECT id, received_at, committed_at FROM events WHERE id IN "
            f"({','.join('?' * len(ids))})", ids)
    spans: dict[str, list[float]] = {key: [] for _, key in STAGES}
    for rid, received, committed in rows:
        pub, ack = acked[str(rid)]
        r = datetime.fromisoformat(str(received)).timestamp()
        c = datetime.fromisoformat(str(committed)).timestamp()
        spans["st_recv"].append(r - pub)
        spans["st_queue"].append(c - r)
        spans["st_commit"].append(ack - c)
    out = {}
    for key, values in spans.items():
        out[f"{key}_p50"] = pct(values, 0.5)
        out[f"{key}_p99"] = pct(values, 0.99)
    return out


async def register(target: str | Path, ids: list[str]) -> None:
    """Seeds the ingest's registry in bulk: one argon2 hash for all (hashing 10,000 secrets
    one by one through IngestStore.add_gateway takes minutes). Gateways are marked online:
    the births are sent before each run anyway."""
    from eldercare_cloud.db import Database
    from eldercare_cloud.ingest import IngestStore
    from eldercare_cloud.ingest.credentials import hash_secret

    secret_hash = hash_secret("bench-secret-0123456789")
    async with Database(target) as db, IngestStore(db), db.transaction() as conn:
        await conn.executemany(
            "INSERT INTO gateways(id, secret_hash, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            [(g, secret_hash, datetime.now(UTC).isoformat()) for g in ids])


@dataclass
class Run:
    name: str
    results: list[dict[str, float]]


def sustained(res: dict[str, float]) -> bool:
    return (res["rate"] >= 0.95 * res["target"] and res["sent"] == res["acked"]
            and res["lag_s"] < 1.0)


def ms(seconds: float) -> str:
    return "–" if seconds != seconds else f"{seconds * 1e3:,.1f} ms"


async def run_one(name: str, fleet: Fleet, procs_up: list[subprocess.Popen[bytes]],
                  broker: Mosquitto, rates: list[float], args: argparse.Namespace,
                  target: str | Path | None) -> Run:
    fleet.birth()
    settled = await fleet.settle()
    print(f"  {name:<22} {len(fleet.gws):,} births (retained online states) worked through"
          f" in {settled:.1f} s", flush=True)
    out = []
    cpu = CpuMeter(lambda: [p.pid for p in procs_up], broker.pid)
    sut = "relay" if target is None else f"worker{'s' if len(procs_up) > 1 else ''}"
    cpu.start()
    await asyncio.sleep(3)
    rest = cpu.stop(3)
    print(f"  {name:<22} CPU at rest (3 s, the 10,000 connections idle): {sut} "
          f"{rest['cpu_sut'] * 100:.0f} %, broker {rest['cpu_broker'] * 100:.0f} %, "
          f"generator {rest['cpu_gen'] * 100:.0f} %", flush=True)
    for k, rate in enumerate(rates):
        probe = OfflineProbe(target) if target is not None else None
        duration = args.first_duration if k == 0 else args.duration
        res = await fleet.step(rate, duration, args.drain, args.wills if probe else 0,
                               probe, cpu)
        for p in procs_up:
            if p.poll() is not None:
                raise RuntimeError(f"{name}: a process exited with {p.returncode}")
        out.append(res)
        ok = sustained(res)
        print(f"  {name:<22} {res['target']:>6,.0f} msg/s (offered {res['rate']:,.0f}):"
              f" sent {res['sent']:,.0f}, acked {res['acked']:,.0f}, lost "
              f"{res['sent'] - res['acked']:,.0f} ({args.drain:g} s after); lag at end "
              f"{res['lag_s']:.2f} s; SOS p50 {ms(res['sos_p50'])} p99 {ms(res['sos_p99'])}"
              f" (n={res['sos_n']:.0f})"
              + (f"; offline after Will max {ms(res['offline_max'])} "
                 f"({res['offline_n']:.0f}/{args.wills})" if target is not None else "")
              + f"; CPU {sut} {res['cpu_sut'] * 100:.0f} %, broker "
              f"{res['cpu_broker'] * 100:.0f} %, generator {res['cpu_gen'] * 100:.0f} %"
              f" -> {'sustained' if ok else 'NOT sustained'}", flush=True)
        if "st_recv_p50" in res:
            print(f"  {'':<22} {'':>6}        SOS stages p50 / p99: " + "; ".join(
                f"{label} {ms(res[key + '_p50'])} / {ms(res[key + '_p99'])}"
                for label, key in STAGES), flush=True)
        if not ok and not args.all_steps:
            break
    return Run(name, out)


async def amain(args: argparse.Namespace) -> None:
    logging.getLogger("gmqtt").setLevel(logging.ERROR)
    hard = raise_fd_limit()
    real = realistic_rate(args.gateways)
    rates = ([real] + [float(r) for r in STEPS_ABOVE if r > real] if args.rates == "auto"
             else [float(x) for x in args.rates.split(",")])
    setups = [s.strip() for s in args.setups.split(",") if s.strip()]
    if any(s.startswith("pg") for s in setups) and not args.database_url:
        setups = [s for s in setups if not s.startswith("pg")]
    loop_name = type(asyncio.get_running_loop()).__module__.split(".")[0]
    print("command: " + shlex.join([Path(sys.executable).name, *sys.argv]))
    print(f"realistic rate for {args.gateways:,} gateways at the morning peak: "
          f"{DEVICE_MSGS_PER_HOUR} device msgs/h ({DEVICE_RATE:.4f}/s) + a health report "
          f"every {HEALTH_INTERVAL_S:g} s ({HEALTH_RATE:.4f}/s) = "
          f"{DEVICE_RATE + HEALTH_RATE:.4f} msg/s per gateway = {real:,.0f} msg/s "
          f"(cloud/README.md paper model)")
    print(f"{args.gateways:,} gateways in one {loop_name} asyncio process (gmqtt), fd limit "
          f"{hard:,}; steps of {args.first_duration:g} s, then {args.duration:g} s at "
          f"{', '.join(f'{r:,.0f}' for r in rates)}"
          f" msg/s (a run stops at its first step not sustained"
          f"{'' if not args.all_steps else ': off'}); an SOS every "
          f"{SOS_EVERY_S * 1e3:.0f} ms; {args.wills} Last Wills mid-step; setups "
          f"{', '.join(setups)}; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}")
    root = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    broker, port = start_mosquitto(
        root / "broker", "persistence false\nmax_connections -1\nset_tcp_nodelay true\n")
    ids = [f"gw-{i:05d}" for i in range(args.gateways)]
    fleet = Fleet(port, ids, reserve=args.wills * len(rates) * 3)
    runs: list[Run] = []
    try:
        t0 = time.perf_counter()
        await fleet.connect()
        print(f"connected {len(fleet.gws):,} gateways in {time.perf_counter() - t0:.1f} s",
              flush=True)

        if "relay" in setups:
            relay = subprocess.Popen(  # noqa: ASYNC220
                [sys.executable, "-c", RELAY, str(port)], stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT)
            try:
                assert relay.stdout is not None
                if relay.stdout.readline().strip() != b"ready":
                    raise RuntimeError("relay did not start")
                runs.append(await run_one("bare QoS 1 relay", fleet, [relay], broker, rates,
                                          args, None))
            finally:
                stop(relay)

        known: dict[str, tuple[str, int, str | None]] = {
            "sqlite": ("1 worker, SQLite", 1, None),
            "pg1": ("1 worker, PostgreSQL", 1, args.database_url),
            "pg2": ("2 workers, PostgreSQL", 2, args.database_url)}
        for k, key in enumerate(s for s in setups if s in known):
            name, workers, url = known[key]
            sub = root / f"cloud-{k}"
            target: str | Path = url or sub / "cloud" / "cloud.sqlite3"
            (sub / "cloud").mkdir(parents=True, exist_ok=True)
            await register(target, ids)
            clouds = []
            try:
                for i in range(workers):
                    cname = f"w{k}-{i}"
                    clouds.append(start_cloud(sub, port, 500, url, cname, "bench"))
                    wait_log(sub / f"{cname}.log", "ingest-alarm: connected")
                runs.append(await run_one(name, fleet, clouds, broker, rates, args, target))
            finally:
                for c in clouds:
                    stop(c)
    finally:
        await fleet.close()
        stop(broker)
        shutil.rmtree(root, ignore_errors=True)
    summary(runs, args)


def summary(runs: list[Run], args: argparse.Namespace) -> None:
    print("summary (same run, same machine; the machine is shared, so compare ratios):")
    if not runs:
        return
    base = max((r["target"] for r in runs[0].results if sustained(r)), default=0.0)
    for run in runs:
        best = max((r["target"] for r in run.results if sustained(r)), default=0.0)
        first = run.results[0]
        tried = ", ".join(f"{r['target']:,.0f}" for r in run.results)
        print(f"  {run.name:<22} highest sustained {best:>6,.0f} msg/s"
              f" ({best / max(base, 1):.2f} x {runs[0].name}) of the steps tried ({tried});"
              f" lost {sum(r['sent'] - r['acked'] for r in run.results):,.0f};"
              f" at the realistic step SOS p99 {ms(first['sos_p99'])} (target <= 50 ms)"
              + (f", offline after a Will max {ms(first['offline_max'])} (target <= 1 s)"
                 if first["offline_n"] else ""))
    by = {r.name: r for r in runs}
    two, one = by.get("2 workers, PostgreSQL"), by.get("1 worker, SQLite")
    if two is not None and one is not None:
        t, o = two.results[0]["sos_p99"], one.results[0]["sos_p99"]
        print(f"  SOS p99 at {two.results[0]['target']:,.0f} msg/s: 2 workers on PostgreSQL "
              f"{ms(t)} / 1 worker on SQLite {ms(o)} = {t / o:.2f} (target <= 1.2)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gateways", type=int, default=10_000)
    ap.add_argument("--rates", default="auto",
                    help="offered uplink messages/s per step, comma-separated; auto: the "
                    "realistic rate for --gateways, then 1,500 2,000 3,000 4,000 6,000")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per step")
    ap.add_argument("--first-duration", type=float, default=30.0,
                    help="seconds of the first (realistic) step: 600 SOS for its p99")
    ap.add_argument("--drain", type=float, default=20.0,
                    help="seconds to wait for the acks after a step")
    ap.add_argument("--all-steps", action="store_true",
                    help="run every step even after one not sustained")
    ap.add_argument("--wills", type=int, default=20, help="gateways that vanish mid-step")
    ap.add_argument("--setups", default="relay,sqlite,pg1,pg2",
                    help="which runs: relay, sqlite, pg1, pg2 (the pg ones need "
                    "--database-url)")
    ap.add_argument("--database-url", help="an empty PostgreSQL database: adds 1 and 2 "
                    "workers on PostgreSQL")
    ap.add_argument("--no-uvloop", action="store_true", help="the stock asyncio loop")
    args = ap.parse_args()
    runner: Any = asyncio.run
    if not args.no_uvloop:
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            pass
    runner(amain(args))


if __name__ == "__main__":
    main()
