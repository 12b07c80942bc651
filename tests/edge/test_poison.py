"""Issue 15: one hostile device message costs that message, never the gateway's alarm path.

The exact inputs of the issue (a native event nested 400 deep, a Zigbee2MQTT
``gas_density`` of 400 digits, lone surrogates, ints beyond 64 bits, a topic name over
64 characters) arrive between valid SOS presses: every SOS reaches the cloud, each
hostile message is counted, and the ingest task is still running. Stages after the
decoders are isolated too: a message that breaks a rule, or a record the outbox cannot
take, costs that one message or record.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from broker_support import Broker
from eldercare_edge.ingest import Inbound
from eldercare_edge.outbox import Draft
from eldercare_edge.records import event_draft
from eldercare_protocols.events import CanonicalEvent, EventKind
from eldercare_protocols.uplink import EventEnvelope, Lane
from hostile_support import (
    LONG_Z2M_TOPIC,
    NATIVE_POISON,
    Z2M_POISON,
    native_event,
    raw_json,
)

from .helpers import CloudAcker, clients, running, settings_for, wait_for

T0 = datetime(2026, 11, 23, 3, 12, tzinfo=UTC)


def sos_payload(seq: int) -> bytes:
    """A valid red press with a fixed device time (tests never read the wall clock)."""
    return raw_json(native_event(seq=seq))

pytestmark = pytest.mark.integration


def sos_count(cloud: CloudAcker) -> int:
    return sum(1 for r in cloud.records(EventEnvelope) if r.kind is EventKind.SOS)


async def test_each_hostile_input_of_the_issue_costs_one_message(tmp_path: Path,
                                                                 mosquitto: Broker) -> None:
    cloud = CloudAcker(mosquitto.port)
    with clients(cloud):
        async with running(settings_for(tmp_path, mosquitto.port)) as gw:
            seq = 0

            def press() -> None:
                nonlocal seq
                seq += 1
                gw.feed(Inbound("native", "eldercare/btn-2/event",
                                sos_payload(seq)))

            press()
            for _, payload in NATIVE_POISON:
                gw.feed(Inbound("native", "eldercare/btn-1/event", payload))
                press()
            for _, payload in Z2M_POISON:
                gw.feed(Inbound("z2m", "zigbee2mqtt/front_door", payload))
                press()
            gw.feed(Inbound("z2m", LONG_Z2M_TOPIC, b'{"contact": false}'))
            press()
            await wait_for(lambda: sos_count(cloud) == seq, 15, "every SOS at the cloud")
            assert gw.counters.get("malformed_native") == len(NATIVE_POISON)
            assert gw.counters.get("malformed_z2m") == len(Z2M_POISON) + 1
            assert gw.counters.get("alarms_stored") == seq
            assert not gw._tasks["ingest"].done(), "the ingest task died"
            assert not cloud.malformed, "the gateway sent something the cloud cannot read"


async def test_a_message_that_breaks_a_rule_costs_that_message(
        tmp_path: Path, mosquitto: Broker, monkeypatch: pytest.MonkeyPatch) -> None:
    cloud = CloudAcker(mosquitto.port)
    with clients(cloud):
        async with running(settings_for(tmp_path, mosquitto.port)) as gw:
            on_event = gw.rules.on_event

            def broken_for_btn1(ev: CanonicalEvent, info: object) -> object:
                if ev.device_id == "btn-1":
                    raise KeyError("a bug in a rule")
                return on_event(ev, info)  # type: ignore[arg-type]

            # a stand-in for a bug: nothing a device sends breaks a rule today
            monkeypatch.setattr(gw.rules, "on_event", broken_for_btn1)
            gw.feed(Inbound("native", "eldercare/btn-1/event",
                            sos_payload(1)))
            gw.feed(Inbound("native", "eldercare/btn-2/event",
                            sos_payload(1)))
            await wait_for(lambda: sos_count(cloud) == 1, 10, "btn-2's SOS")
            assert gw.counters.get("failed_native") == 1
            assert not gw._tasks["ingest"].done()


async def test_a_record_the_outbox_cannot_take_costs_that_record(tmp_path: Path,
                                                                 mosquitto: Broker) -> None:
    async with running(settings_for(tmp_path, mosquitto.port)) as gw:
        received = T0
        good = [event_draft(gw.gateway_id, CanonicalEvent(device_id=f"btn-{i}",
                                                          kind=EventKind.SOS), received)
                for i in (1, 2)]

        def explode(seq: int, rid: str) -> bytes:
            raise ValueError("cannot encode")

        bad = Draft(Lane.ALARM, explode, device_id="btn-9")
        stored = await gw.store([good[0], bad, good[1]])
        assert [s.device_id for s in stored] == ["btn-1", "btn-2"]
        assert gw.counters.get("records_rejected") == 1
        assert (await gw.outbox.depth())[Lane.ALARM] == 2


async def test_the_inbox_is_bounded_and_alarms_get_more_room(tmp_path: Path,
                                                             mosquitto: Broker) -> None:
    settings = settings_for(tmp_path, mosquitto.port, inbox_max=100)
    async with running(settings) as gw:
        telemetry = Inbound("native", "eldercare/vit-1/telemetry", b"{}")
        event = Inbound("native", "eldercare/btn-1/event", b"{}")
        # feed() does not yield to the event loop: nothing is handled in between
        for _ in range(500):
            gw.feed(telemetry)
        assert len(gw._inbox) == 100
        assert gw.counters.get("inbox_dropped") == 400
        for _ in range(500):
            gw.feed(event)
        assert len(gw._inbox) == 200
        assert gw.counters.get("inbox_dropped") == 800
        # the downlink queue is bounded the same way (a dropped Ack only means a resend)
        gw._on_down([(f"ec/v1/{gw.gateway_id}/down/ack", b"{}")] * 150)
        assert len(gw._down) == 100
        assert gw.counters.get("down_dropped") == 50
        await wait_for(lambda: not gw._inbox, 10, "the inbox drained")


async def test_the_inbox_is_bounded_in_bytes_too(tmp_path: Path, mosquitto: Broker) -> None:
    settings = settings_for(tmp_path, mosquitto.port, inbox_max=10_000,
                            inbox_max_bytes=100_000)
    async with running(settings) as gw:
        big = Inbound("native", "eldercare/vit-1/telemetry", b"x" * 1000)
        for _ in range(300):
            gw.feed(big)
        assert len(gw._inbox) == 100
        assert gw.counters.get("inbox_dropped") == 200
        await wait_for(lambda: not gw._inbox, 10, "the inbox drained")
        assert gw._inbox_bytes == 0


async def test_the_shutdown_drain_is_bounded_however_deep_the_backlog(
        tmp_path: Path, mosquitto: Broker) -> None:
    """SIGTERM is honoured in seconds: stop() handles unread messages for at most
    ``stop_drain_s`` (here 0) and counts what it leaves."""
    settings = settings_for(tmp_path, mosquitto.port, inbox_max=50_000, stop_drain_s=0)
    async with running(settings) as gw:
        for i in range(5000):
            gw.feed(Inbound("native", "eldercare/vit-1/telemetry", b"%d" % i))
        await gw._drain_inbox(settings.stop_drain_s)
        assert gw.counters.get("inbox_abandoned") == 5000
        assert not gw._inbox
