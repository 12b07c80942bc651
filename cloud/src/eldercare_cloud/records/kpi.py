"""Response-time KPIs, computed in Python from the timestamps every alert keeps.

No estimates and no SQL arithmetic on dates (which differs between SQLite and
PostgreSQL): the care core hands over one ``AlertFacts`` per alert and everything here is
plain arithmetic on those, so a test can compute the same figures by hand.

Definitions (the README repeats them for the district's readers):

- *alarm calls* are life-safety alerts (SOS, fall, gas, smoke, vital signs). The
  telecare standard is measured on them: the share acknowledged by the centre within
  60 s (target 97.5 %) and within 180 s (target 99 %), counting an alarm never
  acknowledged as answered late.
- times are seconds from ``opened_at`` (committed in the cloud) to acknowledgement, to the
  first responder's acceptance, and to arrival on scene; medians and 90th percentiles use
  the nearest-rank method (the value at rank ⌈p·n⌉ of the sorted list).
- false-alarm rate: cases closed with ``false_alarm`` among those with a closure code;
  cancel rate: alarm calls the resident cancelled (a cancel press) among alarm calls.
- alerts per 100 residents: person alerts (everything but device maintenance) per 100
  residents on the register of the group.
- device offline minutes: for device and gateway offline alerts, from opening to
  resolution (or the end of the period if still open), clipped to the period.
- battery replacements: low-battery alerts resolved in the period with a closure code
  other than ``false_alarm`` / ``device_fault`` (somebody changed the battery).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from eldercare_cloud.care.history import AlertFacts
from eldercare_cloud.care.models import LIFE_SAFETY_ALERTS, MAINTENANCE_ALERTS, AlertKind

#: the centre's local time: months and hours of the day are counted in it
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
#: the telecare industry's answering standard (TSA / TEC Quality Standards Framework)
STANDARD_60S_PCT = 97.5
STANDARD_180S_PCT = 99.0

_ALARMS = frozenset(k.value for k in LIFE_SAFETY_ALERTS)
_MAINTENANCE = frozenset(k.value for k in MAINTENANCE_ALERTS)
_OFFLINE = frozenset({AlertKind.DEVICE_OFFLINE.value, AlertKind.GATEWAY_OFFLINE.value})
_NOT_REPLACED = frozenset({"false_alarm", "device_fault"})


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least pct % of values <= it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def _pct(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(100.0 * part / whole, 2)


def _secs(start: datetime, end: datetime | None) -> float | None:
    return None if end is None else (end - start).total_seconds()


class Figures(BaseModel):
    """The KPIs of one group of alerts."""

    model_config = ConfigDict(frozen=True)
    alerts: int
    alarm_calls: int
    acknowledged: int
    ack_within_60s_pct: float | None
    ack_within_180s_pct: float | None
    meets_standard: bool | None
    ack_median_s: float | None
    ack_p90_s: float | None
    accepted: int
    accept_median_s: float | None
    accept_p90_s: float | None
    on_scene: int
    on_scene_median_s: float | None
    on_scene_p90_s: float | None
    #: ladder step (1-based, as people count them) → alerts accepted at that step
    accepted_at_step: dict[str, int]
    closed_with_code: int
    false_alarms: int
    false_alarm_rate_pct: float | None
    cancelled: int
    cancel_rate_pct: float | None
    residents: int | None
    alerts_per_100_residents: float | None
    device_offline_minutes: float
    battery_replacements: int


def figures(items: Iterable[AlertFacts], period_start: datetime, period_end: datetime,
            residents: int | None = None) -> Figures:
    facts = list(items)
    alarms = [f for f in facts if f.kind in _ALARMS]
    ack = [s for f in alarms if (s := _secs(f.opened_at, f.acknowledged_at)) is not None]
    accept = [s for f in facts if (s := _secs(f.opened_at, f.accepted_at)) is not None]
    scene = [s for f in facts if (s := _secs(f.opened_at, f.on_scene_at)) is not None]
    within60 = sum(1 for s in ack if s <= 60)
    within180 = sum(1 for s in ack if s <= 180)
    pct60, pct180 = _pct(within60, len(alarms)), _pct(within180, len(alarms))
    coded = [f for f in facts if f.closure_code is not None]
    false = sum(1 for f in coded if f.closure_code == "false_alarm")
    cancelled = sum(1 for f in alarms if f.cancel_requested_at is not None)
    person = sum(1 for f in facts if f.kind not in _MAINTENANCE)
    offline = 0.0
    for f in facts:
        if f.kind in _OFFLINE:
            end = min(f.resolved_at or f.closed_at or period_end, period_end)
            start = max(f.opened_at, period_start)
            offline += max(0.0, (end - start).total_seconds()) / 60
    batteries = sum(1 for f in facts if f.kind == AlertKind.BATTERY_LOW.value
                    and f.resolved_at is not None and f.closure_code not in _NOT_REPLACED)
    steps = Counter(str(f.accepted_step + 1) for f in facts if f.accepted_step is not None)
    return Figures(
        alerts=len(facts), alarm_calls=len(alarms), acknowledged=len(ack),
        ack_within_60s_pct=pct60, ack_within_180s_pct=pct180,
        meets_standard=(None if pct60 is None or pct180 is None
                        else pct60 >= STANDARD_60S_PCT and pct180 >= STANDARD_180S_PCT),
        ack_median_s=percentile(ack, 50), ack_p90_s=percentile(ack, 90),
        accepted=len(accept), accept_median_s=percentile(accept, 50),
        accept_p90_s=percentile(accept, 90), on_scene=len(scene),
        on_scene_median_s=percentile(scene, 50), on_scene_p90_s=percentile(scene, 90),
        accepted_at_step=dict(sorted(steps.items(), key=lambda kv: int(kv[0]))),
        closed_with_code=len(coded), false_alarms=false,
        false_alarm_rate_pct=_pct(false, len(coded)), cancelled=cancelled,
        cancel_rate_pct=_pct(cancelled, len(alarms)), residents=residents,
        alerts_per_100_residents=(None if not residents
                                  else round(100.0 * person / residents, 2)),
        device_offline_minutes=round(offline, 2), battery_replacements=batteries)


class Group(BaseModel):
    model_config = ConfigDict(frozen=True)
    key: str
    label: str
    figures: Figures


@dataclass(frozen=True)
class Grouping:
    """How to split alerts: a key per alert (None: left out), and a label per key."""

    key: Callable[[AlertFacts], str | None]
    label: Callable[[str], str]
    residents: Callable[[str], int | None] = lambda _key: None


def grouped(items: Sequence[AlertFacts], how: Grouping, period_start: datetime,
            period_end: datetime, keys: Iterable[str] = ()) -> list[Group]:
    """One ``Group`` per key, in key order; ``keys`` adds groups that had no alerts."""
    buckets: dict[str, list[AlertFacts]] = {k: [] for k in keys}
    for f in items:
        k = how.key(f)
        if k is not None:
            buckets.setdefault(k, []).append(f)
    return [Group(key=k, label=how.label(k),
                  figures=figures(buckets[k], period_start, period_end, how.residents(k)))
            for k in sorted(buckets)]


def local_hour(f: AlertFacts) -> str:
    return f"{f.opened_at.astimezone(LOCAL_TZ).hour:02d}"


def local_month(f: AlertFacts) -> str:
    return f"{f.opened_at.astimezone(LOCAL_TZ):%Y-%m}"
