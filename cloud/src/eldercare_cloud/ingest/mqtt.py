"""Ingest's MQTT connection: the shared transport (``eldercare_transport``) with the
cloud's options.

The client runs paho on the event loop (no network thread), so messages reach ingest on
the loop's thread in arrival order; ingest pauses reading when it falls behind
(backpressure onto the broker's queue instead of unbounded memory), and the client
reconnects with capped exponential backoff, re-subscribing each time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from eldercare_cloud.ingest.errors import PublishError
from eldercare_transport import Endpoint, MqttClient, Session
from eldercare_transport import PublishError as TransportPublishError

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

    def __repr__(self) -> str:
        return (f"MqttOptions(host={self.host!r}, port={self.port}, "
                f"client_id={self.client_id!r}, username={self.username!r}, password=***)")

    def endpoint(self) -> Endpoint:
        return Endpoint(self.host, self.port, self.tls, ca_file=self.tls_ca,
                        username=self.username, password=self.password)

    def session(self, subscriptions: list[tuple[str, int]]) -> Session:
        return Session(self.client_id, clean=self.clean_session, keepalive_s=self.keepalive_s,
                       subscriptions=tuple(subscriptions), reconnect_min_s=0.1,
                       reconnect_max_s=self.reconnect_max_s, max_inflight=self.max_inflight,
                       max_queued=self.max_queued)


class MqttConnection(MqttClient):
    """One MQTT client session; ``on_message(topic, payload, retain)`` on the event loop."""

    def __init__(self, options: MqttOptions, subscriptions: list[tuple[str, int]],
                 on_message: MessageHandler, name: str = "mqtt") -> None:
        self.options = options
        super().__init__(options.endpoint(), options.session(subscriptions), name=name,
                         on_message=lambda m: on_message(m.topic, m.payload, m.retain))

    async def publish_confirmed(self, topic: str, payload: bytes, *, qos: int = 1,
                                retain: bool = False, timeout_s: float = 10.0) -> None:
        """Publish and wait for the broker's PUBACK; PublishError on timeout or refusal."""
        try:
            await super().publish_confirmed(topic, payload, qos=qos, retain=retain,
                                            timeout_s=timeout_s)
        except TransportPublishError as exc:
            raise PublishError(topic, exc.reason) from exc
