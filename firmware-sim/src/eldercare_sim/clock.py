"""A simulated clock that can run slower or faster than real time, or stand still.

Everything the simulator timestamps or waits for goes through one clock, so a
whole day of a resident's life can run in a minute and a test can step time by
hand. ``speed`` is simulated seconds per real second; ``speed=0`` freezes the
clock and :meth:`SimClock.advance` moves it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class SimClock:
    def __init__(self, start: datetime | None = None, speed: float = 1.0) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        if start is None:
            start = datetime.now(UTC)
        elif start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        self.start = start.astimezone(UTC)
        self._speed = float(speed)
        self._lock = threading.Lock()
        self._anchor_real = time.monotonic()
        self._anchor_sim = 0.0
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()

    # ------------------------------------------------------------------ reading

    @property
    def speed(self) -> float:
        return self._speed

    def monotonic(self) -> float:
        """Simulated seconds since the clock's start."""
        with self._lock:
            return self._anchor_sim + (time.monotonic() - self._anchor_real) * self._speed

    def now(self) -> datetime:
        """The simulated wall-clock time (aware, UTC)."""
        return self.at(self.monotonic())

    def at(self, sim_seconds: float) -> datetime:
        """The wall-clock time of a point on this clock's monotonic scale."""
        return self.start + timedelta(seconds=sim_seconds)

    def seconds_at(self, when: datetime) -> float:
        """The monotonic reading at a wall-clock time (inverse of :meth:`at`)."""
        return (when - self.start).total_seconds()

    # ------------------------------------------------------------------ moving

    def set_speed(self, speed: float) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        with self._lock:
            now_real = time.monotonic()
            self._anchor_sim += (now_real - self._anchor_real) * self._speed
            self._anchor_real = now_real
            self._speed = float(speed)
        self._wake()

    def advance(self, seconds: float) -> None:
        """Jump forward (any speed; the usual way to move a frozen clock)."""
        if seconds < 0:
            raise ValueError("the clock does not go backwards")
        with self._lock:
            self._anchor_sim += seconds
        self._wake()

    def _wake(self) -> None:
        for loop, fut in list(self._waiters):
            loop.call_soon_threadsafe(_resolve, fut)

    # ------------------------------------------------------------------ waiting

    async def sleep(self, seconds: float) -> None:
        """Sleep for simulated seconds (forever on a frozen clock, until advanced)."""
        await self.sleep_until(self.monotonic() + seconds)

    async def sleep_until(self, target: float, interrupt: asyncio.Future[None] | None = None
                          ) -> bool:
        """Wait until the monotonic reading reaches ``target``.

        Returns False early if ``interrupt`` completes first (a scheduler uses
        this to notice an event scheduled before the one it is waiting for).
        """
        loop = asyncio.get_running_loop()
        while True:
            remaining = target - self.monotonic()
            if remaining <= 0:
                return True
            if interrupt is not None and interrupt.done():
                return False
            fut: asyncio.Future[None] = loop.create_future()
            key = (loop, fut)
            self._waiters.add(key)
            timer = None
            if self._speed > 0:
                timer = loop.call_later(remaining / self._speed, _resolve, fut)
            if interrupt is not None:
                interrupt.add_done_callback(_resolver(fut))
            try:
                await fut
            finally:
                self._waiters.discard(key)
                if timer is not None:
                    timer.cancel()


def _resolver(fut: asyncio.Future[None]) -> Callable[[asyncio.Future[None]], None]:
    return lambda _done: _resolve(fut)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
