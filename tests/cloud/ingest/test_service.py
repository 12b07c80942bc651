"""Cloud ingest through a real Mosquitto and SQLite: commit then ack, dedup, rejection,
gateway online/offline tracking, the care-core read interface, downlink publishing."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import paho.mqtt.client as paho
import pytest
from ingest_support import (
    GatewayClient,
    IngestHarness,
    envelope,
    ingest_settings,
    record_id,
    running_ingest,
    wait_until,
)
from paho.mqtt.enums import CallbackAPIVersion

import db_support
from clock_support import TEST_EPOCH
from eldercare_cloud.db import Database
from eldercare_cloud.ingest import CommitInfo, IngestService, PublishError, RegistrationError
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import (
    Ack,
    Down,
    DownCommand,
    GapRecord,
    GatewayConfig,
    GatewayState,
    Lane,
    Resident,
    SmsReport,
    TelemetryBatch,
    TelemetryRecord,
    UnknownDeviceSeen,
    Up,
    down_topic,
    up_topic,
)

if TYPE_CHECKING:
    from broker_support import Broker

pytestmark = pytest.mark.integration

GW = "gw-ingest-01"


def telemetry_batch(gateway_id: str, seq: int, n: int = 3) -> TelemetryBatch:
    now = TEST_EPOCH
    return TelemetryBatch(
        id=record_id(), seq=seq, gateway_id=gateway_id, gateway_ts=now,
        records=[TelemetryRecord(device_id="vit-1", kind=EventKind.VITALS,
                                 ts=now - timedelta(seconds=n - i), device_seq=i,
                                 values={"heart_rate": 70.0 + i, "spo2": 97.0})
                 for i in range(n)])


async def test_alarm_committed_with_every_timestamp_before_its_ack(
        ingest: IngestHarness, gateway_factory: Callable[..., GatewayClient]) -> None:
    await ingest.register(GW)
    seen_at_ack: list[bool] = []

    def check_committed(ack: Ack) -> None:
        # runs when the gateway receives the Ack: the rows must already be committed
        [(found,)] = db_support.rows(
            ingest.settings.database,
            f"SELECT COUNT(*) FROM events WHERE id IN ({','.join('?' * len(ack.ids))})",
            ack.ids)
        seen_at_ack.append(found == len(ack.ids))

    gw = gateway_factory(GW, on_ack=check_committed)
    env = envelope(GW, 1, EventKind.SOS, device_id="btn-7", data={"button": "red"})
    gw.publish(Up.EVENTS, env)
    await wait_until(lambda: env.id in gw.acked_ids(), what="ack")

    assert seen_at_ack == [True]
    [stored] = await ingest.store.events_after(0)
    assert (stored.id, stored.gateway_id, stored.device_id, stored.kind) == (
        env.id, GW, "btn-7", EventKind.SOS)
    assert stored.lane is Lane.ALARM and stored.data == {"button": "red"}
    assert stored.device_ts == env.device_ts and stored.gateway_ts == env.gateway_ts
    assert stored.device_ts is not None
    assert stored.device_ts < stored.gateway_ts <= stored.received_at <= stored.committed_at
    assert gw.acks[0].committed_at == stored.committed_at
    assert ingest.ingest.counters.committed == 1


async def test_redelivered_ids_are_stored_once_and_acked_again(
        ingest: IngestHarness, gateway_factory: Callable[..., GatewayClient]) -> None:
    await ingest.register(GW)
    gw = gateway_factory(GW)
    env = envelope(GW, 1)
    batch = telemetry_batch(GW, 2)
    for _ in range(3):
        gw.publish(Up.EVENTS, env)
        gw.publish(Up.TELEMETRY, batch)
    await wait_until(lambda: gw.acked_ids().count(env.id) == 3
                     and gw.acked_ids().count(batch.id) == 3, what="three acks each")

    assert [e.id for e in await ingest.store.events_after(0)] == [env.id]
    assert len(await ingest.store.telemetry("vit-1")) == 3
    assert await ingest.store.telemetry_batch_count() == 1
    assert ingest.ingest.counters.duplicates == 4
    assert ingest.ingest.counters.committed == 2


async def test_bad_payloads_are_counted_logged_and_change_nothing(
        ingest: IngestHarness, gateway_factory: Callable[..., GatewayClient],
        caplog: pytest.LogCaptureFixture) -> None:
    await ingest.register(GW)
    await ingest.register("gw-other")
    gw = gateway_factory(GW)
    good = envelope(GW, 1)
    bad: list[tuple[str, bytes]] = [
        (up_topic(GW, Up.EVENTS), b"not json at all"),
        (up_topic(GW, Up.EVENTS), b'{"type": "event", "id": "x"}'),
        (up_topic(GW, Up.EVENTS), b'{"type": "weird", "id": "abcdefgh1234"}'),
        (up_topic(GW, Up.EVENTS), b"[1, 2, 3]"),
        (up_topic(GW, Up.TELEMETRY), b'{"type": "telemetry", "records": []}'),
        (up_topic(GW, Up.STATE), b'{"gateway_id": "' + GW.encode() + b'", "status": "asleep"}'),
        # a record naming another (registered) gateway on this gateway's topic
        (up_topic(GW, Up.EVENTS), envelope("gw-other", 5).model_dump_json().encode()),
        (up_topic(GW, Up.EVENTS), b"\xff\xfe\x00garbage"),
    ]
    caplog.set_level(logging.WARNING, logger="eldercare_cloud.ingest.service")
    for topic, payload in bad:
        gw.publish(Up.EVENTS, payload, topic=topic)
    # a channel the protocol does not have is outside both lanes' subscriptions (events
    # and state on the alarm lane, telemetry on the bulk lane): never received at all
    gw.publish(Up.EVENTS, b"{}", topic=f"ec/v1/{GW}/up/firmware")
    gw.publish(Up.EVENTS, good)
    await wait_until(lambda: good.id in gw.acked_ids(), what="the good record's ack")

    assert ingest.ingest.counters.rejected_bad_payload == len(bad)
    assert ingest.ingest.counters.received == len(bad) + 1
    assert [e.id for e in await ingest.store.events_after(0)] == [good.id]
    assert gw.acked_ids() == [good.id]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == len(bad)
    assert any(f"ec/v1/{GW}/up/events" in w and "not json at all" in w for w in warnings)
    assert any("gw-other" in w for w in warnings)
    gateway = await ingest.store.gateway(GW)
    assert gateway is not None and not gateway.online


async def test_unregistered_gateway_is_rejected_until_registered_by_the_cli(
        ingest: IngestHarness, gateway_factory: Callable[..., GatewayClient]) -> None:
    gw = gateway_factory("gw-stranger")
    first = envelope("gw-stranger", 1)
    gw.publish(Up.EVENTS, first)
    gw.publish(Up.STATE, GatewayState(gateway_id="gw-stranger", status="online"))
    await wait_until(lambda: ingest.ingest.counters.rejected_unregistered == 2,
                     what="two rejections")
    assert await ingest.store.events_after(0) == []
    assert gw.acks == []

    # an installer registers it from the command line (another process, same database)
    env = {**os.environ, "ELDERCARE_CLOUD_DATA_DIR": str(ingest.settings.data_dir)}
    out = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "eldercare_cloud.cli", "gateway", "add", "--id", "gw-stranger"],
        env=env, capture_output=True, text=True, timeout=60, check=True)
    secret = out.stdout.strip()
    assert len(secret) >= 32 and "\n" not in secret
    assert await ingest.store.verify_gateway("gw-stranger", secret)
    assert not await ingest.store.verify_gateway("gw-stranger", secret + "x")
    [(stored_hash,)] = db_support.rows(
        ingest.settings.database, "SELECT secret_hash FROM gateways WHERE id = 'gw-stranger'")
    assert secret not in stored_hash and stored_hash.startswith("$argon2")

    # the gateway resends (no ack came); ingest looks the id up again and accepts it
    async def resend_until_acked() -> None:
        while first.id not in gw.acked_ids():
            gw.publish(Up.EVENTS, first)
            await asyncio.sleep(0.3)

    await asyncio.wait_for(resend_until_acked(), 10)
    assert [e.id for e in await ingest.store.events_after(0)] == [first.id]


def test_cli_refuses_a_duplicate_and_an_invalid_gateway_id(tmp_path: Path) -> None:
    env = {**os.environ, "ELDERCARE_CLOUD_DATA_DIR": str(tmp_path)}

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "eldercare_cloud.cli", *args], env=env,
                              input=stdin, capture_output=True, text=True, timeout=60)

    added = cli("gateway", "add", "--id", "gw-a", "--secret-stdin",
                stdin="a-secret-long-enough-1\n")
    assert added.returncode == 0 and added.stdout == ""
    again = cli("gateway", "add", "--id", "gw-a")
    assert again.returncode == 1 and "already registered" in again.stderr
    invalid = cli("gateway", "add", "--id", "bad/id")
    assert invalid.returncode == 1 and "invalid gateway id" in invalid.stderr
    short = cli("gateway", "add", "--id", "gw-b", "--secret-stdin", stdin="short\n")
    assert short.returncode == 1 and "at least" in short.stderr
    listed = cli("gateway", "list", "--json")
    assert listed.returncode == 0 and '"id": "gw-a"' in listed.stdout
    assert "gw-b" not in listed.stdout


async def test_store_refuses_bad_registrations(ingest: IngestHarness) -> None:
    await ingest.register(GW)
    with pytest.raises(RegistrationError):
        await ingest.store.add_gateway(GW)
    with pytest.raises(RegistrationError):
        await ingest.store.add_gateway("no spaces allowed")
    assert [g.id for g in await ingest.store.gateways()] == [GW]


async def test_birth_health_and_last_will_drive_online_state(
        ingest: IngestHarness, gateway_factory: Callable[..., GatewayClient]) -> None:
    await ingest.register(GW)
    will = GatewayState(gateway_id=GW, status="offline")
    gw = gateway_factory(GW, will=will)
    gw.publish(Up.STATE, GatewayState(gateway_id=GW, status="online", version="1.2.3",
                                      ts=TEST_EPOCH), retain=True)
    await wait_until(lambda: ingest.ingest.counters.gateway_states >= 1, what="birth")
    record = await ingest.store.gateway(GW)
    assert record is not None and record.online and record.version == "1.2.3"
    assert record.last_birth_at is not None

    health = GatewayState(gateway_id=GW, status="health", uptime_s=12.5,
                          outbox={Lane.ALARM: 0, Lane.TELEMETRY: 40}, oldest_unacked_s=1.5)
    gw.publish(Up.STATE, health, retain=True)
    await wait_until(lambda: ingest.ingest.counters.gateway_states >= 2, what="health")
    record = await ingest.store.gateway(GW)
    assert record is not None and record.last_health == health

    gw.drop()  # no DISCONNECT: the broker publishes the Last Will after the keepalive
    await wait_until(lambda: ingest.ingest.counters.gateway_states >= 3, timeout=20,
                     what="the Last Will")
    record = await ingest.store.gateway(GW)
    assert record is not None and not record.online and record.last_will_at is not None
    log = await ingest.store.gateway_log_after(0)
    assert [(e.status, e.reason) for e in log] == [("online", "birth"), ("offline", "will")]
    assert (await ingest.store.gateway_log_after(log[0].rowid))[0].status == "offline"


async def test_a_retained_birth_seen_again_after_restart_is_not_a_new_transition(
        tmp_path: Path, mosquitto: Broker,
        gateway_factory: Callable[..., GatewayClient]) -> None:
    settings = ingest_settings(tmp_path, mosquitto)
    gw = gateway_factory(GW)

    async def run_ingest(first: bool) -> list[tuple[str, str]]:
        async with Database(settings.db_path) as db, IngestService(settings, db) as service:
            if first:
                await service.store.add_gateway(GW)
                service.note_gateway_registered(GW)
                gw.publish(Up.STATE, GatewayState(gateway_id=GW, status="online"), retain=True)
            await wait_until(lambda: service.counters.gateway_states == 1,
                             what="the (retained) birth")
            return [(e.status, e.reason) for e in await service.store.gateway_log_after(0)]

    assert await run_ingest(first=True) == [("online", "birth")]
    assert await run_ingest(first=False) == [("online", "birth")]


async def test_gap_sms_and_unknown_device_records_are_stored_with_cursors(
        ingest: IngestHarness, gateway_factory: Callable[..., GatewayClient]) -> None:
    await ingest.register(GW)
    gw = gateway_factory(GW)
    now = TEST_EPOCH
    gap = GapRecord(id=record_id(), seq=1, gateway_id=GW, gateway_ts=now, dropped=120,
                    first_seq=10, last_seq=129, oldest_ts=now - timedelta(hours=2),
                    newest_ts=now - timedelta(hours=1))
    alarm = envelope(GW, 2)
    sms = SmsReport(id=record_id(), seq=3, gateway_id=GW, gateway_ts=now, alarm_id=alarm.id,
                    to="+8613800000001", status="sent", attempts=2, sent_at=now)
    unknown = UnknownDeviceSeen(id=record_id(), seq=4, gateway_id=GW, gateway_ts=now,
                                device_id="0x00124b00deadbeef", source="z2m",
                                topic="zigbee2mqtt/0x00124b00deadbeef")
    for rec in (gap, alarm, sms, unknown):
        gw.publish(Up.EVENTS, rec)
    await wait_until(lambda: len(gw.acked_ids()) == 4, what="four acks")

    [g] = await ingest.store.gaps_after(0)
    assert (g.id, g.dropped, g.first_seq, g.last_seq) == (gap.id, 120, 10, 129)
    assert g.oldest_ts == gap.oldest_ts
    [s] = await ingest.store.sms_reports_after(0)
    assert (s.alarm_id, s.to, s.status, s.attempts) == (alarm.id, "+8613800000001", "sent", 2)
    [u] = await ingest.store.unknown_devices_after(0)
    assert (u.device_id, u.source) == ("0x00124b00deadbeef", "z2m")
    assert await ingest.store.gaps_after(g.rowid) == []


async def test_commit_listeners_and_waiters_see_only_new_rows_in_order(
        ingest: IngestHarness, gateway_factory: Callable[..., GatewayClient]) -> None:
    await ingest.register(GW)
    infos: list[CommitInfo] = []

    async def listener(info: CommitInfo) -> None:
        infos.append(info)

    def broken(info: CommitInfo) -> None:
        raise RuntimeError("a care-core bug")

    ingest.ingest.add_commit_listener(broken)
    remove = ingest.ingest.add_commit_listener(listener)
    gw = gateway_factory(GW)
    envs = [envelope(GW, i, EventKind.DOOR_OPEN if i % 2 else EventKind.FALL,
                     device_id=f"dev-{i % 3}") for i in range(1, 21)]
    waiter = asyncio.create_task(ingest.ingest.wait_for_event_rowid(0, 10))
    for env in envs:
        gw.publish(Up.EVENTS, env)
    gw.publish(Up.EVENTS, envs[0])  # a duplicate is not "new"
    assert await waiter >= 1
    await wait_until(lambda: gw.acked_ids().count(envs[0].id) == 2, what="all acks")

    new = [e for info in infos for e in info.events]
    # arrival order within life-safety events and within the others (the alarm lane
    # takes falls before door events already waiting beside them)
    for kind in (EventKind.FALL, EventKind.DOOR_OPEN):
        assert [e.id for e in new if e.kind is kind] == [e.id for e in envs if e.kind is kind]
    assert sorted(e.id for e in new) == sorted(e.id for e in envs)
    assert new == await ingest.store.events_after(0)  # the same rows a reader gets
    assert [e.rowid for e in new] == sorted(e.rowid for e in new)
    assert infos[-1].event_rowid == new[-1].rowid
    lanes = {e.id: e.lane for e in new}
    assert [lanes[e.id] for e in envs[:2]] == [Lane.EVENT, Lane.ALARM]
    page = await ingest.store.events_after(new[4].rowid, limit=5)
    assert [e.id for e in page] == [e.id for e in new[5:10]]
    remove()
    gw.publish(Up.EVENTS, envelope(GW, 99))
    await wait_until(lambda: ingest.ingest.counters.committed == 21, what="the last commit")
    assert sum(len(i.events) for i in infos) == 20


async def test_publish_config_is_retained_and_commands_reach_the_gateway(
        ingest: IngestHarness) -> None:
    await ingest.register(GW)
    config = GatewayConfig(gateway_id=GW, version=3,
                           resident=Resident(name="王阿姨", address="杭州市西湖区文三路1号"))
    await ingest.ingest.publish_config(GW, config)
    with pytest.raises(ValueError, match="names gateway"):
        await ingest.ingest.publish_config("gw-other", config)

    # a gateway connecting afterwards gets the retained config, then a command
    got: list[tuple[str, bytes, bool]] = []
    subscribed = asyncio.Event()
    loop = asyncio.get_running_loop()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="late-gw")
    client.on_message = lambda c, u, m: got.append((m.topic, m.payload, m.retain))
    client.on_subscribe = lambda *a: loop.call_soon_threadsafe(subscribed.set)
    client.connect(ingest.broker.host, ingest.broker.port)
    client.loop_start()
    try:
        client.subscribe([(down_topic(GW, Down.CONFIG), 1), (down_topic(GW, Down.CMD), 1)])
        await asyncio.wait_for(subscribed.wait(), 10)
        await wait_until(lambda: len(got) == 1, what="the retained config")
        cmd = DownCommand(id=record_id(), device_id="gas-1", command="silence",
                          ts=TEST_EPOCH)
        await ingest.ingest.publish_command(GW, cmd)
        await wait_until(lambda: len(got) == 2, what="the command")
    finally:
        client.disconnect()
        client.loop_stop()
    assert got[0][0] == down_topic(GW, Down.CONFIG) and got[0][2] is True
    assert GatewayConfig.model_validate_json(got[0][1]) == config
    assert DownCommand.model_validate_json(got[1][1]) == cmd


async def test_publish_fails_loudly_while_the_broker_is_down(ingest: IngestHarness) -> None:
    ingest.broker.stop()
    await wait_until(lambda: not ingest.ingest.mqtt.connected, what="disconnect")
    ingest.settings.mqtt = ingest.settings.mqtt.model_copy(update={"publish_timeout_s": 0.3})
    with pytest.raises(PublishError, match="no PUBACK"):
        await ingest.ingest.publish_command(GW, DownCommand(
            id=record_id(), device_id="gas-1", command="self_test", ts=TEST_EPOCH))


async def test_ingest_reconnects_after_a_broker_restart(
        ingest: IngestHarness, gateway_factory: Callable[..., GatewayClient]) -> None:
    await ingest.register(GW)
    ingest.broker.stop()
    await wait_until(lambda: not ingest.ingest.mqtt.connected, what="disconnect")
    ingest.broker.start()
    assert await ingest.ingest.wait_connected(10)
    gw = gateway_factory(GW)
    env = envelope(GW, 1)
    gw.publish(Up.EVENTS, env)
    await wait_until(lambda: env.id in gw.acked_ids(), what="ack after reconnect")


async def test_telemetry_lives_in_sqlite_and_alarms_do_not_wait_for_its_batching(
        tmp_path: Path, mosquitto: Broker,
        gateway_factory: Callable[..., GatewayClient]) -> None:
    async with running_ingest(tmp_path, mosquitto, ingest={"batch_wait_ms": 200}) as harness:
        service = harness.ingest
        await harness.register(GW)
        gw = gateway_factory(GW)
        batches = [telemetry_batch(GW, i, n=5) for i in range(4)]
        for b in batches:
            gw.publish(Up.TELEMETRY, b)
        await wait_until(lambda: len(gw.acked_ids()) == 4, what="telemetry acks")
        assert service.counters.batches == 1  # the 200 ms window gathered all four
        rows = await service.store.telemetry("vit-1")
        assert len(rows) == 20 and rows[0].values == {"heart_rate": 70.0, "spo2": 97.0}
        assert {r.batch_id for r in rows} == {b.id for b in batches}

        alarm = envelope(GW, 10)
        gw.publish(Up.EVENTS, alarm)
        await wait_until(lambda: alarm.id in gw.acked_ids(), what="alarm ack")
        assert service.counters.batches == 2


@pytest.mark.parametrize("shared", ["", "ingest"])
async def test_subscription_topic_allows_shared_workers(
        tmp_path: Path, mosquitto: Broker, shared: str,
        gateway_factory: Callable[..., GatewayClient]) -> None:
    async with running_ingest(tmp_path, mosquitto, mqtt={"shared_group": shared}) as harness:
        service = harness.ingest
        prefix = f"$share/{shared}/" if shared else ""
        assert service.mqtt.subscriptions[0][0] == f"{prefix}ec/v1/+/up/telemetry"
        assert service.alarm_mqtt is not None
        assert service.alarm_mqtt.subscriptions[0][0] == f"{prefix}ec/v1/+/up/events"
        await harness.register(GW)
        gw = gateway_factory(GW)
        env = envelope(GW, 1)
        gw.publish(Up.EVENTS, env)
        await wait_until(lambda: env.id in gw.acked_ids(), what="ack")


async def test_an_event_is_committed_and_acked_before_telemetry_received_just_before_it(
        tmp_path: Path, mosquitto: Broker,
        gateway_factory: Callable[..., GatewayClient]) -> None:
    # a telemetry batch opens a 300 ms batching window; the alarm arrives inside it
    async with running_ingest(tmp_path, mosquitto, ingest={"batch_wait_ms": 300}) as harness:
        service = harness.ingest
        await harness.register(GW)
        gw = gateway_factory(GW)
        batch = telemetry_batch(GW, 1, n=50)
        alarm = envelope(GW, 2)
        gw.publish(Up.TELEMETRY, batch)
        gw.publish(Up.EVENTS, alarm)
        await wait_until(lambda: len(gw.acked_ids()) == 2, what="both acks")
        assert [ack.ids for ack in gw.acks] == [[alarm.id], [batch.id]]
        assert service.counters.batches == 2
    [(alarm_commit,)] = db_support.rows(harness.settings.database,
                                        "SELECT committed_at FROM events")
    [(batch_commit,)] = db_support.rows(harness.settings.database,
                                        "SELECT committed_at FROM telemetry_batches")
    assert alarm_commit < batch_commit


async def test_an_empty_retained_state_is_a_clear_not_a_bad_payload(
        ingest: IngestHarness, gateway_factory: Callable[..., GatewayClient],
        caplog: pytest.LogCaptureFixture) -> None:
    """A revoke clears the gateway's retained up/state with an empty payload: no warning."""
    await ingest.register(GW)
    gw = gateway_factory(GW)
    caplog.set_level(logging.WARNING, logger="eldercare_cloud.ingest.service")
    gw.publish(Up.STATE, b"", topic=up_topic(GW, Up.STATE))
    good = envelope(GW, 1)
    gw.publish(Up.EVENTS, good)
    await wait_until(lambda: good.id in gw.acked_ids(), what="the good record's ack")
    assert ingest.ingest.counters.states_cleared == 1
    assert ingest.ingest.counters.rejected_bad_payload == 0
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
