"""An alarm's commit on PostgreSQL (issue 14: an SOS through the cloud on PostgreSQL as
fast as on SQLite): it is one round trip from BEGIN to COMMIT, it never waits for the
same worker's telemetry transaction, and a telemetry-only commit never takes the commit
lock that alarms take their turn for. PostgreSQL only: SQLite has one writer
connection, on which every transaction takes its turn by design.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from ingest_support import holding_commit_lock
from ingest_support import received_event as event
from ingest_support import received_telemetry as telemetry

import db_support
from clock_support import TEST_EPOCH
from eldercare_cloud.db import Database
from eldercare_cloud.ingest import IngestStore
from eldercare_cloud.ingest.store import Received
from eldercare_protocols.uplink import GatewayState

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not db_support.POSTGRES, reason="concurrent transactions need "
                       "PostgreSQL (set ELDERCARE_TEST_DATABASE_URL; scripts/test.sh does)"),
]

#: a deadlock guard, not a timing: a commit that waits for what it must not never ends
GUARD_S = 30.0


@asynccontextmanager
async def two_stores(tmp_path: Path, *, pool_max: int = 10
                     ) -> AsyncIterator[tuple[IngestStore, IngestStore]]:
    """The worker's store and another process's (the test's hand on the database)."""
    target = db_support.target(tmp_path / "cloud.sqlite3")
    worker, other = Database(target, pool_max=pool_max), Database(target)
    try:
        await worker.open()
        await other.open()
        one, two = IngestStore(worker), IngestStore(other)
        await one.open()
        await two.open()
        for gw in ("gw-a", "gw-b"):
            await two.add_gateway(gw)
        yield one, two
    finally:
        await worker.close()
        await other.close()


async def test_an_alarm_commit_does_not_wait_for_the_same_workers_telemetry_transaction(
        tmp_path: Path) -> None:
    async with two_stores(tmp_path) as (worker, other):
        # another process inserts telemetry batch "tel-1" and keeps its transaction open:
        # the worker's bulk commit of the same batch then waits, open, on the unique id
        release, inserted = asyncio.Event(), asyncio.Event()

        async def hold_batch() -> None:
            async with other.db.transaction() as conn:
                await conn.execute(
                    "INSERT INTO telemetry_batches(id, gateway_id, seq, records, gateway_ts,"
                    " received_at, committed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    ("tel-0001-xxxx", "gw-a", 1, 3, "t", "t", "t"))
                inserted.set()
                await release.wait()

        holder = asyncio.create_task(hold_batch())
        await inserted.wait()
        bulk = asyncio.create_task(worker.commit([telemetry("gw-a", 1, "tel-0001-xxxx")]))
        for _ in range(1000):  # the bulk transaction is open and waiting
            cur = await other.db.reader.execute(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'")
            row = await cur.fetchone()
            if row is not None and row[0] >= 1:
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the bulk commit never waited")
        # the SOS of the same worker commits meanwhile (before the fix it queued behind
        # the bulk transaction in the worker's own write lock)
        sos = event("gw-b", 7)
        info = await asyncio.wait_for(worker.commit([sos]), GUARD_S)
        assert info.new_event_count == 1 and not bulk.done()
        assert (await other.event(sos.msg.id)) is not None  # committed, readable
        release.set()
        await holder
        late = await asyncio.wait_for(bulk, GUARD_S)
        assert late.duplicates == 1  # the other process's copy won; acked all the same
        assert late.acks == {"gw-a": ["tel-0001-xxxx"]}


async def test_a_telemetry_only_commit_takes_no_commit_lock(tmp_path: Path) -> None:
    """The bulk lane's commits insert nothing that readers tail, so they need no turn:
    while the commit lock is held elsewhere they commit, and an event commit waits."""
    async with two_stores(tmp_path) as (worker, other):
        async with holding_commit_lock(other.db):
            alarm = asyncio.create_task(worker.commit([event("gw-a", 1)]))
            info = await asyncio.wait_for(
                worker.commit([telemetry("gw-a", 2, "tel-0002-xxxx"),
                               telemetry("gw-b", 3, "tel-0003-xxxx")]), GUARD_S)
            assert len(info.telemetry) == 6 and info.duplicates == 0
            assert not alarm.done()  # the event commit still waits for its turn
        assert (await asyncio.wait_for(alarm, GUARD_S)).new_event_count == 1
        # last_seen moved for both gateways of the telemetry commit
        for gw in ("gw-a", "gw-b"):
            record = await other.gateway(gw)
            assert record is not None and record.last_seen is not None


def _round_trips(trace: Path) -> int:
    """Messages after which the client waits for the server: Sync (extended protocol, one
    per pipeline) and Query (simple protocol), sent by the client ("F")."""
    count = 0
    for line in trace.read_text().splitlines():
        fields = line.split("\t")
        if fields and fields[0] not in ("F", "B"):
            fields = fields[1:]  # a timestamp
        if len(fields) > 2 and fields[0] == "F" and fields[2] in ("Sync", "Query"):
            count += 1
    return count


@pytest.mark.parametrize("with_state", [False, True], ids=["sos", "sos+birth"])
async def test_an_alarm_commit_is_one_round_trip(tmp_path: Path, with_state: bool) -> None:
    """BEGIN, the commit lock, the insert RETURNING, the gateway update, NOTIFY and COMMIT
    go in one pipeline; a batch with a gateway state reads the online flags under the
    lock first (BEGIN, the lock and that read in one more pipeline)."""
    async with two_stores(tmp_path, pool_max=1) as (worker, _):
        pool = worker.db._pg.pool if worker.db._pg is not None else None
        assert pool is not None
        items: list[Received] = [event("gw-a", 1)]
        if with_state:
            items.append(Received("gw-a", GatewayState(gateway_id="gw-a", status="online"),
                                  TEST_EPOCH + timedelta(seconds=2)))
        await worker.commit([event("gw-a", 0)])  # a first commit: the pool's one connection
        trace = tmp_path / "libpq.trace"
        with trace.open("w") as out:
            async with pool.connection() as raw:
                raw.pgconn.trace(out.fileno())
            try:
                info = await worker.commit(items)
            finally:
                async with pool.connection() as raw:
                    raw.pgconn.untrace()
        assert info.new_event_count == 1
        assert len(info.gateway_changes) == (1 if with_state else 0)
        # the pool's own check when the connection comes back is not ours to count:
        # psycopg_pool sends nothing then for a connection in autocommit mode (idle)
        assert _round_trips(trace) == (2 if with_state else 1), trace.read_text()
