"""A resident's routine learned from their own home's events, and the deviations that
become a concern (a welfare call or a visit, never an alarm): pure functions.

The engine keeps one row per home and local day (``cv_activity_days``): how many door,
motion and bed events, the minute of the first one after ``DAY_START_H``, and how many
fell in the night (before ``DAY_START_H``). From the ``LEARN_MIN_DAYS``..``LEARN_MAX_DAYS``
complete days before today this module derives the baseline, and each rule compares
today with it. Every threshold is part of the answer, so the console shows baseline
against today and the rule, and a person judges. With fewer than ``LEARN_MIN_DAYS`` days
of history nothing is learned and the gateway's fixed rules (inactivity, night
wandering) remain the only ones.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

DAY_START_H = 5
LEARN_MIN_DAYS = 14
LEARN_MAX_DAYS = 28
#: no activity this long after the usual first one (at least)
LATE_MIN = 120
#: night activity: at least this many events and this many times the usual mean
NIGHT_MIN_EVENTS = 4
NIGHT_FACTOR = 3.0
#: the last week's mean below this share of the baseline's mean
DECLINE_SHARE = 0.5
DECLINE_DAYS = 7
#: a decline is a week's trend: once raised, the same week's data must not raise it again
COOLDOWN_DAYS = {"activity_decline": DECLINE_DAYS}


class ConcernKind(StrEnum):
    NO_MORNING_ACTIVITY = "no_morning_activity"  # 晨起未见活动
    NIGHT_ACTIVITY = "night_activity"            # 夜间活动异常增多
    ACTIVITY_DECLINE = "activity_decline"        # 一周活动量明显下降
    VITAL_DRIFT = "vital_drift"                  # 生命体征偏离个人基线
    VISITOR = "visitor"                          # 探访人员上报
    OPERATOR = "operator"                        # 坐席登记


CONCERN_ZH = {
    ConcernKind.NO_MORNING_ACTIVITY: "晨起未见活动",
    ConcernKind.NIGHT_ACTIVITY: "夜间活动异常增多",
    ConcernKind.ACTIVITY_DECLINE: "一周活动量明显下降",
    ConcernKind.VITAL_DRIFT: "生命体征偏离个人基线",
    ConcernKind.VISITOR: "探访人员上报",
    ConcernKind.OPERATOR: "坐席登记",
}


@dataclass(frozen=True)
class Day:
    day: date
    events: int
    night_events: int
    #: minutes after local midnight of the first event at or after DAY_START_H
    first_min: int | None


@dataclass(frozen=True)
class Baseline:
    days: int
    first_median_min: int | None
    first_mad_min: float
    #: no activity by this minute of the day is late
    late_after_min: int | None
    night_mean: float
    night_limit: int
    events_mean: float

    def as_json(self) -> dict[str, float | int | str | None]:
        return {"days": self.days, "first_median_min": self.first_median_min,
                "first_mad_min": round(self.first_mad_min, 1),
                "late_after_min": self.late_after_min,
                "night_mean": round(self.night_mean, 2), "night_limit": self.night_limit,
                "events_mean": round(self.events_mean, 1)}


def learn(history: Sequence[Day], today: date) -> Baseline | None:
    """The baseline from complete days before ``today`` (those before the last week, when
    there are enough, so a decline does not drag its own baseline down); None with too
    little history."""
    past = sorted((d for d in history if d.day < today), key=lambda d: d.day)
    past = past[-LEARN_MAX_DAYS:]
    if len(past) < LEARN_MIN_DAYS:
        return None
    firsts = [d.first_min for d in past if d.first_min is not None]
    median = int(statistics.median(firsts)) if firsts else None
    mad = (statistics.median(abs(f - median) for f in firsts)
           if firsts and median is not None else 0.0)
    late = None if median is None else median + max(LATE_MIN, math.ceil(3 * mad))
    night_mean = statistics.fmean(d.night_events for d in past)
    return Baseline(days=len(past), first_median_min=median, first_mad_min=float(mad),
                    late_after_min=late, night_mean=night_mean,
                    night_limit=max(NIGHT_MIN_EVENTS, math.ceil(NIGHT_FACTOR * night_mean)),
                    events_mean=statistics.fmean(d.events for d in past))


@dataclass(frozen=True)
class Deviation:
    kind: ConcernKind
    rule: str
    baseline: dict[str, float | int | str | None]
    today: dict[str, float | int | str | None]


def check(history: Sequence[Day], today: date, minute_now: int) -> list[Deviation]:
    """Deviations of ``today`` (local date) at ``minute_now`` (minutes after local
    midnight) from the routine learned before it."""
    base = learn(history, today)
    if base is None:
        return []
    by_day = {d.day: d for d in history}
    now = by_day.get(today, Day(today, 0, 0, None))
    out: list[Deviation] = []
    if (base.late_after_min is not None and now.first_min is None
            and minute_now >= base.late_after_min):
        out.append(Deviation(
            ConcernKind.NO_MORNING_ACTIVITY,
            f"no activity by {_hm(base.late_after_min)}: usual first activity"
            f" {_hm(base.first_median_min)} + max({LATE_MIN} min, 3 × MAD)",
            base.as_json(), {"first_min": None, "minute_now": minute_now}))
    # checked as the night goes on (not only at its end): the count so far is enough
    if now.night_events >= base.night_limit:
        out.append(Deviation(
            ConcernKind.NIGHT_ACTIVITY,
            f"{now.night_events} night events >= limit {base.night_limit}"
            f" (max({NIGHT_MIN_EVENTS}, {NIGHT_FACTOR:g} × usual {base.night_mean:.2f}))",
            base.as_json(), {"night_events": now.night_events}))
    week = [by_day[today - timedelta(days=i)] if today - timedelta(days=i) in by_day
            else Day(today - timedelta(days=i), 0, 0, None)
            for i in range(1, DECLINE_DAYS + 1)]
    earlier = [d for d in history if d.day < today - timedelta(days=DECLINE_DAYS)]
    older = learn(earlier, today - timedelta(days=DECLINE_DAYS))
    if older is not None and older.events_mean > 0:
        mean = statistics.fmean(d.events for d in week)
        if mean < DECLINE_SHARE * older.events_mean:
            out.append(Deviation(
                ConcernKind.ACTIVITY_DECLINE,
                f"last {DECLINE_DAYS} days {mean:.1f} events/day < {DECLINE_SHARE:g} ×"
                f" usual {older.events_mean:.1f}",
                older.as_json(), {"events_mean_7d": round(mean, 1)}))
    return out


#: a day's vital-sign mean counts when it has at least this many readings
VITAL_MIN_READINGS = 6
#: outside the resident's own band: max(3 × the spread of daily means, 5 % of the mean)
VITAL_SIGMAS = 3.0
VITAL_MIN_SHARE = 0.05


@dataclass(frozen=True)
class VitalDay:
    day: date
    metric: str
    n: int
    total: float

    @property
    def mean(self) -> float:
        return self.total / self.n


def check_vitals(history: Sequence[VitalDay], today: date) -> list[Deviation]:
    """Today's mean of each vital sign against the resident's own band, learned from the
    complete days before today that had enough readings (none with too little history)."""
    out: list[Deviation] = []
    for metric in sorted({v.metric for v in history}):
        days = sorted((v for v in history if v.metric == metric
                       and v.n >= VITAL_MIN_READINGS), key=lambda v: v.day)
        past = [v.mean for v in days if v.day < today][-LEARN_MAX_DAYS:]
        now = next((v for v in days if v.day == today), None)
        if len(past) < LEARN_MIN_DAYS or now is None:
            continue
        mean = statistics.fmean(past)
        band = max(VITAL_SIGMAS * statistics.stdev(past), VITAL_MIN_SHARE * abs(mean))
        if abs(now.mean - mean) > band:
            out.append(Deviation(
                ConcernKind.VITAL_DRIFT,
                f"{metric} today {now.mean:.1f} outside {mean:.1f} ± {band:.1f}"
                f" (max({VITAL_SIGMAS:g} × sd of {len(past)} daily means,"
                f" {VITAL_MIN_SHARE:.0%} of the mean))",
                {"metric": metric, "mean": round(mean, 1), "band": round(band, 1),
                 "days": len(past)},
                {"metric": metric, "mean": round(now.mean, 1), "readings": now.n}))
            break  # one concern a day per resident: the first metric that drifted
    return out


def _hm(minutes: int | None) -> str:
    if minutes is None:
        return "-"
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
