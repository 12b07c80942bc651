"""Timestamps in SQLite: ISO-8601 UTC text with microseconds, so text order is time order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_ZERO = timedelta(0)


def to_db(ts: datetime) -> str:
    """A naive datetime is taken as UTC (gateways and devices are told to send UTC)."""
    if ts.tzinfo is UTC:  # the common case (every model's timestamps), checked first
        return ts.isoformat(timespec="microseconds")
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    elif ts.utcoffset() != _ZERO:  # already UTC (any tzinfo object) is the common case
        ts = ts.astimezone(UTC)
    return ts.isoformat(timespec="microseconds")


def to_db_opt(ts: datetime | None) -> str | None:
    return None if ts is None else to_db(ts)


def from_db(text: str) -> datetime:
    return datetime.fromisoformat(text)


def from_db_opt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def utcnow() -> datetime:
    return datetime.now(UTC)
