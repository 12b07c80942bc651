"""Issue 4, tests 1, 2 and 4 end to end: simulated devices → home Mosquitto → the real
gateway → cloud Mosquitto → the real cloud ingest → SQLite, and the acks back."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import db_support
from broker_support import Broker
from clock_support import afternoon_clock
from eldercare_cloud.service import CloudService
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import Lane
from eldercare_sim.home import SimHome

from .helpers import GW, NativeDevice, committed, edge_settings, running, wait_for

pytestmark = pytest.mark.integration


async def test_1_red_press_is_committed_once_with_every_timestamp_and_the_led_follows(
        tmp_path: Path, home_broker: Broker, cloud_broker: Broker, cloud: CloudService) -> None:
    devices = [{"device_id": "h1-btn", "type": "call_button"},
               {"device_id": "h1-door", "type": "door_contact"}]
    settings = edge_settings(tmp_path, home_broker, cloud_broker, devices)
    clock = afternoon_clock()   # the home's one clock: the devices' and the gateway's
    async with running(settings, clock=clock), SimHome(
            home_broker.url, "h1", devices=[("h1-btn", "call_button"),
                                            ("h1-door", "door_contact")],
            clock=clock) as home:
        before = len(await committed(cloud, EventKind.SOS))
        assert before == 0
        assert await home.press("h1-btn", "red")
        seen_at_help_coming: list[int] = []

        async def help_coming() -> bool:
            if home.led_state("h1-btn") != "help_coming":
                return False
            # "help coming" only after the cloud committed: the row must be there now
            seen_at_help_coming.append(len(await committed(cloud, EventKind.SOS, "h1-btn")))
            return True

        await wait_for(help_coming, what="LED help coming")
        leds = [c.args.get("state") for c in home.commands
                if c.command == "led" and c.args.get("state") != "off"]
        assert leds == ["received", "help_coming"]
        assert seen_at_help_coming == [1]

    [alarm] = await committed(cloud, EventKind.SOS)
    assert (alarm.device_id, alarm.gateway_id, alarm.lane) == ("h1-btn", GW, Lane.ALARM)
    assert alarm.data.get("button") == "red"
    assert alarm.device_ts is not None
    # stamped in order by each clock: the home's (device, then gateway), then the cloud's
    assert alarm.device_ts <= alarm.gateway_ts
    assert alarm.received_at <= alarm.committed_at
    gateway = await cloud.store.gateway(GW)
    assert gateway is not None and gateway.last_birth_at is not None


async def test_2_cloud_broker_outage_every_alarm_once_alarms_before_backlog_in_order(
        tmp_path: Path, home_broker: Broker, cloud_broker: Broker, cloud: CloudService) -> None:
    devices = [{"device_id": "btn-1", "type": "call_button"},
               {"device_id": "btn-2", "type": "call_button"},
               {"device_id": "vit-1", "type": "vitals_monitor"}]
    settings = edge_settings(tmp_path, home_broker, cloud_broker, devices,
                             cloud={"resend_after_s": 30.0})
    buttons = {d: NativeDevice(home_broker, d, "call_button") for d in ("btn-1", "btn-2")}
    vit = NativeDevice(home_broker, "vit-1", "vitals_monitor")
    try:
        async with running(settings) as gw:
            # steady state: a few alarms and readings go through and are committed
            for i in range(4):
                buttons["btn-1"].event("sos", button="red")
                vit.telemetry("vitals", heart_rate=70 + i, spo2=97)
            await wait_for(lambda: gw.counters.get("alarms_stored") == 4, what="4 stored")
            await wait_for(lambda: gw.outbox.size_bytes == 0 and len(gw.batcher) == 0,
                           what="steady state drained")
            steady = len(await committed(cloud, EventKind.SOS))
            assert steady == 4

            cloud_broker.stop()
            await wait_for(lambda: not gw.cloud.connected, what="the gateway saw the outage")
            outage_alarm_seqs: dict[str, list[int]] = {"btn-1": [], "btn-2": []}
            for i in range(100):
                dev = "btn-1" if i % 2 else "btn-2"
                outage_alarm_seqs[dev].append(buttons[dev].event("sos", button="red",
                                                                 wait=False))
                if i % 4 == 0:  # steady telemetry during the outage
                    vit.telemetry("vitals", heart_rate=60 + i % 30, spo2=96, wait=False)
                if i % 20 == 0:
                    await asyncio.sleep(0.25)  # let telemetry batches close mid-outage
            await wait_for(lambda: gw.counters.get("alarms_stored") == 104,
                           what="every alarm stored on the gateway")
            await wait_for(lambda: len(gw.batcher) == 0, what="telemetry batched")
            depth = await gw.outbox.depth()
            assert depth[Lane.ALARM] == 100 and depth[Lane.TELEMETRY] >= 2

            cloud_broker.start()
            await wait_for(lambda: gw.outbox.size_bytes == 0, within_s=30,
                           what="backlog drained into the cloud")
    finally:
        for d in (*buttons.values(), vit):
            d.close()

    alarms = (await committed(cloud, EventKind.SOS))[steady:]
    assert len(alarms) == 100
    assert len({a.id for a in alarms}) == 100
    dup = db_support.rows(cloud.settings.database,
                          "SELECT device_id, device_seq, COUNT(*) FROM events"
                          " GROUP BY device_id, device_seq HAVING COUNT(*) > 1")
    [(first_backlog_batch,)] = db_support.rows(
        cloud.settings.database,
        "SELECT MIN(received_at) FROM telemetry_batches WHERE gateway_ts >= ?",
        (min(a.gateway_ts for a in alarms).isoformat(),))
    assert dup == [], f"alarms committed twice: {dup}"
    # every alarm of the outage reached the cloud before any telemetry of the outage
    assert first_backlog_batch is not None
    assert max(a.received_at for a in alarms).isoformat() < first_backlog_batch
    # per-device order: commit order follows each button's own sequence
    for dev, seqs in outage_alarm_seqs.items():
        assert [a.device_seq for a in alarms if a.device_id == dev] == seqs
    assert len(await cloud.store.telemetry("vit-1")) >= 4 + 25


async def test_4_cloud_killed_between_commit_and_ack_the_resend_is_one_row(
        tmp_path: Path, home_broker: Broker, cloud_broker: Broker) -> None:
    """The cloud runs as its own process and SIGKILLs itself right after its first commit
    (test hook); the gateway gets no ack, resends, and the restarted cloud stores nothing
    new but acks: one row, and the button finally shows "help coming"."""
    from eldercare_cloud.db import Database
    from eldercare_cloud.ingest import IngestStore

    data = tmp_path / "cloud"
    store_at = db_support.env_target(data / "cloud.sqlite3")
    async with Database(store_at) as db, IngestStore(db) as store:
        await store.add_gateway(GW)

    def start_cloud(kill: bool, log: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "ELDERCARE_CLOUD_ENVIRONMENT": "test",
               "ELDERCARE_CLOUD_DATA_DIR": str(data),
               "ELDERCARE_CLOUD_MQTT__URL": cloud_broker.url,
               "ELDERCARE_CLOUD_HTTP__ENABLED": "false",
               "ELDERCARE_CLOUD_MQTT__RECONNECT_MAX_S": "0.5"}
        # the crash drill: the cloud's run from tests/crash_entry.py, which kills itself
        # after its commit, before the ack (production settings have no such hook)
        entry = Path(__file__).resolve().parents[1] / "crash_entry.py"
        command = [sys.executable, str(entry)] if kill else \
            [sys.executable, "-m", "eldercare_cloud.cli", "run"]
        return subprocess.Popen(command, env=env, stdout=(tmp_path / log).open("wb"),
                                stderr=subprocess.STDOUT)

    devices = [{"device_id": "btn-1", "type": "call_button"}]
    settings = edge_settings(tmp_path, home_broker, cloud_broker, devices,
                             cloud={"resend_after_s": 0.5})
    button = NativeDevice(home_broker, "btn-1", "call_button")
    first = start_cloud(kill=True, log="cloud-1.log")
    second: subprocess.Popen[bytes] | None = None
    try:
        async with running(settings) as gw:
            button.event("sos", button="red")
            await wait_for(lambda: first.poll() is not None, within_s=60,
                           what="the cloud killing itself after its commit")
            assert first.returncode == -signal.SIGKILL
            assert button.leds() == ["received"]
            assert (await gw.outbox.depth())[Lane.ALARM] == 1  # not acked, still there
            assert db_support.rows(store_at, "SELECT COUNT(*) FROM events") == [(1,)]

            second = start_cloud(kill=False, log="cloud-2.log")
            await wait_for(lambda: button.leds() == ["received", "help_coming"], within_s=60,
                           what="help coming after the restarted cloud acked the resend")
            assert gw.counters.get("resent") >= 1
            assert (await gw.outbox.depth())[Lane.ALARM] == 0
    finally:
        button.close()
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(15)
    rows = db_support.rows(store_at, "SELECT kind, device_id FROM events")
    assert rows == [("sos", "btn-1")]
