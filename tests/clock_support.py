"""The clock a gateway under test runs on when a test brings none of its own.

The gateway's local rules depend on the time of day in the resident's time zone (night
wandering 23:00-05:00, wake-by 10:00, Asia/Shanghai), so a test that used the wall clock
passed or failed by the hour CI ran it. This clock starts at a quiet local afternoon and
ticks in real time, so timeouts and heartbeats still behave as in production.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from eldercare_sim.clock import SimClock

AFTERNOON = datetime(2026, 3, 2, 14, 0, tzinfo=timezone(timedelta(hours=8)))
#: where a test's hand-driven clock starts when the test needs no particular instant
#: (the same quiet afternoon, in UTC)
TEST_EPOCH = AFTERNOON.astimezone(UTC)


def afternoon_clock() -> SimClock:
    return SimClock(AFTERNOON)
