"""Ingest's store alone: ``IngestStore.commit`` from 1 and 2 processes on one database.

Run from the repository root::

    uv run python bench/bench_ingest_commit.py --database-url postgresql://USER@HOST:PORT/DB
        [--processes 1,2] [--batches 40] [--per-batch 500] [--repeat 2]

No MQTT, no decoding: each process builds its batches of validated ``EventEnvelope``
records first (distinct ids, 8 gateways), then commits them one after the other as an
ingest worker does after decoding. This isolates what several ingest workers share, the
database and the commit lock across workers (issue 14), from the load generators and the
broker that cap ``bench_cloud_ingest.py`` on a small machine.

Printed per process count: records/s over all processes, the ratio to the first count
(the baseline, measured in the same run), CPU per record in the committing processes,
the mean commit, and its part from the commit lock's request to COMMIT (with one
process: the time the lock is held; with several: also the wait for it). Each count is
measured ``--repeat`` times, alternating, and the best run of each is kept.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import time
from datetime import UTC, datetime
from typing import Any

from eldercare_cloud.db import Database
from eldercare_cloud.ingest import IngestStore
from eldercare_cloud.ingest.store import Received
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import EventEnvelope

GATEWAYS = [f"gw-bench-{i}" for i in range(8)]


def _worker(url: str, offset: int, batches: int, per: int, start: Any, out: Any) -> None:
    now = datetime.now(UTC)
    load = [[Received(gw, EventEnvelope(
        id=f"{gw}-{seq:010d}", seq=seq, gateway_id=gw, gateway_ts=now,
        device_id=f"dev-{i % 40}", kind=EventKind.SOS if i % 5 == 0 else EventKind.DOOR_OPEN,
        device_ts=now, device_seq=i, data={"button": "red"} if i % 5 == 0 else {}), now)
        for i in range(per)
        for gw, seq in [(GATEWAYS[i % 8], offset + b * per + i)]] for b in range(batches)]
    locked = [0.0]
    # the commit's last step (the lock, the tailed inserts) starts in execute_batch
    original = getattr(Database, "execute_batch", None)
    entered: list[float] = []
    if original is not None:
        async def timed(self: Database, *args: Any, **kwargs: Any) -> Any:
            if kwargs.get("serialise") is not None:
                entered.append(time.perf_counter())
            return await original(self, *args, **kwargs)

        Database.execute_batch = timed  # type: ignore[method-assign]

    async def go() -> tuple[float, float, float, float]:
        async with Database(url) as db, IngestStore(db) as store:
            start.wait()
            cpu0, t0 = time.process_time(), time.perf_counter()
            for batch in load:
                entered.clear()
                await store.commit(batch)
                if entered:
                    locked[0] += time.perf_counter() - entered[0]
            t1, cpu1 = time.perf_counter(), time.process_time()
        return t0, t1, cpu1 - cpu0, locked[0]

    out.put(asyncio.run(go()))


def measure(url: str, n: int, batches: int, per: int, offset: int) -> dict[str, float]:
    ctx = mp.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(url, offset + k * 10_000_000, batches, per,
                                                start, out)) for k in range(n)]
    for p in procs:
        p.start()
    time.sleep(2.0 + n)  # let every process build its load and open its pool
    start.set()
    got = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    t0, t1 = min(g[0] for g in got), max(g[1] for g in got)
    records = n * batches * per
    commits = n * batches
    return {"rate": records / (t1 - t0), "cpu_us": sum(g[2] for g in got) / records * 1e6,
            "commit_ms": sum(g[1] - g[0] for g in got) / commits * 1e3,
            "locked_ms": sum(g[3] for g in got) / commits * 1e3}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--database-url", required=True,
                    help="postgresql://... (an empty or a bench database) or a SQLite path")
    ap.add_argument("--processes", default="1,2", help="comma-separated process counts")
    ap.add_argument("--batches", type=int, default=40, help="commits per process")
    ap.add_argument("--per-batch", type=int, default=500, help="event records per commit")
    ap.add_argument("--repeat", type=int, default=2, help="runs per process count")
    args = ap.parse_args()
    counts = [int(x) for x in args.processes.split(",") if x.strip()]

    async def register() -> None:
        async with Database(args.database_url) as db, IngestStore(db) as store:
            for gw in GATEWAYS:
                if await store.gateway(gw) is None:
                    await store.add_gateway(gw)

    asyncio.run(register())
    print(f"load: {args.batches} commits of {args.per_batch} events per process; "
          f"processes {counts}, best of {args.repeat}")
    best: dict[int, dict[str, float]] = {}
    offset = int(time.time()) % 1000 * 1_000_000_000  # fresh ids for a reused database
    for r in range(args.repeat):
        for n in counts:
            offset += 100_000_000
            got = measure(args.database_url, n, args.batches, args.per_batch, offset)
            if n not in best or got["rate"] > best[n]["rate"]:
                best[n] = got
            print(f"  run {r + 1}, {n} process{'es' if n > 1 else ''}: {got['rate']:,.0f} "
                  "records/s", flush=True)
    base = best[counts[0]]["rate"]
    for n in counts:
        b = best[n]
        lock = (f"{b['locked_ms']:.1f} ms from the lock's request to COMMIT"
                if b["locked_ms"] else "no commit-lock step (this code takes it first)")
        print(f"{n} process{'es' if n > 1 else '  '}: {b['rate']:>8,.0f} records/s "
              f"({b['rate'] / base:.2f}x {counts[0]}; target for 2: >= 1.70x), "
              f"{b['cpu_us']:.0f} us CPU per record, commit {b['commit_ms']:.1f} ms of which "
              f"{lock}")


if __name__ == "__main__":
    main()
