"""The cloud's exception hierarchy."""

from __future__ import annotations


class CloudError(Exception):
    """Base for errors the cloud raises on purpose.

    ``code`` is the stable, machine-readable reason the API returns beside the English
    ``detail`` (``{"detail": ..., "code": ...}``): the console and the phone page show
    their own zh-CN / English text for it (``errors.<code>`` in dashboards/shared/i18n),
    never the server's English sentence. Each class has a default; a raise site may name
    a more precise one."""

    code = "error"

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class ConfigError(CloudError):
    """Settings that must not be used (placeholder secrets outside development, bad URLs)."""

    code = "config"


class StorageError(CloudError):
    """The database refused or could not be migrated."""

    code = "storage"


class NotFoundError(CloudError):
    """No such record, or one the caller may not know exists (both answer 404)."""

    code = "not_found"


class PermissionDeniedError(CloudError):
    """The caller's role may not do this at all (403)."""

    code = "forbidden"


class ConflictError(CloudError):
    """The request is valid but the record's state does not allow it now (409)."""

    code = "conflict"


class InvalidRequestError(CloudError):
    """A well-formed request that names things that do not fit together (422)."""

    code = "invalid"


class AuthenticationError(CloudError):
    """Missing, wrong or expired credentials (401)."""

    code = "unauthenticated"


class ThrottledError(CloudError):
    """Too many attempts: try again after ``retry_after_s`` (429, with Retry-After)."""

    code = "throttled"

    def __init__(self, message: str, *, retry_after_s: float, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after_s = retry_after_s
