"""Zigbee2MQTT mode: what the bridge publishes goes through the gateway's Z2MAdapter."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from broker_support import Broker
from eldercare_protocols.catalogue import CATALOGUE
from eldercare_protocols.events import CanonicalEvent, EventKind
from eldercare_protocols.z2m import BRIDGE_DEVICES, Z2MAdapter
from eldercare_sim.clock import SimClock
from eldercare_sim.errors import UnsupportedInMode
from eldercare_sim.home import SimHome
from eldercare_sim.z2m_models import DEFINITIONS

from .conftest import Collector, Received

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).parents[1] / "protocols" / "fixtures" / "z2m_bridge_devices.json"


def through_adapter(home: SimHome, msgs: list[Received]) -> list[CanonicalEvent]:
    """Decode as a gateway that subscribed after the bridge started: it gets the bridge's
    retained device list first, then decodes each device by its exposes (no model given)."""
    adapter = Z2MAdapter()
    lists = [m for m in msgs if m.topic == BRIDGE_DEVICES]
    assert lists, "the bridge publishes its device list"
    learned = {d.friendly_name: d.model for d in adapter.learn(lists[-1].payload)}
    assert learned == {d: home.z2m_model(d) for d in home.devices if home.z2m_model(d)}
    out: list[CanonicalEvent] = []
    for m in msgs:
        parts = m.topic.split("/")
        if parts[0] != "zigbee2mqtt" or parts[1] == "bridge":
            continue
        assert adapter.device(parts[1]) is not None
        out += adapter.decode(m.topic, m.payload, None)
    return out


async def test_zigbee_devices_publish_as_a_z2m_bridge(mosquitto: Broker,
                                                      collector: Collector) -> None:
    clock = SimClock(datetime(2026, 1, 12, 2, 0, tzinfo=UTC), speed=0)
    async with SimHome(mosquitto.url, "z1", z2m=True, clock=clock) as home:
        zigbee = {d for d in home.devices if home.z2m_model(d)}
        # exactly the types the catalogue sells as Zigbee devices, each with a catalogue model
        assert {home.devices[d] for d in zigbee} == {
            t for t, dt in CATALOGUE.items() if dt.z2m_models}
        for d in zigbee:
            assert home.z2m_model(d) in CATALOGUE[home.devices[d]].z2m_models
        assert home.z2m_model("z1-vitals") is None  # our own firmware: stays native
        await home.press("z1-btn", "red")
        await home.door("z1-door", True)
        await home.door("z1-door", False)
        await home.gas_leak("z1-gas", 40)
        await home.gas_leak("z1-gas", 0)
        await home.smoke("z1-smoke")
        await home.self_test("z1-smoke")
        await home.motion("z1-pir")
        await home.fall("z1-radar")
        await home.heartbeat("z1-btn")
        with pytest.raises(UnsupportedInMode, match="Zigbee"):
            await home.press("z1-btn", "green")
        await home.vitals("z1-vitals", heart_rate=70)
        msgs = await collector.until(lambda m: any(
            x.topic == "zigbee2mqtt/z1-radar" and b'"fall"' in x.payload for x in m))
        await home.unplug("z1-door")
        offline = await collector.until(lambda m: any(
            x.topic == "zigbee2mqtt/z1-door/availability" and b"offline" in x.payload
            for x in m))
        await home.kill()
        bridge = await collector.until(lambda m: any(
            x.topic == "zigbee2mqtt/bridge/state" and b"offline" in x.payload for x in m))

    events = through_adapter(home, msgs)
    kinds = [e.kind for e in events]
    assert kinds.count(EventKind.SOS) == 1          # "emergency" then "" is one SOS
    # contact: true is a closed door; the adapter reports the level first seen at boot
    door = [e.kind for e in events if e.device_id == "z1-door"
            and e.kind in (EventKind.DOOR_OPEN, EventKind.DOOR_CLOSE)]
    assert door == [EventKind.DOOR_CLOSE, EventKind.DOOR_OPEN, EventKind.DOOR_CLOSE]
    assert EventKind.GAS_ALARM in kinds and EventKind.GAS_CLEAR in kinds
    assert EventKind.GAS_LEVEL in kinds
    assert EventKind.SMOKE_ALARM in kinds
    assert EventKind.MOTION in kinds and EventKind.FALL in kinds
    assert EventKind.DEVICE_ONLINE in kinds          # availability on boot
    tests = [e for e in events if e.kind is EventKind.SELF_TEST]
    assert tests and all(e.test for e in tests)
    assert all(e.source == "z2m" for e in events)
    # the vitals monitor kept speaking native
    assert any(x.topic == "eldercare/z1-vitals/telemetry" for x in msgs)
    gone = [e for e in through_adapter(home, offline) if e.kind is EventKind.DEVICE_OFFLINE]
    assert [e.device_id for e in gone] == ["z1-door"]
    assert [x.payload for x in bridge if x.topic == "zigbee2mqtt/bridge/state"] == [
        b'{"state":"online"}', b'{"state":"offline"}']


def test_simulated_models_expose_what_the_real_models_expose() -> None:
    """The simulator's bridge list is a subset of zigbee-herdsman-converters' definitions."""
    real = {d["definition"]["model"]: d["definition"] for d in json.loads(FIXTURE.read_bytes())
            if d["definition"]}
    for type_name, dtype in CATALOGUE.items():
        if dtype.z2m_models:
            assert dtype.z2m_models[0] in DEFINITIONS, type_name
    for model, (vendor, _, exposes) in DEFINITIONS.items():
        assert real[model]["vendor"] == vendor
        theirs = {e["property"]: e for e in real[model]["exposes"] if "property" in e}
        for e in exposes:
            t = theirs[e["property"]]
            assert (t["type"], t.get("values"), t.get("value_on")) == (
                e["type"], e.get("values"), e.get("value_on")), (model, e["property"])
