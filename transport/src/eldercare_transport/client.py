"""paho-mqtt driven by the asyncio event loop: the one MQTT client of the platform.

paho runs here without its network thread (its documented "external event loop" mode:
``loop_read``/``loop_write``/``loop_misc`` on socket readiness), so messages reach the
caller on the event loop's thread, in arrival order, with no locks and no thread hops,
and a hundred connections cost no more threads than one. Everything the gateway, the
cloud's ingest, the simulator and the administrative tools need from MQTT is here once:

- TCP_NODELAY on the socket of every (re)connect: paho leaves Nagle on, and Nagle with
  the broker's delayed ACK held a 1 ms alarm back for tens of milliseconds (it took the
  alarm p99 from 48 to 10 ms);
- reconnects with capped exponential backoff, subscriptions re-sent each time, a Will,
  and a "birth" message published first after every connect;
- reading that can be paused (backpressure onto the broker's queue instead of unbounded
  memory), by the caller or by a bounded inbound queue when it is full;
- publishing that can await the broker's PUBACK with a timeout, and manual acks of
  received QoS 1 messages (``manual_ack``): the broker redelivers what was not acked;
- client-id conflict detection: a broker drops an older connection when a new one brings
  the same client id, so two clients with one id knock each other off every reconnect;
- few system calls per message (issue 14): paho reads a packet with three or more
  ``recv`` calls (the command byte, each length byte, the rest) and writes each packet
  with a ``send`` of its own (a PUBACK per received message). Here paho reads from a
  buffer filled by one ``recv`` of up to ``RECV_CHUNK`` bytes, and the packets queued
  since the last write leave in one ``send``.

Only this package sees paho objects: callers get frozen ``Received`` messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import struct
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.exception import MalformedPacket

from eldercare_transport.endpoint import Endpoint
from eldercare_transport.errors import (
    ConnectError,
    PublishError,
    SubscribeError,
    UnreachableError,
)

log = logging.getLogger(__name__)

#: dropped within FLAP_S of connecting, FLAPS times in FLAP_WINDOW_S: a client id conflict
FLAP_S = 5.0
FLAPS = 3
FLAP_WINDOW_S = 120.0
#: packets handled per socket wake-up before writes and other tasks get their turn
READ_BURST = 200
#: bytes taken from the socket by one ``recv`` (paho then reads its packets from them)
RECV_CHUNK = 65536
#: packets are merged for one ``send`` up to about this many bytes
SEND_CHUNK = 65536
#: paho's packet types that leave nothing to do once written (QoS 0 PUBLISH and
#: DISCONNECT call back or close when written, so they are never merged)
_PUBLISH, _PUBACK, _DISCONNECT = 0x30, 0x40, 0xE0
_PUBACK_PACKET = struct.Struct("!BBH")
MQTT_V311 = 4
MQTT_V5 = 5


@dataclass(frozen=True)
class Message:
    """An outgoing message (also a Will or a birth)."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


@dataclass(frozen=True)
class Received:
    """An incoming message, decoupled from paho's object."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    #: the packet id (QoS > 0), what ``MqttClient.ack`` acknowledges under manual ack
    mid: int = 0
    #: the connection it arrived on: an ack after a reconnect is not sent (the broker
    #: redelivers on the new connection)
    connection: int = 0


def _received(topic: str, payload: bytes, qos: int, retain: bool, mid: int,
              connection: int) -> Received:
    """``Received(...)`` for every incoming message at a third of the cost: a frozen
    dataclass's ``__init__`` goes through ``object.__setattr__`` once per field."""
    msg = object.__new__(Received)
    msg.__dict__.update(topic=topic, payload=payload, qos=qos, retain=retain, mid=mid,
                        connection=connection)
    return msg


@dataclass(frozen=True)
class Session:
    """How one client talks to its broker (everything but the address)."""

    client_id: str
    #: False: the broker keeps the session (subscriptions and the QoS 1 messages that
    #: arrive while we are away) under this fixed client id
    clean: bool = True
    keepalive_s: int = 30
    #: (topic filter, QoS) subscribed on every connect; "ready" waits for their SUBACK
    subscriptions: tuple[tuple[str, int], ...] = ()
    will: Message | None = None
    reconnect_min_s: float = 0.1
    reconnect_max_s: float = 10.0
    #: QoS 1 messages in flight towards the broker; 0: no limit
    max_inflight: int = 100
    #: messages paho holds beyond the in-flight window; 0: no limit
    max_queued: int = 0
    #: QoS 1 publishes while disconnected are queued and sent after the reconnect;
    #: False: refused (the caller keeps them, as the gateway's outbox does)
    queue_while_offline: bool = True
    #: > 0: received messages wait in a queue of this size for ``receive``/``take``
    #: (when no ``on_message`` is given); reading pauses while it is full
    inbound_max: int = 0
    #: received QoS 1 messages are acknowledged only by ``MqttClient.ack``
    manual_ack: bool = False
    #: 4 (MQTT 3.1.1) or 5 (MQTT 5: a refused publish comes back as a PUBACK reason)
    protocol: int = MQTT_V311
    connect_timeout_s: float = 5.0


OnMessage = Callable[[Received], None]


class _Paho(paho.Client):
    """paho with the TCP connection made beforehand on the event loop: paho's own
    ``socket.create_connection`` blocks for name resolution and the TCP handshake, which
    would stall the loop (a gateway's alarms) for seconds while its uplink is down."""

    prepared: socket.socket | None = None
    #: bytes received from the socket and not yet read by paho (``_rbuf[_rpos:]``)
    _rbuf: bytes = b""
    _rpos: int = 0
    #: system calls made on the socket (diagnostics: tests and benchmarks count them)
    recv_calls = 0
    send_calls = 0

    def _create_socket_connection(self) -> socket.socket:
        sock, self.prepared = self.prepared, None
        if sock is None:
            raise ConnectionError("no connection prepared")
        self.discard_buffered()   # nothing of an earlier connection is read on this one
        return sock

    # paho's private I/O hooks (paho-mqtt 2.x; the lockfile pins the version), overridden
    # for fewer system calls; tests/transport covers reads split anywhere and merged writes

    @property
    def buffered(self) -> int:
        """Bytes already taken from the socket that paho has not read yet: the socket
        will not wake the event loop for them. With TLS, also what the TLS layer has
        decrypted and not handed over (``pending``): the kernel's socket is empty then."""
        n = len(self._rbuf) - self._rpos
        sock = self._sock
        if isinstance(sock, ssl.SSLSocket):
            with contextlib.suppress(OSError, ValueError):
                n += sock.pending()
        return n

    def discard_buffered(self) -> None:
        self._rbuf, self._rpos = b"", 0

    def _sock_recv(self, bufsize: int) -> bytes:
        """What paho asks for, from the buffer; one ``recv`` refills it when it is empty
        (a short read when it holds less, as a socket's)."""
        buf, pos = self._rbuf, self._rpos
        if pos >= len(buf):
            self.recv_calls += 1
            buf = super()._sock_recv(RECV_CHUNK)   # BlockingIOError, OSError: as before
            if not buf:
                return buf   # the peer closed the connection
            pos = 0
        end = min(pos + bufsize, len(buf))
        self._rbuf, self._rpos = buf, end
        return buf[pos:end]

    def _packet_read(self) -> MQTTErrorCode:
        """A packet that lies whole in the buffer is handled at once; paho's own reader
        (a few calls per header byte, kept for packets split across reads) does the rest
        and every malformed header."""
        buf, pos = self._rbuf, self._rpos
        if self._in_packet["command"] == 0 and len(buf) - pos >= 2:
            length, shift, i = 0, 0, pos + 1
            while i < len(buf) and i - pos <= 4:
                byte = buf[i]
                length += (byte & 127) << shift
                shift += 7
                i += 1
                if not byte & 128:
                    if i + length > len(buf):
                        break
                    self._rpos = i + length
                    return self._handle_whole(buf[pos], length, buf[i:i + length])
        return super()._packet_read()

    def _handle_whole(self, command: int, length: int, packet: bytes) -> MQTTErrorCode:
        """What paho does once a packet is read (``_packet_read`` after its loop)."""
        # bytes, not paho's bytearray: its decoders only read the packet (struct.unpack,
        # slices), and the payload then reaches the caller without another copy
        self._in_packet = {"command": command, "have_remaining": 1, "remaining_count": [],
                           "remaining_mult": 1, "remaining_length": length,
                           "packet": packet,  # type: ignore[typeddict-item]
                           "to_process": 0, "pos": 0}
        try:
            rc = self._packet_handle()
        except MalformedPacket:
            rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
        self._in_packet = {"command": 0, "have_remaining": 0, "remaining_count": [],
                           "remaining_mult": 1, "remaining_length": 0,
                           "packet": bytearray(b""), "to_process": 0, "pos": 0}
        with self._msgtime_mutex:
            self._last_bytes_received = paho.time_func()
        return rc

    def _send_puback(self, mid: int) -> MQTTErrorCode:
        """paho's, without its debug-log call and helper per received message."""
        return self._packet_queue(_PUBACK, _PUBACK_PACKET.pack(_PUBACK, 2, mid), mid, 1)

    def _handle_on_message(self, message: paho.MQTTMessage) -> None:
        """Straight to ``on_message``: this package adds no per-topic callbacks
        (``message_callback_add``), so paho's topic matching per message finds none."""
        on_message = self.on_message
        if on_message is not None:
            on_message(self, self._userdata, message)

    def _sock_send(self, buf: bytes | bytearray) -> int:
        self.send_calls += 1
        return super()._sock_send(buf)

    def _packet_write(self) -> MQTTErrorCode:
        """Merge the packets waiting at the head of paho's queue into one, so that they
        leave in one ``send`` (paho sends each packet by itself: a PUBACK per received
        message). Only packets that need nothing once written are merged (everything but
        a QoS 0 PUBLISH and DISCONNECT, which paho then handles alone, as before)."""
        out = self._out_packet
        n = size = 0
        for packet in out:
            kind = packet["command"] & 0xF0
            if ((kind == _PUBLISH and packet["qos"] == 0) or kind == _DISCONNECT
                    or size >= SEND_CHUNK):
                break
            n += 1
            size += packet["to_process"]
        if n > 1:
            data = b"".join([p["packet"][p["pos"]:] for p in [out.popleft()
                                                            for _ in range(n)]])
            out.appendleft({"command": _PUBACK, "mid": 0, "qos": 1, "pos": 0,
                            "to_process": len(data), "packet": data, "info": None})
        return super()._packet_write()


class MqttClient:
    """One MQTT client session on the running event loop.

    ``start()`` connects in the background and keeps reconnecting; ``connect()`` does the
    same but fails with ``ConnectError`` when the first attempt does not succeed.
    Callbacks run on the event loop: ``on_message`` for every message (or, without it,
    the bounded queue), ``on_connect``/``on_disconnect`` on link changes, ``on_refused``
    with the broker's reason when it refuses the session, ``on_conflict`` once when
    another client seems to use our client id.
    """

    def __init__(self, endpoint: Endpoint, session: Session, *, name: str | None = None,
                 on_message: OnMessage | None = None,
                 on_connect: Callable[[], None] | None = None,
                 on_disconnect: Callable[[], None] | None = None,
                 on_refused: Callable[[str], None] | None = None,
                 on_conflict: Callable[[], None] | None = None,
                 birth: Callable[[], Message] | None = None) -> None:
        if session.protocol not in (MQTT_V311, MQTT_V5):
            raise ValueError(f"MQTT protocol level 4 or 5, not {session.protocol}")
        self.endpoint = endpoint
        self.session = session
        self.name = name or session.client_id
        self._on_message_cb = on_message
        self._on_connect_cb = on_connect
        self._on_disconnect_cb = on_disconnect
        self._on_refused_cb = on_refused
        self._on_conflict_cb = on_conflict
        self._birth = birth
        self._subscriptions: dict[str, int] = dict(session.subscriptions)
        self._ssl = endpoint.ssl_context()   # EndpointError now, not at the first connect
        self._client = self._make_client()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sock: Any = None
        self._misc: asyncio.Task[None] | None = None
        self._runner: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self._ready = asyncio.Event()
        self._connected = False
        self._stopping = False
        self._held: asyncio.Event | None = None
        self._first: asyncio.Future[None] | None = None
        self._sub_mid: int | None = None
        self._reading = True
        self._inbox: deque[Received] = deque()
        self._inbox_ready = asyncio.Event()
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._idle: asyncio.Event | None = None
        self._idle_below = 1
        self._connected_at = 0.0
        self._flaps: deque[float] = deque()
        #: why the broker last refused the session (None once it accepted one)
        self.refused: str | None = None
        #: subscriptions the broker refused in its last SUBACK
        self.refused_subscriptions: list[str] = []
        #: the broker keeps dropping us right after we connect: another client has our id
        self.conflict_suspected = False
        self.connects = 0
        self.disconnects = 0
        self.published = 0
        self.completed = 0
        self.dropped = 0

    def _make_client(self) -> _Paho:
        s = self.session
        if s.protocol == MQTT_V5:
            client = _Paho(CallbackAPIVersion.VERSION2, client_id=s.client_id,
                           protocol=paho.MQTTv5)
        else:
            client = _Paho(CallbackAPIVersion.VERSION2, client_id=s.client_id,
                           protocol=paho.MQTTv311, clean_session=s.clean)
        client.connect_timeout = s.connect_timeout_s
        e = self.endpoint
        if e.username is not None:
            client.username_pw_set(e.username, e.password)
        if self._ssl is not None:
            client.tls_set_context(self._ssl)
        if s.will is not None:
            client.will_set(s.will.topic, s.will.payload, qos=s.will.qos, retain=s.will.retain)
        client.max_inflight_messages_set(s.max_inflight)
        client.max_queued_messages_set(s.max_queued)
        if s.manual_ack:
            client.manual_ack_set(True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        return client

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def client_id(self) -> str:
        return self.session.client_id

    @property
    def connected(self) -> bool:
        """The broker accepted the session and the socket is up (publishing works)."""
        return self._connected

    @property
    def runner(self) -> asyncio.Task[None] | None:
        """The task that connects and reconnects (for supervision)."""
        return self._runner

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def reconnects(self) -> int:
        """Sessions accepted after the first."""
        return max(self.connects - 1, 0)

    async def start(self) -> None:
        """Connect in the background (and again whenever the link drops)."""
        if self._runner is not None:
            raise RuntimeError(f"{self.name}: already started")
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        s, e = self.session, self.endpoint
        if s.protocol == MQTT_V5:
            self._client.connect_async(e.host, e.port, keepalive=s.keepalive_s,
                                       clean_start=s.clean)
        else:
            self._client.connect_async(e.host, e.port, keepalive=s.keepalive_s)
        self._runner = self._loop.create_task(self._run(), name=f"{self.name}-connect")

    async def connect(self, wait_s: float = 5.0) -> None:
        """Connect and subscribe now, or raise ``ConnectError`` (and stay stopped); after
        that the link reconnects by itself like ``start``'s."""
        self._loop = asyncio.get_running_loop()
        self._first = self._loop.create_future()
        await self.start()
        try:
            async with asyncio.timeout(wait_s):  # not wait_for: the future is shared
                await asyncio.shield(self._first)
        except TimeoutError:
            await self._abandon()
            raise ConnectError(f"broker {self.endpoint} did not answer CONNECT in "
                               f"{wait_s:g} s") from None
        except ConnectError:
            await self._abandon()
            raise
        finally:
            self._first = None

    async def _abandon(self) -> None:
        self._stopping = True
        self._abort_socket()
        await self._end()

    async def wait_connected(self, within_s: float) -> bool:
        """Connected and subscribed (the SUBACK is in), or False after ``within_s``."""
        try:
            async with asyncio.timeout(within_s):
                await self._ready.wait()
        except TimeoutError:
            return False
        return True

    async def stop(self, final: Sequence[Message] = (), flush_s: float = 3.0) -> None:
        """Publish ``final`` (e.g. a retained offline state) and wait for its PUBACKs up to
        ``flush_s``, then DISCONNECT cleanly: the broker discards the Will."""
        if self._connected and final:
            with contextlib.suppress(PublishError):
                await asyncio.gather(*(
                    self.publish_confirmed(m.topic, m.payload, qos=max(m.qos, 1),
                                           retain=m.retain, timeout_s=flush_s)
                    for m in final))
        self._stopping = True
        if self._sock is not None and self._connected:
            self._client.disconnect()
            # let the DISCONNECT packet go out; the socket closes when it is written
            for _ in range(50):
                if self._sock is None:
                    break
                await asyncio.sleep(0.01)
        await self._end()

    def kill(self) -> None:
        """Drop the TCP connection without DISCONNECT, as a dead device would: the broker
        publishes the Will. The client stays stopped."""
        self._stopping = True
        self._abort_socket()
        if self._runner is not None:
            self._runner.cancel()
        self._teardown()

    def drop(self) -> None:
        """Lose the connection (no DISCONNECT) and stay away until ``resume``."""
        if self._held is None:
            self._held = asyncio.Event()
        self._held.clear()
        self._abort_socket()

    def resume(self) -> None:
        """End a ``drop``: reconnect (with the usual backoff)."""
        if self._held is not None:
            self._held.set()
            self._held = None

    async def _end(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        self._teardown()

    def _teardown(self) -> None:
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None
        sock, self._sock = self._sock, None
        if sock is not None:
            self._forget_socket(sock)
            with contextlib.suppress(OSError):
                sock.close()
        self._set_down()
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(PublishError("?", "connection closed before the broker "
                                                    "acknowledged"))
        self._waiting.clear()

    def _abort_socket(self) -> None:
        sock = self._sock
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            # what was received and not read is lost with the connection (the broker
            # resends unacked QoS 1 messages); paho must read the dead socket next
            self._client.discard_buffered()
            # let paho see the dead socket now (it closes it and says disconnected)
            with contextlib.suppress(OSError, ssl.SSLError):
                self._client.loop_read()

    async def _run(self) -> None:
        s = self.session
        delay = s.reconnect_min_s
        while not self._stopping:
            if self._held is not None:
                await self._held.wait()
            try:
                self._client.prepared = await self._open_tcp()
                # blocks for the TLS handshake only (the TCP connection is up), and keeps
                # paho's socket callbacks on this thread
                self._client.reconnect()
            except (OSError, ssl.SSLError, ssl.CertificateError) as exc:
                self._forget_current()
                if self._first is not None and not self._first.done():
                    self._first.set_exception(UnreachableError(
                        f"cannot reach broker {self.endpoint}: {_reason(exc)}", _reason(exc)))
                    return
                log.warning("%s: cannot connect to %s: %s (retry in %.1fs)", self.name,
                            self.endpoint, _reason(exc), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, s.reconnect_max_s)
                continue
            # cleared only now: reconnect() may close the old socket (which sets it)
            self._lost.clear()
            accepted_before = self.connects
            await self._lost.wait()
            if self._stopping:
                return
            if self.connects > accepted_before:
                delay = s.reconnect_min_s
            await asyncio.sleep(delay)
            delay = min(delay * 2, s.reconnect_max_s)

    async def _open_tcp(self) -> socket.socket:
        """Resolve and connect without blocking the loop; the first address that answers
        within ``connect_timeout_s`` wins. OSError (TimeoutError included) otherwise."""
        assert self._loop is not None
        loop, timeout_s = self._loop, self.session.connect_timeout_s
        async with asyncio.timeout(timeout_s):
            infos = await loop.getaddrinfo(self.endpoint.host, self.endpoint.port,
                                           type=socket.SOCK_STREAM)
        error: OSError = OSError(f"no address for {self.endpoint.host}")
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            try:
                async with asyncio.timeout(timeout_s):
                    await loop.sock_connect(sock, address)
            except OSError as exc:
                sock.close()
                error = exc
                continue
            sock.settimeout(timeout_s)   # what paho's TLS handshake then runs under
            return sock
        raise error

    # -- paho callbacks (all on the event loop's thread) ----------------------------------

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            self.refused = str(reason)
            log.warning("%s: broker %s refused the connection: %s", self.name, self.endpoint,
                        reason)
            if self._first is not None and not self._first.done():
                self._first.set_exception(ConnectError(
                    f"broker {self.endpoint} refused the connection: {reason}"))
            if self._on_refused_cb is not None:
                self._on_refused_cb(str(reason))
            return
        self.refused = None
        self._connected = True
        self._connected_at = time.monotonic()
        self.connects += 1
        log.info("%s: connected to %s (session present: %s)", self.name, self.endpoint,
                 getattr(flags, "session_present", "?"))
        if self._birth is not None:
            birth = self._birth()
            client.publish(birth.topic, birth.payload, qos=birth.qos, retain=birth.retain)
        if self._subscriptions:
            # "ready" waits for the SUBACK: a message published before it would be missed
            _, self._sub_mid = client.subscribe(list(self._subscriptions.items()))
        else:
            self._set_ready()
        if self._on_connect_cb is not None:
            self._on_connect_cb()

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int, reasons: Any,
                      properties: Any) -> None:
        if mid != self._sub_mid:
            return
        topics = list(self._subscriptions)
        self.refused_subscriptions = [t for t, rc in zip(topics, reasons, strict=False)
                                      if getattr(rc, "is_failure", False)]
        if self.refused_subscriptions:
            log.warning("%s: broker %s refused the subscription to %s", self.name,
                        self.endpoint, ", ".join(self.refused_subscriptions))
            if self._first is not None and not self._first.done():
                self._first.set_exception(SubscribeError(
                    f"broker {self.endpoint} refused the subscription to "
                    f"{', '.join(self.refused_subscriptions)}", self.refused_subscriptions))
        self._set_ready()

    def _set_ready(self) -> None:
        if not self._reading and self._sock is not None and self._loop is not None:
            # the socket was read for the CONNACK and SUBACK although reading is paused
            # (see _on_socket_open); from here the pause holds again
            self._loop.remove_reader(self._sock)
        self._ready.set()
        if self._first is not None and not self._first.done():
            self._first.set_result(None)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        was = self._connected
        self._set_down()
        if was and self._stopping:
            log.info("%s: disconnected from %s", self.name, self.endpoint)
        elif was:
            self.disconnects += 1
            log.warning("%s: disconnected from %s: %s", self.name, self.endpoint, reason)
            self._flap_check()
        self._lost.set()
        if self._on_disconnect_cb is not None:
            self._on_disconnect_cb()

    def _set_down(self) -> None:
        self._connected = False
        self._ready.clear()

    def _flap_check(self) -> None:
        """Dropped within FLAP_S of connecting, FLAPS times in FLAP_WINDOW_S: another
        client uses our client id (a broker drops the older of two)."""
        now = time.monotonic()
        if now - self._connected_at > FLAP_S:
            return
        self._flaps.append(now)
        while self._flaps and now - self._flaps[0] > FLAP_WINDOW_S:
            self._flaps.popleft()
        if len(self._flaps) >= FLAPS and not self.conflict_suspected:
            self.conflict_suspected = True
            log.error("%s: %s dropped this connection %d times within %.0f s of connecting:"
                      " another client is using the client id %r", self.name, self.endpoint,
                      len(self._flaps), FLAP_S, self.client_id)
            if self._on_conflict_cb is not None:
                self._on_conflict_cb()

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage
                    ) -> None:
        msg = _received(message.topic, bytes(message.payload), message.qos,
                        bool(message.retain), message.mid, self.connects)
        if self._on_message_cb is not None:
            self._on_message_cb(msg)
            return
        self._inbox.append(msg)
        self._inbox_ready.set()
        if 0 < self.session.inbound_max <= len(self._inbox):
            self.pause_reading()

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason: Any,
                    properties: Any) -> None:
        self.completed += 1
        if self._idle is not None and self.outstanding < self._idle_below:
            self._idle.set()
        fut = self._waiting.pop(mid, None)
        if fut is not None and not fut.done():
            if getattr(reason, "is_failure", False):
                fut.set_exception(PublishError("?", f"the broker refused it: {reason}"))
            else:
                fut.set_result(None)

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        assert self._loop is not None
        self._sock = sock
        # before CONNECT goes out, on every (re)connect: no Nagle delay on small messages
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # read even while paused, until the session is ready: a connection that dropped while the
        # caller was behind (a keep-alive timeout, a broker restart) must still come back
        self._loop.add_reader(sock, self._read)
        if self._misc is not None:
            self._misc.cancel()
        self._misc = self._loop.create_task(self._misc_loop(), name=f"{self.name}-misc")

    def _on_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._forget_socket(sock)
        if self._sock is sock:
            self._sock = None
        if self._misc is not None and self._misc is not asyncio.current_task():
            self._misc.cancel()
            self._misc = None
        self._lost.set()

    def _forget_current(self) -> None:
        if self._sock is not None:
            self._forget_socket(self._sock)
            self._sock = None

    def _forget_socket(self, sock: Any) -> None:
        if self._loop is None or self._loop.is_closed():
            return
        with contextlib.suppress(ValueError, OSError):  # already closed
            self._loop.remove_reader(sock)
            self._loop.remove_writer(sock)

    def _on_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        assert self._loop is not None
        self._loop.add_writer(sock, self._client.loop_write)

    def _on_unregister_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        assert self._loop is not None
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_writer(sock)

    def _read(self) -> None:
        # loop_read handles about one packet per call; keep reading what the last recv
        # brought, so one wake-up drains a burst (bounded, so writes still get their turn)
        client = self._client
        for _ in range(READ_BURST):
            rc = client.loop_read()
            if rc != paho.MQTT_ERR_SUCCESS or not self._reading or not client.buffered:
                break
        self._more_buffered()

    def _more_buffered(self) -> None:
        """Bytes taken from the socket are still to be read: the socket will not wake us
        for them, so read on at the loop's next turn (after other ready callbacks)."""
        if (self._client.buffered and self._reading and self._sock is not None
                and self._loop is not None):
            self._loop.call_soon(self._read_buffered)

    def _read_buffered(self) -> None:
        if self._reading:   # not paused since it was scheduled
            self._read()

    async def _misc_loop(self) -> None:
        # paho's keep-alive clock: a periodic tick, not synchronisation
        while self._client.loop_misc() == paho.MQTT_ERR_SUCCESS:  # noqa: ASYNC110
            await asyncio.sleep(1.0)

    # -- receiving ---------------------------------------------------------------------

    def pause_reading(self) -> None:
        """Stop reading the socket: the broker queues for us (and stops sending once our
        session's in-flight window is full)."""
        if self._reading:
            self._reading = False
            if self._sock is not None and self._loop is not None:
                self._loop.remove_reader(self._sock)

    def resume_reading(self) -> None:
        if not self._reading:
            self._reading = True
            if self._sock is not None and self._loop is not None:
                self._loop.add_reader(self._sock, self._read)
                self._more_buffered()

    @property
    def reading(self) -> bool:
        return self._reading

    @property
    def queued(self) -> int:
        """Messages waiting in the inbound queue."""
        return len(self._inbox)

    async def receive(self) -> Received:
        """The next message of the inbound queue (``Session.inbound_max``)."""
        while not self._inbox:
            self._inbox_ready.clear()
            await self._inbox_ready.wait()
        return self.take(1)[0]

    def take(self, limit: int) -> list[Received]:
        """Up to ``limit`` queued messages, oldest first, without waiting; reading resumes
        once the queue is down to half its size."""
        inbox = self._inbox
        batch = [inbox.popleft() for _ in range(min(limit, len(inbox)))]
        if (not self._reading and self.session.inbound_max
                and len(inbox) <= self.session.inbound_max // 2):
            self.resume_reading()
        return batch

    def ack(self, msg: Received) -> None:
        """Acknowledge a QoS 1 message under ``manual_ack`` (after the caller committed
        it). A message from an earlier connection is not acked: the broker redelivers it."""
        if msg.qos == 0 or msg.connection != self.connects or not self._connected:
            return
        self._client.ack(msg.mid, msg.qos)

    # -- publishing --------------------------------------------------------------------

    def subscribe(self, topic: str, qos: int = 1) -> None:
        """Subscribe now (if connected) and on every reconnect."""
        self._subscriptions[topic] = qos
        if self._connected:
            self._client.subscribe(topic, qos)

    @property
    def subscriptions(self) -> list[tuple[str, int]]:
        return list(self._subscriptions.items())

    def _accepts(self, rc: int, qos: int) -> bool:
        if rc == paho.MQTT_ERR_SUCCESS:
            return True
        return rc == paho.MQTT_ERR_NO_CONN and qos > 0 and self.session.queue_while_offline

    def _may_publish(self) -> bool:
        return self._connected or (self.session.queue_while_offline and
                                   self._runner is not None and not self._stopping)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool:
        """Hand a message to the client; False when it was not taken (the caller keeps
        it): the client's queue is full, or the link is down and the session does not
        queue while offline (QoS 0 is never queued)."""
        if not self._may_publish():
            self.dropped += 1
            return False
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if not self._accepts(info.rc, qos):
            self.dropped += 1
            return False
        self.published += 1
        self._write_now()
        return True

    def _write_now(self) -> None:
        """Send what was just queued now, not on the loop's next turn: under load a turn
        can take milliseconds, and an alarm or an ack should not wait for it."""
        if self._connected:
            self._client.loop_write()

    def send(self, msg: Message) -> bool:
        return self.publish(msg.topic, msg.payload, msg.qos, msg.retain)

    def publish_many(self, topic: str, payloads: Sequence[bytes], qos: int = 1) -> int:
        """Hand several messages for one topic to paho in a tight loop; returns how many
        were taken (it stops at the first refusal, so the caller keeps the rest in order)."""
        if not self._may_publish():
            return 0
        publish, accepts = self._client.publish, self._accepts
        for n, payload in enumerate(payloads):
            if not accepts(publish(topic, payload, qos=qos).rc, qos):
                self.published += n
                return n
        self.published += len(payloads)
        self._write_now()
        return len(payloads)

    async def publish_confirmed(self, topic: str, payload: bytes, *, qos: int = 1,
                                retain: bool = False, timeout_s: float = 10.0) -> None:
        """Publish and wait for the broker's PUBACK; PublishError on timeout or refusal."""
        if qos == 0:
            raise ValueError("publish_confirmed needs QoS 1 or 2")
        if self._loop is None or not self._may_publish():
            raise PublishError(topic, f"not connected to {self.endpoint}")
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if not self._accepts(info.rc, qos):
            raise PublishError(topic, paho.error_string(info.rc))
        self.published += 1
        if info.rc == paho.MQTT_ERR_SUCCESS and info.is_published():
            return
        fut: asyncio.Future[None] = self._loop.create_future()
        self._waiting[info.mid] = fut
        try:
            async with asyncio.timeout(timeout_s):
                await fut
        except TimeoutError as exc:
            raise PublishError(topic, f"no PUBACK within {timeout_s:g}s") from exc
        except PublishError as exc:
            raise PublishError(topic, exc.reason) from None
        finally:
            self._waiting.pop(info.mid, None)

    @property
    def outstanding(self) -> int:
        """Messages handed to the client that the broker has not acknowledged yet."""
        return self.published - self.completed

    async def drain(self, wait_s: float = 10.0, below: int = 1) -> bool:
        """Wait until fewer than ``below`` messages are outstanding (by default: none);
        False on timeout."""
        if self.outstanding < below:
            return True
        self._idle_below = below
        if self._idle is None:
            self._idle = asyncio.Event()
        self._idle.clear()
        try:
            async with asyncio.timeout(wait_s):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    # -- diagnostics -------------------------------------------------------------------

    @property
    def socket_calls(self) -> tuple[int, int]:
        """(recv, send) system calls made on this client's sockets so far."""
        return self._client.recv_calls, self._client.send_calls

    @property
    def tcp_nodelay(self) -> bool | None:
        """Whether the current socket has TCP_NODELAY (None when not connected)."""
        sock = self._sock
        if sock is None:
            return None
        return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


def _reason(exc: BaseException) -> str:
    """"Connection refused", not asyncio's "Connect call failed ('h', 1883)"."""
    if isinstance(exc, OSError) and not isinstance(exc, socket.gaierror) and exc.errno:
        return os.strerror(exc.errno)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def subscriptions(topics: Iterable[str], qos: int = 1) -> tuple[tuple[str, int], ...]:
    """``Session.subscriptions`` for topic filters that share one QoS (1 by default)."""
    return tuple((t, qos) for t in topics)
