"""SMS fallback through the simulator's GSM modem on a real pseudo-terminal."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from broker_support import Broker
from clock_support import TEST_EPOCH
from eldercare_edge.clock import FakeClock
from eldercare_edge.sms import LedgerEntry, SmsLedger, compose
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import EventEnvelope, GatewayConfig, SmsReport
from eldercare_sim.modem import SimModem

from .helpers import (
    GW,
    Client,
    CloudAcker,
    clients,
    event_payload,
    running,
    settings_for,
    wait_for,
)

NAME = "张秀英"
ADDRESS = "杭州市西湖区文三路 100 号 3 幢 201"


def sms_settings(tmp_path: Path, port: int, modem: SimModem, **over: Any):  # type: ignore[no-untyped-def]
    return settings_for(tmp_path, port, modem={"port": modem.port, "retry_delay_s": 0,
                                               "timeout_s": 3}, **over)


def test_text_is_chinese_and_names_who_where_when_what() -> None:
    cfg = GatewayConfig.model_validate({"gateway_id": GW, "version": 1,
                                        "resident": {"name": NAME, "address": ADDRESS}})
    env = EventEnvelope(id="gw-x-000001", seq=1, gateway_id=GW, device_id="btn-1",
                        kind=EventKind.SOS, gateway_ts=datetime(2026, 3, 1, 19, 12, tzinfo=UTC))
    text = compose(env, cfg)
    assert text == (f"【紧急求助】{NAME}（{ADDRESS}）于 03:12 按下紧急呼叫按钮，"
                    "云平台暂未响应，请立即联系或前往查看。")
    fall = compose(env.model_copy(update={"kind": EventKind.FALL}), cfg)
    assert fall.startswith("【跌倒报警】") and NAME in fall


@pytest.mark.integration
async def test_one_sms_per_contact_when_the_cloud_is_silent_and_none_after_restart(
        tmp_path: Path, mosquitto: Broker) -> None:
    clock = FakeClock(TEST_EPOCH)
    with SimModem(tmp_path / "sms.log") as modem:
        settings = sms_settings(tmp_path, mosquitto.port, modem)
        cloud = CloudAcker(mosquitto.port, acking=False)
        button = Client(mosquitto.port, "btn-1")
        with clients(cloud, button):
            async with running(settings, clock=clock) as gw:
                button.publish("eldercare/btn-1/event", event_payload("call_button", "sos", 1))
                await wait_for(lambda: gw.counters.get("alarms_stored") == 1)
                assert await gw.sms.check_once() == 0   # not overdue yet
                clock.advance(61)
                await wait_for(lambda: len(modem.sent()) == 2, what="two SMS")
                await wait_for(lambda: len(cloud.records(SmsReport)) == 2, what="SMS reports")
                assert await gw.sms.check_once() == 0   # once per alarm per contact
            sent = modem.sent()
            assert sorted(s["to"] for s in sent) == ["+8613800000001", "+8613800000002"]
            for s in sent:
                assert s["text"].startswith("【紧急求助】")
                assert NAME in s["text"] and ADDRESS in s["text"]
                assert "按下紧急呼叫按钮" in s["text"]
            reports = cloud.records(SmsReport)
            alarm = next(e for e in cloud.records(EventEnvelope) if e.kind is EventKind.SOS)
            assert {r.alarm_id for r in reports} == {alarm.id}
            assert all(r.status == "sent" and r.attempts == 1 for r in reports)
            # the alarm is still unacked; a restart must not text anyone again
            async with running(settings, clock=clock) as gw2:
                clock.advance(120)
                assert await gw2.outbox.contains(alarm.id)
                assert await gw2.sms.check_once() == 0
            assert len(modem.sent()) == 2


@pytest.mark.integration
async def test_no_sms_when_the_cloud_acks_in_time(tmp_path: Path, mosquitto: Broker) -> None:
    clock = FakeClock(TEST_EPOCH)
    with SimModem(tmp_path / "sms.log") as modem:
        cloud = CloudAcker(mosquitto.port, acking=True)
        button = Client(mosquitto.port, "btn-1")
        with clients(cloud, button):
            async with running(sms_settings(tmp_path, mosquitto.port, modem), clock=clock) as gw:
                button.publish("eldercare/btn-1/event", event_payload("call_button", "sos", 1))
                await wait_for(lambda: gw.counters.get("acked") >= 1, what="cloud ack")
                clock.advance(300)
                assert await gw.sms.check_once() == 0
        assert modem.sent() == []


@pytest.mark.integration
async def test_transient_modem_errors_are_retried(tmp_path: Path, mosquitto: Broker) -> None:
    clock = FakeClock(TEST_EPOCH)
    with SimModem(tmp_path / "sms.log") as modem:
        settings = sms_settings(tmp_path, mosquitto.port, modem, sms_timeout_s=0.5)
        cloud = CloudAcker(mosquitto.port, acking=False)
        button = Client(mosquitto.port, "btn-1")
        modem.fail_next_cmgs(2, 42)     # congestion, twice
        with clients(cloud, button):
            async with running(settings, clock=clock) as gw:
                button.publish("eldercare/btn-1/event", event_payload("call_button", "sos", 1))
                await wait_for(lambda: gw.counters.get("alarms_stored") == 1)
                clock.advance(1)
                await wait_for(lambda: len(cloud.records(SmsReport)) == 2, what="reports")
        reports = sorted(cloud.records(SmsReport), key=lambda r: r.to)
        assert [r.status for r in reports] == ["sent", "sent"]
        assert reports[0].attempts == 3 and reports[1].attempts == 1
        assert len(modem.sent()) == 2
        assert sum("CMGS" in c for c in modem.commands) == 4


def reports(cloud: CloudAcker) -> list[SmsReport]:
    return sorted(cloud.records(SmsReport), key=lambda r: (r.seq, r.to))


@pytest.mark.integration
async def test_no_sim_at_first_then_inserted_each_contact_is_texted_once(
        tmp_path: Path, mosquitto: Broker) -> None:
    clock = FakeClock(TEST_EPOCH)
    with SimModem(tmp_path / "sms.log", sim_present=False) as modem:
        settings = sms_settings(tmp_path, mosquitto.port, modem, sms_retry_after_s=300)
        cloud = CloudAcker(mosquitto.port, acking=False)
        button = Client(mosquitto.port, "btn-1")
        with clients(cloud, button):
            async with running(settings, clock=clock) as gw:
                button.publish("eldercare/btn-1/event", event_payload("call_button", "sos", 1))
                await wait_for(lambda: gw.counters.get("alarms_stored") == 1)
                clock.advance(61)
                await wait_for(lambda: len(reports(cloud)) == 2, what="two failure reports")
                first = reports(cloud)
                assert [(r.status, r.attempts) for r in first] == [("failed", 1)] * 2
                assert all("SIM not inserted" in (r.error or "") for r in first)
                assert modem.sent() == []
                modem.set_sim_present(True)
                clock.advance(200)                          # the pause is not over yet
                assert await gw.sms.check_once() == 0
                clock.advance(101)
                await wait_for(lambda: len(modem.sent()) == 2, what="SMS after the SIM is in")
                await wait_for(lambda: len(reports(cloud)) == 4, what="two more reports")
                again = reports(cloud)[2:]
                assert [(r.status, r.attempts) for r in again] == [("sent", 2)] * 2
                assert {r.alarm_id for r in again} == {first[0].alarm_id}
                assert gw.counters.get("sms_retried") == 2
                clock.advance(3600)                          # delivered: never again
                assert await gw.sms.check_once() == 0
            async with running(settings, clock=clock) as gw2:  # nor after a restart
                clock.advance(3600)
                assert await gw2.sms.check_once() == 0
        assert sorted(s["to"] for s in modem.sent()) == ["+8613800000001", "+8613800000002"]
        assert all(s["text"].startswith("【紧急求助】") for s in modem.sent())


@pytest.mark.integration
async def test_no_network_registration_is_retried_on_the_spot_then_later(
        tmp_path: Path, mosquitto: Broker) -> None:
    clock = FakeClock(TEST_EPOCH)
    with SimModem(tmp_path / "sms.log", registered=False) as modem:
        settings = settings_for(tmp_path, mosquitto.port, sms_retry_after_s=120,
                                modem={"port": modem.port, "retry_delay_s": 0,
                                       "timeout_s": 3, "retries": 2},
                                home={"sms_contacts": [{"name": "李明",
                                                        "phone": "+8613800000001"}]})
        cloud = CloudAcker(mosquitto.port, acking=False)
        button = Client(mosquitto.port, "btn-1")
        with clients(cloud, button):
            async with running(settings, clock=clock) as gw:
                button.publish("eldercare/btn-1/event", event_payload("call_button", "sos", 1))
                await wait_for(lambda: gw.counters.get("alarms_stored") == 1)
                clock.advance(61)
                await wait_for(lambda: len(reports(cloud)) == 1, what="failure report")
                [failed] = reports(cloud)
                assert (failed.status, failed.attempts) == ("failed", 2)   # 331 is transient
                assert "no network service" in (failed.error or "")
                modem.set_registered(True)
                clock.advance(121)
                await wait_for(lambda: len(reports(cloud)) == 2, what="the later round")
                assert (reports(cloud)[1].status, reports(cloud)[1].attempts) == ("sent", 3)
        assert [s["to"] for s in modem.sent()] == ["+8613800000001"]


@pytest.mark.integration
async def test_retries_are_bounded_and_stop_when_the_cloud_acks(
        tmp_path: Path, mosquitto: Broker) -> None:
    clock = FakeClock(TEST_EPOCH)
    with SimModem(tmp_path / "sms.log", sim_present=False) as modem:
        settings = sms_settings(tmp_path, mosquitto.port, modem, sms_retry_after_s=300,
                                sms_max_rounds=3)
        cloud = CloudAcker(mosquitto.port, acking=False)
        button = Client(mosquitto.port, "btn-1")
        btn2 = Client(mosquitto.port, "btn-2")
        with clients(cloud, button, btn2):
            async with running(settings, clock=clock) as gw:
                button.publish("eldercare/btn-1/event", event_payload("call_button", "sos", 1))
                await wait_for(lambda: gw.counters.get("alarms_stored") == 1)
                for n in (2, 4, 6):                          # three rounds, two contacts
                    clock.advance(301)
                    await wait_for(lambda n=n: len(reports(cloud)) == n,  # type: ignore[misc]
                                   what=f"{n} reports")
                assert gw.counters.get("sms_gave_up") == 2
                clock.advance(3600)
                assert await gw.sms.check_once() == 0       # given up: bounded
                assert sum("CMGS" in c for c in modem.commands) == 6
                # a second alarm fails once, then the cloud commits it: no more tries
                btn2.publish("eldercare/btn-2/event", event_payload("call_button", "sos", 1))
                await wait_for(lambda: gw.counters.get("alarms_stored") == 2)
                clock.advance(61)
                await wait_for(lambda: len(reports(cloud)) == 8, what="second alarm's reports")
                alarm2 = reports(cloud)[-1].alarm_id
                cloud.ack_now(GW, [alarm2])
                await wait_for(lambda: gw.counters.get("acked") >= 1, what="ack")
                modem.set_sim_present(True)
                clock.advance(301)
                assert await gw.sms.check_once() == 0
        assert modem.sent() == []


async def test_a_ledger_from_before_retries_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "sms.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE sms(alarm_id TEXT NOT NULL, phone TEXT NOT NULL, status TEXT NOT NULL,
                         attempts INTEGER NOT NULL, at REAL NOT NULL, error TEXT,
                         PRIMARY KEY (alarm_id, phone));
        INSERT INTO sms VALUES ('gw-x-000001', '+8613800000001', 'failed', 3, 0, 'no SIM');
        INSERT INTO sms VALUES ('gw-x-000001', '+8613800000002', 'sent', 1, 5, NULL);
    """)
    db.close()
    async with SmsLedger(path) as ledger:
        entries = await ledger.entries("gw-x-000001")
    assert entries["+8613800000001"] == LedgerEntry("failed", 3, 1, 0.0)
    assert entries["+8613800000002"].status == "sent"
