"""A small exception hierarchy that carries the context needed to debug a device in the field."""

from __future__ import annotations


class ProtocolError(Exception):
    """Base class for everything this package raises on purpose."""


class DecodeError(ProtocolError):
    """Bytes from a device, a bridge or a peer that do not form a valid message.

    Decoders raise only this for bad input, so a transport loop can catch exactly
    one type, count it, log it with its topic and carry on.
    """

    def __init__(self, reason: str, *, topic: str | None = None, payload: bytes | None = None):
        self.reason = reason
        self.topic = topic
        self.payload = payload
        where = f" on {topic}" if topic else ""
        super().__init__(f"{reason}{where}")

    def preview(self, limit: int = 120) -> str:
        """A printable excerpt of the offending payload, for one log line."""
        if self.payload is None:
            return ""
        text = self.payload[:limit].decode("utf-8", errors="replace")
        return text + ("…" if len(self.payload) > limit else "")


class UnknownDeviceError(ProtocolError):
    """A device model or type that is not in the catalogue."""
