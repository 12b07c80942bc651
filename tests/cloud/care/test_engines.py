"""Two care engines on one database (two processes of the cloud, here two sets of
services with their own connections and locks in one test): a ladder step that times
out is moved on by exactly one of them, and every contact is notified once.

Meaningful on PostgreSQL (ELDERCARE_TEST_DATABASE_URL; scripts/test.sh runs it there):
both engines' transactions really run at once and the run row is claimed with
``FOR UPDATE SKIP LOCKED``. On SQLite ``BEGIN IMMEDIATE`` serialises them, and the test
shows the same outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from care_support import (
    DAUGHTER,
    GRID,
    NEIGHBOUR,
    SON,
    VOLUNTEER,
    Care,
    care_settings,
    commit_event,
    open_care,
    serve,
)
from ingest_support import wait_until

import db_support
from eldercare_cloud.clock import ManualClock
from eldercare_protocols.events import EventKind

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
PHONES = {SON: "13900003001", DAUGHTER: "13900003002"}


async def both(a: Care, b: Care) -> None:
    """Both engines' ladder timers and both dispatchers, at the same time."""
    await asyncio.gather(a.services.engine.run_due(), b.services.engine.run_due())
    for _ in range(5):
        await asyncio.gather(a.services.dispatcher.deliver_due(),
                             b.services.dispatcher.deliver_due())


async def notifications(care: Care, alert_id: str) -> list[tuple[str, int]]:
    cur = await care.db.conn.execute(
        "SELECT contact_id, COUNT(*) FROM notifications WHERE alert_id = ?"
        " AND contact_id IS NOT NULL AND channel = 'sms' GROUP BY contact_id"
        " ORDER BY contact_id", (alert_id,))
    return [(r[0], int(r[1])) for r in await cur.fetchall()]


async def steps_taken(care: Care, alert_id: str) -> list[tuple[int, int]]:
    """(step, position) of every move of the ladder, from the alert's timeline."""
    cur = await care.db.conn.execute(
        "SELECT detail FROM alert_timeline WHERE alert_id = ? AND action = 'ladder_step'"
        " ORDER BY id", (alert_id,))
    return [(d["step_index"], d["position"])
            for d in (json.loads(r[0]) for r in await cur.fetchall())]


async def test_two_engines_move_each_step_once_and_notify_nobody_twice(
        tmp_path: Path, care_db: Path | str,
        care_template: tuple[Path | str, dict[str, str]]) -> None:
    clock = ManualClock(START)
    settings = care_settings(tmp_path)
    async with open_care(care_db, settings, clock, care_template[1]) as a, \
            open_care(care_db, settings, clock, care_template[1]) as b:
        # engine A turns the SOS into an alert (tailing events is one engine's job today)
        await a.commit(EventKind.SOS)
        await a.run()
        (alert,) = await a.open_alerts()
        alert_id = str(alert["id"])
        assert await a.asked(alert_id) == [SON]

        # the first step times out: both engines see it due at the same moment
        clock.advance(60)
        for _ in range(3):
            await both(a, b)
        assert await a.asked(alert_id) == [SON, DAUGHTER]  # one step, not two
        clock.advance(60)
        for _ in range(3):
            await both(a, b)
        assert sorted(await a.asked(alert_id)) == sorted([SON, DAUGHTER, NEIGHBOUR, VOLUNTEER])
        clock.advance(60)
        for _ in range(3):
            await both(a, b)
        assert (await a.asked(alert_id))[-1] == GRID

        # every contact notified once, each SMS sent once by one of the two engines
        counts = await notifications(a, alert_id)
        assert counts and all(n == 1 for _, n in counts), counts
        sent = [m.address for m in a.sms.sent + b.sms.sent if m.alert_id == alert_id]
        assert len(sent) == len(set(sent)) == len(counts)
        moves = await steps_taken(a, alert_id)
        assert len(moves) >= 4 and len(moves) == len(set(moves)), moves  # each move once


@pytest.mark.skipif(not db_support.POSTGRES, reason="a standby engine needs PostgreSQL "
                    "(set ELDERCARE_TEST_DATABASE_URL; scripts/test.sh does)")
async def test_a_standby_engine_takes_over_when_the_leader_dies_mid_ladder(
        tmp_path: Path, care_db: Path | str,
        care_template: tuple[Path | str, dict[str, str]]) -> None:
    import psycopg

    clock = ManualClock(START)
    settings = care_settings(tmp_path)
    ids = care_template[1]
    async with contextlib.AsyncExitStack() as leader_stack, \
            contextlib.AsyncExitStack() as standby_stack:
        a = await leader_stack.enter_async_context(
            serve(care_db, settings, clock, ids, run_engine=True))
        b = await standby_stack.enter_async_context(
            serve(care_db, settings, clock, ids, run_engine=True))
        assert a.services.engine.leading and not b.services.engine.leading
        await commit_event(a.store, EventKind.SOS, at=clock.now())
        a.services.engine.wake()
        b.services.engine.wake()
        await wait_until(lambda: [m.address for m in a.sms.sent] == [PHONES[SON]],
                         what="the leader asking the son")
        assert b.sms.sent == []  # the standby moved nothing
        # the leader's process dies: the session holding its lead ends, then the rest
        lead_held = ("SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                     " AND database = (SELECT oid FROM pg_database WHERE datname = %s)")
        with psycopg.connect(db_support.ADMIN_URL or "", autocommit=True) as admin:
            name = db_support.db_name(b.settings.database)
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE"
                          " locktype = 'advisory' AND granted AND database ="
                          " (SELECT oid FROM pg_database WHERE datname = %s)", (name,))
            await leader_stack.aclose()
            # the standby checks again at its next poll; here the poll is the manual
            # clock's next move, so move it only once the server has let the lock go
            await wait_until(lambda: admin.execute(lead_held, (name,)).fetchone() == (0,),
                             what="the dead leader's lock released")
        clock.advance(60)  # the son's minute is up
        await wait_until(lambda: [m.address for m in b.sms.sent] == [PHONES[DAUGHTER]],
                         what="the standby taking over and asking the daughter")
        assert b.services.engine.leading
        cur = await b.services.db.conn.execute(
            "SELECT contact_id, COUNT(*) FROM notifications WHERE channel = 'sms'"
            " GROUP BY contact_id ORDER BY contact_id")
        assert [tuple(r) for r in await cur.fetchall()] == sorted([(SON, 1), (DAUGHTER, 1)])
