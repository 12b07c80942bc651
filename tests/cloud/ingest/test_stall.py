"""A stalled cloud ingest drops nothing (issue 14).

A real ``eldercare-cloud run --role ingest`` process on a real Mosquitto is frozen with
SIGSTOP for over a second while gateways keep publishing alarms and telemetry, then
thawed with SIGCONT. While it is frozen it reads nothing and acks nothing at the MQTT
level, so everything sent in the meantime waits in the broker's queues for the cloud's
two sessions (the alarm lane and the bulk lane). With the queues every broker config the
project ships sets (``eldercare_cloud.broker.files.QUEUE_CONF``) every record is then
committed exactly once and acked. The same traffic against Mosquitto's defaults (20 in
flight, 1,000 queued) makes the broker drop messages: the traffic does outrun them.
"""

from __future__ import annotations

import asyncio
import re
import sys
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from ingest_support import ingest_settings
from paho.mqtt.enums import CallbackAPIVersion
from process_support import CloudProcess, start_cloud, stopping, until

import db_support
from broker_support import Broker, start_mosquitto
from eldercare_cloud.broker.files import QUEUE_CONF, mosquitto_conf
from eldercare_cloud.db import Database
from eldercare_cloud.ingest import IngestStore
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import (
    Ack,
    Down,
    EventEnvelope,
    TelemetryBatch,
    TelemetryRecord,
    Up,
    down_topic,
    encode,
    up_topic,
)
from eldercare_transport.mosquitto import config_text

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
GATEWAYS = [f"gw-stall-{i}" for i in range(4)]
#: per gateway and per lane, sent while ingest is frozen: 4 x 400 = 1,600 messages queue
#: for each of the cloud's two sessions, past the 1,020 Mosquitto's defaults hold
BURST = 400
STALL_S = 1.2
#: a fixed instant for the records' own timestamps (the test reads no clock for data)
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
DEFAULT_QUEUES = "max_inflight_messages 20\nmax_queued_messages 1000\n"
DROPPED = re.compile(r"Outgoing messages are being dropped for client (\S+?)\.?(?:\s|$)")


class Gateway:
    """A gateway on the wire that publishes without waiting (a burst), and records acks."""

    def __init__(self, broker: Broker, gateway_id: str) -> None:
        self.gateway_id = gateway_id
        self.acked: list[str] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"{gateway_id}-{uuid.uuid4().hex[:6]}")
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = lambda c, *a: c.subscribe(down_topic(gateway_id, Down.ACK), 1)
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port, keepalive=30)
        self.client.loop_start()
        assert self._subscribed.wait(10), "gateway did not subscribe"
        self.infos: list[paho.MQTTMessageInfo] = []

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        ids = Ack.model_validate_json(msg.payload).ids
        with self._lock:
            self.acked.extend(ids)

    def acked_ids(self) -> list[str]:
        with self._lock:
            return list(self.acked)

    def send(self, channel: Up, payload: bytes) -> None:
        self.infos.append(self.client.publish(up_topic(self.gateway_id, channel), payload,
                                              qos=1))

    def all_published(self) -> bool:
        return all(i.is_published() for i in self.infos)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def envelope(gateway_id: str, seq: int) -> EventEnvelope:
    return EventEnvelope(id=f"{gateway_id}-ev-{seq:06d}", seq=seq, gateway_id=gateway_id,
                         gateway_ts=T0, device_id="btn-1", kind=EventKind.SOS, device_ts=T0,
                         device_seq=seq)


def telemetry(gateway_id: str, seq: int) -> TelemetryBatch:
    return TelemetryBatch(
        id=f"{gateway_id}-tb-{seq:06d}", seq=seq, gateway_id=gateway_id, gateway_ts=T0,
        records=[TelemetryRecord(device_id="vit-1", kind=EventKind.VITALS, ts=T0,
                                 values={"heart_rate": 70.0}, device_seq=seq)])


def count(db: str, sql: str) -> int:
    [(n,)] = db_support.rows(db, sql)
    return int(n)


async def stall_under_traffic(tmp_path: Path, broker: Broker
                              ) -> tuple[list[Gateway], set[str], CloudProcess]:
    """Start ingest, freeze it, send a burst per gateway and lane, thaw it."""
    db = ingest_settings(tmp_path, broker).database
    async with Database(db) as conn, IngestStore(conn) as store:
        for gw_id in GATEWAYS:
            await store.add_gateway(gw_id)
    proc = start_cloud(tmp_path, broker, "ingest", role="ingest", data_dir="cloud",
                       client_id="cloud-stall", settings={"HTTP__ENABLED": "false"})
    gateways: list[Gateway] = []
    try:
        await until(lambda: "ingest-alarm: connected" in proc.text()
                    and "ingest: connected" in proc.text(),
                    "both lanes connected", procs=(proc,))
        gateways = [Gateway(broker, gw_id) for gw_id in GATEWAYS]
        # ingest is up and acking
        warm = {gw.gateway_id: envelope(gw.gateway_id, 1) for gw in gateways}
        for gw in gateways:
            gw.send(Up.EVENTS, encode(warm[gw.gateway_id]))
        await until(lambda: all(warm[g.gateway_id].id in g.acked_ids() for g in gateways),
                    "the warm-up acks", procs=(proc,))
        ids = {e.id for e in warm.values()}

        proc.freeze()
        for seq in range(2, BURST + 2):
            for gw in gateways:
                event = envelope(gw.gateway_id, seq)
                batch = telemetry(gw.gateway_id, seq)
                gw.send(Up.EVENTS, encode(event))
                gw.send(Up.TELEMETRY, encode(batch))
                ids.update((event.id, batch.id))
        # the broker has taken every message (PUBACK) while ingest is still frozen
        await until(lambda: all(g.all_published() for g in gateways), "the burst's PUBACKs",
                    procs=(proc,))
        await asyncio.sleep(STALL_S)  # the stall itself, not a synchronisation
        proc.thaw()
    except BaseException:
        for gw in gateways:
            gw.close()
        with stopping(proc):
            raise
    return gateways, ids, proc


async def test_a_stalled_ingest_process_drops_nothing(tmp_path: Path) -> None:
    broker = start_mosquitto(tmp_path / "mosquitto")
    try:
        gateways, ids, proc = await stall_under_traffic(tmp_path, broker)
        with stopping(proc):
            acked = lambda: {i for g in gateways for i in g.acked_ids()}  # noqa: E731
            await until(lambda: acked() >= ids, "every record acked after the stall",
                        procs=(proc,))
            db = ingest_settings(tmp_path, broker).database
            events = len(GATEWAYS) * (BURST + 1)
            assert count(db, "SELECT COUNT(*) FROM events") == events
            assert count(db, "SELECT COUNT(DISTINCT id) FROM events") == events
            assert count(db, "SELECT COUNT(*) FROM telemetry_batches") == len(GATEWAYS) * BURST
            assert acked() == ids
        for gw in gateways:
            gw.close()
        assert proc.returncode == 0, proc.tail()
        assert not DROPPED.search(broker.log.read_text(errors="replace"))
    finally:
        broker.stop()


async def test_the_same_stall_overflows_mosquittos_default_queues(tmp_path: Path) -> None:
    """The control: the traffic above is enough to make a default broker drop."""
    broker = start_mosquitto(tmp_path / "mosquitto",
                             "allow_anonymous true\n" + DEFAULT_QUEUES)
    try:
        gateways, _ids, proc = await stall_under_traffic(tmp_path, broker)
        with stopping(proc):
            await until(lambda: bool(DROPPED.search(broker.log.read_text(errors="replace"))),
                        "the broker dropping", procs=(proc,), timeout=20)
        for gw in gateways:
            gw.close()
        dropped_for = set(DROPPED.findall(broker.log.read_text(errors="replace")))
        assert dropped_for & {"cloud-stall", "cloud-stall-alarm"}
    finally:
        broker.stop()


def test_every_broker_config_the_project_ships_sizes_the_clouds_queues(
        tmp_path: Path) -> None:
    wanted = {"max_inflight_messages": "100", "max_queued_messages": "100000",
              "max_queued_bytes": "0"}

    def settings_of(text: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] in wanted:
                found[parts[0]] = parts[1]  # the last one wins in Mosquitto too
        return found

    run_command = mosquitto_conf(tmp_path / "dynsec.json", host="127.0.0.1", port=1883,
                                 plugin=tmp_path / "plugin.so")
    assert QUEUE_CONF in run_command and settings_of(run_command) == wanted
    deploy = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    assert settings_of(deploy) == wanted
    broker = start_mosquitto(tmp_path / "mosquitto")
    try:
        assert settings_of(broker.conf.read_text()) == wanted
    finally:
        broker.stop()
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import run as run_script
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    assert settings_of(config_text(1883, run_script.CLOUD_BROKER)) == wanted
