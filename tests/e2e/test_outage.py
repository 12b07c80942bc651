"""Issue 4, tests 5 and 6 end to end: a long cloud outage under the gateway's disk cap,
and the SMS fallback through the simulated GSM modem while the cloud is unreachable."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import db_support
from broker_support import Broker
from clock_support import TEST_EPOCH
from eldercare_cloud.service import CloudService
from eldercare_edge.clock import FakeClock
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import Lane
from eldercare_sim.modem import SimModem

from .helpers import (
    ADDRESS,
    CONTACTS,
    NAME,
    NativeDevice,
    committed,
    edge_settings,
    running,
    wait_for,
)

pytestmark = pytest.mark.integration


async def test_5_disk_cap_evicts_oldest_telemetry_sends_a_gap_and_keeps_every_alarm(
        tmp_path: Path, home_broker: Broker, cloud_broker: Broker, cloud: CloudService) -> None:
    devices = [{"device_id": "btn-1", "type": "call_button"},
               {"device_id": "vit-1", "type": "vitals_monitor"}]
    settings = edge_settings(tmp_path, home_broker, cloud_broker, devices,
                             outbox={"max_bytes": 12_000, "telemetry_batch_max": 10,
                                     "telemetry_flush_s": 0.05})
    button = NativeDevice(home_broker, "btn-1", "call_button")
    vit = NativeDevice(home_broker, "vit-1", "vitals_monitor")
    try:
        async with running(settings) as gw:
            vit.telemetry("vitals", heart_rate=70, spo2=97)
            await wait_for(lambda: gw.counters.get("acked") >= 1, what="one batch acked")
            cloud_broker.stop()
            await wait_for(lambda: not gw.cloud.connected, what="outage seen")

            alarm_seqs: list[int] = []
            outage_readings: list[int] = []
            for i in range(600):
                outage_readings.append(vit.telemetry("vitals", heart_rate=60 + i % 40,
                                                     spo2=95, wait=False))
                if i % 60 == 0:
                    alarm_seqs.append(button.event("sos", button="red", wait=False))
                if i % 100 == 0:
                    await asyncio.sleep(0.1)
            await wait_for(lambda: gw.counters.get("alarms_stored") == len(alarm_seqs),
                           what="alarms stored")
            await wait_for(lambda: gw.outbox.evicted_items > 0 and len(gw.batcher) == 0,
                           what="telemetry evicted under the cap")
            assert (await gw.outbox.depth())[Lane.ALARM] == len(alarm_seqs)

            cloud_broker.start()
            await wait_for(lambda: gw.outbox.size_bytes == 0, within_s=30,
                           what="backlog drained")
    finally:
        button.close()
        vit.close()

    alarms = await committed(cloud, EventKind.SOS)
    assert [a.device_seq for a in alarms] == alarm_seqs  # none evicted, once each, in order
    gaps = await cloud.store.gaps_after(0)
    assert gaps, "no gap record reached the cloud"
    dropped = sum(g.dropped for g in gaps)
    arrived = [t.device_seq for t in await cloud.store.telemetry("vit-1", limit=10_000)
               if t.device_seq in set(outage_readings)]
    # every reading of the outage is either in the cloud or counted in a gap record
    assert dropped + len(arrived) == len(outage_readings)
    assert len(arrived) == len(set(arrived))
    # oldest first: exactly the newest readings survived, the oldest `dropped` were evicted
    assert dropped > 0 and sorted(arrived) == outage_readings[dropped:]
    batch_seqs = [r[0] for r in db_support.rows(cloud.settings.database,
                                                "SELECT seq FROM telemetry_batches")]
    for g in gaps:
        assert not [s for s in batch_seqs if g.first_seq <= s <= g.last_seq]
        assert g.oldest_ts <= g.newest_ts


async def test_6_cloud_unreachable_past_the_sms_timeout_texts_each_contact_in_chinese(
        tmp_path: Path, home_broker: Broker, cloud_broker: Broker, cloud: CloudService) -> None:
    clock = FakeClock(TEST_EPOCH)
    devices = [{"device_id": "btn-1", "type": "call_button"}]
    with SimModem(tmp_path / "sms.log") as modem:
        settings = edge_settings(tmp_path, home_broker, cloud_broker, devices,
                                 modem={"port": modem.port, "retry_delay_s": 0,
                                        "timeout_s": 3})
        button = NativeDevice(home_broker, "btn-1", "call_button")
        try:
            async with running(settings, clock=clock) as gw:
                cloud_broker.stop()
                await wait_for(lambda: not gw.cloud.connected, what="outage seen")
                button.event("sos", button="red")
                await wait_for(lambda: gw.counters.get("alarms_stored") == 1, what="stored")
                assert await gw.sms.check_once() == 0  # not overdue yet
                assert modem.sent() == []
                clock.advance(61)  # the default 60 s timeout has passed
                await wait_for(lambda: len(modem.sent()) == len(CONTACTS), what="SMS sent")
                assert await gw.sms.check_once() == 0  # once per alarm per contact

                cloud_broker.start()
                await wait_for(lambda: button.leds() == ["received", "help_coming"],
                               within_s=30, what="help coming once the cloud is back")

                async def reports_in() -> bool:
                    return len(await cloud.store.sms_reports_after(0)) == len(CONTACTS)

                await wait_for(reports_in, what="the SMS reports in the cloud")
        finally:
            button.close()
    sent = modem.sent()
    assert sorted(s["to"] for s in sent) == sorted(c["phone"] for c in CONTACTS)
    for s in sent:
        assert s["text"].startswith("【紧急求助】")
        assert NAME in s["text"] and ADDRESS in s["text"]
    [alarm] = await committed(cloud, EventKind.SOS)
    reports = await cloud.store.sms_reports_after(0)
    assert {r.alarm_id for r in reports} == {alarm.id}
    assert sorted(r.to for r in reports) == sorted(c["phone"] for c in CONTACTS)
    assert all(r.status == "sent" for r in reports)


async def test_6_no_sms_when_the_cloud_acks_in_time(
        tmp_path: Path, home_broker: Broker, cloud_broker: Broker, cloud: CloudService) -> None:
    clock = FakeClock(TEST_EPOCH)
    devices = [{"device_id": "btn-1", "type": "call_button"}]
    with SimModem(tmp_path / "sms.log") as modem:
        settings = edge_settings(tmp_path, home_broker, cloud_broker, devices,
                                 modem={"port": modem.port, "retry_delay_s": 0,
                                        "timeout_s": 3})
        button = NativeDevice(home_broker, "btn-1", "call_button")
        try:
            async with running(settings, clock=clock) as gw:
                button.event("sos", button="red")
                await wait_for(lambda: button.leds() == ["received", "help_coming"],
                               what="help coming: the cloud committed and acked")
                clock.advance(600)
                assert await gw.sms.check_once() == 0
        finally:
            button.close()
        assert modem.sent() == []
    assert len(await committed(cloud, EventKind.SOS)) == 1
    assert await cloud.store.sms_reports_after(0) == []
