"""Several ingest workers commit to one PostgreSQL database at once (issue 14), and every
reader that tails a table by rowid (the care engine, services, visits, the installer,
``IngestStore.*_after``) still gets each committed row exactly once: never a row that
commits after the reader has moved past its rowid, never one twice.

The commits hold the cross-worker lock only for their inserts into tailed tables and the
COMMIT (``IngestStore.commit``); these tests hold a commit open at that point (a row lock
it needs is held by the test) and check what readers and a second worker see meanwhile.
PostgreSQL only: SQLite is one writer process by design.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from ingest_support import (
    holding_commit_lock,
    waiting_on_locks,
)
from ingest_support import received_event as event
from ingest_support import received_telemetry as telemetry

import db_support
from eldercare_cloud.db import Database
from eldercare_cloud.ingest import IngestStore
from eldercare_cloud.ingest.models import CommitInfo
from eldercare_cloud.ingest.store import Received

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not db_support.POSTGRES, reason="several writers need PostgreSQL "
                       "(set ELDERCARE_TEST_DATABASE_URL; scripts/test.sh does)"),
]

GATEWAYS = ("gw-a", "gw-b")


@asynccontextmanager
async def stores(tmp_path: Path, n: int) -> AsyncIterator[list[IngestStore]]:
    """``n`` stores on one database, each with its own connection pool, as ``n`` worker
    processes have."""
    target = db_support.target(tmp_path / "cloud.sqlite3")
    dbs = [Database(target) for _ in range(n)]
    opened: list[IngestStore] = []
    try:
        for db in dbs:
            await db.open()
            store = IngestStore(db)
            await store.open()
            opened.append(store)
        for gw in GATEWAYS:
            await opened[0].add_gateway(gw)
        yield opened
    finally:
        for db in dbs:
            await db.close()


async def test_a_reader_never_passes_over_a_row_that_commits_late(tmp_path: Path) -> None:
    async with stores(tmp_path, 3) as (one, two, reader):
        waiting = 0

        async def poll() -> None:
            nonlocal waiting
            waiting = await waiting_on_locks(reader.db)

        # the test holds gw-a's row: worker one's commit inserts its event (drawing its
        # rowid) and then waits, open, to update gw-a's last_seen
        release = asyncio.Event()
        held = asyncio.Event()

        async def hold_gateway_row() -> None:
            async with reader.db.transaction() as conn:
                await conn.execute("SELECT id FROM gateways WHERE id = ? FOR UPDATE",
                                   ("gw-a",))
                held.set()
                await release.wait()

        holder = asyncio.create_task(hold_gateway_row())
        await held.wait()
        late = event("gw-a", 1)
        first = asyncio.create_task(one.commit([late]))
        for _ in range(1000):
            await poll()
            if waiting >= 1:
                break
            await asyncio.sleep(0.01)
        assert waiting == 1, "worker one's commit never reached the held row"

        # worker two commits an event of another gateway meanwhile: it may not become
        # visible before worker one's (a smaller rowid), so it waits for the commit lock
        early = event("gw-b", 2)
        second = asyncio.create_task(two.commit([early]))
        for _ in range(1000):
            await poll()
            if second.done() or waiting >= 2:
                break
            await asyncio.sleep(0.01)

        # a reader tails now, as the care engine does
        seen = await reader.events_after(0)
        cursor = seen[-1].rowid if seen else 0
        assert late.msg.id not in {e.id for e in seen}  # not committed yet

        release.set()
        await holder
        infos: list[CommitInfo] = [await first, await second]
        for _ in range(1000):
            page = await reader.events_after(cursor)
            seen += page
            cursor = page[-1].rowid if page else cursor
            if len(seen) >= 2:
                break
            await asyncio.sleep(0.01)
        # both rows, once each, in rowid order: the late one was not passed over
        assert sorted(e.id for e in seen) == sorted([late.msg.id, early.msg.id])
        assert [e.rowid for e in seen] == sorted({e.rowid for e in seen})
        assert await reader.events_after(cursor) == []
        assert [i.new_event_count for i in infos] == [1, 1]
        # the worker that drew the smaller rowid committed first
        assert infos[0].event_rowid < infos[1].event_rowid


async def test_workers_committing_duplicates_at_once_store_and_deliver_each_once(
        tmp_path: Path) -> None:
    """Two workers commit batches at the same time that share half their records (a
    gateway resent what it had not seen acked, and the copy went to the other worker),
    in opposite orders. Every record is stored once, reported new by exactly one commit
    and acked by both; a reader tailing by rowid meanwhile sees each event exactly once;
    no commit fails (no unique violation, no deadlock)."""
    batches, per = 12, 40
    async with stores(tmp_path, 3) as (one, two, reader):
        shared = [f"shared-{i:04d}" for i in range(batches * per // 2)]

        def load(store_no: int) -> list[list[Received]]:
            out = []
            for b in range(batches):
                own = [event(GATEWAYS[store_no], b * per + i, f"own{store_no}-{b:04d}-{i:04d}")
                       for i in range(per // 2)]
                dup = [event(GATEWAYS[i % 2], 9000 + i, rid) for i, rid in
                       enumerate(shared[b * per // 2:(b + 1) * per // 2])]
                tel = [telemetry(GATEWAYS[store_no], b, f"tel-{b:04d}-{k:04d}") for k in range(4)]
                if store_no:
                    dup.reverse()
                    tel.reverse()
                out.append(own + dup + tel)
            return out

        expected = {r.msg.id for store_no in (0, 1) for batch in load(store_no)
                    for r in batch if not r.msg.id.startswith("tel-")}
        seen: list[str] = []
        done = asyncio.Event()

        async def tail() -> None:
            cursor = 0
            for _ in range(3000):
                page = await reader.events_after(cursor, limit=50)
                seen.extend(e.id for e in page)
                cursor = page[-1].rowid if page else cursor
                if done.is_set() and not page:
                    return
                await asyncio.sleep(0.005)

        async def work(store: IngestStore, store_no: int) -> list[CommitInfo]:
            return [await store.commit(batch) for batch in load(store_no)]

        tailer = asyncio.create_task(tail())
        infos_one, infos_two = await asyncio.gather(work(one, 0), work(two, 1))
        done.set()
        await tailer

        assert len(seen) == len(set(seen)) == len(expected)  # each event once
        assert set(seen) == expected
        new = [e.id for info in infos_one + infos_two for e in info.events]
        assert len(new) == len(set(new)) == len(expected)  # reported new by one commit
        for infos, store_no in ((infos_one, 0), (infos_two, 1)):
            acked = {rid for info in infos for ids in info.acks.values() for rid in ids}
            assert acked == {r.msg.id for batch in load(store_no) for r in batch}
        assert sum(len(i.telemetry) for i in infos_one + infos_two) == batches * 4 * 3
        assert await reader.telemetry_batch_count() == batches * 4
        counts = db_support.rows(reader.db.url, "SELECT COUNT(*), COUNT(DISTINCT id)"
                                 " FROM events")
        assert counts == [(len(expected), len(expected))]
        [(readings,)] = db_support.rows(reader.db.url, "SELECT COUNT(*) FROM telemetry")
        assert readings == batches * 4 * 3


async def test_commit_lock_is_held_only_at_the_end(tmp_path: Path) -> None:
    """While another transaction holds the commit lock, a commit still stores its
    telemetry (nothing tails it) and waits only to insert its events: the lock covers the
    tail of the commit, not the batch."""
    async with stores(tmp_path, 2) as (one, reader):
        async with holding_commit_lock(reader.db):
            commit = asyncio.create_task(one.commit([telemetry("gw-a", 1, "tel-0000-xxxx"),
                                                     event("gw-a", 2)]))
            waiting = 0

            async def poll() -> bool:
                nonlocal waiting
                waiting = await waiting_on_locks(reader.db)
                return waiting >= 1

            for _ in range(1000):
                if await poll():
                    break
                await asyncio.sleep(0.01)
            assert waiting == 1 and not commit.done()
            # the waiting commit has written its telemetry already (uncommitted), and not
            # its events: it waits for the lock right before the tailed inserts
            cur = await reader.db.reader.execute(
                "SELECT c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                " WHERE l.granted AND l.mode = 'RowExclusiveLock' AND l.pid IN ("
                "  SELECT w.pid FROM pg_locks w WHERE w.locktype = 'advisory' AND NOT w.granted)")
            written = {str(r[0]) for r in await cur.fetchall()}
            assert {"telemetry_batches", "telemetry"} <= written
            assert "events" not in written
        info = await commit
        assert info.new_event_count == 1 and len(info.telemetry) == 3
