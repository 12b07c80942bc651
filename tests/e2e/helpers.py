"""Helpers for the end-to-end tests: settings for the real gateway and the real cloud,
waiting on conditions with deadlines, and a native device on a plain MQTT client."""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as paho
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from clock_support import afternoon_clock
from eldercare_cloud.ingest import StoredEvent
from eldercare_cloud.service import CloudService
from eldercare_cloud.settings import CloudSettings
from eldercare_edge.gateway import Gateway
from eldercare_edge.settings import EdgeSettings
from eldercare_protocols import native
from eldercare_protocols.events import EventKind
from settings_support import merged

if TYPE_CHECKING:
    from broker_support import Broker

GW = "gw-e2e-01"

NAME = "张秀英"
ADDRESS = "杭州市西湖区文三路 100 号 3 幢 201"
CONTACTS = [{"name": "李明", "phone": "+8613800000001", "relation": "son"},
            {"name": "王芳", "phone": "+8613800000002", "relation": "neighbour"}]


async def wait_for(cond: Callable[[], bool | Awaitable[bool]], within_s: float = 15.0,
                   what: str = "condition") -> None:
    """Poll a condition until it holds or the deadline passes (never a bare sleep)."""
    deadline = time.monotonic() + within_s
    while True:
        value = cond()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within_s}s waiting for {what}")
        await asyncio.sleep(0.02)


def cloud_settings(tmp: Path, broker: Broker, **over: Any) -> CloudSettings:
    """Nested ``over`` is merged section by section (settings_support.merged)."""
    values: dict[str, Any] = {
        "environment": "test", "data_dir": tmp / "cloud",
        "mqtt": {"url": broker.url, "client_id": f"cloud-ingest-{uuid.uuid4().hex[:8]}",
                 "reconnect_max_s": 0.5},
        "http": {"enabled": False}, "ingest": {"batch_wait_ms": 0}}
    return CloudSettings(**merged(values, over))


def edge_values(tmp: Path, home_broker: Broker, cloud_broker: Broker,
                devices: list[dict[str, Any]], **over: Any) -> dict[str, Any]:
    """Gateway settings as a plain dict (for EdgeSettings(...) or a YAML config file)."""
    base: dict[str, Any] = {
        "gateway_id": GW,
        "data_dir": str(tmp / "gw"),
        "home_broker": {"url": home_broker.url, "reconnect_min_s": 0.2,
                        "reconnect_max_s": 0.5},
        # the gateway comes back after the cloud's ingest (0.1-0.5 s): this test broker
        # keeps no sessions, so what a gateway sends before ingest re-subscribed waits
        # for the resend timer (paho's own thread rounded these to 1 s; the shared
        # transport honours them)
        "cloud": {"url": cloud_broker.url, "reconnect_min_s": 1.0, "reconnect_max_s": 1.0,
                  "resend_after_s": 5.0},
        "outbox": {"telemetry_flush_s": 0.2},
        "home": {"resident": {"name": NAME, "address": ADDRESS, "wandering_risk": True},
                 "sms_contacts": CONTACTS, "devices": devices},
        "rules_tick_s": 0.2,
        "health_interval_s": 1.0,
        "sms_check_s": 0.1,
    }
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return base


def edge_settings(tmp: Path, home_broker: Broker, cloud_broker: Broker,
                  devices: list[dict[str, Any]], **over: Any) -> EdgeSettings:
    return EdgeSettings(**edge_values(tmp, home_broker, cloud_broker, devices, **over))


def edge_config_file(tmp: Path, values: dict[str, Any]) -> Path:
    path = tmp / "edge.yaml"
    path.write_text(yaml.safe_dump(values, allow_unicode=True), encoding="utf-8")
    return path


@asynccontextmanager
async def running(settings: EdgeSettings, **kw: Any) -> AsyncIterator[Gateway]:
    kw.setdefault("clock", afternoon_clock())
    async with Gateway(settings, **kw) as gw:
        assert await gw.wait_connected(10), "gateway did not connect to its brokers"
        yield gw


async def committed(cloud: CloudService, kind: EventKind | None = None,
                    device_id: str | None = None) -> list[StoredEvent]:
    """Every event the cloud has committed (optionally one kind / one device), rowid order."""
    out: list[StoredEvent] = []
    cursor = 0
    while True:
        page = await cloud.store.events_after(cursor, limit=1000)
        if not page:
            return out
        cursor = page[-1].rowid
        out.extend(e for e in page if (kind is None or e.kind is kind)
                   and (device_id is None or e.device_id == device_id))


#: the devices' clock: the afternoon the gateways under test start at, ticking
DEVICE_CLOCK = afternoon_clock()


class NativeDevice:
    """A native device on a plain paho client: publishes events/telemetry/state with its own
    sequence numbers and records the commands (LED states) the gateway sends it."""

    def __init__(self, broker: Broker, device_id: str, device_type: str) -> None:
        self.device_id = device_id
        self.device_type = device_type
        self.seq = 0
        self.commands: list[native.DeviceCommand] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"{device_id}-{uuid.uuid4().hex[:6]}")
        self.client.max_inflight_messages_set(1000)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._ready.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port, keepalive=10)
        self.client.loop_start()
        if not self._ready.wait(10):
            raise RuntimeError(f"device {device_id} did not subscribe")

    def _on_connect(self, c: paho.Client, u: Any, f: Any, rc: Any, p: Any) -> None:
        c.subscribe(native.topic(self.device_id, native.Channel.CMD), qos=1)

    def _on_message(self, c: paho.Client, u: Any, m: paho.MQTTMessage) -> None:
        cmd = native.DeviceCommand.model_validate_json(m.payload)
        with self._lock:
            self.commands.append(cmd)

    def leds(self) -> list[str]:
        with self._lock:
            return [str(c.args.get("state")) for c in self.commands if c.command == "led"]

    def event(self, kind: str, *, wait: bool = True, **data: Any) -> int:
        self.seq += 1
        msg = native.DeviceEvent.model_validate({
            "seq": self.seq, "ts": DEVICE_CLOCK.now(), "type": self.device_type, "kind": kind,
            "data": data})
        self._publish(native.Channel.EVENT, native.encode(msg), wait)
        return self.seq

    def telemetry(self, kind: str, *, wait: bool = True, **values: float) -> int:
        self.seq += 1
        msg = native.DeviceTelemetry.model_validate({
            "seq": self.seq, "ts": DEVICE_CLOCK.now(), "type": self.device_type, "kind": kind,
            "values": values})
        self._publish(native.Channel.TELEMETRY, native.encode(msg), wait)
        return self.seq

    def raw(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def _publish(self, channel: native.Channel, payload: bytes, wait: bool) -> None:
        info = self.client.publish(native.topic(self.device_id, channel), payload, qos=1)
        if wait:
            info.wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def sms_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]
