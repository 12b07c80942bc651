"""Helpers for the ingest tests (imported by tests/cloud/conftest.py; holds no tests).

``GatewayClient`` is a plain paho client that plays a gateway on the wire (publishes
uplink records, collects the cloud's acks), so ingest is tested without the edge code.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from clock_support import TEST_EPOCH
from eldercare_cloud.db import Database
from eldercare_cloud.ingest import IngestService, IngestStore
from eldercare_cloud.ingest.store import Received
from eldercare_cloud.settings import CloudSettings
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import (
    Ack,
    Down,
    EventEnvelope,
    GatewayState,
    TelemetryBatch,
    TelemetryRecord,
    Up,
    down_topic,
    encode,
    up_topic,
)
from settings_support import merged

if TYPE_CHECKING:
    from broker_support import Broker


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0,  # noqa: ASYNC109
                     what: str = "condition") -> None:
    """Poll a condition with a deadline (for state owned by another thread or process)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


def record_id() -> str:
    return uuid.uuid4().hex


def envelope(gateway_id: str, seq: int, kind: EventKind = EventKind.SOS,
             device_id: str = "btn-1", **extra: Any) -> EventEnvelope:
    now = TEST_EPOCH
    fields: dict[str, Any] = {
        "id": record_id(), "seq": seq, "gateway_id": gateway_id, "gateway_ts": now,
        "device_id": device_id, "kind": kind, "device_ts": now - timedelta(milliseconds=50),
        "device_seq": seq}
    fields.update(extra)
    return EventEnvelope(**fields)


def received_event(gw: str, seq: int, record_id: str | None = None) -> Received:
    """A door event from ``gw`` as the ingest loop hands it to ``IngestStore.commit``."""
    env = envelope(gw, seq, EventKind.DOOR_OPEN)
    if record_id is not None:
        env = env.model_copy(update={"id": record_id})
    return Received(gw, env, TEST_EPOCH + timedelta(seconds=seq))


def received_telemetry(gw: str, seq: int, record_id: str) -> Received:
    """A telemetry batch of three vitals readings, as ``IngestStore.commit`` gets it."""
    batch = TelemetryBatch(id=record_id, seq=seq, gateway_id=gw, gateway_ts=TEST_EPOCH,
                           records=[TelemetryRecord(device_id="vit-1", kind=EventKind.VITALS,
                                                    ts=TEST_EPOCH + timedelta(seconds=i),
                                                    values={"heart_rate": 60.0 + i})
                                    for i in range(3)])
    return Received(gw, batch, TEST_EPOCH)


@asynccontextmanager
async def holding_commit_lock(db: Database) -> AsyncIterator[None]:
    """While inside, another process's transaction holds the ingest commit lock
    (PostgreSQL); it commits on leaving."""
    release, locked = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with db.transaction() as conn:
            await db.serialise(conn, "ingest-commit")
            locked.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    try:
        await locked.wait()
        yield
    finally:
        release.set()
        await holder


async def waiting_on_locks(db: Database) -> int:
    """Backends of this database that wait for a lock (a row lock, the commit lock)."""
    cur = await db.reader.execute(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock'")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


@dataclass
class GatewayClient:
    """A gateway on the wire: publishes to ec/v1/{gw}/up/*, records Acks from down/ack."""

    broker: Broker
    gateway_id: str
    will: GatewayState | None = None
    username: str | None = None
    password: str | None = None
    acks: list[Ack] = field(default_factory=list)
    #: called on the paho thread for every Ack, before it is appended (ordering checks)
    on_ack: Callable[[Ack], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _client: paho.Client | None = None
    _subscribed: threading.Event = field(default_factory=threading.Event)

    def connect(self) -> GatewayClient:
        client = paho.Client(CallbackAPIVersion.VERSION2,
                             client_id=f"{self.gateway_id}-{uuid.uuid4().hex[:6]}")
        client.max_inflight_messages_set(1000)
        if self.username is not None:
            client.username_pw_set(self.username, self.password)
        if self.will is not None:
            client.will_set(up_topic(self.gateway_id, Up.STATE), encode(self.will), qos=1,
                            retain=True)
        client.on_connect = self._on_connect
        client.on_subscribe = lambda *a: self._subscribed.set()
        client.on_message = self._on_message
        client.connect(self.broker.host, self.broker.port, keepalive=5)
        client.loop_start()
        self._client = client
        if not self._subscribed.wait(10):
            raise AssertionError("gateway client did not subscribe")
        return self

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, rc: Any,
                    props: Any) -> None:
        client.subscribe(down_topic(self.gateway_id, Down.ACK), qos=1)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        ack = Ack.model_validate_json(msg.payload)
        if self.on_ack is not None:
            self.on_ack(ack)
        with self._lock:
            self.acks.append(ack)

    def publish(self, channel: Up, payload: bytes | Any, *, retain: bool = False,
                topic: str | None = None) -> None:
        assert self._client is not None
        data = payload if isinstance(payload, bytes) else encode(payload)
        info = self._client.publish(topic or up_topic(self.gateway_id, channel), data, qos=1,
                                    retain=retain)
        info.wait_for_publish(10)

    def acked_ids(self) -> list[str]:
        with self._lock:
            return [i for a in self.acks for i in a.ids]

    def drop(self) -> None:
        """Vanish without DISCONNECT (the broker then publishes the Last Will)."""
        assert self._client is not None
        sock = self._client.socket()
        self._client.loop_stop()
        if sock is not None:
            sock.close()
        self._client = None

    def close(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None


def ingest_settings(tmp_path: Path, broker: Broker, **overrides: Any) -> CloudSettings:
    """Nested ``overrides`` are merged section by section (settings_support.merged)."""
    values: dict[str, Any] = {
        "environment": "test", "data_dir": tmp_path / "cloud",
        "mqtt": {"url": broker.url, "client_id": f"ingest-{uuid.uuid4().hex[:8]}",
                 "reconnect_max_s": 0.5},
        "ingest": {"batch_wait_ms": 0}, "http": {"enabled": False}}
    return CloudSettings(**merged(values, overrides))


@dataclass
class IngestHarness:
    settings: CloudSettings
    db: Database
    ingest: IngestService
    broker: Broker

    @property
    def store(self) -> IngestStore:
        return self.ingest.store

    async def register(self, gateway_id: str) -> str:
        secret = await self.store.add_gateway(gateway_id)
        self.ingest.note_gateway_registered(gateway_id)
        return secret


@asynccontextmanager
async def running_ingest(tmp_path: Path, broker: Broker, **overrides: Any
                         ) -> AsyncIterator[IngestHarness]:
    """Ingest on its own database, connected to ``broker``; settings as ingest_settings."""
    settings = ingest_settings(tmp_path, broker, **overrides)
    async with Database(settings.database) as db, IngestService(settings, db) as service:
        assert await service.wait_connected(10)
        yield IngestHarness(settings, db, service, broker)
