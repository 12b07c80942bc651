"""The gateway's two broker connections: the shared transport (``eldercare_transport``)
with the edge's settings.

The client runs paho on the gateway's event loop (no network thread): messages reach
the gateway on the loop's thread in arrival order, TCP_NODELAY is set on every
connection, and the link reconnects with capped backoff. What is the gateway's own:
a publish is refused while the link is down (the outbox keeps the record and the
forwarder resends it), the home link keeps a persistent session under a fixed client
id, and the retained "online" birth goes out first after every connect.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence

from eldercare_edge.errors import TransportError
from eldercare_edge.settings import BrokerSettings
from eldercare_transport import Endpoint, EndpointError, Message, MqttClient, Received, Session

log = logging.getLogger(__name__)

#: an outgoing message (the forwarder's records, the retained state, the Will)
Outgoing = Message

OnMessages = Callable[[list[tuple[str, bytes]]], None]


def endpoint(settings: BrokerSettings) -> Endpoint:
    """The broker of one settings section; TransportError when its TLS files are bad."""
    tls = settings.tls
    try:
        return Endpoint.parse(
            settings.url, username=settings.username,
            password=settings.password.get_secret_value() if settings.password else None,
            tls=settings.use_tls, ca_file=tls.ca_file if tls else None,
            cert_file=tls.cert_file if tls else None, key_file=tls.key_file if tls else None,
            tls_insecure=bool(tls and tls.insecure))
    except EndpointError as exc:
        raise TransportError(str(exc)) from exc


class MqttLink:
    """One broker connection. Callbacks run on the event loop.

    ``birth`` is published right after every (re)connect, before anything else, so the
    retained state is "online" before the first record.
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
        #: manual_ack: a QoS 1 message is PUBACKed by ack_through() once the receiver has
        #: stored it, not on receipt (a crash in between gets it redelivered). The n-th
        #: message handed to on_messages has token n; (token, message) wait here
        self._received = 0
        self._unacked: deque[tuple[int, Received]] = deque()
        # persistent: the broker keeps the session (subscriptions and the QoS 1 messages
        # that arrive while we are away) under this fixed client id
        session = Session(client_id, clean=not persistent, keepalive_s=settings.keepalive_s,
                          subscriptions=tuple((t, 1) for t in subscriptions), will=will,
                          reconnect_min_s=settings.reconnect_min_s,
                          reconnect_max_s=settings.reconnect_max_s, max_inflight=max_inflight,
                          max_queued=0, queue_while_offline=False, manual_ack=manual_ack)
        deliver: Callable[[Received], None] | None = None
        if on_messages is not None:
            handler = on_messages

            def deliver_one(m: Received) -> None:
                self._received += 1
                if manual_ack and m.qos > 0:
                    self._unacked.append((self._received, m))
                handler([(m.topic, m.payload)])
            deliver = deliver_one

        def conflict() -> None:
            log.error("%s: the client id %r is in use by another client: a second gateway "
                      "with the same gateway_id?", name, client_id)
            if on_conflict is not None:
                on_conflict()

        try:
            self.client = MqttClient(endpoint(settings), session, name=name,
                                     on_message=deliver, on_connect=on_connect,
                                     on_disconnect=on_disconnect, on_refused=on_refused,
                                     on_conflict=conflict, birth=birth)
        except EndpointError as exc:
            raise TransportError(f"{name}: {exc}") from exc

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        await self.client.start()

    async def wait_connected(self, within_s: float) -> bool:
        """Connected and subscribed (the SUBACK is in), or False after ``within_s``."""
        return await self.client.wait_connected(within_s)

    async def stop(self, final: Sequence[Outgoing] = (), flush_s: float = 3.0) -> None:
        """Publish ``final`` (e.g. a retained offline state), then disconnect cleanly."""
        await self.client.stop(final, flush_s)

    @property
    def connected(self) -> bool:
        return self.client.connected

    @property
    def client_id(self) -> str:
        return self.client.client_id

    @property
    def refused(self) -> str | None:
        """Why the broker last refused the connection (None once it accepted one)."""
        return self.client.refused

    @property
    def conflict_suspected(self) -> bool:
        """The broker keeps dropping us right after we connect: another client has our id."""
        return self.client.conflict_suspected

    @property
    def connects(self) -> int:
        return self.client.connects

    @property
    def disconnects(self) -> int:
        return self.client.disconnects

    def ack_through(self, token: int) -> None:
        """PUBACK every message up to the one with this token (see ``manual_ack``); one
        from a connection that is gone is not acked (the broker delivers it again)."""
        unacked = self._unacked
        while unacked and unacked[0][0] <= token:
            self.client.ack(unacked.popleft()[1])

    # ---------------------------------------------------------------- publishing

    def publish(self, msg: Outgoing) -> bool:
        """Hand a message to the client; False when not connected (the caller keeps it)."""
        return self.client.send(msg)

    def publish_many(self, topic: str, payloads: Sequence[bytes], qos: int = 1) -> int:
        """Hand several messages for one topic to the client in a tight loop; returns how
        many were taken (it stops at the first refusal, so the caller keeps the rest in
        order)."""
        return self.client.publish_many(topic, payloads, qos)
