"""Inputs other than native MQTT: the serial RF dongle (pty) and Zigbee2MQTT topics."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from broker_support import Broker
from eldercare_edge.clock import FakeClock
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import EventEnvelope, Lane, TelemetryBatch, UnknownDeviceSeen
from eldercare_sim.clock import SimClock
from eldercare_sim.dongle import SimDongle
from eldercare_sim.home import SimHome

from .helpers import (
    Client,
    CloudAcker,
    clients,
    event_payload,
    running,
    settings_for,
    wait_for,
)

pytestmark = pytest.mark.integration


def kinds_of(cloud: CloudAcker, device: str) -> list[EventKind]:
    return [e.kind for e in cloud.records(EventEnvelope) if e.device_id == device]


async def test_dongle_frames_become_events_and_corrupt_ones_are_counted(
        tmp_path: Path, mosquitto: Broker, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    cloud = CloudAcker(mosquitto.port)
    with clients(cloud), SimDongle({"rf-btn": "call_button", "rf-vit": "vitals_monitor",
                                    "rf-stranger": "door_contact"}) as dongle:
        settings = settings_for(tmp_path, mosquitto.port, serial={"port": dongle.port,
                                                                  "reopen_s": 0.2})
        async with running(settings) as gw:
            assert gw.dongle is not None
            await wait_for(lambda: gw.dongle is not None and gw.dongle.opened.is_set())
            dongle.send_corrupt(6)
            dongle.send_event("rf-btn", "sos", button="red")
            dongle.send_telemetry("rf-vit", "vitals", heart_rate=71, spo2=98)
            dongle.send_state("rf-btn", battery=88)
            for _ in range(3):
                dongle.send_event("rf-stranger", "door_open")
            await wait_for(lambda: EventKind.SOS in kinds_of(cloud, "rf-btn"), what="sos")
            await wait_for(lambda: gw.counters.get("malformed_serial") == 6, what="corrupt")
            await wait_for(lambda: bool(cloud.records(TelemetryBatch)), what="telemetry")
            await wait_for(lambda: bool(cloud.records(UnknownDeviceSeen)), what="unknown")
            sos = next(e for e in cloud.records(EventEnvelope) if e.kind is EventKind.SOS)
            assert sos.source == "serial" and sos.lane is Lane.ALARM and sos.device_seq
            rec = cloud.records(TelemetryBatch)[0].records[0]
            assert rec.device_id == "rf-vit" and rec.values == {"heart_rate": 71, "spo2": 98}
            info = gw.registry.get("rf-btn")
            assert info is not None and info.battery == 88 and info.online
            await wait_for(lambda: gw.counters.get("unknown_device_msgs") == 3)
            unknown = cloud.records(UnknownDeviceSeen)
            assert len(unknown) == 1 and unknown[0].source == "serial"
            assert kinds_of(cloud, "rf-stranger") == []
            warned = [r.getMessage() for r in caplog.records if "malformed serial" in
                      r.getMessage()]
            assert len(warned) == 6 and all(f"serial:{dongle.port}" in w for w in warned)


async def test_z2m_door_contact_true_means_closed_through_the_gateway(
        tmp_path: Path, mosquitto: Broker) -> None:
    """Raw bridge payloads: `contact: false` is an open door, an unchanged report is nothing."""
    cloud = CloudAcker(mosquitto.port)
    bridge = Client(mosquitto.port, "z2m-bridge")
    clock = FakeClock(datetime(2026, 3, 2, 4, 0, tzinfo=UTC))   # 12:00 in Hangzhou
    with clients(cloud, bridge):
        async with running(settings_for(tmp_path, mosquitto.port,
                                        home={"extra": {"routine": {"door_open_max_s": 30}}}),
                           clock=clock) as gw:
            topic = "zigbee2mqtt/front_door"
            for body in (b'{"contact":true,"battery":90,"linkquality":120}',
                         b'{"contact":false,"battery":90}',
                         b'{"contact":false,"battery":90,"linkquality":99}'):
                bridge.publish(topic, body)
            await wait_for(lambda: EventKind.DOOR_OPEN in kinds_of(cloud, "zdoor"))
            clock.advance(31)
            await wait_for(lambda: EventKind.DOOR_LEFT_OPEN in kinds_of(cloud, "zdoor"),
                           what="door left open")
            bridge.publish(topic, b'{"contact":true}')
            await wait_for(lambda: kinds_of(cloud, "zdoor")[-1] is EventKind.DOOR_CLOSE)
            assert kinds_of(cloud, "zdoor") == [EventKind.DOOR_CLOSE, EventKind.DOOR_OPEN,
                                                EventKind.DOOR_LEFT_OPEN, EventKind.DOOR_CLOSE]
            assert all(e.source in {"z2m", "gateway"} for e in cloud.records(EventEnvelope))
            bridge.publish(f"{topic}/availability", b'{"state":"offline"}')
            await wait_for(lambda: EventKind.DEVICE_OFFLINE in kinds_of(cloud, "zdoor"))
            info = gw.registry.get("zdoor")
            assert info is not None and info.online is False


async def test_z2m_door_from_the_simulated_home(tmp_path: Path, mosquitto: Broker) -> None:
    cloud = CloudAcker(mosquitto.port)
    with clients(cloud):
        async with SimHome(mosquitto.url, "h1", devices=[("h1-door", "door_contact")],
                           z2m=True, clock=SimClock()) as home:
            model = home.z2m_model("h1-door")
            assert model is not None
            devices = [{"device_id": "h1-door", "type": "door_contact", "source": "z2m",
                        "z2m_name": "h1-door", "z2m_model": model}]
            async with running(settings_for(tmp_path, mosquitto.port,
                                             home={"devices": devices})) as gw:
                await home.door("h1-door", True)
                await wait_for(lambda: EventKind.DOOR_OPEN in kinds_of(cloud, "h1-door"),
                               what="open from the simulated Zigbee door")
                await home.door("h1-door", False)
                await wait_for(lambda: kinds_of(cloud, "h1-door")[-1] is EventKind.DOOR_CLOSE)
                opens = kinds_of(cloud, "h1-door").count(EventKind.DOOR_OPEN)
                assert opens == 1
                assert gw.counters.get("malformed_z2m") == 0


FIXTURE = Path(__file__).parents[1] / "protocols" / "fixtures" / "z2m_bridge_devices.json"


async def test_z2m_devices_learned_from_the_bridge_reported_once_and_decoded_by_exposes(
        tmp_path: Path, mosquitto: Broker, caplog: pytest.LogCaptureFixture) -> None:
    """The installer flow: Zigbee2MQTT's retained device list names every paired device
    with its model and exposes. Unbound devices are reported once each, with the type
    their exposes say; a device bound with no model typed is decoded by its exposes."""
    caplog.set_level(logging.WARNING)
    cloud = CloudAcker(mosquitto.port)
    bridge = Client(mosquitto.port, "z2m-bridge")
    # bound by the installer: room and type only, no model (the cloud's binding as `pair`
    # makes it)
    devices = [{"device_id": "fall-1", "type": "fall_radar", "source": "z2m",
                "z2m_name": "living_fall", "room": "客厅"},
               {"device_id": "sos-1", "type": "call_button", "source": "z2m",
                "z2m_name": "bath_button"}]
    with clients(cloud, bridge):
        bridge.publish("zigbee2mqtt/bridge/devices", FIXTURE.read_bytes(), retain=True)
        bridge.publish("zigbee2mqtt/bridge/state", b'{"state":"online"}', retain=True)
        settings = settings_for(tmp_path, mosquitto.port, home={"devices": devices})
        async with running(settings) as gw:
            await wait_for(lambda: len(cloud.records(UnknownDeviceSeen)) >= 22,
                           what="the unbound devices of the bridge's list")
            # the bridge republishes its list (a device joined): nothing is reported twice
            bridge.publish("zigbee2mqtt/bridge/devices", FIXTURE.read_bytes(), retain=True)
            bridge.publish("zigbee2mqtt/front_door", b'{"contact": false, "battery": 90}')
            bridge.publish("zigbee2mqtt/living_fall",
                           b'{"fall_status": "fall_warning", "occupancy": true}')
            bridge.publish("zigbee2mqtt/living_fall", b'{"fall_status": "fall_alarm"}')
            bridge.publish("zigbee2mqtt/bath_button", b'{"sos": "yes", "battery": 80}')
            bridge.publish("zigbee2mqtt/bath_button", b'{"sos": true, "battery": 80}')
            await wait_for(lambda: EventKind.FALL in kinds_of(cloud, "fall-1"), what="fall")
            await wait_for(lambda: EventKind.SOS in kinds_of(cloud, "sos-1"), what="sos")
            await wait_for(lambda: gw.counters.get("malformed_z2m_field") == 1)
            await wait_for(lambda: gw.counters.get("z2m_device_lists") == 2)
            unknown = {u.device_id: u for u in cloud.records(UnknownDeviceSeen)}
            assert len(cloud.records(UnknownDeviceSeen)) == len(unknown) == 22
            assert "living_fall" not in unknown and "bath_button" not in unknown
            assert unknown["front_door"].device_type == "door_contact"
            assert unknown["front_door"].source == "z2m"
            assert unknown["kitchen_gas"].device_type == "gas_detector"
            assert unknown["bedroom_fall"].device_type == "fall_radar"
            assert unknown["study_presence"].device_type == "motion_sensor"
            # (the alarm lane goes first, the event lane's batch may still be on its way:
            # wait for three, then compare without order)
            await wait_for(lambda: len(kinds_of(cloud, "fall-1")) >= 3, what="fall-1's events")
            assert sorted(kinds_of(cloud, "fall-1")) == sorted(
                [EventKind.MOTION, EventKind.FALL_WARNING, EventKind.FALL])
            fall = next(e for e in cloud.records(EventEnvelope) if e.kind is EventKind.FALL)
            assert fall.lane is Lane.ALARM and fall.source == "z2m"
            warning = next(e for e in cloud.records(EventEnvelope)
                           if e.kind is EventKind.FALL_WARNING)
            assert warning.lane is not Lane.ALARM
            assert gw.counters.get("unknown_device_msgs") >= 23
            warned = [r.getMessage() for r in caplog.records if "wrong type" in r.getMessage()]
            assert len(warned) == 1 and "zigbee2mqtt/bath_button" in warned[0] \
                and "sos='yes'" in warned[0]


async def test_z2m_memory_survives_a_gateway_restart(tmp_path: Path, mosquitto: Broker) -> None:
    """After a restart, a battery or tamper report that repeats the open door's contact is
    not a door opening, and a replayed sos: true is not a second press."""
    cloud = CloudAcker(mosquitto.port)
    bridge = Client(mosquitto.port, "z2m-bridge")
    devices = [{"device_id": "door-z", "type": "door_contact", "source": "z2m",
                "z2m_name": "bedroom_window"},
               {"device_id": "sos-1", "type": "call_button", "source": "z2m",
                "z2m_name": "bath_button"}]
    settings = settings_for(tmp_path, mosquitto.port, home={"devices": devices})
    door = "zigbee2mqtt/bedroom_window"
    with clients(cloud, bridge):
        bridge.publish("zigbee2mqtt/bridge/devices", FIXTURE.read_bytes(), retain=True)
        async with running(settings):
            bridge.publish(door, b'{"contact":true,"battery":90,"tamper":false}')
            bridge.publish(door, b'{"contact":false,"battery":90,"tamper":false}')
            bridge.publish("zigbee2mqtt/bath_button", b'{"sos":true,"battery":80}')
            await wait_for(lambda: EventKind.DOOR_OPEN in kinds_of(cloud, "door-z"))
            await wait_for(lambda: EventKind.SOS in kinds_of(cloud, "sos-1"))
        async with running(settings):
            bridge.publish(door, b'{"contact":false,"battery":85,"tamper":false}')
            bridge.publish(door, b'{"contact":false,"battery":85,"tamper":true}')
            bridge.publish("zigbee2mqtt/bath_button", b'{"sos":true,"battery":80}')
            await wait_for(lambda: EventKind.TAMPER in kinds_of(cloud, "door-z"))
            bridge.publish(door, b'{"contact":true,"battery":85,"tamper":false}')
            await wait_for(lambda: kinds_of(cloud, "door-z")[-1] is EventKind.DOOR_CLOSE)
            # the same state again, nothing else changed: the second press
            bridge.publish("zigbee2mqtt/bath_button", b'{"sos":true,"battery":80}')
            await wait_for(lambda: len({e.id for e in cloud.records(EventEnvelope)
                                        if e.device_id == "sos-1"}) >= 2, what="second press")
    # (unique by record id: a record not acked before the stop is sent again after it)
    door_events = {e.id: e.kind for e in cloud.records(EventEnvelope) if e.device_id == "door-z"}
    assert [door_events[k] for k in sorted(door_events)] == [
        EventKind.DOOR_CLOSE, EventKind.DOOR_OPEN, EventKind.TAMPER, EventKind.DOOR_CLOSE]
    presses = {e.id for e in cloud.records(EventEnvelope) if e.device_id == "sos-1"
               and e.kind is EventKind.SOS}
    assert len(presses) == 2


async def test_device_messages_published_while_the_gateway_is_down_are_not_lost(
        tmp_path: Path, mosquitto: Broker) -> None:
    """The home session is persistent: the broker holds what devices publish while the
    gateway is stopped (an upgrade, a crash, a watchdog restart) and hands it over when
    the gateway is back."""
    cloud = CloudAcker(mosquitto.port)
    button = Client(mosquitto.port, "btn-1-device")
    settings = settings_for(tmp_path, mosquitto.port)
    with clients(cloud, button):
        async with running(settings):
            pass
        for seq in range(1, 6):
            button.publish("eldercare/btn-1/event",
                           event_payload("call_button", "sos", seq, data={"button": "red"}))
        async with running(settings):
            await wait_for(lambda: len({e.device_seq for e in cloud.records(EventEnvelope)
                                        if e.device_id == "btn-1"}) == 5,
                           what="the five presses made while the gateway was down")
    assert all(e.kind is EventKind.SOS and e.lane is Lane.ALARM
               for e in cloud.records(EventEnvelope) if e.device_id == "btn-1")


async def test_the_home_broker_is_acked_only_once_a_message_is_stored(
        tmp_path: Path, mosquitto: Broker) -> None:
    """paho PUBACKs on receipt by default: a gateway that died between receiving a press
    and storing it lost it, persistent session or not. The home link acks late: a press
    received but not yet stored when the connection dies is delivered again (and stored
    once, by its device sequence number)."""
    cloud = CloudAcker(mosquitto.port)
    button = Client(mosquitto.port, "btn-1-device")
    settings = settings_for(tmp_path, mosquitto.port)
    with clients(cloud, button):
        async with running(settings) as gw:
            async with gw.outbox._lock:      # the gateway cannot store for now
                button.publish("eldercare/btn-1/event",
                               event_payload("call_button", "sos", 7, data={"button": "red"}))
                await wait_for(lambda: gw._home_delivered == 1, what="the press received")
                # the connection dies before the press is stored (as it does in a crash)
                gw.home.client.drop()
                gw.home.client.resume()
                await wait_for(lambda: gw._home_delivered == 2, 20,
                               what="the broker delivering the unacked press again")
            await wait_for(lambda: any(e.device_id == "btn-1" and e.device_seq == 7
                                       for e in cloud.records(EventEnvelope)),
                           what="the press uplinked")
            await wait_for(lambda: not gw.home._unacked, what="the home broker acked")
    presses = {e.id for e in cloud.records(EventEnvelope) if e.device_id == "btn-1"}
    assert len(presses) == 1
