"""The gateway end to end on real Mosquitto: inputs, LED feedback, acks, commands, config.

The cloud side here is :class:`CloudAcker`, a test-only stand-in for the cloud ingest
that acks what it receives (the real cloud is exercised in tests/e2e).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from broker_support import Broker
from eldercare_edge.errors import OutboxError
from eldercare_edge.gateway import Gateway
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import (
    DownCommand,
    EventEnvelope,
    GatewayConfig,
    GatewayState,
    Lane,
    TelemetryBatch,
    UnknownDeviceSeen,
    encode,
)
from eldercare_sim.clock import SimClock
from eldercare_sim.home import SimHome

from .helpers import (
    GW,
    Client,
    CloudAcker,
    clients,
    event_payload,
    led_states,
    now,
    running,
    settings_for,
    state_payload,
    telemetry_payload,
    wait_for,
)

pytestmark = pytest.mark.integration


def envelopes(cloud: CloudAcker, kind: EventKind | None = None) -> list[EventEnvelope]:
    return [r for r in cloud.records(EventEnvelope) if kind is None or r.kind is kind]


async def test_red_press_is_received_then_help_coming(tmp_path: Path, mosquitto: Broker
                                                      ) -> None:
    cloud = CloudAcker(mosquitto.port, acking=False)
    button = Client(mosquitto.port, "btn-1", ("eldercare/btn-1/cmd",))
    with clients(cloud, button):
        async with running(settings_for(tmp_path, mosquitto.port)) as gw:
            button.publish("eldercare/btn-1/event", event_payload(
                "call_button", "sos", 7, data={"button": "red"}))
            await wait_for(lambda: led_states(button, "btn-1") == ["received"],
                           what="LED received")
            await wait_for(lambda: bool(envelopes(cloud, EventKind.SOS)), what="alarm uplinked")
            env = envelopes(cloud, EventKind.SOS)[0]
            assert env.lane is Lane.ALARM and env.device_id == "btn-1"
            assert env.device_seq == 7 and env.device_ts is not None and env.gateway_ts
            assert env.id == f"{GW}-{env.seq:06d}"
            # seen by the cloud broker (PUBACKed) but not acked: still in the outbox
            assert await gw.outbox.contains(env.id)
            assert led_states(button, "btn-1") == ["received"]
            cloud.ack_now(GW, [env.id])
            await wait_for(lambda: led_states(button, "btn-1") == ["received", "help_coming"],
                           what="LED help coming")
            assert not await gw.outbox.contains(env.id)


async def test_one_help_coming_per_button_for_alarms_committed_together(
        tmp_path: Path, mosquitto: Broker) -> None:
    cloud = CloudAcker(mosquitto.port, acking=False)
    button = Client(mosquitto.port, "btn-1", ("eldercare/btn-1/cmd",))
    with clients(cloud, button):
        async with running(settings_for(tmp_path, mosquitto.port)) as gw:
            for seq in (1, 2, 3):
                button.publish("eldercare/btn-1/event", event_payload("call_button", "sos", seq))
            await wait_for(lambda: len({e.id for e in envelopes(cloud, EventKind.SOS)}) == 3,
                           what="three alarms uplinked")
            await wait_for(lambda: led_states(button, "btn-1") == ["received"] * 3)
            cloud.ack_now(GW, sorted({e.id for e in envelopes(cloud, EventKind.SOS)}))
            # the LED commands for an ack are sent right after its records are deleted
            await wait_for(lambda: gw.counters.get("acked") == 3, what="all three committed")
            assert gw.counters.get("commands_sent") == 4
            await wait_for(lambda: "help_coming" in led_states(button, "btn-1"))
            assert led_states(button, "btn-1") == ["received"] * 3 + ["help_coming"]
            # each LED command names the alarm records it confirms
            leds = [json.loads(p)["args"] for _, p in button.received("eldercare/btn-1/cmd")]
            by_seq = {e.device_seq: e.id for e in envelopes(cloud, EventKind.SOS)}
            assert [a["alarm"] for a in leds[:3]] == [by_seq[1], by_seq[2], by_seq[3]]
            assert leds[3]["alarm"] == by_seq[3]
            assert sorted(leds[3]["alarms"]) == sorted(by_seq.values())


async def test_nothing_leaves_the_outbox_without_an_app_ack_and_unacked_is_resent(
        tmp_path: Path, mosquitto: Broker) -> None:
    cloud = CloudAcker(mosquitto.port, acking=False)
    button = Client(mosquitto.port, "btn-1")
    settings = settings_for(tmp_path, mosquitto.port, cloud={"resend_after_s": 0.3})
    with clients(cloud, button):
        async with running(settings) as gw:
            button.publish("eldercare/btn-1/event", event_payload("call_button", "sos", 1))
            button.publish("eldercare/btn-1/event",
                           event_payload("call_button", "service_request", 2))
            await wait_for(lambda: len({e.id for e in envelopes(cloud)}) == 2)
            ids = {e.id for e in envelopes(cloud)}
            # resent with the same ids after the timeout, still not deleted
            await wait_for(lambda: len(envelopes(cloud)) >= 6, what="resends")
            assert {e.id for e in envelopes(cloud)} == ids
            assert gw.counters.get("resent") >= 4
            assert sum((await gw.outbox.depth()).values()) == 2
            cloud.ack_now(GW, sorted(ids))
            await wait_for(lambda: gw.outbox.size_bytes == 0, what="outbox emptied by the ack")


async def test_telemetry_is_batched_and_alarms_go_first(tmp_path: Path, mosquitto: Broker
                                                        ) -> None:
    cloud = CloudAcker(mosquitto.port)
    vit = Client(mosquitto.port, "vit-1")
    with clients(cloud, vit):
        async with running(settings_for(tmp_path, mosquitto.port)) as gw:
            for i in range(30):
                vit.publish("eldercare/vit-1/telemetry",
                            telemetry_payload("vitals_monitor", "vitals", i, heart_rate=70 + i % 5,
                                              spo2=97), qos=0)
            await wait_for(lambda: sum(len(b.records) for b in cloud.records(TelemetryBatch))
                           == 30, what="30 readings in batches")
            batches = cloud.records(TelemetryBatch)
            assert len(batches) < 30
            assert [r.device_seq for b in batches for r in b.records] == list(range(30))
            await wait_for(lambda: gw.outbox.size_bytes == 0)


async def test_unknown_device_reported_once_and_never_acted_on(tmp_path: Path,
                                                              mosquitto: Broker) -> None:
    cloud = CloudAcker(mosquitto.port)
    stranger = Client(mosquitto.port, "stranger", ("eldercare/btn-x/cmd",))
    with clients(cloud, stranger):
        async with running(settings_for(tmp_path, mosquitto.port)) as gw:
            for i in range(3):
                stranger.publish("eldercare/btn-x/event", event_payload("call_button", "sos", i))
            await wait_for(lambda: gw.counters.get("unknown_device_msgs") == 3)
            await wait_for(lambda: bool(cloud.records(UnknownDeviceSeen)))
            # flush anything else that might have been queued, then look
            await wait_for(lambda: gw.outbox.size_bytes == 0)
            unknown = cloud.records(UnknownDeviceSeen)
            assert len(unknown) == 1
            assert unknown[0].device_id == "btn-x" and unknown[0].device_type == "call_button"
            assert envelopes(cloud) == []
            assert led_states(stranger, "btn-x") == []
        # and not again after a restart
        async with running(settings_for(tmp_path, mosquitto.port)) as gw:
            stranger.publish("eldercare/btn-x/event", event_payload("call_button", "sos", 9))
            await wait_for(lambda: gw.counters.get("unknown_device_msgs") == 1)
            assert await gw.outbox.depth() == {Lane.ALARM: 0, Lane.EVENT: 0, Lane.TELEMETRY: 0}
        assert len(cloud.records(UnknownDeviceSeen)) == 1


async def test_test_press_travels_but_raises_no_alarm(tmp_path: Path, mosquitto: Broker
                                                      ) -> None:
    cloud = CloudAcker(mosquitto.port)
    button = Client(mosquitto.port, "btn-1", ("eldercare/btn-1/cmd",))
    with clients(cloud, button):
        async with running(settings_for(tmp_path, mosquitto.port)) as gw:
            button.publish("eldercare/btn-1/event",
                           event_payload("call_button", "sos", 1, test=True))
            await wait_for(lambda: bool(envelopes(cloud, EventKind.SOS)))
            env = envelopes(cloud, EventKind.SOS)[0]
            assert env.test and env.lane is Lane.EVENT
            assert gw.counters.get("alarms_stored") == 0
            assert led_states(button, "btn-1") == []


async def test_config_is_applied_persisted_and_commands_relayed_by_catalogue(
        tmp_path: Path, mosquitto: Broker) -> None:
    cloud = CloudAcker(mosquitto.port)
    gas = Client(mosquitto.port, "gas-1", ("eldercare/+/cmd",))
    config = GatewayConfig.model_validate({
        "gateway_id": GW, "version": 3,
        "resident": {"name": "陈桂兰", "address": "杭州市拱墅区"},
        "sms_contacts": [{"name": "陈强", "phone": "13900000009"}],
        "devices": [{"device_id": "gas-1", "type": "gas_detector"},
                    {"device_id": "btn-1", "type": "call_button"}]})
    with clients(cloud, gas):
        async with running(settings_for(tmp_path, mosquitto.port)) as gw:
            cloud.publish(f"ec/v1/{GW}/down/config", encode(config), retain=True)
            await wait_for(lambda: gw.config.version == 3, what="config applied")
            assert gw.registry.get("door-1") is None
            ok = DownCommand(id="cmd-000001", device_id="gas-1", command="mute_buzzer",
                             args={"seconds": 300}, ts=now())
            bad = DownCommand(id="cmd-000002", device_id="btn-1", command="mute_buzzer",
                              ts=now())
            cloud.publish(f"ec/v1/{GW}/down/cmd", encode(bad))
            cloud.publish(f"ec/v1/{GW}/down/cmd", encode(ok))
            await wait_for(lambda: bool(gas.received("eldercare/gas-1/cmd")))
            cmd = json.loads(gas.received("eldercare/gas-1/cmd")[0][1])
            assert cmd["command"] == "mute_buzzer" and cmd["args"] == {"seconds": 300}
            assert gas.received("eldercare/btn-1/cmd") == []
            assert gw.counters.get("commands_rejected") == 1
            # an older retained config does not undo a newer one
            old = config.model_copy(update={"version": 2, "sms_contacts": []})
            cloud.publish(f"ec/v1/{GW}/down/config", encode(old))
            await wait_for(lambda: gw.counters.get("config_stale") == 1)
            assert gw.config.version == 3
        cloud.publish(f"ec/v1/{GW}/down/config", b"", retain=True)  # clear the retained one
    # a restart without any cloud keeps the contacts and the resident
    async with running(settings_for(tmp_path, mosquitto.port)) as gw2:
        assert gw2.config.version == 3
        assert [c.phone for c in gw2.config.sms_contacts] == ["13900000009"]


async def test_birth_health_and_clean_offline_on_the_state_topic(tmp_path: Path,
                                                                  mosquitto: Broker) -> None:
    watcher = Client(mosquitto.port, "watcher", (f"ec/v1/{GW}/up/state",))
    dev = Client(mosquitto.port, "door-1")
    with clients(watcher, dev):
        async with running(settings_for(tmp_path, mosquitto.port)) as gw:
            dev.publish("eldercare/door-1/state", state_payload("door_contact", battery=80,
                                                                rssi=-60), retain=True)

            def states() -> list[GatewayState]:
                return [GatewayState.model_validate_json(p)
                        for _, p in watcher.received(f"ec/v1/{GW}/up/state") if p]

            await wait_for(lambda: any(s.status == "health" and "door-1" in s.devices
                                       and s.devices["door-1"].online for s in states()),
                           what="health with the door online")
            assert states()[0].status == "online"
            health = [s for s in states() if s.status == "health"][-1]
            assert set(health.outbox) == {Lane.ALARM, Lane.EVENT, Lane.TELEMETRY}
            assert health.uptime_s is not None and health.counters.get("in_native", 0) >= 1
            assert gw.registry.get("door-1") is not None
        await wait_for(lambda: states()[-1].status == "offline", what="offline on clean stop")
        dev.publish("eldercare/door-1/state", b"", retain=True)


async def test_malformed_payloads_on_every_input_are_counted_and_logged(
        tmp_path: Path, mosquitto: Broker, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    cloud = CloudAcker(mosquitto.port)
    dev = Client(mosquitto.port, "evil")
    bad_inputs = [
        ("eldercare/btn-1/event", b"{not json"),
        ("eldercare/btn-1/event", b'{"v":1,"seq":1,"ts":"2026-01-01T00:00:00Z",'
                                  b'"type":"call_button","kind":"gas_alarm"}'),
        ("eldercare/vit-1/telemetry", b'{"v":1,"seq":1,"ts":"2026-01-01T00:00:00Z",'
                                      b'"type":"vitals_monitor","kind":"vitals",'
                                      b'"values":{"heart_rate":900}}'),
        ("eldercare/door-1/state", b"[]"),
        ("eldercare/btn-1/cmd/ack", b'{"id": 5}'),
        ("eldercare/btn-1/event", b'{"v":1,"seq":1,"ts":"2026-01-01T00:00:00Z",'
                                  b'"type":"door_contact","kind":"door_open"}'),
        ("zigbee2mqtt/front_door", b"\xff\xfe garbage"),
        ("zigbee2mqtt/front_door/availability", b"maybe"),
    ]
    bad_down = [
        (f"ec/v1/{GW}/down/ack", b'{"ids": []}'),
        (f"ec/v1/{GW}/down/config", b'{"gateway_id": "gw-test-01"}'),
        (f"ec/v1/{GW}/down/cmd", b"null"),
    ]
    with clients(cloud, dev):
        async with running(settings_for(tmp_path, mosquitto.port)) as gw:
            for topic, payload in bad_inputs + bad_down:
                dev.publish(topic, payload)
            await wait_for(lambda: gw.counters.get("malformed_native") == 6
                           and gw.counters.get("malformed_z2m") == 2
                           and gw.counters.get("malformed_down") == 3, what="all counted")
            warned = "\n".join(r.getMessage() for r in caplog.records
                               if r.levelno == logging.WARNING)
            for topic, _ in bad_inputs + bad_down:
                assert topic in warned, f"no warning names {topic}"
            assert "not json" in warned  # the payload preview is in the line
            # still running: a real press after all that is an alarm
            dev.publish("eldercare/btn-1/event", event_payload("call_button", "sos", 2))
            await wait_for(lambda: bool(envelopes(cloud, EventKind.SOS)))
            assert gw.counters.get("alarms_stored") == 1


async def test_simulated_button_led_and_last_will(tmp_path: Path, mosquitto: Broker) -> None:
    """The simulator's button: LED received → help coming; its Last Will is device offline,
    never person inactivity."""
    cloud = CloudAcker(mosquitto.port)
    devices = [{"device_id": "h1-btn", "type": "call_button"},
               {"device_id": "h1-door", "type": "door_contact"}]
    with clients(cloud):
        async with running(settings_for(tmp_path, mosquitto.port, home={"devices": devices})
                           ) as gw:
            home = SimHome(mosquitto.url, "h1", devices=[("h1-btn", "call_button"),
                                                         ("h1-door", "door_contact")],
                           clock=SimClock())
            async with home:
                assert await home.press("h1-btn", "red")
                await wait_for(lambda: home.led_state("h1-btn") == "help_coming",
                               what="help coming on the button")
                leds = [c.args.get("state") for c in home.commands if c.command == "led"]
                assert leds == ["received", "help_coming"]
                await home.kill()
                await wait_for(lambda: {"h1-btn", "h1-door"} <= {
                    e.device_id for e in envelopes(cloud, EventKind.DEVICE_OFFLINE)},
                    what="Last Wills seen as device offline")
            assert envelopes(cloud, EventKind.INACTIVITY) == []
            info = gw.registry.get("h1-btn")
            assert info is not None and info.online is False


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
async def test_a_gateway_that_cannot_open_its_outbox_fails_cleanly(tmp_path: Path,
                                                                   mosquitto: Broker) -> None:
    settings = settings_for(tmp_path, mosquitto.port)
    (settings.data_dir / "outbox.sqlite").mkdir(parents=True)   # a directory, not a file
    with pytest.raises(OutboxError):
        async with Gateway(settings):
            pass


async def test_a_device_message_delivered_twice_is_one_alarm_across_restarts(
        tmp_path: Path, mosquitto: Broker) -> None:
    """A redelivery from the home broker or a firmware retry repeats the same seq and ts:
    one alarm, also when the repeat comes after a gateway restart. A device that rebooted
    and restarted its count (same seq, another ts) is a new press."""
    cloud = CloudAcker(mosquitto.port)
    button = Client(mosquitto.port, "btn-1")
    settings = settings_for(tmp_path, mosquitto.port)
    press = event_payload("call_button", "sos", 41, data={"button": "red"})
    with clients(cloud, button):
        async with running(settings) as gw:
            button.publish("eldercare/btn-1/event", press)
            button.publish("eldercare/btn-1/event", press)
            await wait_for(lambda: gw.counters.get("duplicate_device_msgs") == 1,
                           what="the second delivery dropped")
            await wait_for(lambda: bool(envelopes(cloud, EventKind.SOS)))
        async with running(settings) as gw:
            button.publish("eldercare/btn-1/event", press)
            rebooted = event_payload("call_button", "sos", 41, data={"button": "red"})
            button.publish("eldercare/btn-1/event", rebooted)
            await wait_for(lambda: len({e.id for e in envelopes(cloud, EventKind.SOS)}) == 2,
                           what="the rebooted device's press")
            await wait_for(lambda: gw.counters.get("in_native") >= 2)
    presses = {e.id: e for e in envelopes(cloud, EventKind.SOS)}
    assert len(presses) == 2
    assert sorted(str(e.device_ts) for e in presses.values()) == sorted(
        {str(e.device_ts) for e in presses.values()})


async def test_both_broker_sockets_have_nagle_off(tmp_path: Path, mosquitto: Broker) -> None:
    """paho leaves Nagle on; an alarm then waited for the broker's delayed ACK."""
    async with running(settings_for(tmp_path, mosquitto.port)) as gw:
        for link in (gw.home, gw.cloud):
            assert link.client.tcp_nodelay is True, link.name


async def test_two_gateways_with_one_id_are_detected_and_reported_in_health(
        tmp_path: Path, mosquitto: Broker, caplog: pytest.LogCaptureFixture) -> None:
    """The broker drops the older connection when a newer one brings the same client id:
    two gateways with one gateway_id knock each other off at every reconnect. Each says
    so by name in its log and counts it, so its health report carries it to the cloud."""
    caplog.set_level(logging.ERROR)
    a = settings_for(tmp_path / "a", mosquitto.port)
    b = settings_for(tmp_path / "b", mosquitto.port)
    async with running(a) as gw_a, Gateway(b) as gw_b:
        def conflicts() -> int:
            return sum(g.counters.get(f"client_id_conflict_{link}")
                       for g in (gw_a, gw_b) for link in ("home", "cloud"))
        await wait_for(lambda: conflicts() >= 2, within_s=30, what="the conflict noticed")
        health = await gw_a.health()
        noticed = {k for k, v in health.counters.items() if k.startswith("client_id_conflict")
                   and v} | {k for k, v in (await gw_b.health()).counters.items()
                             if k.startswith("client_id_conflict") and v}
        assert noticed
    assert f"gw-{GW}" in caplog.text and "same gateway_id" in caplog.text
