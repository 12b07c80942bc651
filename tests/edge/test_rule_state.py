"""What the local rules know survives a restart: a fake clock and a real SQLite file that is
closed and opened again, first for the rules alone, then for the whole gateway (clean stop,
and a crash image taken while it runs)."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from broker_support import Broker
from eldercare_edge import rule_state
from eldercare_edge.clock import FakeClock
from eldercare_edge.devices import Registry
from eldercare_edge.outbox import Outbox
from eldercare_edge.rules import Alert, Rules
from eldercare_protocols.events import CanonicalEvent, EventKind
from eldercare_protocols.uplink import EventEnvelope, GatewayConfig

from .helpers import (
    GW,
    Client,
    CloudAcker,
    clients,
    event_payload,
    running,
    settings_for,
    state_payload,
    wait_for,
)

SH = ZoneInfo("Asia/Shanghai")
DEVICES = [{"device_id": "door-1", "type": "door_contact"},
           {"device_id": "pir-1", "type": "motion_sensor"},
           {"device_id": "vit-1", "type": "vitals_monitor"},
           {"device_id": "btn-1", "type": "call_button"}]


def local(day: int, h: int, m: int = 0) -> datetime:
    return datetime(2026, 3, day, h, m, tzinfo=SH)


def config() -> GatewayConfig:
    return GatewayConfig.model_validate({
        "gateway_id": "gw-rs", "version": 1, "vitals_sustain_s": 120,
        "resident": {"name": "张秀英", "address": "杭州市", "wandering_risk": False},
        "devices": DEVICES})


class Home:
    """Rules over a registry, saving into a real outbox file that each restart reopens."""

    def __init__(self, path: Path, clock: FakeClock) -> None:
        self.path = path
        self.clock = clock
        self.registry = Registry(config())
        self.rules = Rules(config(), self.registry, clock)

    @classmethod
    async def restarted(cls, old: Home, max_gap_s: float = 7200) -> tuple[Home, float | None]:
        """A new process: fresh objects, state read back from the file."""
        home = cls(old.path, old.clock)
        async with Outbox(home.path, "gw-rs") as ob:
            raw = await ob.load_state(rule_state.STATE_KEY)
        if raw is None:
            return home, None
        return home, home.rules.restore(rule_state.decode(raw), max_gap_s)

    async def save(self) -> None:
        async with Outbox(self.path, "gw-rs") as ob:
            await ob.save_state({rule_state.STATE_KEY: rule_state.encode(self.rules.snapshot())})

    def ev(self, device: str, kind: EventKind, **data: Any) -> list[Alert]:
        info = self.registry.get(device)
        assert info is not None
        return self.rules.on_event(CanonicalEvent(device_id=device, kind=kind, data=data), info)

    def heartbeats(self, *devices: str) -> None:
        for d in devices or ("door-1", "pir-1", "vit-1", "btn-1"):
            self.ev(d, EventKind.HEARTBEAT)

    def live(self, seconds: float, step: float = 300) -> list[Alert]:
        """Time passes, devices heartbeat every ``step`` and the rules tick."""
        out: list[Alert] = []
        done = 0.0
        while done < seconds:
            self.clock.advance(step)
            done += step
            self.heartbeats()
            out += self.rules.tick()
        return out


def rules_of(alerts: list[Alert], kind: EventKind) -> list[Alert]:
    return [a for a in alerts if a.kind is kind]


async def test_a_reboot_at_nine_still_raises_the_wake_by_alert(tmp_path: Path) -> None:
    clock = FakeClock(local(1, 21))
    home = Home(tmp_path / "o.sqlite", clock)
    home.heartbeats()
    home.ev("door-1", EventKind.DOOR_OPEN)       # the last time anyone moved: 21:00
    home.ev("door-1", EventKind.DOOR_CLOSE)
    assert rules_of(home.live(12 * 3600 - 300), EventKind.INACTIVITY) == []   # 08:55
    await home.save()
    clock.set(local(2, 9))                       # a five-minute reboot
    again, gap = await Home.restarted(home)
    assert gap == pytest.approx(300)
    assert again.rules.last_activity == local(1, 21)
    wake = rules_of(again.live(3600 + 60), EventKind.INACTIVITY)          # past 10:00
    assert [a.rule for a in wake] == ["wake_by"]
    assert wake[0].data["since"] == local(2, 5).isoformat()

    # the control: a gateway that remembers nothing cannot raise it
    clock.set(local(2, 9))
    blank = Home(tmp_path / "blank.sqlite", clock)
    blank.heartbeats()
    assert rules_of(blank.live(3600 + 60), EventKind.INACTIVITY) == []


async def test_an_open_door_keeps_its_start_and_is_not_reported_twice(tmp_path: Path) -> None:
    clock = FakeClock(local(2, 12))
    home = Home(tmp_path / "o.sqlite", clock)
    home.heartbeats()
    home.ev("door-1", EventKind.DOOR_OPEN)
    home.live(300)
    await home.save()
    clock.advance(60)                            # back at 12:06
    again, _ = await Home.restarted(home)
    alerts = rules_of(again.live(300, step=60), EventKind.DOOR_LEFT_OPEN)   # to 12:11
    assert len(alerts) == 1 and alerts[0].data["open_since"] == local(2, 12).isoformat()
    await again.save()
    clock.advance(30)
    third, _ = await Home.restarted(again)
    assert rules_of(third.live(1800, step=60), EventKind.DOOR_LEFT_OPEN) == []
    # closing re-arms it, and that survives too
    third.ev("door-1", EventKind.DOOR_CLOSE)
    third.ev("door-1", EventKind.DOOR_OPEN)
    await third.save()
    fourth, _ = await Home.restarted(third)
    assert len(rules_of(fourth.live(660, step=60), EventKind.DOOR_LEFT_OPEN)) == 1


async def test_offline_devices_stay_offline_and_are_announced_when_back(tmp_path: Path
                                                                       ) -> None:
    clock = FakeClock(local(2, 12))
    home = Home(tmp_path / "o.sqlite", clock)
    home.heartbeats()
    alerts: list[Alert] = []
    for _ in range(40):                          # 40 min; only the button keeps talking
        clock.advance(60)
        home.heartbeats("btn-1", "vit-1", "pir-1")
        alerts += home.rules.tick()
    assert [a.device_id for a in rules_of(alerts, EventKind.DEVICE_OFFLINE)] == ["door-1"]
    await home.save()
    clock.advance(120)
    again, _ = await Home.restarted(home)
    door = again.registry.get("door-1")
    assert door is not None and door.online is False and door.last_seen is not None
    assert "door-1" not in again.rules.sensors_online()
    again.heartbeats("btn-1", "vit-1", "pir-1")
    assert rules_of(again.rules.tick(), EventKind.DEVICE_OFFLINE) == []   # not raised again
    back = again.ev("door-1", EventKind.HEARTBEAT)
    assert [(a.kind, a.rule) for a in back] == [(EventKind.DEVICE_ONLINE, "heartbeat_resumed")]


async def test_after_a_long_outage_devices_get_their_full_window_and_the_watch_restarts(
        tmp_path: Path) -> None:
    clock = FakeClock(local(1, 23))
    home = Home(tmp_path / "o.sqlite", clock)
    home.heartbeats()
    home.ev("pir-1", EventKind.MOTION)
    await home.save()
    clock.set(local(2, 8))                       # the power was off all night
    again, gap = await Home.restarted(home)
    assert gap == pytest.approx(9 * 3600)
    # silence is counted from the restart, not from 23:00: nothing is offline yet
    clock.advance(60)
    assert rules_of(again.rules.tick(), EventKind.DEVICE_OFFLINE) == []
    # the motion sensor (600 s heartbeat) really is silent: offline after its window
    clock.advance(3 * 600)
    offline = rules_of(again.rules.tick(), EventKind.DEVICE_OFFLINE)
    assert {a.device_id for a in offline} == {"door-1", "pir-1", "vit-1", "btn-1"}
    # nobody watched the morning: no wake_by claim (the last activity is still known)
    again.heartbeats()
    assert again.rules.last_activity == local(1, 23)
    assert rules_of(again.live(2.5 * 3600), EventKind.INACTIVITY) == []
    # a short gap keeps the watch: the same night with a 10-minute reboot raises it
    clock.set(local(1, 23))
    short = Home(tmp_path / "short.sqlite", clock)
    short.heartbeats()
    short.ev("pir-1", EventKind.MOTION)
    short.live(9 * 3600 - 600)
    await short.save()
    clock.advance(600)
    short2, _ = await Home.restarted(short)
    assert [a.rule for a in rules_of(short2.live(2.5 * 3600), EventKind.INACTIVITY)] == [
        "wake_by"]


async def test_vital_sign_excursions_keep_their_start_and_are_raised_once(tmp_path: Path
                                                                         ) -> None:
    clock = FakeClock(local(2, 14))
    home = Home(tmp_path / "o.sqlite", clock)
    assert home.ev("vit-1", EventKind.VITALS, heart_rate=150.0) == []      # 14:00:00
    assert home.rules.urgent
    await home.save()
    clock.advance(90)                            # a 90-second reboot
    again, _ = await Home.restarted(home)
    clock.advance(40)                            # 14:02:10, past the 120 s window
    raised = again.ev("vit-1", EventKind.VITALS, heart_rate=151.0)
    assert [a.kind for a in raised] == [EventKind.VITALS_ALARM]
    assert raised[0].data["abnormal_since"] == local(2, 14).isoformat()
    await again.save()
    third, _ = await Home.restarted(again)
    clock.advance(60)
    assert third.ev("vit-1", EventKind.VITALS, heart_rate=152.0) == []     # once per excursion
    # back to normal re-arms it, a restart remembers that too
    assert third.ev("vit-1", EventKind.VITALS, heart_rate=80.0) == []
    await third.save()
    fourth, _ = await Home.restarted(third)
    fourth.ev("vit-1", EventKind.VITALS, heart_rate=150.0)
    clock.advance(121)
    assert [a.kind for a in fourth.ev("vit-1", EventKind.VITALS, heart_rate=150.0)] == [
        EventKind.VITALS_ALARM]


def test_what_must_be_written_at_once_and_what_can_wait(tmp_path: Path) -> None:
    home = Home(tmp_path / "o.sqlite", FakeClock(local(2, 12)))
    home.heartbeats()                            # first contact: online is news
    assert home.rules.urgent
    home.rules.snapshot()
    assert not home.rules.dirty and not home.rules.urgent
    home.clock.advance(60)
    home.heartbeats()                            # only last-seen times moved
    assert home.rules.dirty and not home.rules.urgent
    home.ev("vit-1", EventKind.VITALS, heart_rate=80.0)
    assert not home.rules.urgent
    home.ev("door-1", EventKind.DOOR_OPEN)
    assert home.rules.urgent


def test_an_unreadable_snapshot_is_a_clear_error() -> None:
    with pytest.raises(rule_state.RuleStateError, match="unreadable"):
        rule_state.decode(b'{"v": 1, "saved_at": "yesterday"}')
    with pytest.raises(rule_state.RuleStateError):
        rule_state.decode(b"\xff not json")


# ---------------------------------------------------------------- the whole gateway


def gw_settings(tmp: Path, port: int, **over: Any):  # type: ignore[no-untyped-def]
    # the rules run when the test says so (after moving the clock), not on a timer
    return settings_for(tmp, port, rules_tick_s=3600, rules_state_save_s=3600,
                        home={"devices": DEVICES}, **over)


def door_left_open(cloud: CloudAcker) -> list[EventEnvelope]:
    return [e for e in cloud.records(EventEnvelope) if e.kind is EventKind.DOOR_LEFT_OPEN]


@pytest.mark.integration
async def test_gateway_restart_keeps_the_watch_and_does_not_repeat_an_alert(
        tmp_path: Path, mosquitto: Broker) -> None:
    clock = FakeClock(local(1, 21))
    settings = gw_settings(tmp_path, mosquitto.port)
    cloud = CloudAcker(mosquitto.port)
    door = Client(mosquitto.port, "door-1")
    pir = Client(mosquitto.port, "pir-1")
    with clients(cloud, door, pir):
        async with running(settings, clock=clock) as gw:
            door.publish("eldercare/door-1/event", event_payload("door_contact", "door_open", 1))
            pir.publish("eldercare/pir-1/state", state_payload("motion_sensor"))
            await wait_for(lambda: gw.rules.last_activity == local(1, 21), what="door opened")
            clock.set(local(1, 21, 11))
            await gw.run_rules()
            await wait_for(lambda: bool(door_left_open(cloud)), what="door left open")
            clock.set(local(2, 8, 59))           # the night passes; the gateway stops
        clock.set(local(2, 9))
        async with running(settings, clock=clock) as gw2:
            assert gw2.rules.last_activity == local(1, 21)
            await gw2.run_rules()
            door.publish("eldercare/door-1/state", state_payload("door_contact"))
            pir.publish("eldercare/pir-1/state", state_payload("motion_sensor"))
            clock.set(local(2, 10, 1))
            door.publish("eldercare/door-1/state", state_payload("door_contact"))
            pir.publish("eldercare/pir-1/state", state_payload("motion_sensor"))
            await wait_for(lambda: (i := gw2.registry.get("pir-1")) is not None
                           and i.last_seen == local(2, 10, 1), what="fresh heartbeats")
            await gw2.run_rules()

            def inactivity() -> list[EventEnvelope]:
                return [e for e in cloud.records(EventEnvelope)
                        if e.kind is EventKind.INACTIVITY]

            await wait_for(lambda: bool(inactivity()), what="wake_by after the restart")
            await wait_for(lambda: gw2.outbox.size_bytes == 0, what="all acked")
    assert sorted({e.id: e.rule for e in inactivity()}.values()) == ["wake_by"]
    # (a record the first run sent but saw no ack for is sent again, with the same id)
    assert len({e.id for e in door_left_open(cloud)}) == 1, "raised again after the restart"


@pytest.mark.integration
async def test_a_crash_right_after_an_alert_neither_loses_nor_repeats_it(
        tmp_path: Path, mosquitto: Broker) -> None:
    """No clean stop: the files are copied while the gateway runs (what SIGKILL leaves,
    since a committed transaction is in the WAL file) and a new gateway starts on them."""
    clock = FakeClock(local(2, 12))
    cloud = CloudAcker(mosquitto.port, acking=False)
    door = Client(mosquitto.port, "door-1")
    crashed = tmp_path / "crashed"
    with clients(cloud, door):
        async with running(gw_settings(tmp_path, mosquitto.port), clock=clock) as gw:
            door.publish("eldercare/door-1/event", event_payload("door_contact", "door_open", 1))
            await wait_for(lambda: gw.rules.last_activity is not None, what="door opened")
            await wait_for(lambda: gw.counters.get("in_native") == 1 and not gw.rules.urgent,
                           what="door state stored with its event")
            clock.set(local(2, 12, 11))
            stored = await gw.run_rules()
            assert [s.lane.value for s in stored] == ["event"]
            shutil.copytree(tmp_path / "gw", crashed)
        # the crash image holds the alert and, in the same transaction, that it was raised
        db = sqlite3.connect(crashed / "outbox.sqlite")
        try:
            raw = db.execute("SELECT value FROM state WHERE key='rules'").fetchone()[0]
            alerts = db.execute("SELECT COUNT(*) FROM outbox WHERE id=?",
                                (stored[0].id,)).fetchone()[0]
        finally:
            db.close()
        assert alerts == 1
        snap = rule_state.decode(raw)
        assert snap.door_raised == ["door-1"]
        assert snap.door_open_since == {"door-1": local(2, 12)}
        clock.set(local(2, 12, 30))
        after = gw_settings(tmp_path, mosquitto.port, data_dir=crashed)
        async with running(after, clock=clock) as gw2:
            assert await gw2.run_rules() == []
            assert await gw2.outbox.contains(stored[0].id)   # the alert itself is kept


@pytest.mark.integration
async def test_an_unreadable_saved_state_is_counted_and_the_gateway_starts_fresh(
        tmp_path: Path, mosquitto: Broker, caplog: pytest.LogCaptureFixture) -> None:
    settings = gw_settings(tmp_path, mosquitto.port)
    async with Outbox(settings.data_dir / "outbox.sqlite", GW) as ob:
        await ob.save_state({rule_state.STATE_KEY: b'{"v": 7}'})
    async with running(settings) as gw:
        assert gw.counters.get("rule_state_unreadable") == 1
        assert gw.rules.last_activity is None
    assert "rule state is unreadable" in caplog.text
    async with Outbox(settings.data_dir / "outbox.sqlite", GW) as ob:
        raw = await ob.load_state(rule_state.STATE_KEY)
    assert raw is not None and rule_state.decode(raw).v == 1   # replaced on the clean stop


async def test_saved_state_sits_beside_the_lanes_not_in_them(tmp_path: Path) -> None:
    """The snapshot is not a record: nothing reads it as one, nothing sends it."""
    async with Outbox(tmp_path / "o.sqlite", GW) as ob:
        await ob.save_state({"rules": b"{}"})
        assert await ob.read_batch(10) == []
        assert sum((await ob.depth()).values()) == 0 and ob.size_bytes == 0
        assert await ob.load_state("rules") == b"{}"
