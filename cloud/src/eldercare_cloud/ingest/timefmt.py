"""Timestamps in SQLite: ISO-8601 UTC text with microseconds, so text order is time order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_ZERO = timedelta(0)


def to_db(ts: datetime) -> str:
    """A naive datetime is taken as UTC (gateways and devices are told to send UTC)."""
    tz = ts.tzinfo
    if tz is not UTC:  # decoded timestamps carry pydantic's own UTC tzinfo object
        if tz is None:
            ts = ts.replace(tzinfo=UTC)
        elif ts.utcoffset() != _ZERO:
            ts = ts.astimezone(UTC)
    # the same text as isoformat(timespec="microseconds") (``+00:00`` for any UTC
    # tzinfo), a third cheaper without the keyword argument (three per uplink record),
    # which then writes microseconds unless they are zero
    return ts.isoformat() if ts.microsecond else ts.isoformat(timespec="microseconds")


def to_db_opt(ts: datetime | None) -> str | None:
    return None if ts is None else to_db(ts)


def from_db(text: str) -> datetime:
    return datetime.fromisoformat(text)


def from_db_opt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def utcnow() -> datetime:
    return datetime.now(UTC)
