"""What the transport raises on purpose; each carries what the caller needs to say why."""

from __future__ import annotations


class TransportError(Exception):
    """Base class of the transport's own errors."""


class EndpointError(TransportError, ValueError):
    """A broker URL or TLS setting that cannot be used (raised before any I/O)."""


class ConnectError(TransportError):
    """The broker could not be reached, did not answer, or refused the session."""


class UnreachableError(ConnectError):
    """No TCP (or TLS) connection to the broker: down, wrong address, name unknown."""

    def __init__(self, message: str, reason: str) -> None:
        self.reason = reason
        super().__init__(message)


class SubscribeError(ConnectError):
    """The broker accepted the session but refused a subscription (an ACL said no)."""

    def __init__(self, message: str, topics: list[str]) -> None:
        self.topics = topics
        super().__init__(message)


class PublishError(TransportError):
    """A message the broker did not acknowledge in time, or refused (MQTT 5 reason)."""

    def __init__(self, topic: str, reason: str) -> None:
        self.topic = topic
        self.reason = reason
        super().__init__(f"publish to {topic} failed: {reason}")
