"""The stored timestamp text: ISO-8601 UTC with microseconds, whatever the input's zone.

``to_db`` writes it from a per-second prefix cache (issue 14); the text must stay exactly
``astimezone(UTC).isoformat(timespec="microseconds")``, which text order and every
reader rely on.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from eldercare_cloud.ingest import timefmt
from eldercare_protocols.bounds import TS_MAX, TS_MIN

_DECODED = TypeAdapter(datetime)


def reference(ts: datetime) -> str:
    aware = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    return aware.isoformat(timespec="microseconds")


@given(st.datetimes(min_value=TS_MIN.replace(tzinfo=None) + timedelta(days=1),
                    max_value=TS_MAX.replace(tzinfo=None) - timedelta(days=1)),
       st.integers(min_value=-23 * 60, max_value=23 * 60), st.booleans())
def test_the_text_is_isoformat_in_utc_with_microseconds(
        naive: datetime, offset_min: int, decoded: bool) -> None:
    aware = naive.replace(tzinfo=timezone(timedelta(minutes=offset_min)))
    for ts in (naive, aware, aware.astimezone(UTC)):
        if decoded:   # as pydantic decodes it (its own tzinfo class)
            ts = _DECODED.validate_json(f'"{ts.isoformat()}"'.encode())
        assert timefmt.to_db(ts) == reference(ts)


def test_known_texts_and_a_bounded_cache() -> None:
    assert timefmt.to_db(datetime(2026, 11, 30, 3, 46, 3, tzinfo=UTC)) == \
        "2026-11-30T03:46:03.000000+00:00"
    assert timefmt.to_db(_DECODED.validate_json(b'"0001-01-02T00:00:00.000001+08:00"')) == \
        "0001-01-01T16:00:00.000001+00:00"
    assert timefmt.to_db(datetime(2026, 1, 1, 8, 0, 0, 5)) == "2026-01-01T08:00:00.000005+00:00"
    for s in range(timefmt._SECONDS_MAX + 10):
        timefmt.to_db(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=s))
    assert len(timefmt._SECONDS) <= timefmt._SECONDS_MAX
