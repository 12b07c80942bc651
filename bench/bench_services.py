"""The service desk's write and report paths on a real SQLite file (WAL, fsync on commit).

Run from the repository root::

    uv run python bench/bench_services.py [--orders 240]

The demo district (twelve elders, two providers and a kitchen) on a fresh database in a
temporary folder, time from a ManualClock. Measured, per operation: an order created,
entitlement-checked and dispatched (candidates by area, skill, overlap and load, the
offer SMS queued); an accept; a check-in; a check-out (visit verified against door
evidence, voucher, call-back sampling); and the month's minimum service levels for the
district. Baseline: a bare one-row INSERT transaction on the same database (the fsync
every desk transaction pays too), so the ratio is what the desk's logic costs on top.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from eldercare_cloud.app import build_services, migrate
from eldercare_cloud.auth.models import Principal, Role
from eldercare_cloud.clock import ManualClock
from eldercare_cloud.db import Database
from eldercare_cloud.demo import data, load_demo
from eldercare_cloud.ingest import IngestStore
from eldercare_cloud.services.desk import Actor
from eldercare_cloud.services.models import CheckOutCreate, OrderCreate, Payment
from eldercare_cloud.settings import CloudSettings
from eldercare_cloud.visits import store as V

TZ = ZoneInfo("Asia/Shanghai")
OPERATOR = Principal(user_id="bench", username="bench", role=Role.OPERATOR, tenant="default",
                     district_ids=frozenset({"D-XH"}))


def figures(name: str, samples: list[float], baseline_ms: float) -> None:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    mean = statistics.fmean(ms)
    print(f"{name:<28} n={len(ms):<5} mean {mean:7.2f} ms  p95 {p95:7.2f} ms"
          f"  ({mean / baseline_ms:5.1f}x baseline)")


async def timed(samples: list[float], op: Awaitable[Any]) -> Any:
    """Await ``op`` (a coroutine not yet started) and record how long it took."""
    t0 = time.perf_counter()
    result = await op
    samples.append(time.perf_counter() - t0)
    return result


async def main(n_orders: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = CloudSettings(environment="test", data_dir=Path(tmp),
                                 auth={"secret_key": "bench-secret-key-0123456789abcdef"})
        clock = ManualClock(datetime(2025, 3, 1, 0, 0, tzinfo=UTC))
        async with Database(Path(tmp) / "cloud.sqlite3") as db, IngestStore(db) as store:
            services = build_services(settings, db, clock=clock, store=store, channels={})
            await migrate(services)
            await load_demo(db, clock=clock)
            desk = services.desk

            base: list[float] = []
            async with db.transaction() as conn:
                await conn.execute("CREATE TABLE bench_rows (id INTEGER PRIMARY KEY"
                                   " AUTOINCREMENT, v TEXT NOT NULL)")
            for i in range(200):
                async def one(i: int = i) -> None:
                    async with db.transaction() as conn:
                        await conn.execute("INSERT INTO bench_rows(v) VALUES (?)", (str(i),))
                await timed(base, one())
            baseline_ms = statistics.fmean(base) * 1000
            print(f"{'baseline: 1-row INSERT txn':<28} n={len(base):<5} mean"
                  f" {baseline_ms:7.2f} ms")

            residents = [p.id for home in data.HOMES for p in home.residents]
            created: list[float] = []
            accepted: list[float] = []
            checkin: list[float] = []
            checkout: list[float] = []
            done = 0
            for i in range(n_orders):
                day = 1 + (i // len(residents)) % 28
                resident = residents[i % len(residents)]
                start = datetime(2025, 3, day, 8 + (i % 10), 0, tzinfo=TZ)
                clock.set(start - timedelta(hours=1))
                order = await timed(created, desk.create_order(OPERATOR, OrderCreate(
                    resident_id=resident, service_type_id="company", window_start=start,
                    window_end=start + timedelta(minutes=50), payment=Payment.SELF)))
                if order.worker_id is None:
                    continue
                who = Actor("bench", "bench")
                await timed(accepted, desk.worker_act(
                    order.id, order.worker_id, who, "accept"))
                clock.set(start)
                async with db.transaction() as conn:
                    await V.add_evidence(conn, order.household_id, f"ev-{order.id}", "d",
                                         "door_open", start)
                await timed(checkin, desk.worker_act(
                    order.id, order.worker_id, who, "check_in"))
                clock.set(start + timedelta(minutes=48))
                await timed(checkout, desk.worker_act(
                    order.id, order.worker_id, who, "check_out", CheckOutCreate()))
                done += 1
            figures("create + dispatch", created, baseline_ms)
            figures("accept", accepted, baseline_ms)
            figures("check-in (visit opened)", checkin, baseline_ms)
            figures("check-out (verified)", checkout, baseline_ms)
            levels: list[float] = []
            for _ in range(5):
                result = await timed(levels, services.service_records.service_levels(
                    OPERATOR, "D-XH", "2025-03"))
            figures(f"service levels ({done} visits)", levels, baseline_ms)
            print(f"entitled residents {result.entitled}, met {result.met}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=240)
    args = parser.parse_args()
    if args.orders < 1:
        sys.exit("--orders must be at least 1")
    asyncio.run(main(args.orders))
