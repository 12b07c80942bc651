"""Issue 4, tests 7, 8 and 10 end to end: the serial RF dongle (pty), a Zigbee2MQTT door
sensor, and malformed payloads on every input, all the way into the cloud's database."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from broker_support import Broker
from eldercare_cloud.service import CloudService
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import Lane
from eldercare_sim.clock import SimClock
from eldercare_sim.dongle import SimDongle
from eldercare_sim.home import SimHome

from .helpers import GW, NativeDevice, committed, edge_settings, running, wait_for

pytestmark = pytest.mark.integration


class Publisher:
    """A bare MQTT client for raw payloads (a Zigbee2MQTT bridge, a misbehaving peer)."""

    def __init__(self, broker: Broker) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"raw-{uuid.uuid4().hex[:6]}")
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def kinds(cloud: CloudService, device_id: str) -> list[EventKind]:
    return [e.kind for e in await committed(cloud, device_id=device_id)]


async def test_7_dongle_frames_become_committed_events_and_corrupt_frames_are_skipped(
        tmp_path: Path, home_broker: Broker, cloud_broker: Broker, cloud: CloudService) -> None:
    devices = [{"device_id": "rf-btn", "type": "call_button", "source": "serial"},
               {"device_id": "rf-vit", "type": "vitals_monitor", "source": "serial"},
               {"device_id": "rf-door", "type": "door_contact", "source": "serial"}]
    with SimDongle({"rf-btn": "call_button", "rf-vit": "vitals_monitor",
                    "rf-door": "door_contact"}) as dongle:
        settings = edge_settings(tmp_path, home_broker, cloud_broker, devices,
                                 serial={"port": dongle.port, "reopen_s": 0.2})
        async with running(settings) as gw:
            assert gw.dongle is not None
            await wait_for(lambda: gw.dongle is not None and gw.dongle.opened.is_set(),
                           what="the dongle's port open")
            dongle.send_corrupt(6)
            dongle.send_event("rf-btn", "sos", button="red")
            dongle.send_corrupt(3)
            dongle.send_event("rf-door", "door_open")
            dongle.send_telemetry("rf-vit", "vitals", heart_rate=71, spo2=98)

            async def all_in() -> bool:
                return (EventKind.SOS in await kinds(cloud, "rf-btn")
                        and EventKind.DOOR_OPEN in await kinds(cloud, "rf-door")
                        and len(await cloud.store.telemetry("rf-vit")) == 1)

            await wait_for(all_in, what="the dongle's frames in the cloud")
            assert gw.counters.get("malformed_serial") == 9
    [sos] = await committed(cloud, EventKind.SOS)
    assert (sos.source, sos.lane, sos.device_id) == ("serial", Lane.ALARM, "rf-btn")
    assert sos.device_seq is not None
    [reading] = await cloud.store.telemetry("rf-vit")
    assert reading.values == {"heart_rate": 71.0, "spo2": 98.0}
    # nothing from the corrupt frames reached the cloud
    assert {e.device_id for e in await committed(cloud)} <= {"rf-btn", "rf-door", "rf-vit"}
    assert cloud.ingest.counters.rejected_bad_payload == 0


async def test_8_zigbee2mqtt_contact_true_means_closed_through_the_whole_path(
        tmp_path: Path, home_broker: Broker, cloud_broker: Broker, cloud: CloudService) -> None:
    async with SimHome(home_broker.url, "h8", devices=[("h8-door", "door_contact")], z2m=True,
                       clock=SimClock()) as home:
        model = home.z2m_model("h8-door")
        assert model is not None
        devices = [{"device_id": "h8-door", "type": "door_contact", "source": "z2m",
                    "z2m_name": "h8-door", "z2m_model": model},
                   {"device_id": "front", "type": "door_contact", "source": "z2m",
                    "z2m_name": "front_door", "z2m_model": "MCCGQ11LM"}]
        bridge = Publisher(home_broker)
        try:
            async with running(edge_settings(tmp_path, home_broker, cloud_broker, devices)):
                # the simulated Zigbee door, rendered by the simulator as a Z2M bridge would
                await home.door("h8-door", True)
                await wait_for(lambda: _has(cloud, "h8-door", EventKind.DOOR_OPEN),
                               what="door open from the simulated Zigbee door")
                await home.door("h8-door", False)
                await wait_for(lambda: _last(cloud, "h8-door", EventKind.DOOR_CLOSE),
                               what="door close")
                # raw bridge payloads: contact true = closed, false = open
                for body in (b'{"contact":true,"battery":90,"linkquality":120}',
                             b'{"contact":false,"battery":90}',
                             b'{"contact":false,"battery":90,"linkquality":99}',
                             b'{"contact":true}'):
                    bridge.publish("zigbee2mqtt/front_door", body)
                await wait_for(lambda: _count(cloud, "front", 3), what="three door events")
        finally:
            bridge.close()
    h8 = [k for k in await kinds(cloud, "h8-door")
          if k in (EventKind.DOOR_OPEN, EventKind.DOOR_CLOSE)]
    assert h8 == [EventKind.DOOR_OPEN, EventKind.DOOR_CLOSE]
    assert await kinds(cloud, "front") == [EventKind.DOOR_CLOSE, EventKind.DOOR_OPEN,
                                           EventKind.DOOR_CLOSE]
    assert {e.source for e in await committed(cloud, device_id="front")} == {"z2m"}


async def _has(cloud: CloudService, device_id: str, kind: EventKind) -> bool:
    return kind in await kinds(cloud, device_id)


async def _last(cloud: CloudService, device_id: str, kind: EventKind) -> bool:
    seen = await kinds(cloud, device_id)
    return bool(seen) and seen[-1] is kind


async def _count(cloud: CloudService, device_id: str, n: int) -> bool:
    return len(await kinds(cloud, device_id)) >= n


async def test_10_malformed_payloads_on_every_input_are_counted_logged_and_harmless(
        tmp_path: Path, home_broker: Broker, cloud_broker: Broker, cloud: CloudService,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    devices = [{"device_id": "btn-1", "type": "call_button"},
               {"device_id": "vit-1", "type": "vitals_monitor"},
               {"device_id": "zdoor", "type": "door_contact", "source": "z2m",
                "z2m_name": "front_door", "z2m_model": "MCCGQ11LM"},
               {"device_id": "rf-btn", "type": "call_button", "source": "serial"}]
    home_bad = [
        ("eldercare/btn-1/event", b"{not json"),
        ("eldercare/btn-1/event", b'{"v":1,"seq":1,"ts":"2026-01-01T00:00:00Z",'
                                  b'"type":"call_button","kind":"gas_alarm"}'),
        ("eldercare/vit-1/telemetry", b'{"v":1,"seq":1,"ts":"2026-01-01T00:00:00Z",'
                                      b'"type":"vitals_monitor","kind":"vitals",'
                                      b'"values":{"heart_rate":900}}'),
        ("eldercare/btn-1/state", b"[]"),
        ("eldercare/btn-1/cmd/ack", b'{"id": 5}'),
        ("zigbee2mqtt/front_door", b"\xff\xfe garbage"),
        ("zigbee2mqtt/front_door/availability", b"maybe"),
    ]
    down_bad = [
        (f"ec/v1/{GW}/down/ack", b'{"ids": []}'),
        (f"ec/v1/{GW}/down/config", b'{"gateway_id": "' + GW.encode() + b'"}'),
        (f"ec/v1/{GW}/down/cmd", b"null"),
    ]
    up_bad = [
        (f"ec/v1/{GW}/up/events", b"\x00\x01 not an envelope"),
        (f"ec/v1/{GW}/up/telemetry", b'{"type":"telemetry"}'),
        (f"ec/v1/{GW}/up/state", b'{"gateway_id":"someone-else","status":"online"}'),
    ]
    with SimDongle({"rf-btn": "call_button"}) as dongle:
        port = dongle.port
        settings = edge_settings(tmp_path, home_broker, cloud_broker, devices,
                                 serial={"port": port, "reopen_s": 0.2})
        home_pub, cloud_pub = Publisher(home_broker), Publisher(cloud_broker)
        button = NativeDevice(home_broker, "btn-1", "call_button")
        try:
            async with running(settings) as gw:
                await wait_for(lambda: gw.dongle is not None and gw.dongle.opened.is_set())
                for topic, payload in home_bad:
                    home_pub.publish(topic, payload)
                for topic, payload in down_bad + up_bad:
                    cloud_pub.publish(topic, payload)
                dongle.send_corrupt(4)
                await wait_for(lambda: gw.counters.get("malformed_native") == 5
                               and gw.counters.get("malformed_z2m") == 2
                               and gw.counters.get("malformed_serial") == 4
                               and gw.counters.get("malformed_down") == 3
                               and cloud.ingest.counters.rejected_bad_payload == 3,
                               what="every malformed payload counted")
                # both keep running: a real press afterwards is a committed alarm
                button.event("sos", button="red")
                await wait_for(lambda: button.leds() == ["received", "help_coming"],
                               what="a real alarm after all that")
        finally:
            for c in (home_pub, cloud_pub, button):
                c.close()
    warned = "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    for topic, _ in home_bad + down_bad + up_bad:
        assert topic in warned, f"no warning names {topic}"
    assert f"serial:{port}" in warned
    assert [e.kind for e in await committed(cloud)] == [EventKind.SOS]
    # the forged state naming another gateway changed nothing; the real birth and the
    # clean shutdown's "offline" were tracked
    log = await cloud.store.gateway_log_after(0)
    assert [(e.gateway_id, e.status) for e in log] == [(GW, "online"), (GW, "offline")]
