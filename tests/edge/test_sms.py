"""SMS fallback through the simulator's GSM modem on a real pseudo-terminal."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from broker_support import Broker
from eldercare_edge.clock import FakeClock
from eldercare_edge.sms import compose
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
    clock = FakeClock(datetime.now(UTC))
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
    clock = FakeClock(datetime.now(UTC))
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
    clock = FakeClock(datetime.now(UTC))
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
