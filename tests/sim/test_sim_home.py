"""SimHome against a real Mosquitto: every device's messages decode with protocols,
the Last Will fires, commands are answered, batteries drain to battery_low."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from broker_support import Broker
from eldercare_protocols import native
from eldercare_protocols.catalogue import CATALOGUE
from eldercare_protocols.events import EventKind
from eldercare_protocols.native import (
    DeviceCommandAck,
    DeviceEvent,
    DeviceState,
    DeviceTelemetry,
    StateReason,
)
from eldercare_sim.clock import SimClock
from eldercare_sim.home import SimHome

from .conftest import Collector, Received

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 12, 2, 0, tzinfo=UTC)  # 10:00 in Zhejiang


def decoded(msgs: list[Received]) -> list[tuple[str, native.NativeMessage]]:
    return [native.decode(m.topic, m.payload) for m in msgs if m.topic.startswith("eldercare/")]


def events(msgs: list[Received], kind: EventKind | None = None) -> list[tuple[str, DeviceEvent]]:
    out = []
    for dev, msg in decoded(msgs):
        if isinstance(msg, DeviceEvent) and (kind is None or msg.kind is kind):
            out.append((dev, msg))
    return out


async def test_every_device_type_speaks_valid_native_messages(mosquitto: Broker,
                                                              collector: Collector) -> None:
    clock = SimClock(START, speed=0)
    async with SimHome(mosquitto.url, "h1", clock=clock, seed=3) as home:
        assert set(home.devices.values()) == set(CATALOGUE)  # one of each catalogue type
        assert home.devices["h1-btn"] == "call_button"
        await home.press("h1-btn", "red")
        await home.press("h1-btn", "green", "double")
        await home.cancel("h1-btn")
        await home.door("h1-door", True)
        await home.door("h1-door", False)
        await home.tamper("h1-door")
        await home.gas_leak("h1-gas", 30.0)
        await home.gas_leak("h1-gas", 0.0)
        await home.self_test("h1-gas")
        await home.smoke("h1-smoke")
        await home.smoke("h1-smoke", on=False)
        await home.self_test("h1-smoke")
        await home.vitals("h1-vitals", heart_rate=38, spo2=95)
        await home.episode("h1-vitals", "hypertensive_crisis", 600)
        await home.bed("h1-bed", True)
        await home.motion("h1-pir")
        await home.fall("h1-radar")
        await home.wander("h1-gps")
        for dev_id in home.devices:
            await home.heartbeat(dev_id)
        # periodic readings: an hour of simulated time, stepped by hand
        for _ in range(60):
            clock.advance(60)
            await asyncio.sleep(0.002)
        await asyncio.sleep(0.2)
    msgs = await collector.until(lambda m: sum(b'"shutdown"' in x.payload for x in m) >= 9)
    decoded_all = decoded(msgs)  # raises DecodeError on anything invalid
    kinds = {m.kind for _, m in decoded_all if isinstance(m, DeviceEvent | DeviceTelemetry)}
    for type_name in CATALOGUE:
        dev_msgs = [m for d, m in decoded_all if getattr(m, "type", None) == type_name]
        assert dev_msgs, f"nothing from the {type_name}"
    expected = {EventKind.SOS, EventKind.SERVICE_REQUEST, EventKind.CANCEL, EventKind.DOOR_OPEN,
                EventKind.DOOR_CLOSE, EventKind.TAMPER, EventKind.GAS_ALARM, EventKind.GAS_CLEAR,
                EventKind.SELF_TEST, EventKind.SMOKE_ALARM, EventKind.SMOKE_CLEAR,
                EventKind.VITALS, EventKind.VITALS_ALARM, EventKind.BED_ENTER, EventKind.MOTION,
                EventKind.FALL, EventKind.PRESENCE, EventKind.GAS_LEVEL, EventKind.LOCATION,
                EventKind.GEOFENCE_EXIT}
    assert expected <= kinds, expected - kinds
    # timestamps come from the simulated clock, not the machine's
    ts = [m.ts for _, m in decoded_all if isinstance(m, DeviceEvent)]
    assert all(START <= t <= START.replace(hour=3, minute=1) for t in ts)
    # a self-test is marked as a test, an SOS is not
    assert all(m.test for _, m in events(msgs, EventKind.SELF_TEST))
    assert not any(m.test for _, m in events(msgs, EventKind.SOS))
    # per-device sequence numbers only grow
    seqs: dict[str, list[int]] = {}
    for dev, m in decoded_all:
        if isinstance(m, DeviceEvent | DeviceTelemetry):
            seqs.setdefault(dev, []).append(m.seq)
    assert all(s == sorted(s) and len(set(s)) == len(s) for s in seqs.values())
    # the vitals alarm names what is abnormal
    alarms = [m for _, m in events(msgs, EventKind.VITALS_ALARM)]
    assert any("heart_rate" in a.data["abnormal"] for a in alarms)
    assert any(a.data.get("episode") == "hypertensive_crisis" for a in alarms)


async def test_boot_state_is_retained_and_last_will_fires_on_kill(mosquitto: Broker,
                                                                  collector: Collector) -> None:
    home = SimHome(mosquitto.url, "h2", devices=[("h2-btn", "call_button"),
                                                 ("h2-door", "door_contact")],
                   clock=SimClock(START, speed=0))
    await home.__aenter__()
    boots = await collector.until(lambda m: len(m) >= 2)
    for m in boots:
        _, state = native.decode(m.topic, m.payload)
        assert isinstance(state, DeviceState) and state.reason is StateReason.BOOT
        assert state.online and state.battery is not None and state.firmware
    await home.kill()
    msgs = await collector.until(lambda m: sum(b'"will"' in x.payload for x in m) >= 2)
    wills = [native.decode(m.topic, m.payload) for m in msgs if b'"will"' in m.payload]
    assert {d for d, _ in wills} == {"h2-btn", "h2-door"}
    assert all(isinstance(s, DeviceState) and not s.online for _, s in wills)
    # and a late subscriber sees the retained offline state
    late = Collector(mosquitto, ("eldercare/+/state",))
    try:
        retained = await late.until(lambda m: len(m) >= 2)
        assert all(r.retain and b'"online":false' in r.payload for r in retained)
    finally:
        late.close()


async def test_unplug_one_device_fires_only_its_will_and_replug_boots(
        mosquitto: Broker, collector: Collector) -> None:
    async with SimHome(mosquitto.url, "h3", clock=SimClock(START, speed=0)) as home:
        collector.clear()
        await home.unplug("h3-smoke")
        msgs = await collector.until(lambda m: any(b'"will"' in x.payload for x in m))
        assert [x.topic for x in msgs if b'"will"' in x.payload] == ["eldercare/h3-smoke/state"]
        await home.replug("h3-smoke")
        await collector.until(lambda m: any(x.topic == "eldercare/h3-smoke/state"
                                         and b'"boot"' in x.payload for x in m))


async def test_led_command_is_recorded_and_acknowledged(mosquitto: Broker,
                                                        collector: Collector) -> None:
    async with SimHome(mosquitto.url, "h4", devices=[("h4-btn", "call_button"),
                                                     ("h4-gas", "gas_detector")],
                       clock=SimClock(START, speed=0)) as home:
        assert home.led_state("h4-btn") is None
        for i, state in enumerate(("received", "help_coming"), start=1):
            cmd = {"v": 1, "id": f"c{i}", "command": "led", "args": {"state": state},
                   "ts": "2026-01-12T02:00:00Z"}
            collector.publish("eldercare/h4-btn/cmd", json.dumps(cmd).encode())
            msgs = await collector.until(lambda m, i=i: any(
                x.topic == "eldercare/h4-btn/cmd/ack" and f'"c{i}"'.encode() in x.payload
                for x in m))
            assert home.led_state("h4-btn") == state
        acks = [native.decode(x.topic, x.payload)[1] for x in msgs if x.topic.endswith("/ack")]
        assert all(isinstance(a, DeviceCommandAck) and a.ok for a in acks)
        # a bad argument, an unknown command, garbage: refused or ignored, never a crash
        bad = {"v": 1, "id": "c3", "command": "led", "args": {"state": "disco"},
               "ts": "2026-01-12T02:00:00Z"}
        collector.publish("eldercare/h4-btn/cmd", json.dumps(bad).encode())
        unknown = {"v": 1, "id": "c4", "command": "fly", "args": {},
                   "ts": "2026-01-12T02:00:00Z"}
        collector.publish("eldercare/h4-btn/cmd", json.dumps(unknown).encode())
        collector.publish("eldercare/h4-btn/cmd", b"{not json")
        mute = {"v": 1, "id": "c5", "command": "mute_buzzer", "args": {"seconds": 60},
                "ts": "2026-01-12T02:00:00Z"}
        collector.publish("eldercare/h4-gas/cmd", json.dumps(mute).encode())
        msgs = await collector.until(lambda m: sum(x.topic.endswith("/cmd/ack") for x in m) >= 5)
        by_id = {a.id: a for a in (native.decode(x.topic, x.payload)[1] for x in msgs
                                   if x.topic.endswith("/cmd/ack"))
                 if isinstance(a, DeviceCommandAck)}
        assert not by_id["c3"].ok and "led state" in (by_id["c3"].error or "")
        assert not by_id["c4"].ok and "unknown command" in (by_id["c4"].error or "")
        assert by_id["c5"].ok
        assert home.led_state("h4-btn") == "help_coming"
        assert home.device("h4-gas").props["buzzer_muted"] is True


async def test_button_debounce_swallows_a_quick_second_press(mosquitto: Broker,
                                                              collector: Collector) -> None:
    clock = SimClock(START, speed=0)
    async with SimHome(mosquitto.url, "h5", devices=[("h5-btn", "call_button")],
                       clock=clock) as home:
        assert await home.press("h5-btn", "red")
        assert not await home.press("h5-btn", "red")  # same instant: bounce
        clock.advance(2)
        assert await home.press("h5-btn", "red")
        with pytest.raises(ValueError, match="red or green"):
            await home.press("h5-btn", "blue")
        with pytest.raises(ValueError, match="not a door_contact"):
            await home.door("h5-btn", True)
    msgs = await collector.until(lambda m: len(events(m, EventKind.SOS)) >= 2)
    assert len(events(msgs, EventKind.SOS)) == 2


async def test_battery_drain_reaches_battery_low_then_the_device_dies(
        mosquitto: Broker, collector: Collector) -> None:
    # 1 real second = 2 simulated days; heartbeats every 300 s simulated
    clock = SimClock(START, speed=172_800)
    async with SimHome(mosquitto.url, "h6", devices=[("h6-btn", "call_button")],
                       clock=clock, heartbeat_scale=20) as home:
        btn = home.device("h6-btn")
        assert btn.battery is not None
        btn.battery.set_level(20.4, home.sched.time())  # idle drain: ~0.19 %/day
        msgs = await collector.until(lambda m: bool(events(m, EventKind.BATTERY_LOW)),
                                  within=15)
        (_, low), = events(msgs, EventKind.BATTERY_LOW)
        assert low.data["battery"] < 20
        # heartbeats report the falling level
        levels = [s.battery for _, s in decoded(msgs) if isinstance(s, DeviceState)
                  and s.reason is StateReason.HEARTBEAT]
        assert levels and levels == sorted(levels, reverse=True)
        # a scenario's "battery dies": drained to empty, the button goes silent, Will fires
        await home.set_battery("h6-btn", 1.0, drain_to_zero_s=3600)
        await collector.until(lambda m: any(b'"will"' in x.payload for x in m), within=15)
        assert btn.dead and not btn.running


async def test_broker_outage_then_reconnect_delivers_the_queued_event(
        mosquitto: Broker, collector: Collector) -> None:
    clock = SimClock(START, speed=0)
    async with SimHome(mosquitto.url, "h7", devices=[("h7-btn", "call_button")],
                       clock=clock) as home:
        conn = home.connection("h7-btn")
        await home.outage(600)
        await asyncio.sleep(0.1)
        assert not conn.connected
        home.sched.call(lambda: home.device("h7-btn").press("red"))  # QoS 1: kept by paho
        await asyncio.sleep(0.7)
        assert not conn.connected  # held away until the outage's simulated end
        clock.advance(600)
        await collector.until(lambda m: bool(events(m, EventKind.SOS)), within=10)
        assert conn.connected and conn.reconnects == 1
