"""Errors of the broker-security side (all are CloudErrors, so the API maps them)."""

from __future__ import annotations

from eldercare_cloud.errors import CloudError


class BrokerSecurityError(CloudError):
    """Base for broker account and access-control errors."""


class InvalidAccountError(BrokerSecurityError):
    """A username, client id or gateway id that must never reach the broker
    (MQTT wildcards or separators in it, empty, too long) or a password that is too weak."""


class BrokerUnavailableError(BrokerSecurityError):
    """The broker could not be reached, refused the admin login, or did not answer in time."""


class DynsecCommandError(BrokerSecurityError):
    """The dynamic-security plugin answered a command with an error."""

    def __init__(self, command: str, error: str) -> None:
        self.command = command
        self.error = error
        super().__init__(f"dynamic security refused {command}: {error}")


class AccountExistsError(DynsecCommandError):
    """createClient / createRole for a name the broker already has."""
