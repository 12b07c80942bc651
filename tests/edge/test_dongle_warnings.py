"""Issue 15: an unplugged serial dongle retries every ``reopen_s`` for as long as it is
out; its warning is rate-limited (a burst, then one line with the count suppressed), so
a night without the dongle does not fill the gateway's log. The clock is injected."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from eldercare_edge.connectors.dongle import SerialDongle
from eldercare_edge.counters import Counters
from eldercare_edge.settings import SerialSettings
from eldercare_protocols.lograte import RateLimitedLog

from .helpers import wait_for


class StepClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


async def test_the_retry_warning_of_a_missing_dongle_is_rate_limited(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = StepClock()
    logger = logging.getLogger("eldercare_edge.connectors.dongle")
    warn = RateLimitedLog(logger, interval_s=60, burst=3, clock=clock)
    counters = Counters()
    caplog.set_level(logging.WARNING, logger=logger.name)
    dongle = SerialDongle(SerialSettings(port=str(tmp_path / "no-such-tty"), reopen_s=0.001),
                          lambda line: None, counters, warn)
    task = asyncio.create_task(dongle.run())
    try:
        await wait_for(lambda: counters.get("serial_open_failed") >= 50, 10, "50 retries")
        retries = [r for r in caplog.records if "cannot be opened" in r.getMessage()]
        assert len(retries) == 3
        assert warn.suppressed_total >= 47
        clock.t += 60
        await wait_for(lambda: any("suppressed" in r.getMessage() for r in caplog.records),
                       10, "the line with the count")
        note = next(r.getMessage() for r in caplog.records if "suppressed" in r.getMessage())
        assert "cannot be opened" in note and "more like this suppressed in 60 s" in note
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
