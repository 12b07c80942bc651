"""The loop every engine runs (care, service desk, care visits, notification delivery).

One pass, then sleep until the next thing is due, ``poll_s`` at the most, or until
something wakes it. A pass that fails with an expected error (the database away for a
moment, a constraint) is counted, logged and retried after a back-off; that includes
working out when the next thing is due, so a database blip never leaves a dead task
behind (which the process's supervision would turn into an exit).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import suppress
from datetime import datetime, timedelta
from typing import Any

from eldercare_cloud.clock import Clock

log = logging.getLogger(__name__)

#: one pass of an engine; returns when it next has something due (None: nothing known)
Step = Callable[[], Awaitable[datetime | None]]


async def run_loop(name: str, clock: Clock, wake: asyncio.Event, step: Step, *,
                   poll_s: float, errors: tuple[type[Exception], ...],
                   failed: Callable[[], None]) -> None:
    """Run ``step`` forever. An error in ``errors`` calls ``failed``, is logged and the
    pass is retried after ``max(1 s, poll_s)`` (an error that repeats must not become a
    hot loop of logs); any other error ends the loop loudly, as a bug should."""
    while True:
        wake.clear()
        try:
            due = await step()
        except errors:
            failed()
            log.exception("%s failed; retrying", name)
            await clock.sleep_until(clock.now() + timedelta(seconds=max(1.0, poll_s)),
                                    asyncio.Event())
            continue
        deadline = clock.now() + timedelta(seconds=poll_s)
        await clock.sleep_until(deadline if due is None else min(due, deadline), wake)


def earliest(*due: datetime | None) -> datetime | None:
    """The first of the deadlines that are known."""
    return min((d for d in due if d is not None), default=None)


class Tasks:
    """An engine's long-lived tasks: started on entry, cancelled and awaited on exit."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError):
                await task
        self._tasks = []
