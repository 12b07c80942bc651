"""The system clock's sleep honours a cancellation that arrives as its wake event is set.

asyncio.wait_for on Python 3.11 returns normally in that case, swallowing the cancel; an
engine loop cancelled at shutdown then slept on forever and the process never stopped.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from eldercare_cloud.clock import SystemClock
from eldercare_cloud.stream.hub import StreamHub


async def _cancel_as_woken(task: asyncio.Task[Any], wake: asyncio.Event) -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)          # the task is now waiting on the event
    wake.set()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_sleep_until_is_cancelled_even_when_woken_at_the_same_moment() -> None:
    clock = SystemClock()
    wake = asyncio.Event()
    task = asyncio.create_task(clock.sleep_until(clock.now() + timedelta(seconds=60), wake))
    await _cancel_as_woken(task, wake)


async def test_stream_wait_is_cancelled_even_when_woken_at_the_same_moment() -> None:
    changed = asyncio.Event()
    task = asyncio.create_task(StreamHub.wait(changed, 60))
    await _cancel_as_woken(task, changed)


async def test_sleep_until_still_returns_on_wake_and_on_deadline() -> None:
    clock = SystemClock()
    wake = asyncio.Event()
    wake.set()
    await clock.sleep_until(clock.now() + timedelta(seconds=60), wake)   # at once: woken
    await clock.sleep_until(clock.now(), asyncio.Event())                # at once: due
