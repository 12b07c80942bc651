"""The outbox: put / read_batch / ack, lanes, the disk cap, seq across restarts, crashes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from clock_support import TEST_EPOCH
from eldercare_edge.clock import FakeClock
from eldercare_edge.outbox import SEQ_JUMP_AFTER_CRASH, Draft, Outbox, record_id
from eldercare_protocols.uplink import GapRecord, Lane

GW = "gw-ob"


def draft(lane: Lane, body: str = "x", device: str | None = "dev-1", size: int = 0,
          items: int = 1) -> Draft:
    def build(seq: int, rid: str) -> bytes:
        return json.dumps({"id": rid, "seq": seq, "body": body, "pad": "p" * size}).encode()
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    return Draft(lane, build, device_id=device, items=items, first_ts=ts, last_ts=ts)


@pytest.fixture
async def outbox(tmp_path: Path):  # type: ignore[no-untyped-def]
    async with Outbox(tmp_path / "o.sqlite", GW) as ob:
        yield ob


async def test_put_read_ack(outbox: Outbox) -> None:
    stored = await outbox.put_many([draft(Lane.EVENT, "a"), draft(Lane.EVENT, "b")])
    assert [s.seq for s in stored] == [1, 2]
    assert stored[0].id == record_id(GW, 1) == "gw-ob-000001"
    items = await outbox.read_batch(10)
    assert [json.loads(i.payload)["body"] for i in items] == ["a", "b"]
    assert json.loads(items[0].payload)["id"] == items[0].id
    # reading does not remove anything
    assert len(await outbox.read_batch(10)) == 2
    gone = await outbox.ack([stored[0].id, "gw-ob-999999"])
    assert [g.id for g in gone] == [stored[0].id]
    assert [i.id for i in await outbox.read_batch(10)] == [stored[1].id]


async def test_alarms_are_read_before_any_backlog(outbox: Outbox) -> None:
    await outbox.put_many([draft(Lane.TELEMETRY, f"t{i}") for i in range(5)])
    await outbox.put_many([draft(Lane.EVENT, "e1")])
    await outbox.put(draft(Lane.ALARM, "a1"))
    await outbox.put(draft(Lane.ALARM, "a2"))
    bodies = [json.loads(i.payload)["body"] for i in await outbox.read_batch(4)]
    assert bodies == ["a1", "a2", "e1", "t0"]
    # `after` skips what is already in flight, per lane
    items = await outbox.read_batch(10, after={Lane.ALARM: 7, Lane.TELEMETRY: 3})
    assert [json.loads(i.payload)["body"] for i in items] == ["a2", "e1", "t3", "t4"]
    assert await outbox.depth() == {Lane.ALARM: 2, Lane.EVENT: 1, Lane.TELEMETRY: 5}


async def test_seq_survives_reopen_even_after_everything_was_acked(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    async with Outbox(path, GW) as ob:
        stored = await ob.put_many([draft(Lane.EVENT) for _ in range(3)])
        await ob.ack([s.id for s in stored])
        assert await ob.read_batch(10) == []
    async with Outbox(path, GW) as ob:
        again = await ob.put(draft(Lane.ALARM))
        assert again is not None and again.seq == 4


async def test_once_key_stores_a_record_only_once_ever(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    async with Outbox(path, GW) as ob:
        first = await ob.put(Draft(Lane.EVENT, draft(Lane.EVENT).build, once_key="unknown:x"))
        assert first is not None
        await ob.ack([first.id])
    async with Outbox(path, GW) as ob:
        assert await ob.put(Draft(Lane.EVENT, draft(Lane.EVENT).build, once_key="unknown:x")) \
            is None
        assert await ob.read_batch(10) == []


async def test_cap_evicts_oldest_telemetry_with_a_gap_record_and_never_alarms(
        tmp_path: Path) -> None:
    async with Outbox(tmp_path / "o.sqlite", GW, max_bytes=20_000) as ob:
        alarms = [await ob.put(draft(Lane.ALARM, f"a{i}", size=1000)) for i in range(5)]
        tel = await ob.put_many([draft(Lane.TELEMETRY, f"t{i}", size=1000, items=10)
                                 for i in range(25)])
        assert ob.size_bytes <= 20_000
        items = await ob.read_batch(100)
        ids = {i.id for i in items}
        assert all(a is not None and a.id in ids for a in alarms)
        kept_tel = [i for i in items if i.lane is Lane.TELEMETRY]
        gone_tel = [t for t in tel if t.id not in ids]
        assert gone_tel, "something must have been evicted"
        # oldest first: every evicted seq is below every kept one
        assert max(t.seq for t in gone_tel) < min(i.seq for i in kept_tel)
        gaps = [GapRecord.model_validate_json(i.payload) for i in items
                if json.loads(i.payload).get("type") == "gap"]
        assert gaps, "a gap record must be queued"
        assert sum(g.dropped for g in gaps) == 10 * len(gone_tel)
        assert min(g.first_seq for g in gaps) == gone_tel[0].seq
        assert max(g.last_seq for g in gaps) == gone_tel[-1].seq
        assert all(g.lane is Lane.EVENT for g in [i for i in items if i.id in
                                                   {g.id for g in gaps}])
        # over the cap with only alarms left: alarms are still accepted, never dropped
        more = [await ob.put(draft(Lane.ALARM, f"b{i}", size=5000)) for i in range(6)]
        ids2 = {i.id for i in await ob.read_batch(1000)}
        assert all(a is not None and a.id in ids2 for a in alarms + more)
        assert ob.over_cap_puts > 0


CRASH_WRITER = textwrap.dedent("""
    import asyncio, json, sys
    from pathlib import Path
    from eldercare_edge.outbox import Draft, Outbox
    from eldercare_protocols.uplink import Lane

    def build(seq, rid):
        return json.dumps({"id": rid, "seq": seq, "pad": "x" * 200}).encode()

    async def main():
        async with Outbox(Path(sys.argv[1]), "gw-crash") as ob:
            for i in range(100000):
                if i % 3 == 0:
                    await ob.put_many([Draft(Lane.TELEMETRY, build) for _ in range(20)])
                if i % 2:
                    # the gateway's way: committed, sent meanwhile, synced before "received"
                    [s] = await ob.put_many([Draft(Lane.ALARM, build, device_id="btn")],
                                            defer_sync=True)
                    await ob.sync()
                else:
                    s = await ob.put(Draft(Lane.ALARM, build, device_id="btn"))
                print(s.id, flush=True)

    asyncio.run(main())
""")


@pytest.mark.integration
async def test_every_alarm_whose_put_returned_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "crash.sqlite"
    script = tmp_path / "writer.py"
    script.write_text(CRASH_WRITER)
    confirmed: list[str] = []
    for _round in range(3):
        proc = subprocess.Popen([sys.executable, str(script), str(path)],  # noqa: ASYNC220
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        deadline = time.monotonic() + 20
        got = 0
        while got < 40 + 30 * _round and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            confirmed.append(line.strip())
            got += 1
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        # lines already printed before the kill were confirmed too
        confirmed += [ln.strip() for ln in proc.stdout.read().splitlines() if ln.strip()]
        proc.stdout.close()
    assert len(confirmed) >= 150
    async with Outbox(path, "gw-crash") as ob:
        present = {i.id for i in await ob.read_batch(100000)}
        missing = [c for c in confirmed if c not in present]
        assert missing == []
        assert len(set(confirmed)) == len(confirmed), "a seq was handed out twice"
        nxt = await ob.put(Draft(Lane.ALARM, lambda s, r: b"{}"))
        assert nxt is not None
        assert nxt.seq > max(int(c.rsplit("-", 1)[1]) for c in confirmed)


async def test_a_write_cancelled_at_any_point_leaves_no_transaction_open(
        outbox: Outbox) -> None:
    """BEGIN runs on aiosqlite's thread even when the task waiting for it is cancelled (a
    gateway stopping cancels its tasks): the write must still roll back, or every later
    write fails with 'cannot start a transaction within a transaction'."""
    import asyncio

    for steps in range(12):       # cancel after 0, 1, 2, ... event-loop turns
        for write in (lambda: outbox.put_many([draft(Lane.EVENT)]),
                      lambda: outbox.save_state({"k": b"v"}),
                      lambda: outbox.ack(["nothing"])):
            task = asyncio.ensure_future(write())
            for _ in range(steps):
                await asyncio.sleep(0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await outbox.save_state({"after": b"ok"})      # raised before the fix
    assert await outbox.load_state("after") == b"ok"
    assert await outbox.put(draft(Lane.ALARM)) is not None


async def test_a_read_is_bounded_in_bytes_and_always_takes_one(outbox: Outbox) -> None:
    """A telemetry batch is ~100 times an event: ``max_bytes`` bounds what a read holds in
    memory, whatever the record count allows."""
    await outbox.put_many([draft(Lane.EVENT, "e" * 100)])
    await outbox.put_many([draft(Lane.TELEMETRY, f"t{i}" + "x" * 1000) for i in range(5)])
    sizes = {i.id: len(i.payload) for i in await outbox.read_batch(10)}
    event, t0, t1 = list(sizes.values())[:3]
    # the event and two telemetry records fit, the third does not
    items = await outbox.read_batch(10, max_bytes=event + t0 + t1 + 10)
    assert [json.loads(i.payload)["body"][:2] for i in items] == ["ee", "t0", "t1"]
    # after what is in flight, still in seq order; a record larger than the budget is
    # read alone (nothing would ever move otherwise)
    items = await outbox.read_batch(10, after={Lane.EVENT: 1, Lane.TELEMETRY: 3}, max_bytes=1)
    assert [json.loads(i.payload)["body"][:2] for i in items] == ["t2"]
    items = await outbox.read_batch(10, after={Lane.EVENT: 1, Lane.TELEMETRY: 3}, max_bytes=1,
                                    first_may_exceed=False)
    assert items == []
    # nothing of a lane fits beside what was read before: the read stops there
    items = await outbox.read_batch(10, max_bytes=event + 10)
    assert [json.loads(i.payload)["body"][:2] for i in items] == ["ee"]


async def test_after_an_unclean_shutdown_seq_jumps_past_anything_a_power_cut_took(
        tmp_path: Path) -> None:
    """Commits without an fsync (telemetry, events, alarms whose sync is deferred) are
    lost by a power cut with the seqs they took, which the cloud may have seen: a seq the
    cloud saw must never name another record, so an outbox not closed cleanly jumps."""
    path = tmp_path / "o.sqlite"
    async with Outbox(path, GW) as ob:
        stored = await ob.put_many([draft(Lane.EVENT, "a")], defer_sync=True)
        await ob.sync()
    assert stored[0].seq == 1
    async with Outbox(path, GW) as ob:     # closed cleanly: seq goes on
        assert ob.next_seq == 2
    db = sqlite3.connect(path)             # as if that run had been killed or lost power
    with db:
        db.execute("UPDATE meta SET value=1 WHERE key='open'")
    db.close()
    async with Outbox(path, GW) as ob:
        assert ob.next_seq == 2 + SEQ_JUMP_AFTER_CRASH
        again = await ob.put(draft(Lane.ALARM, "b"))
        assert again is not None and again.seq == 2 + SEQ_JUMP_AFTER_CRASH
    async with Outbox(path, GW) as ob:
        assert ob.next_seq == 3 + SEQ_JUMP_AFTER_CRASH


def once(key: str) -> Draft:
    return Draft(Lane.EVENT, draft(Lane.EVENT).build, once_key=key)


def once_keys(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {str(k) for (k,) in conn.execute("SELECT key FROM once_keys")}


async def test_once_keys_are_pruned_after_the_retention(tmp_path: Path) -> None:
    """A resend within the retention is still dropped; a key older than the retention
    (counted back from the newest key) is deleted, so the table does not grow forever."""
    path, day = tmp_path / "o.sqlite", 86_400.0
    clock = FakeClock(TEST_EPOCH)
    async with Outbox(path, GW, clock=clock, once_retention_s=day) as ob:
        assert await ob.put(once("dev:a:1")) is not None
        clock.advance(23 * 3600)
        assert await ob.put(once("dev:a:1")) is None      # a resend 23 h later: dropped
        assert await ob.put(once("dev:b:1")) is not None
        clock.advance(3 * 3600)
        assert await ob.put(once("dev:c:1")) is not None  # newest key: 26 h after a's
        clock.advance(3600)
        assert await ob.put(once("dev:d:1")) is not None  # this write prunes a
        assert once_keys(path) == {"dev:b:1", "dev:c:1", "dev:d:1"}
        assert ob.pruned_once_keys == 1
        # a's identity is forgotten: the same key is a new record now
        assert await ob.put(once("dev:a:1")) is not None


async def test_a_gateway_off_longer_than_the_retention_still_knows_its_keys(
        tmp_path: Path) -> None:
    """The home broker redelivers what it had not seen acknowledged when the gateway comes
    back, however long it was off: the age counts from the newest key, not from now."""
    path, day = tmp_path / "o.sqlite", 86_400.0
    clock = FakeClock(TEST_EPOCH)
    async with Outbox(path, GW, clock=clock, once_retention_s=day) as ob:
        assert await ob.put(once("dev:a:1")) is not None
    clock.advance(10 * day)
    async with Outbox(path, GW, clock=clock, once_retention_s=day) as ob:
        assert await ob.put(once("dev:a:1")) is None
        assert once_keys(path) == {"dev:a:1"}


async def test_once_keys_of_an_older_outbox_count_from_the_upgrade(tmp_path: Path) -> None:
    path, day = tmp_path / "o.sqlite", 86_400.0
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE once_keys(key TEXT PRIMARY KEY, record_id TEXT NOT NULL)")
        conn.execute("INSERT INTO once_keys VALUES ('unknown:x', 'gw-ob-000001')")
    clock = FakeClock(TEST_EPOCH)
    async with Outbox(path, GW, clock=clock, once_retention_s=day) as ob:
        assert await ob.put(once("unknown:x")) is None
        clock.advance(2 * day)
        assert await ob.put(once("dev:b:1")) is not None
        clock.advance(3600)
        assert await ob.put(once("unknown:x")) is not None  # pruned a retention later


def test_the_retention_is_a_gateway_setting(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from eldercare_edge.gateway import Gateway
    from eldercare_edge.settings import EdgeSettings

    assert EdgeSettings(gateway_id=GW).outbox.once_retention_s == 7 * 86_400
    settings = EdgeSettings(gateway_id=GW, data_dir=tmp_path / "gw",
                            outbox={"once_retention_s": 2 * 86_400})
    assert Gateway(settings).outbox.once_retention_s == 2 * 86_400
    with pytest.raises(ValidationError, match="once_retention_s"):
        EdgeSettings(gateway_id=GW, outbox={"once_retention_s": 60})
