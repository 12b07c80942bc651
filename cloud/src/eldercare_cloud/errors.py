"""The cloud's exception hierarchy."""

from __future__ import annotations


class CloudError(Exception):
    """Base for errors the cloud raises on purpose."""


class ConfigError(CloudError):
    """Settings that must not be used (placeholder secrets outside development, bad URLs)."""


class StorageError(CloudError):
    """The database refused or could not be migrated."""
