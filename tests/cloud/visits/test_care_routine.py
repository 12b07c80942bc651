"""The routine learned from a home's own events and the concerns its deviations raise:
the rules on their own, then a generated month of door and motion events committed by
ingest and checked by the engine on a ManualClock."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any

from care_support import GW, RESIDENT, VOLUNTEER, Care
from cv_support import OPERATOR, commit_many

from eldercare_cloud.services.catalogue import LOCAL_TZ
from eldercare_cloud.visits import routine as R
from eldercare_protocols.events import EventKind

DOOR, RADAR = "door-xh001", "radar-xh001"
CHECKS = ((6, 0), (8, 0), (9, 30), (11, 0), (22, 0))


def normal_day(day: date, rng: random.Random) -> list[datetime]:
    """07:00 ± 20 min first activity, 10-16 events through the day, a night visit to the
    bathroom one night in five."""
    start = datetime(day.year, day.month, day.day, 7, 0, tzinfo=LOCAL_TZ)
    first = start + timedelta(minutes=rng.randint(-20, 20))
    later = sorted(first + timedelta(minutes=rng.randint(5, 14 * 60))
                   for _ in range(rng.randint(10, 16)))
    times = [first, *later]
    if rng.random() < 0.2:
        times.append(start - timedelta(hours=5, minutes=rng.randint(0, 50)))
    return sorted(times)


def late_day(day: date, rng: random.Random) -> list[datetime]:
    """She does not get up: nothing until 11:30."""
    return [t + timedelta(hours=4, minutes=30) for t in normal_day(day, rng)
            if t.hour >= 5]


def wandering_day(day: date, rng: random.Random) -> list[datetime]:
    night = datetime(day.year, day.month, day.day, 1, 0, tzinfo=LOCAL_TZ)
    return sorted([*normal_day(day, rng), *(night + timedelta(minutes=20 * i) for i in range(9))])


async def run_days(cv: Care, days: list[tuple[date, Any]]) -> list[tuple[datetime, str]]:
    """Commit each day's events up to each checkpoint, then let the engine check; returns
    (checkpoint, concern kind) for every concern raised."""
    rng = random.Random(11)
    raised: list[tuple[datetime, str]] = []
    seen: set[str] = set()
    for day, make in days:
        events = make(day, rng)
        done = 0
        for hour, minute in CHECKS:
            at = datetime(day.year, day.month, day.day, hour, minute, tzinfo=LOCAL_TZ)
            batch = [t for t in events[done:] if t <= at]
            done += len(batch)
            await commit_many(cv.store, GW, [
                (EventKind.DOOR_OPEN if i % 2 else EventKind.MOTION,
                 DOOR if i % 2 else RADAR, t, {}) for i, t in enumerate(batch)])
            cv.clock.set(at)
            await cv.services.care_visit_engine.tick(check=True)
            for c in await cv.services.care_visits.list_concerns(OPERATOR, open_only=False):
                if c.id not in seen:
                    seen.add(c.id)
                    raised.append((at, c.kind))
    return raised


def month(first: date, n: int) -> list[date]:
    return [first + timedelta(days=i) for i in range(n)]


async def test_a_normal_month_raises_no_concern(cv: Care) -> None:
    raised = await run_days(cv, [(d, normal_day) for d in month(date(2025, 2, 1), 30)])
    assert raised == []
    routine = await cv.services.care_visits.routine(OPERATOR, RESIDENT)
    assert routine.learned and routine.baseline is not None
    # the learned first activity is about 07:00, shown with its band
    assert 400 <= routine.baseline["first_median_min"] <= 440
    assert routine.baseline["late_after_min"] >= routine.baseline["first_median_min"] + 120
    assert routine.baseline["night_limit"] == R.NIGHT_MIN_EVENTS


async def test_a_resident_who_stops_getting_up_gets_a_visit(cv: Care) -> None:
    days = [(d, normal_day) for d in month(date(2025, 2, 1), 21)]
    raised = await run_days(cv, [*days, (date(2025, 2, 22), late_day)])
    assert raised == [(datetime(2025, 2, 22, 9, 30, tzinfo=LOCAL_TZ), "no_morning_activity")]
    [concern] = await cv.services.care_visits.list_concerns(OPERATOR)
    assert concern.resident_id == RESIDENT and concern.kind_zh == "晨起未见活动"
    # the evidence: the learned baseline against today, and the rule in words
    assert concern.evidence["today"]["first_min"] is None
    assert concern.evidence["baseline"]["days"] == 21
    assert "no activity by" in concern.rule
    # a visit task for the visitor, not an alarm
    [task] = [t for t in await cv.services.care_visits.list_tasks(OPERATOR)
              if t.concern_id == concern.id]
    assert (task.mode, task.assignee_contact_id, task.due_date) == (
        "in_person", VOLUNTEER, date(2025, 2, 22))
    cur = await cv.db.conn.execute("SELECT COUNT(*) FROM alerts WHERE resident_id = ?",
                                   (RESIDENT,))
    assert (await cur.fetchone())[0] == 0


async def test_a_resident_who_starts_wandering_at_night_gets_a_call(cv: Care) -> None:
    days = [(d, normal_day) for d in month(date(2025, 2, 1), 21)]
    raised = await run_days(cv, [*days, (date(2025, 2, 22), wandering_day)])
    assert raised == [(datetime(2025, 2, 22, 6, 0, tzinfo=LOCAL_TZ), "night_activity")]
    [concern] = await cv.services.care_visits.list_concerns(OPERATOR)
    assert concern.evidence["today"]["night_events"] == 9
    [task] = [t for t in await cv.services.care_visits.list_tasks(OPERATOR)
              if t.concern_id == concern.id]
    assert task.mode == "phone"


async def test_too_little_history_learns_nothing(cv: Care) -> None:
    raised = await run_days(cv, [*[(d, normal_day) for d in month(date(2025, 2, 1), 10)],
                                 (date(2025, 2, 11), late_day)])
    assert raised == []
    routine = await cv.services.care_visits.routine(OPERATOR, RESIDENT)
    assert not routine.learned


def test_the_rules_on_hand_computed_days() -> None:
    today = date(2025, 3, 1)
    hist = [R.Day(today - timedelta(days=i), 20, 1 if i % 2 else 0, 420 + (i % 3) * 10)
            for i in range(1, 15)]
    base = R.learn(hist, today)
    assert base is not None
    # first minutes 420/430/440 → median 430, MAD 10 → late after 430 + 120
    assert (base.first_median_min, base.late_after_min) == (430, 550)
    # night mean 0.5 → limit max(4, ceil(1.5)) = 4
    assert base.night_limit == 4
    assert R.check(hist, today, 549) == []
    [late] = R.check(hist, today, 550)
    assert late.kind is R.ConcernKind.NO_MORNING_ACTIVITY
    night = [*hist, R.Day(today, 3, 4, 430)]
    assert [d.kind for d in R.check(night, today, 6 * 60)] == [R.ConcernKind.NIGHT_ACTIVITY]
    # a week at a third of the usual activity
    old = [R.Day(today - timedelta(days=i), 30, 0, 420) for i in range(8, 30)]
    week = [R.Day(today - timedelta(days=i), 10, 0, 420) for i in range(1, 8)]
    kinds = [d.kind for d in R.check([*old, *week, R.Day(today, 5, 0, 420)], today, 600)]
    assert kinds == [R.ConcernKind.ACTIVITY_DECLINE]


async def test_a_decline_is_raised_once_per_week_even_after_it_was_closed(cv: Care) -> None:
    from eldercare_cloud.visits.care_models import ConcernClose

    visits = cv.services.care_visits
    kind = R.ConcernKind.ACTIVITY_DECLINE
    first = await visits.raise_concern(RESIDENT, kind, "decline", {})
    assert first is not None
    # while open: not again, even the next day
    cv.clock.advance(86400)
    assert await visits.raise_concern(RESIDENT, kind, "decline", {}) is None
    await visits.close_concern(OPERATOR, first, ConcernClose(resolution="电话问候，感冒了"))
    # closed, but the same week's data: still not again
    cv.clock.advance(5 * 86400)
    assert await visits.raise_concern(RESIDENT, kind, "decline", {}) is None
    cv.clock.advance(86400)
    assert await visits.raise_concern(RESIDENT, kind, "decline", {}) is not None
    # a night-activity concern has no such cooldown once closed
    night = await visits.raise_concern(RESIDENT, R.ConcernKind.NIGHT_ACTIVITY, "night", {})
    assert night is not None
    await visits.close_concern(OPERATOR, night, ConcernClose(resolution="已探访"))
    cv.clock.advance(86400)
    assert await visits.raise_concern(RESIDENT, R.ConcernKind.NIGHT_ACTIVITY, "n", {})


async def test_the_routine_cursor_survives_a_restart(cv: Care, tmp_path: Any,
                                                    care_db: Any) -> None:
    """Counts are added in the cursor's transaction: a restart neither repeats nor loses."""
    from care_support import care_settings, open_care

    day = date(2025, 2, 3)
    rng = random.Random(3)
    events = normal_day(day, rng)
    await commit_many(cv.store, GW, [(EventKind.MOTION, RADAR, t, {}) for t in events[:5]])
    await cv.services.care_visit_engine.tick(check=False)
    clock, ids = cv.clock, cv.user_ids
    async with open_care(care_db, care_settings(tmp_path), clock, ids) as again:
        await commit_many(again.store, GW, [(EventKind.MOTION, RADAR, t, {})
                                            for t in events[5:]])
        await again.services.care_visit_engine.tick(check=False)
        await again.services.care_visit_engine.tick(check=False)
        history = await again.services.care_visits.history("H-XH-001", day + timedelta(days=1))
    [row] = [d for d in history if d.day == day]
    night = sum(1 for t in events if t.hour < R.DAY_START_H)
    assert (row.events, row.night_events) == (len(events), night)
    assert row.first_min == min(t.hour * 60 + t.minute for t in events
                                if t.hour >= R.DAY_START_H)


async def commit_vitals(cv: Care, gw: str, device: str, day: date, hr: float,
                        rng: random.Random) -> None:
    from eldercare_cloud.ingest import Received
    from eldercare_protocols.uplink import TelemetryBatch, TelemetryRecord

    readings = [datetime(day.year, day.month, day.day, h, 0, tzinfo=LOCAL_TZ)
                for h in range(8, 20)]
    batch = TelemetryBatch(
        id=f"tel-{device}-{day.isoformat()}", seq=day.toordinal(), gateway_id=gw,
        gateway_ts=readings[-1],
        records=[TelemetryRecord(device_id=device, kind=EventKind.VITALS, ts=ts,
                                 values={"heart_rate": round(rng.gauss(hr, 2.0), 1)})
                 for ts in readings])
    await cv.store.commit([Received(gw, batch, readings[-1])])


async def run_vitals(cv: Care, last_hr: float) -> list[Any]:
    gw, device = "GW-XH-004", "vitals-xh004"
    await cv.store.add_gateway(gw, "gateway-secret-" + gw)
    rng = random.Random(5)
    days = month(date(2025, 2, 1), 21)
    for day in days:
        await commit_vitals(cv, gw, device, day, 70.0 if day != days[-1] else last_hr, rng)
        cv.clock.set(datetime(day.year, day.month, day.day, 20, 30, tzinfo=LOCAL_TZ))
        await cv.services.care_visit_engine.tick(check=True)
    return await cv.services.care_visits.list_concerns(OPERATOR)


async def test_a_heart_rate_drifting_out_of_her_own_band_raises_a_concern(cv: Care) -> None:
    [concern] = await run_vitals(cv, 96.0)
    assert (concern.resident_id, concern.kind) == ("R-XH-005", "vital_drift")
    assert concern.evidence["baseline"]["metric"] == "heart_rate"
    assert 68 <= concern.evidence["baseline"]["mean"] <= 72
    assert concern.evidence["today"]["readings"] == 12
    assert 93 <= concern.evidence["today"]["mean"] <= 99
    [task] = [t for t in await cv.services.care_visits.list_tasks(OPERATOR)
              if t.concern_id == concern.id]
    assert task.mode == "in_person"


async def test_a_steady_heart_rate_raises_none(cv: Care) -> None:
    assert await run_vitals(cv, 71.0) == []


def test_the_vital_band_on_hand_computed_days() -> None:
    today = date(2025, 3, 1)
    # daily means alternating 70 and 72 over 14 days: mean 71, sd 1.04
    # → band max(3.1, 3.55), shown rounded as 3.6
    hist = [R.VitalDay(today - timedelta(days=i), "heart_rate", 10, 10 * (70 + 2 * (i % 2)))
            for i in range(1, 15)]
    assert R.check_vitals([*hist, R.VitalDay(today, "heart_rate", 10, 745.0)], today) == []
    [d] = R.check_vitals([*hist, R.VitalDay(today, "heart_rate", 10, 746.0)], today)
    assert (d.kind, d.baseline["mean"], d.baseline["band"]) == (
        R.ConcernKind.VITAL_DRIFT, 71.0, 3.6)
    # too few readings today, or too little history: nothing
    assert R.check_vitals([*hist, R.VitalDay(today, "heart_rate", 5, 500.0)], today) == []
    assert R.check_vitals([*hist[:13], R.VitalDay(today, "heart_rate", 10, 900.0)],
                          today) == []
