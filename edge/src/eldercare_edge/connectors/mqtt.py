"""An MQTT connection owned by one connector: paho-mqtt 2.x bridged into asyncio.

paho runs its network loop in its own thread and reconnects with backoff by itself;
this class hands received messages to the event loop in batches (one wake-up per
burst, not one per message) and keeps paho objects away from everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from eldercare_edge.errors import TransportError
from eldercare_edge.settings import BrokerSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outgoing:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


OnMessages = Callable[[list[tuple[str, bytes]]], None]
#: dropped within FLAP_S of connecting, FLAPS times in FLAP_WINDOW_S: a client id conflict
FLAP_S = 5.0
FLAPS = 3
FLAP_WINDOW_S = 120.0


def _nodelay(client: mqtt.Client) -> None:
    """TCP_NODELAY on paho's socket: paho leaves Nagle on, and Nagle with the broker's
    delayed ACK held a 1 ms alarm back for tens of milliseconds."""
    sock: Any = client.socket()
    if sock is not None:
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class MqttLink:
    """One broker connection. Callbacks run on the event loop, never on paho's thread.

    ``birth`` is published from paho's thread right after every (re)connect, before
    anything else, so the retained state is "online" before the first record.
    """

    def __init__(self, name: str, settings: BrokerSettings, client_id: str, *,
                 subscriptions: Sequence[str] = (), on_messages: OnMessages | None = None,
                 will: Outgoing | None = None, birth: Callable[[], Outgoing] | None = None,
                 on_connect: Callable[[], None] | None = None,
                 on_disconnect: Callable[[], None] | None = None,
                 max_inflight: int = 0, persistent: bool = False,
                 on_refused: Callable[[str], None] | None = None,
                 on_conflict: Callable[[], None] | None = None,
                 manual_ack: bool = False) -> None:
        self.name = name
        self.settings = settings
        self._subscriptions = tuple(subscriptions)
        self._on_messages = on_messages
        self._birth = birth
        self._on_connect_cb = on_connect
        self._on_disconnect_cb = on_disconnect
        self._on_refused_cb = on_refused
        #: why the broker last refused the connection (None once it accepted one)
        self.refused: str | None = None
        self.client_id = client_id
        self._on_conflict_cb = on_conflict
        self._connected_at = 0.0
        self._flaps: deque[float] = deque()
        #: the broker keeps dropping us right after we connect: another client has our id
        self.conflict_suspected = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: deque[tuple[str, bytes]] = deque()
        self._drain_scheduled = False
        self._connected = threading.Event()
        self.connects = 0
        self.disconnects = 0
        self._connected_async: asyncio.Event | None = None
        #: manual_ack: a QoS 1 message is PUBACKed by ack_through() once the receiver has
        #: stored it, not on receipt (a crash in between gets it redelivered). The n-th
        #: message handed to on_messages has token n; (token, session, mid) wait here
        self._manual_ack = manual_ack
        self._received = 0
        self._session = 0
        self._unacked: deque[tuple[int, int, int]] = deque()

        # persistent: the broker keeps the session (subscriptions and the QoS 1 messages
        # that arrive while we are away) under this fixed client id
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=mqtt.MQTTv311, clean_session=not persistent)
        if settings.username:
            password = settings.password.get_secret_value() if settings.password else None
            client.username_pw_set(settings.username, password)
        if settings.use_tls:
            tls = settings.tls
            try:
                client.tls_set(
                    ca_certs=str(tls.ca_file) if tls and tls.ca_file else None,
                    certfile=str(tls.cert_file) if tls and tls.cert_file else None,
                    keyfile=str(tls.key_file) if tls and tls.key_file else None,
                    cert_reqs=ssl.CERT_REQUIRED)
            except (OSError, ssl.SSLError, ValueError) as exc:
                raise TransportError(f"{name}: TLS setup failed: {exc}") from exc
            if tls and tls.insecure:
                client.tls_insecure_set(True)
        if will is not None:
            client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        client.reconnect_delay_set(min_delay=max(1, round(settings.reconnect_min_s)),
                                   max_delay=max(1, round(settings.reconnect_max_s)))
        client.max_inflight_messages_set(max_inflight)
        client.max_queued_messages_set(0)
        client.manual_ack_set(manual_ack)
        client.on_connect = self._paho_connect
        client.on_disconnect = self._paho_disconnect
        client.on_message = self._paho_message
        client.on_subscribe = self._paho_subscribe
        self._sub_mid: int | None = None
        self._stopping = False
        self._client = client

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._connected_async = asyncio.Event()
        try:
            self._client.connect_async(self.settings.host, self.settings.port,
                                       keepalive=self.settings.keepalive_s)
        except (OSError, ValueError) as exc:
            raise TransportError(f"{self.name}: cannot connect to {self.settings.url}: {exc}"
                                 ) from exc
        self._client.loop_start()

    async def wait_connected(self, within_s: float) -> bool:
        """Connected and subscribed (the SUBACK is in), or False after ``within_s``."""
        if self._connected_async is None:
            return False
        try:
            async with asyncio.timeout(within_s):   # (not wait_for: see Forwarder.run)
                await self._connected_async.wait()
        except TimeoutError:
            return False
        return True

    async def stop(self, final: Sequence[Outgoing] = (), flush_s: float = 3.0) -> None:
        """Publish ``final`` (e.g. a retained offline state), then disconnect cleanly."""
        if self.connected:
            infos = [self._client.publish(m.topic, m.payload, qos=m.qos, retain=m.retain)
                     for m in final]
            for info in infos:
                await asyncio.to_thread(info.wait_for_publish, flush_s)
        self._stopping = True
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def publish(self, msg: Outgoing) -> bool:
        """Hand a message to paho; False when not connected (the caller keeps it)."""
        if not self._connected.is_set():
            return False
        info = self._client.publish(msg.topic, msg.payload, qos=msg.qos, retain=msg.retain)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def publish_many(self, topic: str, payloads: Sequence[bytes], qos: int = 1) -> int:
        """Hand several messages for one topic to paho in a tight loop; returns how many
        were taken (it stops at the first refusal, so the caller keeps the rest in order)."""
        if not self._connected.is_set():
            return 0
        publish = self._client.publish
        ok = mqtt.MQTT_ERR_SUCCESS
        for n, payload in enumerate(payloads):
            if publish(topic, payload, qos=qos).rc != ok:
                return n
        return len(payloads)

    def ack_through(self, token: int) -> None:
        """PUBACK every message up to the one with this token (see ``manual_ack``)."""
        unacked = self._unacked
        while unacked and unacked[0][0] <= token:
            _, session, mid = unacked.popleft()
            # a connection that is gone takes its mids along: the broker delivers again
            if session == self._session and self._connected.is_set():
                self._client.ack(mid, 1)

    # ---------------------------------------------------------------- paho thread

    def _paho_connect(self, client: mqtt.Client, userdata: Any, flags: Any,
                      reason: Any, properties: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("%s: broker %s refused the connection: %s", self.name,
                        self.settings.url, reason)
            self.refused = str(reason)
            if self._on_refused_cb is not None:
                self._call(self._on_refused_cb, str(reason))
            return
        self.refused = None
        self._session += 1      # mids of an older connection are not acked on this one
        self._connected_at = time.monotonic()
        _nodelay(client)
        if self._birth is not None:
            birth = self._birth()
            client.publish(birth.topic, birth.payload, qos=birth.qos, retain=birth.retain)
        self.connects += 1
        self._connected.set()
        log.info("%s: connected to %s", self.name, self.settings.url)
        if self._subscriptions:
            # "ready" waits for the SUBACK: a message published before it would be missed
            _, self._sub_mid = client.subscribe([(t, 1) for t in self._subscriptions])
        else:
            self._call(self._set_connected, True)
        if self._on_connect_cb is not None:
            self._call(self._on_connect_cb)

    def _paho_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any,
                        properties: Any) -> None:
        if mid == self._sub_mid:
            self._call(self._set_connected, True)

    def _paho_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any,
                         reason: Any, properties: Any) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        if was and self._stopping:
            log.info("%s: disconnected from %s", self.name, self.settings.url)
        elif was:
            self.disconnects += 1
            log.warning("%s: disconnected from %s: %s", self.name, self.settings.url, reason)
            self._flap_check()
        self._call(self._set_connected, False)
        if self._on_disconnect_cb is not None:
            self._call(self._on_disconnect_cb)

    def _flap_check(self) -> None:
        """A broker drops an older connection when a new one brings the same client id;
        two gateways with one id then knock each other off every reconnect. Dropped
        within FLAP_S of connecting, FLAPS times in FLAP_WINDOW_S, is called that."""
        now = time.monotonic()
        if now - self._connected_at > FLAP_S:
            return
        self._flaps.append(now)
        while self._flaps and now - self._flaps[0] > FLAP_WINDOW_S:
            self._flaps.popleft()
        if len(self._flaps) >= FLAPS and not self.conflict_suspected:
            self.conflict_suspected = True
            log.error("%s: %s dropped this connection %d times within %.0f s of connecting:"
                      " another client is using the client id %r (a second gateway with the"
                      " same gateway_id?)", self.name, self.settings.url, len(self._flaps),
                      FLAP_S, self.client_id)
            if self._on_conflict_cb is not None:
                self._call(self._on_conflict_cb)

    def _paho_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage
                      ) -> None:
        self._pending.append((message.topic, bytes(message.payload)))
        self._received += 1
        if self._manual_ack and message.qos > 0:
            self._unacked.append((self._received, self._session, message.mid))
        if not self._drain_scheduled:
            self._drain_scheduled = True
            self._call(self._drain)

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        # the loop may close between the check and the call while shutting down
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(fn, *args)

    # ---------------------------------------------------------------- event loop

    def _set_connected(self, up: bool) -> None:
        if self._connected_async is None:
            return
        if up and self._connected.is_set():
            self._connected_async.set()
        elif not up:
            self._connected_async.clear()

    def _drain(self) -> None:
        self._drain_scheduled = False
        batch: list[tuple[str, bytes]] = []
        pending = self._pending
        while pending:
            batch.append(pending.popleft())
        if batch and self._on_messages is not None:
            self._on_messages(batch)
