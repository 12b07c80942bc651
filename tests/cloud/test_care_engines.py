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
import json
from datetime import UTC, datetime
from pathlib import Path

from care_support import DAUGHTER, GRID, NEIGHBOUR, SON, VOLUNTEER, Care, care_settings, open_care

from eldercare_cloud.care.clock import ManualClock
from eldercare_protocols.events import EventKind

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


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
