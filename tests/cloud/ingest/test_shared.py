"""The production shape on one machine: two ``eldercare-cloud run --role ingest`` worker
processes on the shared subscription ``$share/ingest/ec/v1/+/up/#`` of a real Mosquitto,
one ``--role engine`` process, one PostgreSQL database, and gateways (plain MQTT clients
that resend what was not acked, as the real gateway does) sending alarms.

One ingest worker is SIGKILLed in the middle of the traffic. What was in flight at it is
never acked, so the gateways resend it and the surviving worker commits it: every alarm
is committed exactly once (the unique idempotency id across workers), every one is acked,
and the engine (another process, woken by NOTIFY) turns each into exactly one alert
source. PostgreSQL only: SQLite is one process by design.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from ingest_support import GatewayClient, envelope
from process_support import CloudProcess, start_cloud, stopping, until, wait_for_log

import db_support
from eldercare_cloud.db import Database
from eldercare_cloud.ingest import IngestStore
from eldercare_protocols.uplink import Up

if TYPE_CHECKING:
    from broker_support import Broker

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not db_support.POSTGRES, reason="several workers need PostgreSQL "
                       "(set ELDERCARE_TEST_DATABASE_URL; scripts/test.sh does)"),
]

GATEWAYS = [f"gw-shared-{i:02d}" for i in range(6)]
PER_GATEWAY = 120
TOTAL = len(GATEWAYS) * PER_GATEWAY
#: the gateway resends a record not acked within this long (the edge's resend_after_s)
RESEND_AFTER_S = 1.0
#: records a gateway has sent and not yet seen acked before it sends a new one
WINDOW = 10


def start_role(tmp_path: Path, broker: Broker, role: str, name: str) -> CloudProcess:
    """One cloud process of ``role`` on the test's database (ELDERCARE_CLOUD_DB__URL,
    set by the cloud_database fixture)."""
    return start_cloud(tmp_path, broker, name, role=role, settings={
        "MQTT__SHARED_GROUP": "ingest",
        "MQTT__RECONNECT_MAX_S": "0.5",
        "CARE__POLL_S": "30",  # an alert that comes sooner came by NOTIFY
    })


def count(db: str, sql: str) -> int:
    [(n,)] = db_support.rows(db, sql)
    return int(n)


def sources(db: str) -> int:
    """Alert sources so far (0 while the engine process has not created its tables)."""
    import psycopg

    try:
        return count(db, "SELECT COUNT(*) FROM alert_sources")
    except psycopg.errors.UndefinedTable:
        return 0


class Fleet:
    """Gateways that publish their alarms at a steady pace and resend the unacked ones."""

    def __init__(self, clients: list[GatewayClient]) -> None:
        self.clients = clients
        self.records = {gw.gateway_id: [envelope(gw.gateway_id, seq)
                                        for seq in range(1, PER_GATEWAY + 1)]
                        for gw in clients}
        self.sent_at: dict[str, float] = {}
        self.sends = 0

    def all_ids(self) -> set[str]:
        return {r.id for recs in self.records.values() for r in recs}

    def acked(self) -> set[str]:
        return {i for gw in self.clients for i in gw.acked_ids()}

    def step(self, per_gateway: int) -> None:
        """Publish up to ``per_gateway`` new records each, and resend the overdue."""
        acked = self.acked()
        now = time.monotonic()
        for gw in self.clients:
            outstanding = sum(1 for r in self.records[gw.gateway_id]
                              if r.id in self.sent_at and r.id not in acked)
            # a gateway's window: at most WINDOW records sent and not yet acked
            fresh_max = min(per_gateway, WINDOW - outstanding)
            fresh = 0
            for rec in self.records[gw.gateway_id]:
                if rec.id in acked:
                    continue
                last = self.sent_at.get(rec.id)
                if last is None:
                    if fresh >= fresh_max:
                        continue
                    fresh += 1
                elif now - last < RESEND_AFTER_S:
                    continue
                gw.publish(Up.EVENTS, rec)
                self.sent_at[rec.id] = now
                self.sends += 1

    async def run(self, done: Callable[[], bool], within_s: float,
                  per_gateway: int = 5) -> None:
        async with asyncio.timeout(within_s):
            while not done():
                self.step(per_gateway)
                await asyncio.sleep(0.05)


def counters(log: Path) -> dict[str, int]:
    found = re.findall(r"ingest counters: (\{.*\})", log.read_text())
    assert found, log.read_text()[-3000:]
    result: dict[str, int] = json.loads(found[-1])
    return result


async def test_two_ingest_workers_share_the_uplink_and_survive_a_sigkill(
        tmp_path: Path, mosquitto: Broker, cloud_database: str | None,
        gateway_factory: Callable[..., GatewayClient]) -> None:
    assert cloud_database is not None
    async with Database(cloud_database) as db, IngestStore(db) as store:
        for gw_id in GATEWAYS:
            await store.add_gateway(gw_id)

    a = start_role(tmp_path, mosquitto, "ingest", "ingest-a")
    b = start_role(tmp_path, mosquitto, "ingest", "ingest-b")
    engine = start_role(tmp_path, mosquitto, "engine", "engine")
    with stopping(a, b, engine):
        for proc in (a, b):
            await wait_for_log(proc, "ingest: connected")
        fleet = Fleet([gateway_factory(gw_id) for gw_id in GATEWAYS])
        everything = fleet.all_ids()
        # first third: both workers up (the first records are resent until they are)
        await fleet.run(lambda: len(fleet.acked()) >= TOTAL // 3, within_s=60)
        assert b.alive() and a.alive()
        # worker B dies mid-traffic, with records in flight at it
        fleet.step(per_gateway=5)
        b.kill()
        committed_at_kill = count(cloud_database, "SELECT COUNT(*) FROM events")
        assert committed_at_kill < TOTAL
        await fleet.run(lambda: fleet.acked() >= everything, within_s=120)

        # every alarm committed exactly once, each gateway's sequence complete
        assert count(cloud_database, "SELECT COUNT(*) FROM events") == TOTAL
        assert count(cloud_database, "SELECT COUNT(DISTINCT id) FROM events") == TOTAL
        for gw_id in GATEWAYS:
            seqs = db_support.rows(cloud_database, "SELECT seq FROM events WHERE"
                                   " gateway_id = ? ORDER BY seq", (gw_id,))
            assert [s for (s,) in seqs] == list(range(1, PER_GATEWAY + 1))
        assert fleet.acked() == everything

        # the engine process (woken by NOTIFY, its poll is 30 s) saw each alarm once:
        # one alert source per record, one open SOS alert per gateway
        await until(lambda: sources(cloud_database) >= TOTAL,
                    "the engine to see every alarm", procs=(engine,))
        assert count(cloud_database, "SELECT COUNT(*) FROM alert_sources") == TOTAL
        assert count(cloud_database,
                     "SELECT COUNT(*) FROM alerts WHERE kind = 'sos'") == len(GATEWAYS)

        assert a.stop() == 0, a.tail()
    # B took a share of the traffic before it died: A alone did not commit everything
    survivor = counters(a.log)
    assert 0 < survivor["committed"] < TOTAL, survivor
    assert survivor["rejected_unregistered"] == 0 and survivor["commit_failures"] == 0
    assert fleet.sends > TOTAL  # what was in flight at B was resent
    # and A received only its share of what was sent: B received at least what B
    # committed (without $share each worker gets every copy, and A would have received
    # every send)
    assert survivor["received"] <= fleet.sends - (TOTAL - survivor["committed"]), survivor
