"""The cloud's exception hierarchy."""

from __future__ import annotations


class CloudError(Exception):
    """Base for errors the cloud raises on purpose."""


class ConfigError(CloudError):
    """Settings that must not be used (placeholder secrets outside development, bad URLs)."""


class StorageError(CloudError):
    """The database refused or could not be migrated."""


class NotFoundError(CloudError):
    """No such record, or one the caller may not know exists (both answer 404)."""


class PermissionDeniedError(CloudError):
    """The caller's role may not do this at all (403)."""


class ConflictError(CloudError):
    """The request is valid but the record's state does not allow it now (409)."""


class InvalidRequestError(CloudError):
    """A well-formed request that names things that do not fit together (422)."""


class AuthenticationError(CloudError):
    """Missing, wrong or expired credentials (401)."""
