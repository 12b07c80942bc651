"""10,000 simulated gateways in one process against the cloud's ingest (issue 14).

Run from the repository root::

    uv run python bench/bench_fleet_10k.py [--gateways 10000] [--rates 2000,4000]
        [--duration 15] [--database-url postgresql://USER@HOST:PORT/EMPTY_DB]

Everything runs on 127.0.0.1: a Mosquitto started here (``max_connections -1``, the
cloud's queues as every shipped config sizes them), the cloud as ``eldercare-cloud run
--role ingest`` worker processes on ``$share/bench/...``, and one load generator holding
every gateway's own MQTT connection in one asyncio loop (gmqtt: pure asyncio transports,
no thread or select loop per client, so 10,000 connections cost one event loop; paho's
own loop is one select() per client). The file-descriptor limit of this process is
raised to its hard limit first.

Each gateway sends the real uplink payloads (``eldercare_protocols.uplink`` models,
encoded as the edge encodes them) on its own topic: a birth (retained), then at the
step's rate a mix of telemetry batches (10 readings), door/motion events and health
reports, and waits for the cloud's Ack on its down topic. Meanwhile an SOS from a
random gateway every 50 ms (latency: publish to the Ack naming it, at the gateway), and
mid-step some gateways vanish without DISCONNECT (their Last Will; latency: the socket's
abort to ``online = 0`` in the database, polled every 10 ms). The bench broker has no
ACL (the gateways need no per-gateway credentials here; test_broker_security.py covers
the dynamic-security ACLs).

Per run and rate: records sent, acked, unacked 30 s after the step (lost, or still queued),
the lag at the end of the step, SOS p50/p99, offline-after-will max; a rate is
"sustained" when nothing was dropped and the lag at the end was under one second.
Runs: the bare QoS 1 relay (baseline, echoing each message to the down topic), one worker
on SQLite, and with ``--database-url`` one and two workers on PostgreSQL, with the ratio
of SOS p99 of two workers on PostgreSQL to one worker on SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from gmqtt import Client, Message
from gmqtt.mqtt.constants import MQTTv311

from _broker import start_mosquitto, stop
from bench_cloud_ingest import RELAY, start_cloud, wait_log
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


def raise_fd_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


@dataclass
class Gw:
    gateway_id: str
    client: Client
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
        self.now = datetime.now(UTC)

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
            return Gw(gateway_id, client)

        self.gws = list(await asyncio.gather(*(one(g) for g in self.ids)))

    def _on_message(self, client: Client, topic: str, payload: bytes, qos: int,
                    properties: object) -> int:
        t = time.perf_counter()
        try:
            obj = json.loads(payload)
        except ValueError:
            return 0
        ids = obj.get("ids") if isinstance(obj, dict) else None
        if ids is None:  # the relay echoes the uplink message itself
            rid = obj.get("id") if isinstance(obj, dict) else None
            ids = [rid] if rid else []
            if not ids:
                self.tally.unnamed_acks += 1
        for rid in ids:
            if rid in self.tally.acked:
                continue
            self.tally.acked.add(rid)
            sent = self.tally.sos.pop(rid, None)
            if sent is not None:
                self.tally.sos_latency.append(t - sent)
        return 0

    def birth(self) -> None:
        for g in (x for x in self.gws if x.alive):
            g.client.publish(up_topic(g.gateway_id, Up.STATE), encode(GatewayState(
                gateway_id=g.gateway_id, status="online", ts=self.now, version="bench")),
                qos=1, retain=True)

    def _record(self, g: Gw, n: int) -> None:
        """One realistic uplink message: 60 % telemetry, 32 % events, 8 % health."""
        seq = g.next_seq()
        rid = f"{g.gateway_id}-{seq:08d}"
        kind = n % 25
        if kind < 15:
            msg: TelemetryBatch | EventEnvelope | GatewayState = TelemetryBatch(
                id=rid, seq=seq, gateway_id=g.gateway_id, gateway_ts=self.now,
                records=[TelemetryRecord(device_id=f"{g.gateway_id}-vit", kind=EventKind.VITALS,
                                         ts=self.now, device_seq=seq * 10 + i,
                                         values={"heart_rate": 60.0 + i, "spo2": 97.0})
                         for i in range(10)])
            channel = Up.TELEMETRY
        elif kind < 23:
            msg = EventEnvelope(id=rid, seq=seq, gateway_id=g.gateway_id, gateway_ts=self.now,
                                device_id=f"{g.gateway_id}-door",
                                kind=EventKind.DOOR_OPEN if kind % 2 else EventKind.MOTION,
                                device_ts=self.now, device_seq=seq)
            channel = Up.EVENTS
        else:
            msg = GatewayState(gateway_id=g.gateway_id, status="health", ts=self.now,
                               uptime_s=float(seq), counters={"sent": seq})
            channel = Up.STATE
            rid = ""
        if rid:
            self.tally.sent[rid] = time.perf_counter()
        g.client.publish(up_topic(g.gateway_id, channel), encode(msg), qos=1)

    def sos(self) -> None:
        g = random.choice(self.gws[:200])
        seq = g.next_seq()
        rid = f"{g.gateway_id}-{seq:08d}"
        env = EventEnvelope(id=rid, seq=seq, gateway_id=g.gateway_id, gateway_ts=self.now,
                            device_id=f"{g.gateway_id}-btn", kind=EventKind.SOS,
                            device_ts=self.now, device_seq=seq, data={"button": "red"})
        t = time.perf_counter()
        self.tally.sent[rid] = t
        self.tally.sos[rid] = t
        g.client.publish(up_topic(g.gateway_id, Up.EVENTS), encode(env), qos=1)

    async def step(self, rate: int, duration: float, wills: int,
                   offline_probe: OfflineProbe | None) -> dict[str, float]:
        self.tally = Tally()
        n = 0
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
                    g.client.reconnect_retries = 0
                    g.client._connection._transport.abort()  # no DISCONNECT: Last Will
                if offline_probe is not None:
                    offline_probe.start([g.gateway_id for g in victims])
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - t0
        at_end = len(self.tally.acked)
        sent = len(self.tally.sent)
        drain_until = time.perf_counter() + 30
        while len(self.tally.acked) < sent and time.perf_counter() < drain_until:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        offline = await offline_probe.wait() if offline_probe is not None else []
        return {"rate": n / elapsed, "sent": sent, "acked": len(self.tally.acked),
                "lag_s": (sent - at_end) / max(rate, 1), "sos_n": len(self.tally.sos_latency),
                "sos_p50": pct(self.tally.sos_latency, 0.5),
                "sos_p99": pct(self.tally.sos_latency, 0.99),
                "offline_max": max(offline) if offline else float("nan"),
                "offline_n": len(offline)}

    async def close(self) -> None:
        for g in self.gws:
            g.client.reconnect_retries = 0
        await asyncio.gather(*(g.client.disconnect() for g in self.gws if g.alive),
                             return_exceptions=True)


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


async def run_one(name: str, fleet: Fleet, procs_up: list[subprocess.Popen[bytes]],
                  rates: list[int], args: argparse.Namespace,
                  target: str | Path | None) -> Run:
    fleet.birth()
    await asyncio.sleep(2)
    out = []
    for rate in rates:
        probe = OfflineProbe(target) if target is not None else None
        res = await fleet.step(rate, args.duration, args.wills if probe else 0, probe)
        for p in procs_up:
            if p.poll() is not None:
                raise RuntimeError(f"{name}: a process exited with {p.returncode}")
        out.append(res)
        print(f"  {name:<26} {res['rate']:>6,.0f} msg/s offered: sent {res['sent']:>7,.0f},"
              f" acked {res['acked']:>7,.0f}, unacked 30 s after the step "
              f"{res['sent'] - res['acked']:,.0f}, "
              f"lag at end {res['lag_s']:.2f} s; SOS p50 {res['sos_p50'] * 1e3:.1f} ms, "
              f"p99 {res['sos_p99'] * 1e3:.1f} ms (n={res['sos_n']:.0f})"
              + (f"; offline after Will max {res['offline_max'] * 1e3:.0f} ms "
                 f"({res['offline_n']:.0f}/{args.wills})" if target is not None else ""),
              flush=True)
    return Run(name, out)


def sustained(res: dict[str, float]) -> bool:
    return res["sent"] == res["acked"] and res["lag_s"] < 1.0


async def amain(args: argparse.Namespace) -> None:
    hard = raise_fd_limit()
    rates = [int(x) for x in args.rates.split(",")]
    print("command: " + shlex.join([Path(sys.executable).name, *sys.argv]))
    print(f"{args.gateways:,} gateways in one asyncio process (gmqtt), fd limit {hard:,}; "
          f"steps of {args.duration:g} s at {rates} msg/s; an SOS every "
          f"{SOS_EVERY_S * 1e3:.0f} ms; {args.wills} Last Wills mid-step")
    root = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    broker, port = start_mosquitto(
        root / "broker", "persistence false\nmax_connections -1\nset_tcp_nodelay true\n")
    ids = [f"gw-{i:05d}" for i in range(args.gateways)]
    fleet = Fleet(port, ids, reserve=args.wills * 2 * len(rates) * 3)
    runs: list[Run] = []
    try:
        t0 = time.perf_counter()
        await fleet.connect()
        print(f"connected {len(fleet.gws):,} gateways in {time.perf_counter() - t0:.1f} s",
              flush=True)

        relay = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-c", RELAY, str(port)], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT)
        try:
            assert relay.stdout is not None
            if relay.stdout.readline().strip() != b"ready":
                raise RuntimeError("relay did not start")
            runs.append(await run_one("bare QoS 1 relay", fleet, [relay], rates, args, None))
        finally:
            stop(relay)

        setups: list[tuple[str, int, str | None]] = [("1 worker, SQLite", 1, None)]
        if args.database_url:
            setups += [("1 worker, PostgreSQL", 1, args.database_url),
                       ("2 workers, PostgreSQL", 2, args.database_url)]
        for k, (name, workers, url) in enumerate(setups):
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
                runs.append(await run_one(name, fleet, clouds, rates, args, target))
            finally:
                for c in clouds:
                    stop(c)
    finally:
        await fleet.close()
        stop(broker)
        shutil.rmtree(root, ignore_errors=True)

    print("summary (same run, same machine; the machine is shared, so compare ratios):")
    base = max((r["rate"] for r in runs[0].results if sustained(r)), default=0.0)
    for run in runs:
        best = max((r["rate"] for r in run.results if sustained(r)), default=0.0)
        p99 = max(r["sos_p99"] for r in run.results)
        print(f"  {run.name:<24} highest sustained offered rate {best:>6,.0f} msg/s"
              f" (relay ratio {best / max(base, 1):.2f}); unacked 30 s after "
              f"a step {sum(r['sent'] - r['acked'] for r in run.results):,.0f}; "
              f"worst SOS p99 {p99 * 1e3:.1f} ms (target <= 50)")
    by = {r.name: r for r in runs}
    if "2 workers, PostgreSQL" in by:
        two = by["2 workers, PostgreSQL"].results[0]["sos_p99"]
        one = by["1 worker, SQLite"].results[0]["sos_p99"]
        print(f"  SOS p99 at {rates[0]:,} msg/s: 2 workers on PostgreSQL {two * 1e3:.1f} ms /"
              f" 1 worker on SQLite {one * 1e3:.1f} ms = {two / one:.2f} (target <= 1.2)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gateways", type=int, default=10_000)
    ap.add_argument("--rates", default="2000,4000",
                    help="offered uplink messages/s per step (0.2 msg/s x 10,000 = 2,000)")
    ap.add_argument("--duration", type=float, default=15.0, help="seconds per step")
    ap.add_argument("--wills", type=int, default=20, help="gateways that vanish mid-step")
    ap.add_argument("--database-url", help="an empty PostgreSQL database: adds 1 and 2 "
                    "workers on PostgreSQL")
    asyncio.run(amain(ap.parse_args()))


if __name__ == "__main__":
    main()
