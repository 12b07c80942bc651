"""Errors the ingest side raises on purpose (all are CloudErrors)."""

from __future__ import annotations

from eldercare_cloud.errors import CloudError


class IngestError(CloudError):
    """Base for ingest errors."""


class PublishError(IngestError):
    """A downlink message (config, command) was not acknowledged by the broker in time.

    The message may still be queued in the MQTT client and delivered after a reconnect;
    callers that must be sure republish (config is retained, so that is harmless).
    """

    def __init__(self, topic: str, reason: str) -> None:
        self.topic = topic
        self.reason = reason
        super().__init__(f"publish to {topic} failed: {reason}")


class RegistrationError(IngestError):
    """A gateway id that is invalid or already registered."""
