"""The district's KPIs for one month of alerts: how long the records API takes to read
the facts and compute every figure (percentiles in Python, portable SQL), and how long
the monthly report's XLSX and PDF take to produce.

Run from the repository root::

    uv run python bench/bench_records_kpis.py [--alerts 20000] [--repeat 3]

A fresh SQLite file in a temp dir gets the demo district (load_demo) and ``--alerts``
generated alerts spread over March 2025, each with an acknowledging operator's timeline
entry and, for a third of them, an accepted offer (the rows the KPIs read).

Baseline, in the same run on the same file: one aggregate SQL query that counts the
month's alerts per kind (the cheapest read of the same rows); the ratio says what the
timestamp facts, the Python percentiles and the five groupings cost on top of it.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from eldercare_cloud.app import build_services, migrate
from eldercare_cloud.auth.models import Role, UserCreate
from eldercare_cloud.auth.signing import sign
from eldercare_cloud.auth.users import TOKEN_PURPOSE
from eldercare_cloud.clock import ManualClock, iso
from eldercare_cloud.db import Database
from eldercare_cloud.demo import load_demo
from eldercare_cloud.ingest import IngestStore
from eldercare_cloud.records import export
from eldercare_cloud.settings import CloudSettings

LOCAL = ZoneInfo("Asia/Shanghai")
START = datetime(2025, 3, 1, tzinfo=LOCAL)
SECRET = "bench-records-secret-key-0123456789"


async def generate(db: Database, n: int, operator: str, seed: int = 7) -> None:
    rng = random.Random(seed)
    homes = [(f"H-XH-{i:03d}", f"R-XH-{i:03d}") for i in range(1, 11)]
    kinds = ["sos"] * 5 + ["fall", "inactivity", "battery_low", "device_offline"]
    async with db.transaction() as conn:
        for i in range(n):
            household, resident = homes[i % len(homes)]
            kind = kinds[i % len(kinds)]
            opened = START + timedelta(seconds=rng.uniform(0, 31 * 86400 - 1))
            ack = opened + timedelta(seconds=rng.expovariate(1 / 30))
            accepted = opened + timedelta(seconds=rng.uniform(60, 600)) if i % 3 == 0 else None
            alert_id = f"AL-B-{i:07d}"
            await conn.execute(
                "INSERT INTO alerts(id, subject, kind, category, severity, status, resident_id,"
                " household_id, district_id, source, opened_at, acknowledged_at, accepted_at,"
                " resolved_at, closed_at, closure_code, updated_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (alert_id, f"bench:{i}", kind,
                 "life_safety" if kind in ("sos", "fall") else "care", "critical", "closed",
                 resident, household, "D-XH", "gateway", iso(opened), iso(ack),
                 iso(accepted) if accepted else None, iso(ack + timedelta(minutes=20)),
                 iso(ack + timedelta(minutes=30)),
                 "false_alarm" if i % 7 == 0 else "helped_at_home", iso(opened)))
            await conn.execute(
                "INSERT INTO alert_timeline(alert_id, ts, actor, actor_name, action,"
                " from_status, to_status, detail) VALUES (?,?,?,?,?,?,?,?)",
                (alert_id, iso(ack), f"user:{operator}", "bench-op", "acknowledged", "open",
                 "acknowledged", "{}"))
            if accepted is not None:
                await conn.execute(
                    "INSERT INTO ladder_offers(alert_id, step_index, contact_id, name,"
                    " relation, channel, status, offered_at, responded_at)"
                    " VALUES (?,?,?,?,?,?,?,?,?)",
                    (alert_id, i % 3, "K-B", "bench", "family", "sms", "accepted",
                     iso(opened), iso(accepted)))


async def main(alerts: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = CloudSettings(environment="test", data_dir=Path(tmp),
                                 auth={"secret_key": SECRET})
        clock = ManualClock(datetime(2025, 4, 2, tzinfo=UTC))
        async with Database(Path(tmp) / "cloud.sqlite3") as db, IngestStore(db) as store:
            services = build_services(settings, db, clock=clock, store=store, channels={})
            await migrate(services)
            await load_demo(db)
            op = await services.users.create(UserCreate(
                username="bench-op", password="bench-password", role=Role.OPERATOR,
                district_ids=["D-XH"]))
            da = await services.users.create(UserCreate(
                username="bench-da", password="bench-password", role=Role.DISTRICT_ADMIN,
                district_ids=["D-XH"]))
            t0 = time.perf_counter()
            await generate(db, alerts, op.id)
            print(f"generated {alerts} alerts in {time.perf_counter() - t0:.1f} s")
            token = sign(SECRET, TOKEN_PURPOSE, {"sub": da.id, "v": 1},
                         datetime(2100, 1, 1, tzinfo=UTC))
            p = await services.users.principal(token)

            base, kpi, xlsx, pdf = [], [], [], []
            report = None
            for _ in range(repeat):
                t0 = time.perf_counter()
                cur = await db.conn.execute(
                    "SELECT kind, COUNT(*) FROM alerts WHERE opened_at >= ? AND opened_at < ?"
                    " AND district_id = ? GROUP BY kind",
                    (iso(START), iso(datetime(2025, 4, 1, tzinfo=LOCAL)), "D-XH"))
                await cur.fetchall()
                base.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                report = await services.records.kpis(p, "2025-03")
                kpi.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                export.to_xlsx(report, "西湖区")
                xlsx.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                export.to_pdf(report, "西湖区")
                pdf.append(time.perf_counter() - t0)
            assert report is not None and report.overall.alerts == alerts
            b, k = statistics.median(base), statistics.median(kpi)
            print(f"command: uv run python bench/bench_records_kpis.py --alerts {alerts}"
                  f" --repeat {repeat}")
            print(f"baseline  aggregate COUNT per kind (SQL):   {b * 1000:8.1f} ms")
            print(f"records   kpis() for the month, 5 groupings: {k * 1000:8.1f} ms"
                  f"  ({alerts / k:,.0f} alerts/s; {k / b:.1f}x the baseline)")
            print(f"report    XLSX (openpyxl):                  "
                  f"{statistics.median(xlsx) * 1000:8.1f} ms")
            print(f"report    PDF (reportlab, embedded CJK):    "
                  f"{statistics.median(pdf) * 1000:8.1f} ms")
            f = report.overall
            print(f"figures   ack within 60 s {f.ack_within_60s_pct} %, median ack "
                  f"{f.ack_median_s:.1f} s, p90 {f.ack_p90_s:.1f} s" if f.ack_median_s
                  else "figures   -")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alerts", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    asyncio.run(main(args.alerts, args.repeat))
