"""paho-mqtt driven by the asyncio event loop: the only module that sees paho objects.

paho runs here without its network thread (its documented "external event loop" mode:
``loop_read``/``loop_write``/``loop_misc`` on socket readiness), so messages reach the
ingest code on the event loop's thread, in arrival order, with no locks and no thread
hops; reading can be paused when ingest falls behind (backpressure onto the broker's
queue instead of unbounded memory). Reconnects with capped exponential backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from eldercare_cloud.ingest.errors import PublishError

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes, bool], None]


@dataclass(frozen=True)
class MqttOptions:
    host: str
    port: int
    client_id: str
    username: str | None = None
    password: str | None = None
    tls: bool = False
    tls_ca: Path | None = None
    keepalive_s: int = 30
    reconnect_max_s: float = 10.0
    #: keep the broker session (and the messages queued for it) across reconnects
    clean_session: bool = False
    #: QoS 1 messages in flight towards the broker (acks, configs)
    max_inflight: int = 100
    max_queued: int = 100000


class MqttConnection:
    """One MQTT client session; subscriptions are re-sent on every (re)connect."""

    def __init__(self, options: MqttOptions, subscriptions: list[tuple[str, int]],
                 on_message: MessageHandler, name: str = "mqtt") -> None:
        self.options = options
        self.subscriptions = subscriptions
        self.on_message = on_message
        self.name = name
        self.connected = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client = self._make_client()
        self._sock: socket.socket | None = None
        self._reading = True
        self._misc: asyncio.Task[None] | None = None
        self._runner: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self._stopping = False
        self._pending_pubacks: dict[int, asyncio.Future[None]] = {}
        self._received_in_read = 0

    def _make_client(self) -> paho.Client:
        o = self.options
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=o.client_id,
                             clean_session=o.clean_session, protocol=paho.MQTTv311)
        if o.username is not None:
            client.username_pw_set(o.username, o.password)
        if o.tls:
            context = ssl.create_default_context(
                cafile=str(o.tls_ca) if o.tls_ca is not None else None)
            client.tls_set_context(context)
        client.max_inflight_messages_set(o.max_inflight)
        client.max_queued_messages_set(o.max_queued)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        return client

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._runner = asyncio.create_task(self._run(), name=f"{self.name}-connect")

    @property
    def runner(self) -> asyncio.Task[None] | None:
        """The task that connects and reconnects (for supervision)."""
        return self._runner

    @property
    def stopping(self) -> bool:
        return self._stopping

    async def stop(self) -> None:
        self._stopping = True
        if self._sock is not None and self.connected.is_set():
            self._client.disconnect()
            # let the DISCONNECT packet go out; the socket closes when the broker sees it
            for _ in range(20):
                if self._sock is None:
                    break
                await asyncio.sleep(0.01)
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        self._close_socket()
        for fut in self._pending_pubacks.values():
            if not fut.done():
                fut.set_exception(PublishError("?", "connection closed"))
        self._pending_pubacks.clear()

    async def wait_connected(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self.connected.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def _run(self) -> None:
        o = self.options
        delay = 0.1
        first = True
        while not self._stopping:
            try:
                if first:
                    # connect() blocks for the TCP handshake; on loopback or LAN that is
                    # short, and it keeps paho's socket callbacks on this thread.
                    self._client.connect(o.host, o.port, keepalive=o.keepalive_s)
                    first = False
                else:
                    self._client.reconnect()
            except (OSError, ssl.SSLError) as exc:
                log.warning("%s: cannot connect to %s:%d: %s (retry in %.1fs)", self.name,
                            o.host, o.port, exc, delay)
                self._close_socket()
                await asyncio.sleep(delay)
                delay = min(delay * 2, o.reconnect_max_s)
                continue
            # cleared only now: reconnect() may close the old socket (which sets it)
            self._lost.clear()
            await self._lost.wait()
            if self._stopping:
                return
            if self.connected.is_set():
                delay = 0.1
            self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, o.reconnect_max_s)

    # -- paho callbacks (all on the event loop thread) -----------------------------------

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any,
                    properties: Any) -> None:
        if reason_code.is_failure:
            log.error("%s: broker refused the connection: %s", self.name, reason_code)
            return
        log.info("%s: connected to %s:%d (session present: %s)", self.name, self.options.host,
                 self.options.port, getattr(flags, "session_present", "?"))
        if not self._reading and self._sock is not None and self._loop is not None:
            # the socket was read for this CONNACK although reading is paused (see
            # _on_socket_open); from here the pause holds again
            self._loop.remove_reader(self._sock)
        if self.subscriptions:
            client.subscribe(self.subscriptions)
        self.connected.set()

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any,
                       properties: Any) -> None:
        if not self._stopping:
            log.warning("%s: disconnected: %s", self.name, reason_code)
        self.connected.clear()
        self._lost.set()

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self._received_in_read += 1
        self.on_message(message.topic, bytes(message.payload), bool(message.retain))

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason_code: Any,
                    properties: Any) -> None:
        fut = self._pending_pubacks.pop(mid, None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        assert self._loop is not None
        self._sock = sock
        # acks are small and latency-critical: no Nagle delay (paho does not set this)
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # read even while paused, until the CONNACK: a connection that dropped while ingest
        # was behind (a keep-alive timeout, a broker restart) must still come back
        self._loop.add_reader(sock, self._read)
        self._misc = self._loop.create_task(self._misc_loop(), name=f"{self.name}-misc")

    def _on_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        assert self._loop is not None
        self._loop.remove_reader(sock)
        self._loop.remove_writer(sock)
        if self._sock is sock:
            self._sock = None
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None
        self._lost.set()

    def _on_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        assert self._loop is not None
        self._loop.add_writer(sock, self._client.loop_write)

    def _on_unregister_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        assert self._loop is not None
        self._loop.remove_writer(sock)

    def _read(self) -> None:
        # loop_read handles about one packet per call; keep reading while messages arrive so
        # one readiness wake-up drains a burst (bounded, so writes still get their turn)
        for _ in range(200):
            self._received_in_read = 0
            rc = self._client.loop_read()
            if rc != paho.MQTT_ERR_SUCCESS or self._received_in_read == 0 or not self._reading:
                return

    async def _misc_loop(self) -> None:
        # paho's keepalive clock: a periodic tick, not synchronisation
        while self._client.loop_misc() == paho.MQTT_ERR_SUCCESS:  # noqa: ASYNC110
            await asyncio.sleep(1.0)

    def _close_socket(self) -> None:
        if self._sock is not None and self._loop is not None:
            self._loop.remove_reader(self._sock)
            self._loop.remove_writer(self._sock)
        self._sock = None

    # -- flow control ------------------------------------------------------------------

    def pause_reading(self) -> None:
        if self._reading:
            self._reading = False
            if self._sock is not None and self._loop is not None:
                self._loop.remove_reader(self._sock)

    def resume_reading(self) -> None:
        if not self._reading:
            self._reading = True
            if self._sock is not None and self._loop is not None:
                self._loop.add_reader(self._sock, self._read)

    @property
    def reading(self) -> bool:
        return self._reading

    # -- publishing --------------------------------------------------------------------

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool:
        """Hand a message to the client; QoS>0 messages are queued while disconnected and
        sent after the reconnect. False when the client's queue is full."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        return info.rc in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN)

    async def publish_confirmed(self, topic: str, payload: bytes, *, qos: int = 1,
                                retain: bool = False, timeout_s: float = 10.0) -> None:
        """Publish and wait for the broker's PUBACK; PublishError on timeout or refusal."""
        if qos == 0:
            raise ValueError("publish_confirmed needs QoS 1 or 2")
        assert self._loop is not None, "start() first"
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            raise PublishError(topic, paho.error_string(info.rc))
        if info.rc == paho.MQTT_ERR_SUCCESS and info.is_published():
            return
        fut: asyncio.Future[None] = self._loop.create_future()
        self._pending_pubacks[info.mid] = fut
        try:
            await asyncio.wait_for(fut, timeout_s)
        except TimeoutError as exc:
            raise PublishError(topic, f"no PUBACK within {timeout_s:g}s") from exc
        finally:
            self._pending_pubacks.pop(info.mid, None)
