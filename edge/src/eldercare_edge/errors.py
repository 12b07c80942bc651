"""The gateway's own exceptions: small, and each carries what an installer needs to act."""

from __future__ import annotations


class EdgeError(Exception):
    """Base class for everything this package raises on purpose."""


class SettingsError(EdgeError):
    """The gateway's settings file or environment cannot run a gateway."""


class OutboxError(EdgeError):
    """The outbox database cannot be opened or written."""


class ModemError(EdgeError):
    """The GSM modem refused or failed an AT command.

    ``code`` is the ``+CMS ERROR`` number when the modem gave one; ``transient``
    says whether trying again later may succeed (network congestion) or a person
    must act (no SIM card).
    """

    def __init__(self, reason: str, *, code: int | None = None, transient: bool = False):
        self.reason = reason
        self.code = code
        self.transient = transient
        super().__init__(reason if code is None else f"{reason} (+CMS ERROR: {code})")


class TransportError(EdgeError):
    """A broker or serial port the gateway depends on cannot be reached or configured."""
