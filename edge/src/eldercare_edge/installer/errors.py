"""The installer tool's errors: each becomes one clear line and a non-zero exit code."""

from __future__ import annotations

from eldercare_edge.errors import EdgeError


class InstallerError(EdgeError):
    """Base for what the installer tool raises on purpose. ``exit_code`` is what the CLI
    returns: 1 for a failed operation, 2 for bad input, 3 for a missing login."""

    exit_code = 1


class UsageError(InstallerError):
    """Input the tool refuses before doing anything (bad ids, bad URLs, missing flags)."""

    exit_code = 2


class NotLoggedInError(InstallerError):
    """No stored token, or the cloud says it has expired."""

    exit_code = 3


class CloudRequestError(InstallerError):
    """The cloud refused a request or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class DeviceConfigError(InstallerError):
    """Writing settings over the serial cable failed; the device kept its old settings
    unless the message says otherwise."""
