"""Rate-limited warnings (issue 15): a flood of one kind logs ``burst`` lines per window
and says how many it suppressed; other kinds are not affected. The clock is injected."""

from __future__ import annotations

import logging

import pytest

from eldercare_protocols.lograte import RateLimitedLog


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


def test_a_flood_logs_a_burst_then_a_count(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    warn = RateLimitedLog(logging.getLogger("t.flood"), interval_s=10, burst=3, clock=clock)
    caplog.set_level(logging.WARNING, logger="t.flood")
    logged = [warn.warning("bad", "bad payload on %s", f"topic/{i}") for i in range(1000)]
    assert logged.count(True) == 3
    assert lines(caplog) == ["bad payload on topic/0", "bad payload on topic/1",
                             "bad payload on topic/2"]
    assert warn.suppressed_total == 997
    clock.t += 10
    assert warn.warning("bad", "bad payload on %s", "topic/x")
    assert lines(caplog)[-1] == "bad payload on topic/x (997 more like this suppressed in 10 s)"
    # a new window: the budget is back, no note repeated
    assert warn.warning("bad", "bad payload on %s", "topic/y")
    assert lines(caplog)[-1] == "bad payload on topic/y"


def test_kinds_have_their_own_budget(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    warn = RateLimitedLog(logging.getLogger("t.kinds"), interval_s=10, burst=1, clock=clock)
    caplog.set_level(logging.WARNING, logger="t.kinds")
    for _ in range(50):
        warn.warning("malformed", "malformed")
    assert warn.error("dongle", "dongle %s retrying", "/dev/ttyUSB0")
    assert lines(caplog) == ["malformed", "dongle /dev/ttyUSB0 retrying"]
    warn.flush()
    assert lines(caplog)[-1] == "49 more 'malformed' warnings suppressed"


def test_the_number_of_kinds_is_bounded() -> None:
    warn = RateLimitedLog(logging.getLogger("t.bounded"), max_kinds=4, clock=Clock())
    for i in range(100):
        warn.warning(f"kind-{i}", "x")
    assert len(warn._windows) == 4
