"""Test helpers for the gateway: waiting on conditions, a stand-in cloud acker, publishers."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from clock_support import afternoon_clock
from eldercare_edge.gateway import Gateway
from eldercare_edge.settings import EdgeSettings
from eldercare_protocols import native
from eldercare_protocols.uplink import CLOUD_SUBSCRIPTION, Ack, decode_uplink, encode

GW = "gw-test-01"


async def wait_for(cond: Callable[[], bool | Awaitable[bool]], within_s: float = 10.0,
                   what: str = "condition") -> None:
    """Poll a condition until it holds or the deadline passes (never a bare sleep)."""
    deadline = time.monotonic() + within_s
    while True:
        value = cond()
        if not isinstance(value, bool):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within_s}s waiting for {what}")
        await asyncio.sleep(0.02)


def settings_for(tmp: Path, home_port: int, cloud_port: int | None = None,
                 **over: Any) -> EdgeSettings:
    """Settings for a test gateway; the cloud broker defaults to the home broker."""
    home = f"mqtt://127.0.0.1:{home_port}"
    cloud = f"mqtt://127.0.0.1:{cloud_port or home_port}"
    base: dict[str, Any] = {
        "gateway_id": GW,
        "data_dir": tmp / "gw",
        "home_broker": {"url": home, "reconnect_min_s": 1, "reconnect_max_s": 1},
        "cloud": {"url": cloud, "reconnect_min_s": 1, "reconnect_max_s": 1,
                  "resend_after_s": 5.0},
        "outbox": {"telemetry_flush_s": 0.2},
        "home": {
            "resident": {"name": "张秀英", "address": "杭州市西湖区文三路 100 号 3 幢 201",
                         "wandering_risk": True},
            "sms_contacts": [{"name": "李明", "phone": "+8613800000001"},
                             {"name": "王芳", "phone": "+8613800000002"}],
            "devices": [
                {"device_id": "btn-1", "type": "call_button"},
                {"device_id": "btn-2", "type": "call_button"},
                {"device_id": "door-1", "type": "door_contact", "room": "entrance"},
                {"device_id": "vit-1", "type": "vitals_monitor"},
                {"device_id": "gas-1", "type": "gas_detector"},
                {"device_id": "zdoor", "type": "door_contact", "source": "z2m",
                 "z2m_name": "front_door", "z2m_model": "MCCGQ11LM"},
                {"device_id": "rf-btn", "type": "call_button", "source": "serial"},
                {"device_id": "rf-vit", "type": "vitals_monitor", "source": "serial"},
            ],
        },
        "rules_tick_s": 0.2,
        "health_interval_s": 0.5,
        "sms_check_s": 0.1,
    }
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return EdgeSettings(**base)


#: the devices' clock: the same quiet afternoon the gateways under test start at, ticking
DEVICE_CLOCK = afternoon_clock()


def now() -> datetime:
    return DEVICE_CLOCK.now()


def event_payload(device_type: str, kind: str, seq: int, **extra: Any) -> bytes:
    return native.encode(native.DeviceEvent(seq=seq, ts=now(), type=device_type,
                                            kind=kind, **extra))  # type: ignore[arg-type]


def telemetry_payload(device_type: str, kind: str, seq: int, **values: float) -> bytes:
    return native.encode(native.DeviceTelemetry(seq=seq, ts=now(), type=device_type,
                                                kind=kind, values=values))  # type: ignore[arg-type]


def state_payload(device_type: str, reason: str = "heartbeat", online: bool = True,
                  **extra: Any) -> bytes:
    return native.encode(native.DeviceState(online=online, reason=reason, ts=now(),  # type: ignore[arg-type]
                                            type=device_type, **extra))


class Client:
    """A plain paho client on its own thread: a device, a Z2M bridge or the test's eyes."""

    def __init__(self, port: int, client_id: str, subscribe: tuple[str, ...] = (),
                 persistent: bool = False) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._subs = subscribe
        self._ready = threading.Event()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             clean_session=not persistent)
        self.c.reconnect_delay_set(1, 1)
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        if not self._ready.wait(10):
            raise RuntimeError("test client did not connect")

    def _on_connect(self, c: mqtt.Client, u: Any, f: Any, rc: Any, p: Any) -> None:
        for t in self._subs:
            c.subscribe(t, qos=1)
        self._ready.set()

    def _on_message(self, c: mqtt.Client, u: Any, m: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((m.topic, bytes(m.payload)))
        self.handle(m.topic, bytes(m.payload))

    def handle(self, topic: str, payload: bytes) -> None:
        pass

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self.c.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(5)

    def received(self, prefix: str = "") -> list[tuple[str, bytes]]:
        with self._lock:
            return [m for m in self.messages if m[0].startswith(prefix)]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@dataclass
class Seen:
    topic: str
    record: Any


class CloudAcker(Client):
    """Stands in for the cloud ingest: records every uplink message and (when ``acking``)
    publishes an Ack naming each record id, as the real cloud does after its commit."""

    def __init__(self, port: int, acking: bool = True, persistent: bool = False) -> None:
        self.acking = acking
        self.seen: list[Seen] = []
        self.acked: list[str] = []
        self.malformed: list[tuple[str, bytes]] = []
        self.ack_filter: Callable[[str], bool] = lambda rid: True
        super().__init__(port, "stand-in-cloud", (CLOUD_SUBSCRIPTION,), persistent)

    def handle(self, topic: str, payload: bytes) -> None:
        if not payload:
            return
        try:
            gateway_id, rec = decode_uplink(topic, payload)
        except Exception:  # noqa: BLE001 - a test double records anything it cannot read
            self.malformed.append((topic, payload))
            return
        with self._lock:
            self.seen.append(Seen(topic, rec))
        rid = getattr(rec, "id", None)
        if rid and self.acking and self.ack_filter(rid):
            self.acked.append(rid)
            ack = Ack(ids=[rid], committed_at=now())
            self.c.publish(f"ec/v1/{gateway_id}/down/ack", encode(ack), qos=1)

    def records(self, kind: type | None = None) -> list[Any]:
        with self._lock:
            return [s.record for s in self.seen if kind is None or isinstance(s.record, kind)]

    def ack_now(self, gateway_id: str, ids: list[str]) -> None:
        ack = Ack(ids=ids, committed_at=now())
        self.c.publish(f"ec/v1/{gateway_id}/down/ack", encode(ack), qos=1).wait_for_publish(5)


@contextmanager
def clients(*items: Client) -> Iterator[None]:
    try:
        yield
    finally:
        for c in items:
            c.close()


def led_states(device: Client, device_id: str) -> list[str]:
    out = []
    for _topic, payload in device.received(f"eldercare/{device_id}/cmd"):
        obj = json.loads(payload)
        if obj.get("command") == "led":
            out.append(obj["args"]["state"])
    return out


@asynccontextmanager
async def running(settings: EdgeSettings, **kw: Any) -> AsyncIterator[Gateway]:
    kw.setdefault("clock", afternoon_clock())
    async with Gateway(settings, **kw) as gw:
        assert await gw.wait_connected(10), "gateway did not connect to its brokers"
        yield gw
