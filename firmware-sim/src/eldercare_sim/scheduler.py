"""A discrete-event scheduler on a :class:`SimClock`.

Every timer of every simulated device (heartbeats, readings, a resident's next
move) is one entry in a single heap ordered by simulated time, so ten thousand
devices cost one task, not ten thousand, and the order of what they say is a
function of the seed alone: each callback runs with :attr:`Scheduler.now` set
to exactly its scheduled time, whatever the real clock did meanwhile.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from eldercare_sim.clock import SimClock

log = logging.getLogger(__name__)

Callback = Callable[[], None]


@dataclass(eq=False)
class Timer:
    when: float
    callback: Callback
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class Scheduler:
    """Runs callbacks at simulated times.

    ``fast=True`` (with a frozen clock) jumps the clock to each next event: a
    scenario then runs as fast as the transport takes it, still in sim order.
    """

    def __init__(self, clock: SimClock, *, fast: bool = False) -> None:
        if fast and clock.speed != 0:
            raise ValueError("fast mode needs a frozen clock (speed=0)")
        self.clock = clock
        self.fast = fast
        #: (when, insertion order, timer): plain tuples compare fast, and the order keeps
        #: callbacks due at the same instant first-in first-out
        self._heap: list[tuple[float, int, Timer]] = []
        self._counter = itertools.count()
        self._current: float | None = None
        self._wakeup: asyncio.Future[None] | None = None
        #: awaited every ``yield_every`` callbacks so transports can flush (backpressure)
        self.pause: Callable[[], Awaitable[None]] | None = None
        self.yield_every = 200
        self.dispatched = 0
        self._holds: list[Awaitable[None]] = []

    # ------------------------------------------------------------------ time

    def time(self) -> float:
        """The current simulated time: a callback's scheduled time while it runs."""
        return self._current if self._current is not None else self.clock.monotonic()

    def now(self) -> datetime:
        return self.clock.at(self.time())

    # ------------------------------------------------------------------ scheduling

    def at(self, when: float, callback: Callback) -> Timer:
        timer = Timer(when, callback)
        heapq.heappush(self._heap, (when, next(self._counter), timer))
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)
        return timer

    def after(self, delay: float, callback: Callback) -> Timer:
        return self.at(self.time() + max(0.0, delay), callback)

    def call(self, callback: Callback) -> None:
        """Run now, with sim time frozen at the current reading for its duration."""
        if self._current is not None:
            callback()
            return
        self._current = self.clock.monotonic()
        try:
            callback()
        finally:
            self._current = None

    def position(self) -> float:
        """How far the simulation has got: the clock, or the oldest overdue event when
        the callbacks cannot keep up with the clock's speed."""
        now = self.clock.monotonic()
        for when, _, timer in self._heap[:1]:
            if not timer.cancelled and when < now:
                return when
        return now

    def hold(self, work: Awaitable[None]) -> None:
        """Finish ``work`` (a reconnect, say) before the next callback runs.

        A callback cannot await; this is how it makes the simulation wait for I/O
        that must happen at its point in simulated time.
        """
        self._holds.append(work)

    def pending(self) -> int:
        return sum(1 for _, _, t in self._heap if not t.cancelled)

    # ------------------------------------------------------------------ running

    async def run(self, until: float | None = None) -> None:
        """Dispatch due callbacks until ``until`` (sim seconds) or forever."""
        since_yield = 0
        while True:
            while self._heap and self._heap[0][2].cancelled:
                heapq.heappop(self._heap)
            next_t = self._heap[0][0] if self._heap else None
            if until is not None and (next_t is None or next_t > until):
                if self.fast:
                    self._advance_to(until)
                else:
                    await self._wait(until)
                    if self._heap and self._heap[0][0] <= until:
                        continue
                return
            if next_t is None:
                await self._wait(None)
                continue
            if next_t > self.clock.monotonic():
                if self.fast:
                    self._advance_to(next_t)
                else:
                    await self._wait(next_t)
                    continue
            _, _, timer = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            self._current = timer.when
            try:
                timer.callback()
            except Exception:  # a device bug must not stop every other device
                log.exception("simulated device callback failed")
            finally:
                self._current = None
            self.dispatched += 1
            since_yield += 1
            if self._holds:
                holds, self._holds = self._holds, []
                for work in holds:
                    try:
                        await work
                    except Exception:
                        log.exception("simulated I/O on hold failed")
            if since_yield >= self.yield_every:
                since_yield = 0
                if self.pause is not None:
                    await self.pause()
                else:
                    await asyncio.sleep(0)

    def _advance_to(self, when: float) -> None:
        ahead = when - self.clock.monotonic()
        if ahead > 0:
            self.clock.advance(ahead)

    async def _wait(self, target: float | None) -> None:
        loop = asyncio.get_running_loop()
        self._wakeup = loop.create_future()
        try:
            if target is None:
                await self._wakeup
            else:
                await self.clock.sleep_until(target, interrupt=self._wakeup)
        finally:
            self._wakeup = None
