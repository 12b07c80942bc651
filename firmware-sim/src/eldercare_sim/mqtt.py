"""paho-mqtt 2.x driven by the asyncio loop (no network thread per connection).

The socket callbacks hand paho's socket to ``loop.add_reader``/``add_writer``,
so a hundred simulated devices with a connection each, or a fleet sharing four,
all run on one thread. Reconnection uses exponential backoff like firmware does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from eldercare_sim.errors import BrokerUnreachable, SimError

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes], None]


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """``mqtt://host:port`` (``tcp://`` and a bare ``host:port`` are accepted too)."""
        text = url if "://" in url else f"mqtt://{url}"
        parts = urlsplit(text)
        if parts.scheme not in {"mqtt", "tcp"}:
            raise SimError(f"unsupported broker URL {url!r}: use mqtt://HOST:PORT")
        try:
            port = parts.port or 1883
        except ValueError as exc:
            raise SimError(f"invalid port in broker URL {url!r}") from exc
        if not parts.hostname:
            raise SimError(f"no host in broker URL {url!r}")
        return cls(parts.hostname, port)

    def __str__(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


@dataclass(frozen=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


class MqttConnection:
    """One MQTT client connection, owned by one device or shared by many."""

    def __init__(self, broker: BrokerAddress, client_id: str, *, will: Will | None = None,
                 on_message: MessageHandler | None = None, keepalive: int = 30,
                 max_inflight: int = 100) -> None:
        self.broker = broker
        self.client_id = client_id
        self.will = will
        self.on_message = on_message
        self.keepalive = keepalive
        self.max_inflight = max_inflight
        self.subscriptions: dict[str, int] = {}
        self.published = 0
        self.completed = 0
        self.dropped = 0
        self.reconnects = 0
        self._client: paho.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected: asyncio.Event | None = None
        self._connack: asyncio.Future[int] | None = None
        self._misc: asyncio.Task[None] | None = None
        self._reconnect: asyncio.Task[None] | None = None
        self._closing = False
        self._held = False
        self._resumed: asyncio.Event | None = None
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._idle: asyncio.Event | None = None
        self._idle_below = 1

    # ------------------------------------------------------------------ lifecycle

    @property
    def connected(self) -> bool:
        return self._connected is not None and self._connected.is_set()

    async def connect(self, wait_s: float = 5.0) -> None:
        self._loop = asyncio.get_running_loop()
        self._connected = asyncio.Event()
        self._closing = False
        self._client = self._make_client()
        self._connack = self._loop.create_future()
        try:
            self._client.connect(self.broker.host, self.broker.port, keepalive=self.keepalive)
        except (OSError, ValueError) as exc:
            self._teardown()
            raise BrokerUnreachable(f"cannot reach broker {self.broker}: {_reason(exc)}") from exc
        try:
            rc = await asyncio.wait_for(self._connack, wait_s)
        except TimeoutError as exc:
            self._teardown()
            raise BrokerUnreachable(f"broker {self.broker} did not answer CONNECT in {wait_s:g} s"
                                    ) from exc
        if rc != 0:
            self._teardown()
            raise BrokerUnreachable(f"broker {self.broker} refused the connection (code {rc})")
        self._misc = self._loop.create_task(self._misc_loop(), name=f"mqtt-misc-{self.client_id}")

    async def disconnect(self) -> None:
        """A clean DISCONNECT: the broker discards the Last Will."""
        self._closing = True
        client = self._client
        if client is not None and self.connected:
            client.disconnect()
            for _ in range(50):
                if client.socket() is None:
                    break
                await asyncio.sleep(0.01)
        self._teardown()

    def kill(self) -> None:
        """Drop the TCP connection without DISCONNECT, as a dead device would: the Will fires."""
        self._closing = True
        self._abort_socket()
        self._teardown()

    def drop(self) -> None:
        """Lose the connection (no DISCONNECT) and stay away until :meth:`resume`."""
        if self._resumed is None:
            self._resumed = asyncio.Event()
        self._held = True
        self._resumed.clear()
        self._abort_socket()

    def resume(self) -> None:
        """End a :meth:`drop`: reconnect (with the usual backoff)."""
        self._held = False
        if self._resumed is not None:
            self._resumed.set()

    def _abort_socket(self) -> None:
        client = self._client
        sock = client.socket() if client is not None else None
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            if client is not None:
                # let paho notice the dead socket on its next read
                self._on_readable()

    def _teardown(self) -> None:
        for task in (self._misc, self._reconnect):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        self._misc = self._reconnect = None
        client, self._client = self._client, None
        if client is not None:
            sock = client.socket()
            if sock is not None and self._loop is not None:
                self._forget_socket(sock)
                with contextlib.suppress(OSError):
                    sock.close()
        if self._connected is not None:
            self._connected.clear()
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(SimError("connection closed before the broker acknowledged"))
        self._waiting.clear()

    # ------------------------------------------------------------------ messaging

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> int:
        """Queue a message; returns its mid. QoS 1 messages survive a reconnect."""
        client = self._client
        if client is None:
            self.dropped += 1
            return -1
        info = client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            self.dropped += 1
            return -1
        if info.rc == paho.MQTT_ERR_NO_CONN and qos == 0:
            self.dropped += 1
            return -1
        self.published += 1
        return info.mid

    async def publish_wait(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False,
                           wait_s: float = 5.0) -> None:
        """Publish and wait until the broker acknowledged (or the bytes left, for QoS 0)."""
        assert self._loop is not None
        fut: asyncio.Future[None] = self._loop.create_future()
        mid = self.publish(topic, payload, qos, retain)
        if mid < 0:
            raise SimError(f"not connected to {self.broker}")
        self._waiting[mid] = fut
        try:
            await asyncio.wait_for(fut, wait_s)
        except TimeoutError as exc:
            raise SimError(f"broker {self.broker} did not acknowledge the message in "
                           f"{wait_s:g} s") from exc
        finally:
            self._waiting.pop(mid, None)

    def subscribe(self, topic: str, qos: int = 1) -> None:
        self.subscriptions[topic] = qos
        if self._client is not None and self.connected:
            self._client.subscribe(topic, qos)

    @property
    def outstanding(self) -> int:
        """Messages handed to paho that the broker has not taken yet."""
        return self.published - self.completed

    async def drain(self, wait_s: float = 10.0, below: int = 1) -> bool:
        """Wait until fewer than ``below`` messages are queued (by default: none);
        False on timeout."""
        if self.outstanding < below:
            return True
        self._idle_below = below
        if self._idle is None:
            self._idle = asyncio.Event()
        self._idle.clear()
        try:
            await asyncio.wait_for(self._idle.wait(), wait_s)
        except TimeoutError:
            return False
        return True

    # ------------------------------------------------------------------ paho wiring

    def _make_client(self) -> paho.Client:
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=paho.MQTTv311, clean_session=True)
        client.connect_timeout = 5.0
        client.max_inflight_messages_set(self.max_inflight)
        client.max_queued_messages_set(0)
        if self.will is not None:
            client.will_set(self.will.topic, self.will.payload, qos=self.will.qos,
                            retain=self.will.retain)
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        return client

    def _on_socket_open(self, client: paho.Client, _ud: Any, sock: Any) -> None:
        assert self._loop is not None
        self._loop.add_reader(sock, self._on_readable)

    def _on_socket_close(self, client: paho.Client, _ud: Any, sock: Any) -> None:
        self._forget_socket(sock)

    def _forget_socket(self, sock: Any) -> None:
        assert self._loop is not None
        try:
            self._loop.remove_reader(sock)
            self._loop.remove_writer(sock)
        except (ValueError, OSError):  # already closed
            pass

    def _on_register_write(self, client: paho.Client, _ud: Any, sock: Any) -> None:
        assert self._loop is not None
        self._loop.add_writer(sock, self._on_writable)

    def _on_unregister_write(self, client: paho.Client, _ud: Any, sock: Any) -> None:
        assert self._loop is not None
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_writer(sock)

    def _on_readable(self) -> None:
        if self._client is not None:
            self._client.loop_read(max_packets=100)

    def _on_writable(self) -> None:
        if self._client is not None:
            self._client.loop_write()

    def _on_connect(self, client: paho.Client, _ud: Any, _flags: Any, reason: Any,
                    _props: Any) -> None:
        rc = int(getattr(reason, "value", reason) or 0)
        sock: Any = client.socket()
        if sock is not None:
            # paho leaves Nagle on: a device's alarm would wait for the broker's delayed ACK
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(rc)
        if rc == 0:
            assert self._connected is not None
            self._connected.set()
            for topic, qos in self.subscriptions.items():
                client.subscribe(topic, qos)

    def _on_disconnect(self, client: paho.Client, _ud: Any, _flags: Any, reason: Any,
                       _props: Any) -> None:
        if self._connected is not None:
            self._connected.clear()
        if self._closing or self._loop is None:
            return
        log.info("%s lost its connection to %s (%s)", self.client_id, self.broker, reason)
        if self._reconnect is None or self._reconnect.done():
            self._reconnect = self._loop.create_task(self._reconnect_loop(),
                                                     name=f"mqtt-reconnect-{self.client_id}")

    def _on_message(self, client: paho.Client, _ud: Any, msg: paho.MQTTMessage) -> None:
        if self.on_message is not None:
            self.on_message(msg.topic, bytes(msg.payload))

    def _on_publish(self, client: paho.Client, _ud: Any, mid: int, _reason: Any,
                    _props: Any) -> None:
        self.completed += 1
        if self._idle is not None and self.outstanding < self._idle_below:
            self._idle.set()
        fut = self._waiting.get(mid)
        if fut is not None and not fut.done():
            fut.set_result(None)

    async def _misc_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self._client is not None and self._client.socket() is not None:
                self._client.loop_misc()

    async def _reconnect_loop(self) -> None:
        assert self._loop is not None
        delay = 0.5
        while not self._closing:
            if self._held and self._resumed is not None:
                await self._resumed.wait()
            await asyncio.sleep(delay)
            if self._closing or self._client is None:
                return
            try:
                self._client.reconnect()
            except OSError as exc:
                log.info("%s: reconnect failed: %s", self.client_id, _reason(exc))
                delay = min(delay * 2, 30.0)
                continue
            self.reconnects += 1
            try:
                await asyncio.wait_for(self._connected_wait(), 5.0)
            except TimeoutError:
                delay = min(delay * 2, 30.0)
                continue
            return

    async def wait_connected(self, wait_s: float = 30.0) -> bool:
        if self._connected is None:
            return False
        try:
            await asyncio.wait_for(self._connected.wait(), wait_s)
        except TimeoutError:
            return False
        return True

    async def _connected_wait(self) -> None:
        assert self._connected is not None
        await self._connected.wait()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
