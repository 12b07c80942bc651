"""The demo district, the gateway config built from the registry, and its push to the
gateway through real ingest on a real Mosquitto (retained, re-pushed on change); and
the whole loop: a gateway's SOS over MQTT ends as an alert with the son's SMS queued."""

from __future__ import annotations

import asyncio
import queue
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import paho.mqtt.client as paho
import pytest
from care_support import GW, RESIDENT, SECRET, RecordingChannel, care_settings
from ingest_support import envelope, wait_until
from paho.mqtt.enums import CallbackAPIVersion

from clock_support import TEST_EPOCH
from eldercare_cloud.app import build_services, migrate
from eldercare_cloud.auth.models import Principal, Role
from eldercare_cloud.clock import ManualClock
from eldercare_cloud.db import Database
from eldercare_cloud.demo import load_demo
from eldercare_cloud.ingest import IngestService
from eldercare_cloud.registry.models import ResidentUpdate
from eldercare_protocols.uplink import (
    Down,
    GatewayConfig,
    Up,
    decode_uplink,
    down_topic,
    encode,
    up_topic,
)

if TYPE_CHECKING:
    from broker_support import Broker

ADMIN = Principal(user_id="U-test", username="admin", role=Role.ADMIN, tenant="default")


async def count(db: Database, table: str) -> int:
    cur = await db.conn.execute(f"SELECT COUNT(*) FROM {table}")
    return int((await cur.fetchone())[0])


async def test_demo_is_idempotent_and_realistic(care_db: Path) -> None:
    async with Database(care_db) as db:
        before = {t: await count(db, t) for t in ("districts", "communities", "households",
                                                 "residents", "contacts", "gateway_bindings",
                                                 "devices", "ladders")}
        assert await load_demo(db) == 0
        after = {t: await count(db, t) for t in before}
    assert after == before
    assert before["communities"] == 3 and before["residents"] == 12
    assert before["households"] == 10 and before["gateway_bindings"] == 10


async def test_gateway_config_from_the_registry(care_db: Path, tmp_path: Path) -> None:
    async with Database(care_db) as db:
        services = build_services(care_settings(tmp_path), db, channels={})
        config = await services.registry.build_gateway_config("GW-XH-002", 90)
    assert config is not None
    assert config.resident is not None and config.resident.name == "陈德明、刘桂兰"
    assert config.resident.wandering_risk is True  # 刘桂兰 has moderate dementia
    assert config.sms_timeout_s == 90
    assert [c.relation for c in config.sms_contacts][:2] == ["family", "neighbour"]
    assert {d.type for d in config.devices} >= {"call_button", "bed_sensor", "gps_tracker"}
    assert config.thresholds["heart_rate"].high == 120.0


def retained_configs(broker: Broker, gateway_id: str) -> queue.Queue[GatewayConfig]:
    got: queue.Queue[GatewayConfig] = queue.Queue()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"gw-{uuid.uuid4().hex[:6]}")
    client.on_message = lambda _c, _u, m: got.put(GatewayConfig.model_validate_json(m.payload))
    client.connect(broker.host, broker.port)
    client.subscribe(down_topic(gateway_id, Down.CONFIG), qos=1)
    client.loop_start()
    got.client = client  # type: ignore[attr-defined]
    return got


@pytest.mark.integration
async def test_config_is_pushed_through_ingest_and_again_on_change(
        care_db: Path, tmp_path: Path, mosquitto: Broker) -> None:
    settings = care_settings(tmp_path, http={"enabled": False}, ingest={"batch_wait_ms": 0},
                             mqtt={"url": mosquitto.url,
                                   "client_id": f"care-{uuid.uuid4().hex[:6]}"})
    async with Database(care_db) as db, IngestService(settings, db) as ingest:
        assert await ingest.wait_connected(10)
        services = build_services(settings, db, clock=ManualClock(TEST_EPOCH),
                                  store=ingest.store, ingest=ingest, channels={})
        await migrate(services)
        assert await services.engine.publish_configs() == 10  # every demo gateway
        configs = retained_configs(mosquitto, GW)
        try:
            first = await asyncio.to_thread(configs.get, True, 10)
            assert first.resident is not None and first.resident.name == "王秀英"
            await services.registry.update_resident(ADMIN, RESIDENT,
                                                    ResidentUpdate(name="王秀英（改）"))
            assert await services.engine.publish_configs() == 1
            second = await asyncio.to_thread(configs.get, True, 10)
            assert second.version > first.version
            assert second.resident is not None and second.resident.name == "王秀英（改）"
            assert await services.registry.pending_configs() == []
        finally:
            configs.client.loop_stop()  # type: ignore[attr-defined]
            configs.client.disconnect()  # type: ignore[attr-defined]


@pytest.mark.integration
async def test_sos_over_mqtt_becomes_an_alert(care_db: Path, tmp_path: Path,
                                              mosquitto: Broker) -> None:
    """Gateway → Mosquitto → ingest commit → commit listener wakes the engine → alert."""
    settings = care_settings(tmp_path, http={"enabled": False}, ingest={"batch_wait_ms": 0},
                             mqtt={"url": mosquitto.url,
                                   "client_id": f"care-{uuid.uuid4().hex[:6]}"},
                             auth={"secret_key": SECRET})
    sms = RecordingChannel()
    async with Database(care_db) as db, IngestService(settings, db) as ingest:
        assert await ingest.wait_connected(10)
        ingest.note_gateway_registered(GW)
        services = build_services(settings, db, store=ingest.store, ingest=ingest,
                                  channels={"sms": sms})
        await migrate(services)
        async with services.engine:
            gw = paho.Client(CallbackAPIVersion.VERSION2, client_id=GW)
            gw.connect(mosquitto.host, mosquitto.port)
            gw.loop_start()
            try:
                env = envelope(GW, 1, device_id="btn-xh001")
                gw.publish(up_topic(GW, Up.EVENTS), encode(env), qos=1)
                decode_uplink(up_topic(GW, Up.EVENTS), encode(env))  # what went on the wire
                await wait_until(lambda: bool(sms.sent), 10, "the son's SMS")
            finally:
                gw.loop_stop()
                gw.disconnect()
        cur = await db.conn.execute("SELECT kind, resident_id, raised_at FROM alerts")
        kind, resident, raised = await cur.fetchone()
    assert (kind, resident) == ("sos", RESIDENT) and raised is not None
    assert sms.sent[0].address == "13900003001"
