"""The loop every engine runs: a pass that fails with an expected error (the database
away for a moment) is retried after a back-off, never leaves a dead task; a bug ends it."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime, timedelta

import pytest

from clock_support import TEST_EPOCH
from eldercare_cloud.clock import ManualClock
from eldercare_cloud.db import DATABASE_ERRORS
from eldercare_cloud.engine_loop import Tasks, earliest, run_loop


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_failed_pass_is_retried_after_the_back_off() -> None:
    clock = ManualClock(TEST_EPOCH)
    wake = asyncio.Event()
    calls: list[datetime] = []
    failures: list[int] = []

    async def step() -> datetime | None:
        calls.append(clock.now())
        if len(calls) == 1:  # e.g. working out the next deadline while PostgreSQL restarts
            raise sqlite3.OperationalError("database is locked")
        return clock.now() + timedelta(seconds=30)

    tasks = Tasks()
    tasks.start("test-loop", run_loop("test pass", clock, wake, step, poll_s=60,
                                      errors=DATABASE_ERRORS,
                                      failed=lambda: failures.append(1)))
    await settle()
    assert len(calls) == 1 and failures == [1]
    clock.advance(59)  # the back-off is max(1 s, poll_s); a wake does not cut it short
    wake.set()
    await settle()
    assert len(calls) == 1
    clock.advance(1)
    await settle()
    assert calls == [TEST_EPOCH, TEST_EPOCH + timedelta(seconds=60)]
    # then it sleeps until what the pass said is due (30 s), not the poll (60 s)
    clock.advance(29)
    await settle()
    assert len(calls) == 2
    clock.advance(1)
    await settle()
    assert len(calls) == 3
    # and a wake runs a pass at once
    wake.set()
    await settle()
    assert len(calls) == 4 and failures == [1]
    await tasks.stop()


async def test_an_unexpected_error_ends_the_loop_loudly() -> None:
    clock = ManualClock(TEST_EPOCH)

    async def step() -> datetime | None:
        raise KeyError("a bug")

    task = asyncio.create_task(run_loop("test pass", clock, asyncio.Event(), step, poll_s=1,
                                        errors=DATABASE_ERRORS, failed=lambda: None))
    with pytest.raises(KeyError):
        await asyncio.wait_for(task, 5)


def test_earliest_ignores_the_unknown() -> None:
    later = TEST_EPOCH + timedelta(minutes=5)
    assert earliest(None, later, TEST_EPOCH, None) == TEST_EPOCH
    assert earliest(None, None) is None
