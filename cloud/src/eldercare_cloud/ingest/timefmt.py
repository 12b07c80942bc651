"""Timestamps in SQLite: ISO-8601 UTC text with microseconds, so text order is time order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_ZERO = timedelta(0)


#: "YYYY-MM-DDTHH:MM:SS" per second already written: the records of one batch share
#: their seconds, and the rest of the text is the microseconds (a third of the cost of
#: isoformat, three timestamps per uplink record; issue 14). Bounded: emptied when full
_SECONDS: dict[tuple[int, int, int, int, int, int], str] = {}
_SECONDS_MAX = 4096


def to_db(ts: datetime) -> str:
    """A naive datetime is taken as UTC (gateways and devices are told to send UTC).
    The text is ``ts.astimezone(UTC).isoformat(timespec="microseconds")``."""
    tz = ts.tzinfo
    if tz is not UTC:  # decoded timestamps carry pydantic's own UTC tzinfo object
        if tz is None:
            ts = ts.replace(tzinfo=UTC)
        elif ts.utcoffset() != _ZERO:
            ts = ts.astimezone(UTC)
    key = (ts.year, ts.month, ts.day, ts.hour, ts.minute, ts.second)
    prefix = _SECONDS.get(key)
    if prefix is None:
        if len(_SECONDS) >= _SECONDS_MAX:
            _SECONDS.clear()
        prefix = _SECONDS[key] = ts.replace(microsecond=0, tzinfo=None).isoformat()
    return f"{prefix}.{ts.microsecond:06d}+00:00"


def to_db_opt(ts: datetime | None) -> str | None:
    return None if ts is None else to_db(ts)


def from_db(text: str) -> datetime:
    return datetime.fromisoformat(text)


def from_db_opt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def utcnow() -> datetime:
    return datetime.now(UTC)
