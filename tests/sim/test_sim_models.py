"""The simulator's models without a broker: clock, scheduler, battery, vitals, routine, routes."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eldercare_protocols.catalogue import CATALOGUE
from eldercare_protocols.events import EventKind
from eldercare_sim.battery import Battery
from eldercare_sim.clock import SimClock
from eldercare_sim.devices import DEVICE_CLASSES, SHORT_NAMES, make_device
from eldercare_sim.geo import Route, distance_m, home_position
from eldercare_sim.household import Household, default_devices
from eldercare_sim.render import Outgoing
from eldercare_sim.routine import plan_day
from eldercare_sim.scheduler import Scheduler
from eldercare_sim.vitals import Episode, VitalsModel

T0 = datetime(2026, 1, 12, 0, 0, tzinfo=UTC)


def test_every_catalogue_type_has_a_simulated_device_and_short_name() -> None:
    assert set(DEVICE_CLASSES) == set(CATALOGUE)
    assert set(SHORT_NAMES) == set(CATALOGUE)
    assert len(set(SHORT_NAMES.values())) == len(SHORT_NAMES)
    assert default_devices("h1")[0] == ("h1-btn", "call_button")
    with pytest.raises(Exception, match="unknown device type"):
        make_device("toaster", "t-1", Scheduler(SimClock(T0, speed=0)))


async def test_frozen_clock_moves_only_when_advanced() -> None:
    clock = SimClock(T0, speed=0)
    assert clock.now() == T0
    sleeper = asyncio.create_task(clock.sleep(60))
    await asyncio.sleep(0.01)
    assert not sleeper.done()
    clock.advance(59)
    await asyncio.sleep(0.01)
    assert not sleeper.done()
    clock.advance(1)
    await asyncio.wait_for(sleeper, 1)
    assert clock.now() == T0 + timedelta(seconds=60)
    with pytest.raises(ValueError):
        clock.advance(-1)


async def test_fast_clock_sleeps_simulated_seconds() -> None:
    clock = SimClock(T0, speed=3600)  # an hour per second
    loop = asyncio.get_running_loop()
    t = loop.time()
    await clock.sleep(360)  # six simulated minutes: 0.1 s
    assert 0.05 < loop.time() - t < 1.0
    assert clock.now().tzinfo is UTC or clock.now().utcoffset() == timedelta(0)


async def test_scheduler_runs_in_simulated_time_order_with_exact_timestamps() -> None:
    clock = SimClock(T0, speed=0)
    sched = Scheduler(clock, fast=True)
    seen: list[tuple[str, datetime]] = []
    sched.at(30, lambda: seen.append(("b", sched.now())))
    sched.at(10, lambda: seen.append(("a", sched.now())))
    t = sched.at(20, lambda: seen.append(("never", sched.now())))
    t.cancel()
    sched.at(30, lambda: seen.append(("c", sched.now())))  # same time: FIFO
    await sched.run(until=100)
    assert seen == [("a", T0 + timedelta(seconds=10)), ("b", T0 + timedelta(seconds=30)),
                    ("c", T0 + timedelta(seconds=30))]
    assert clock.monotonic() == 100


async def test_scheduler_wakes_for_an_earlier_event_scheduled_while_waiting() -> None:
    clock = SimClock(T0, speed=1000)
    sched = Scheduler(clock)
    seen: list[str] = []
    sched.after(3600, lambda: seen.append("late"))  # 3.6 s real
    task = asyncio.create_task(sched.run())
    await asyncio.sleep(0.01)
    sched.after(5, lambda: seen.append("soon"))  # 5 ms real
    await asyncio.sleep(0.2)
    assert seen == ["soon"]
    task.cancel()


def test_battery_drains_with_time_and_transmissions_and_reports_low_once() -> None:
    b = Battery(level=20.2, life_days=100)  # 1 %/day
    b.elapse(0)
    b.elapse(86400 * 0.1)
    assert b.level == pytest.approx(20.1)
    assert not b.take_low_edge()
    for _ in range(1000):
        b.transmit()
    assert b.level == pytest.approx(20.1 - 1000 * b.tx_cost)
    b.elapse(86400 * 0.2)
    assert b.low and b.take_low_edge() and not b.take_low_edge()
    b.set_level(80, 0)
    assert not b.low and not b.low_reported
    b.set_level(0, 0)
    assert b.dead


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), hour=st.floats(0, 23.99))
def test_vitals_are_plausible_through_the_day(seed: int, hour: float) -> None:
    model = VitalsModel(random.Random(seed))
    r = model.reading(hour, 0.0, asleep=hour < 6, hours_since_meal=2.0)
    ranges = CATALOGUE["vitals_monitor"].measurements
    for name, value in r.items():
        assert ranges[name].is_valid(value), (name, value)
    assert 45 <= r["heart_rate"] <= 100
    assert 92 <= r["spo2"] <= 100
    assert 35.5 <= r["body_temperature"] <= 37.6


def test_night_is_calmer_than_afternoon_and_episodes_leave_the_normal_band() -> None:
    model = VitalsModel(random.Random(1))
    night = [model.reading(3.5, 0, asleep=True)["heart_rate"] for _ in range(50)]
    day = [model.reading(16, 0)["heart_rate"] for _ in range(50)]
    assert sum(night) / 50 + 8 < sum(day) / 50
    ranges = CATALOGUE["vitals_monitor"].measurements
    for episode, name in ((Episode.BRADYCARDIA, "heart_rate"), (Episode.SPO2_DROP, "spo2"),
                          (Episode.HYPERTENSIVE_CRISIS, "systolic")):
        model.start_episode(episode, now=0, duration_s=600)
        model.reading(10, 0)  # ramping in
        r = model.reading(10, 60)
        assert not ranges[name].is_normal(r[name]), (episode, r)
        assert ranges[name].is_valid(r[name])
        assert ranges["heart_rate"].is_normal(model.reading(10, 700)["heart_rate"]) or \
            episode is Episode.HYPERTENSIVE_CRISIS  # over after its duration
    assert model.episode is None


def test_a_day_plan_is_a_function_of_the_seed() -> None:
    a, b, c = plan_day(random.Random(5)), plan_day(random.Random(5)), plan_day(random.Random(6))
    assert a == b and a != c
    actions = [s.action for s in a]
    assert actions.count("wake") == 1 and actions.count("go_to_bed") == 1
    assert actions.count("cook") == 3
    wake = next(s.at for s in a if s.action == "wake")
    assert 6 * 3600 <= wake <= 7.5 * 3600
    assert all(0 <= s.at < 24 * 3600 for s in a)


async def test_a_simulated_day_drives_door_motion_bed_and_gas() -> None:
    clock = SimClock(T0 - timedelta(hours=8), speed=0)  # local midnight in China
    sched = Scheduler(clock, fast=True)
    house = Household("h1", sched, seed=11)
    sent: list[Outgoing] = []
    house.set_publisher(lambda dev: sent.append)
    sched.call(lambda: house.start(routine=True))
    await sched.run(until=86400)
    kinds: dict[str, int] = {}
    for m in sent:
        if m.topic.endswith("/event"):
            kind = m.payload.split(b'"kind":"')[1].split(b'"')[0].decode()
            kinds[kind] = kinds.get(kind, 0) + 1
    assert kinds.get(EventKind.MOTION.value, 0) >= 10
    assert kinds.get(EventKind.BED_ENTER.value, 0) >= 1
    assert kinds.get(EventKind.BED_EXIT.value, 0) >= 1
    assert kinds.get(EventKind.DOOR_OPEN.value, 0) == kinds.get(EventKind.DOOR_CLOSE.value, 0)
    assert EventKind.GAS_ALARM.value not in kinds  # cooking is not a leak
    heartbeats = [m for m in sent if m.topic == "eldercare/h1-radar/state"]
    assert 86400 / 120 - 3 <= len(heartbeats) <= 86400 / 120 + 3


def test_a_wander_route_leaves_the_geofence_and_an_errand_does_not() -> None:
    rng = random.Random(3)
    home = home_position(rng)
    wander = Route.wander(home, rng, 300)
    errand = Route.errand(home, rng, 300)
    assert max(distance_m(home, wander.position(t)) for t in range(0, 3600, 60)) > 600
    assert max(distance_m(home, errand.position(t)) for t in range(0, 3600, 30)) < 300
    assert distance_m(home, errand.position(errand.duration_s() + 1)) < 1
