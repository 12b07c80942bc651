"""Local rules with a fake clock: a day of a home in milliseconds."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from eldercare_edge.clock import FakeClock
from eldercare_edge.devices import Registry
from eldercare_edge.rules import Alert, Rules
from eldercare_protocols.events import CanonicalEvent, EventKind
from eldercare_protocols.uplink import GatewayConfig

SH = ZoneInfo("Asia/Shanghai")


def config(**over: Any) -> GatewayConfig:
    base: dict[str, Any] = {
        "gateway_id": "gw-r", "version": 1,
        "resident": {"name": "张秀英", "address": "杭州市", "wandering_risk": True},
        "vitals_sustain_s": 60,
        "devices": [{"device_id": "door-1", "type": "door_contact"},
                    {"device_id": "vit-1", "type": "vitals_monitor"},
                    {"device_id": "btn-1", "type": "call_button"}],
    }
    base.update(over)
    return GatewayConfig.model_validate(base)


class Home:
    def __init__(self, start: datetime, **over: Any) -> None:
        self.clock = FakeClock(start)
        self.registry = Registry(config(**over))
        self.rules = Rules(config(**over), self.registry, self.clock)

    def ev(self, device: str, kind: EventKind, test: bool = False, **data: Any) -> list[Alert]:
        info = self.registry.get(device)
        assert info is not None
        return self.rules.on_event(CanonicalEvent(device_id=device, kind=kind, test=test,
                                                  data=data), info)

    def heartbeat_all(self) -> None:
        for d in ("door-1", "vit-1", "btn-1"):
            self.ev(d, EventKind.HEARTBEAT)

    def run(self, seconds: float, step: float = 60, heartbeats: bool = True) -> list[Alert]:
        """Advance the clock, ticking the rules and (optionally) heartbeating devices."""
        out: list[Alert] = []
        done = 0.0
        while done < seconds:
            self.clock.advance(step)
            done += step
            if heartbeats and int(done) % 300 == 0:
                self.heartbeat_all()
            out += self.rules.tick()
        return out


def local(h: int, m: int = 0, day: int = 2) -> datetime:
    return datetime(2026, 3, day, h, m, tzinfo=SH)


def kinds(alerts: list[Alert]) -> list[EventKind]:
    return [a.kind for a in alerts]


def test_vitals_need_a_sustained_excursion_not_one_reading() -> None:
    home = Home(local(12))
    assert home.ev("vit-1", EventKind.VITALS, heart_rate=150.0) == []   # starts the clock
    home.clock.advance(30)
    assert home.ev("vit-1", EventKind.VITALS, heart_rate=150.0) == []
    home.clock.advance(31)
    alerts = home.ev("vit-1", EventKind.VITALS, heart_rate=151.0)
    assert kinds(alerts) == [EventKind.VITALS_ALARM]
    assert alerts[0].rule == "vitals_sustained" and alerts[0].data["measurement"] == "heart_rate"
    # raised once per excursion
    home.clock.advance(10)
    assert home.ev("vit-1", EventKind.VITALS, heart_rate=152.0) == []
    # back to normal re-arms; a new single spike then silence raises nothing
    assert home.ev("vit-1", EventKind.VITALS, heart_rate=80.0) == []
    assert home.ev("vit-1", EventKind.VITALS, spo2=85.0) == []
    assert EventKind.VITALS_ALARM not in kinds(home.run(600))


def test_vitals_band_comes_from_the_config_when_set() -> None:
    home = Home(local(12), thresholds={"heart_rate": {"low": 40, "high": 160}},
                vitals_sustain_s=0)
    assert home.ev("vit-1", EventKind.VITALS, heart_rate=150.0) == []
    assert kinds(home.ev("vit-1", EventKind.VITALS, heart_rate=170.0)) == [
        EventKind.VITALS_ALARM]


def test_inactivity_by_wake_time_while_sensors_are_alive() -> None:
    home = Home(local(4, 30))
    home.heartbeat_all()
    alerts = home.run(6 * 3600)  # 04:30 -> 10:30, devices heartbeating, nobody moves
    assert EventKind.INACTIVITY in kinds(alerts)
    assert EventKind.DEVICE_OFFLINE not in kinds(alerts)
    wake = [a for a in alerts if a.rule == "wake_by"]
    assert len(wake) == 1 and wake[0].device_id == "gw-r"


def test_activity_before_wake_time_prevents_the_alert() -> None:
    home = Home(local(4, 30))
    home.heartbeat_all()
    home.run(3 * 3600)                       # 07:30
    home.ev("door-1", EventKind.DOOR_OPEN)
    home.ev("door-1", EventKind.DOOR_CLOSE)
    assert EventKind.INACTIVITY not in kinds(home.run(3 * 3600))  # 10:30


def test_device_offline_is_not_person_inactive() -> None:
    home = Home(local(4, 30))
    home.heartbeat_all()
    alerts = home.run(6 * 3600, heartbeats=False)   # every device goes quiet
    offline = [a for a in alerts if a.kind is EventKind.DEVICE_OFFLINE]
    assert {a.device_id for a in offline} == {"door-1", "vit-1", "btn-1"}
    assert all(a.rule == "missed_heartbeat" for a in offline)
    assert EventKind.INACTIVITY not in kinds(alerts)
    # offline is raised once, and a device that speaks again is announced back
    assert kinds(home.ev("door-1", EventKind.HEARTBEAT)) == [EventKind.DEVICE_ONLINE]


def test_door_offline_window_follows_the_catalogue() -> None:
    home = Home(local(12))
    home.heartbeat_all()
    early = home.run(1740, heartbeats=False)   # 29 min < 3 x 600 s for a door contact
    assert "door-1" not in {a.device_id for a in early if a.kind is EventKind.DEVICE_OFFLINE}
    late = home.run(120, heartbeats=False)
    assert "door-1" in {a.device_id for a in late if a.kind is EventKind.DEVICE_OFFLINE}


def test_inactive_hours_during_the_day() -> None:
    home = Home(local(11), routine={"inactive_hours": 2})
    home.heartbeat_all()
    home.ev("door-1", EventKind.DOOR_OPEN)
    home.ev("door-1", EventKind.DOOR_CLOSE)
    assert EventKind.INACTIVITY not in kinds(home.run(3600))
    alerts = home.run(3700)
    assert [a.rule for a in alerts if a.kind is EventKind.INACTIVITY] == ["inactive_hours"]
    assert EventKind.INACTIVITY not in kinds(home.run(1800))   # once per stretch


@pytest.mark.parametrize(("when", "risk", "expected"), [
    (local(2, 10), True, True), (local(23, 30, day=1), True, True),
    (local(14), True, False), (local(2, 10), False, False)])
def test_night_wandering(when: datetime, risk: bool, expected: bool) -> None:
    home = Home(when, resident={"name": "张", "address": "杭州", "wandering_risk": risk})
    alerts = home.ev("door-1", EventKind.DOOR_OPEN)
    assert (EventKind.NIGHT_WANDERING in kinds(alerts)) is expected


def test_door_left_open_once_and_rearmed_by_closing() -> None:
    home = Home(local(12))
    home.ev("door-1", EventKind.DOOR_OPEN)
    assert EventKind.DOOR_LEFT_OPEN not in kinds(home.run(540))
    alerts = home.run(120)
    assert kinds(alerts).count(EventKind.DOOR_LEFT_OPEN) == 1
    assert EventKind.DOOR_LEFT_OPEN not in kinds(home.run(1200))
    home.ev("door-1", EventKind.DOOR_CLOSE)
    home.ev("door-1", EventKind.DOOR_OPEN)
    assert kinds(home.run(660)).count(EventKind.DOOR_LEFT_OPEN) == 1


def test_test_events_raise_nothing() -> None:
    home = Home(local(2))
    assert home.ev("door-1", EventKind.DOOR_OPEN, test=True) == []
    assert EventKind.DOOR_LEFT_OPEN not in kinds(home.run(1200))
    assert home.ev("btn-1", EventKind.SOS, test=True) == []
    assert home.rules.last_activity is None


def test_battery_low_from_state_once_with_hysteresis() -> None:
    home = Home(local(12))
    assert kinds(home.ev("btn-1", EventKind.HEARTBEAT, battery=15.0)) == [EventKind.BATTERY_LOW]
    assert home.ev("btn-1", EventKind.HEARTBEAT, battery=14.0) == []
    assert home.ev("btn-1", EventKind.HEARTBEAT, battery=22.0) == []   # inside hysteresis
    assert home.ev("btn-1", EventKind.HEARTBEAT, battery=90.0) == []   # replaced: re-armed
    assert kinds(home.ev("btn-1", EventKind.HEARTBEAT, battery=10.0)) == [EventKind.BATTERY_LOW]


def test_config_change_applies_new_windows() -> None:
    home = Home(local(12))
    home.rules.apply_config(config(routine={"door_open_max_s": 60}))
    home.ev("door-1", EventKind.DOOR_OPEN)
    assert kinds(home.run(120, step=30)).count(EventKind.DOOR_LEFT_OPEN) == 1
