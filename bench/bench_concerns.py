"""The routine concern detector on simulated residents with injected changes.

Run from the repository root::

    uv run python bench/bench_concerns.py [--residents 120] [--seed 7]

Each simulated resident has a routine of their own (usual first activity between 06:00
and 08:30 with a day-to-day spread of 10-40 minutes, 8-40 door/motion/bed events a day,
0-1.5 night events on average, Poisson). Every resident lives a 28-day learning period
and then a 30-day month checked every ``--step`` minutes with
``visits.routine.check`` (the function the engine runs). A third of the residents get
one injected change in the month: stops getting up (no activity until 12:00-14:00),
starts wandering at night (6-12 events between 01:00 and 04:30), or a decline (a week at
30 % of their usual activity). Reported: detection rate and delay per change type (onset
= the minute the change first shows: the usual first-activity time, the first night
event, the first day of the decline), and false concerns per resident-month on days
without a change. Targets (issue 11): >= 90 % of injected acute changes caught within
3 hours; <= 1 false concern per resident-month. Timing: one check against a baseline of
the median of 28 numbers (the least a learned band costs), as a ratio.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from dataclasses import dataclass
from datetime import date, timedelta

from eldercare_cloud.visits import routine as R

START = date(2025, 1, 1)
LEARN_DAYS = 28
MONTH_DAYS = 30


@dataclass(frozen=True)
class Person:
    first_mu: float
    first_sd: float
    events: float
    night: float


@dataclass
class Change:
    kind: R.ConcernKind
    day: date
    onset_min: int


def poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method: lam is small here
    limit, k, p = pow(2.718281828459045, -lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def day_events(rng: random.Random, person: Person, day: date, change: Change | None,
               ) -> list[int]:
    """Minutes after midnight of the day's events (night ones below DAY_START_H * 60)."""
    first = int(rng.gauss(person.first_mu, person.first_sd))
    scale = 1.0
    if (change is not None and change.kind is R.ConcernKind.ACTIVITY_DECLINE
            and change.day <= day < change.day + timedelta(days=7)):
        scale = 0.3
    if (change is not None and change.kind is R.ConcernKind.NO_MORNING_ACTIVITY
            and day == change.day):
        first = rng.randint(12 * 60, 14 * 60)
    n = max(1, poisson(rng, person.events * scale))
    times = [first] + [rng.randint(first + 5, 22 * 60) for _ in range(n - 1)]
    times += [rng.randint(0, R.DAY_START_H * 60 - 1) for _ in range(poisson(rng, person.night))]
    if (change is not None and change.kind is R.ConcernKind.NIGHT_ACTIVITY
            and day == change.day):
        times += sorted(rng.randint(60, 270) for _ in range(rng.randint(6, 12)))
    return sorted(times)


def as_day(day: date, minutes: list[int], upto: int) -> R.Day:
    seen = [m for m in minutes if m <= upto]
    night = sum(1 for m in seen if m < R.DAY_START_H * 60)
    firsts = [m for m in seen if m >= R.DAY_START_H * 60]
    return R.Day(day, len(seen), night, min(firsts) if firsts else None)


def simulate(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    kinds = [R.ConcernKind.NO_MORNING_ACTIVITY, R.ConcernKind.NIGHT_ACTIVITY,
             R.ConcernKind.ACTIVITY_DECLINE]
    delays: dict[R.ConcernKind, list[float | None]] = {k: [] for k in kinds}
    false_concerns = 0
    false_by: dict[str, int] = {}
    resident_months = 0
    checks = 0
    check_s = 0.0
    for i in range(args.residents):
        person = Person(first_mu=rng.uniform(6 * 60, 8.5 * 60), first_sd=rng.uniform(10, 40),
                        events=rng.uniform(8, 40), night=rng.uniform(0, 1.5))
        change = None
        if i % 3 == 0:
            kind = kinds[(i // 3) % 3]
            day = START + timedelta(days=LEARN_DAYS + rng.randint(3, MONTH_DAYS - 8))
            change = Change(kind, day, 0)
        history: list[R.Day] = []
        for d in range(LEARN_DAYS):
            day = START + timedelta(days=d)
            history.append(as_day(day, day_events(rng, person, day, None), 24 * 60))
        resident_months += 1
        detected_at: tuple[date, int] | None = None
        open_kinds: dict[R.ConcernKind, date] = {}
        last_raised: dict[R.ConcernKind, date] = {}
        for d in range(LEARN_DAYS, LEARN_DAYS + MONTH_DAYS):
            day = START + timedelta(days=d)
            minutes = day_events(rng, person, day, change)
            raised_today: set[R.ConcernKind] = set()
            for now in range(0, 24 * 60, args.step):
                today = as_day(day, minutes, now)
                t0 = time.perf_counter()
                found = R.check([*history[-(R.LEARN_MAX_DAYS + R.DECLINE_DAYS + 1):], today],
                                day, now)
                check_s += time.perf_counter() - t0
                checks += 1
                for dev in found:
                    # the engine raises one concern per kind and day, none while one is open
                    if dev.kind in raised_today or dev.kind in open_kinds:
                        continue
                    cool = R.COOLDOWN_DAYS.get(dev.kind.value, 0)
                    last = last_raised.get(dev.kind)
                    if cool and last is not None and (day - last).days < cool:
                        continue
                    last_raised[dev.kind] = day
                    raised_today.add(dev.kind)
                    open_kinds[dev.kind] = day
                    injected = (change is not None and dev.kind is change.kind
                                and change.day <= day < change.day + timedelta(days=8))
                    if injected and detected_at is None:
                        detected_at = (day, now)
                    elif not injected:
                        false_concerns += 1
                        false_by[dev.kind.value] = false_by.get(dev.kind.value, 0) + 1
            # a concern is closed by its visit or call the same day
            open_kinds = {k: v for k, v in open_kinds.items() if v > day}
            history.append(as_day(day, minutes, 24 * 60))
        if change is not None:
            if change.kind is R.ConcernKind.NO_MORNING_ACTIVITY:
                onset = (change.day, int(person.first_mu))
            elif change.kind is R.ConcernKind.NIGHT_ACTIVITY:
                onset = (change.day, 60)
            else:
                onset = (change.day, 0)
            if detected_at is None:
                delays[change.kind].append(None)
            else:
                delay = ((detected_at[0] - onset[0]).days * 24 * 60
                         + detected_at[1] - onset[1]) / 60.0
                delays[change.kind].append(delay)

    print(f"residents {args.residents}, resident-months {resident_months}, check every"
          f" {args.step} min, seed {args.seed}")
    acute_ok = acute_n = 0
    for kind, values in delays.items():
        found = [v for v in values if v is not None]
        within = sum(1 for v in found if v <= 3.0)
        if kind is not R.ConcernKind.ACTIVITY_DECLINE:
            acute_ok += within
            acute_n += len(values)
        med = statistics.median(found) if found else float("nan")
        print(f"  {kind.value:22s} injected {len(values):3d}  detected {len(found):3d}"
              f" ({100 * len(found) / max(1, len(values)):5.1f} %)  within 3 h {within:3d}"
              f"  median delay {med:6.2f} h  max {max(found) if found else float('nan'):6.2f} h")
    print(f"  acute changes caught within 3 h: {100 * acute_ok / max(1, acute_n):.1f} %"
          f" (target >= 90 %)")
    print(f"  false concerns per resident-month: {false_concerns / resident_months:.3f}"
          f" (target <= 1); by kind {dict(sorted(false_by.items()))}")
    baseline_s = 0.0
    sample = [rng.uniform(0, 600) for _ in range(28)]
    for _ in range(10000):
        t0 = time.perf_counter()
        statistics.median(sample)
        baseline_s += time.perf_counter() - t0
    per_check = check_s / checks * 1e6
    per_base = baseline_s / 10000 * 1e6
    print(f"  one check: {per_check:.1f} µs; baseline (median of 28): {per_base:.2f} µs;"
          f" ratio {per_check / per_base:.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--residents", type=int, default=120)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--step", type=int, default=10, help="minutes between checks")
    simulate(parser.parse_args())


if __name__ == "__main__":
    main()
