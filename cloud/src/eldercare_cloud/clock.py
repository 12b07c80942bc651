"""Time as a dependency: the care engine never reads the wall clock directly.

Ladder timeouts and cloud rules are measured against an injected ``Clock`` so that
tests can move time forward instead of sleeping, and so that every timestamp an
alert carries comes from one place.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol


def iso(ts: datetime) -> str:
    """The one text form of a timestamp in the database: UTC, microseconds, sortable."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


def parse_iso(text: str) -> datetime:
    ts = datetime.fromisoformat(text)
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def opt_iso(ts: datetime | None) -> str | None:
    return None if ts is None else iso(ts)


def opt_parse(text: str | None) -> datetime | None:
    return None if text is None else parse_iso(text)


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def sleep_until(self, deadline: datetime | None, wake: asyncio.Event) -> None:
        """Return at ``deadline`` (never, if None) or as soon as ``wake`` is set."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, deadline: datetime | None, wake: asyncio.Event) -> None:
        timeout = None if deadline is None else max(0.0, (deadline - self.now()).total_seconds())
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
        # that arrives just as ``wake`` is set, and an engine's loop, cancelled at shutdown,
        # would then sleep on forever (the rare hang of test_sos_over_mqtt_becomes_an_alert)
        try:
            async with asyncio.timeout(timeout):
                await wake.wait()
        except TimeoutError:
            return


class ManualClock:
    """A clock that moves only when a test says so; sleepers wake when it passes their deadline."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2025, 3, 1, 1, 0, tzinfo=UTC)
        self._moved = asyncio.Event()

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        self._now += timedelta(seconds=seconds)
        self._moved.set()
        return self._now

    def set(self, ts: datetime) -> None:
        self._now = ts
        self._moved.set()

    async def sleep_until(self, deadline: datetime | None, wake: asyncio.Event) -> None:
        while deadline is None or self._now < deadline:
            if wake.is_set():
                return
            self._moved.clear()
            waiters = [asyncio.ensure_future(wake.wait()),
                       asyncio.ensure_future(self._moved.wait())]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
