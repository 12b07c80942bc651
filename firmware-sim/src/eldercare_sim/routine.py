"""A resident's day: when they wake, cook, go out, nap and sleep.

Each day is planned at local midnight from the home's seeded random source, so
the same seed gives the same life. The plan drives the door, motion, bed, radar,
gas and GPS devices; a resident whose condition is "inactive" (collapsed,
unwell) stops moving, which is exactly what inactivity rules must notice.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eldercare_sim.household import Household

MIN = 60.0
HOUR = 3600.0


@dataclass(frozen=True, order=True)
class Step:
    at: float  # seconds after local midnight
    action: str
    arg: float = 0.0


def plan_day(rng: random.Random) -> list[Step]:
    """One day's plan, in seconds after local midnight."""
    steps: list[Step] = []
    u = rng.uniform
    # night toilet trips, with the resident asleep in bed beforehand
    wake = 6.25 * HOUR + u(0, 60) * MIN
    for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
        t = u(0.5 * HOUR, wake - 30 * MIN)
        steps.append(Step(t, "toilet_trip", u(4, 12) * MIN))
    steps.append(Step(wake, "wake"))
    breakfast = wake + u(20, 45) * MIN
    steps.append(Step(breakfast, "cook", u(10, 20) * MIN))
    away_windows: list[tuple[float, float]] = []
    if rng.random() < 0.75:
        out = 8.5 * HOUR + u(0, 75) * MIN
        back = out + u(40, 120) * MIN
        steps += [Step(out, "go_out"), Step(back, "come_back")]
        away_windows.append((out, back))
    lunch = 11.4 * HOUR + u(0, 40) * MIN
    steps.append(Step(lunch, "cook", u(15, 30) * MIN))
    if rng.random() < 0.5:
        nap = 13 * HOUR + u(0, 45) * MIN
        steps += [Step(nap, "nap_start"), Step(nap + u(40, 90) * MIN, "nap_end")]
        away_windows.append((nap, nap + 90 * MIN))
    if rng.random() < 0.3:
        out = 15 * HOUR + u(0, 60) * MIN
        back = out + u(30, 70) * MIN
        steps += [Step(out, "go_out"), Step(back, "come_back")]
        away_windows.append((out, back))
    dinner = 17.25 * HOUR + u(0, 45) * MIN
    steps.append(Step(dinner, "cook", u(20, 35) * MIN))
    bedtime = 20.75 * HOUR + u(0, 75) * MIN
    steps += [Step(bedtime, "go_to_bed"), Step(bedtime + u(10, 30) * MIN, "fall_asleep")]
    # moving about the flat between the fixed points
    t = wake + u(5, 15) * MIN
    while t < bedtime:
        if not any(a <= t <= b for a, b in away_windows):
            steps.append(Step(t, "move_about"))
        t += u(12, 45) * MIN
    return sorted(steps)


class Routine:
    """Schedules each day's plan on the household's scheduler."""

    def __init__(self, household: Household, rng: random.Random) -> None:
        self.house = household
        self.rng = rng
        self.sched = household.sched

    def start(self) -> None:
        now = self.sched.now()
        local = now.astimezone(self.house.resident.tz)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        self._plan(midnight, skip_before=now)
        # the resident's state at the start: asleep at night, up during the day
        hour = local.hour + local.minute / 60
        if hour < 6.5 or hour >= 22:
            self.house.act("go_to_bed")
            self.house.act("fall_asleep")
        else:
            self.house.act("wake")

    def _plan(self, midnight: datetime, skip_before: datetime | None = None) -> None:
        for step in plan_day(self.rng):
            when = midnight + timedelta(seconds=step.at)
            if skip_before is not None and when < skip_before:
                continue
            self.sched.at(self.sched.clock.seconds_at(when), self._runner(step))
        nxt = midnight + timedelta(days=1)
        self.sched.at(self.sched.clock.seconds_at(nxt), lambda: self._plan(nxt))

    def _runner(self, step: Step) -> Callable[[], None]:
        return lambda: self.house.act(step.action, step.arg)
