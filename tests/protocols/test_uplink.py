"""Gateway↔cloud contract: topics, gateway identity, lanes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from eldercare_protocols import uplink
from eldercare_protocols.errors import DecodeError
from eldercare_protocols.events import EventKind

NOW = datetime(2026, 11, 23, 3, 12, tzinfo=UTC)


def envelope(**kw: object) -> uplink.EventEnvelope:
    base: dict[str, object] = dict(id="gw-1-00000001", seq=1, gateway_id="gw-1", gateway_ts=NOW,
                                   device_id="h1-btn", kind=EventKind.SOS)
    return uplink.EventEnvelope.model_validate(base | kw)


def test_topics() -> None:
    assert uplink.up_topic("gw-1", uplink.Up.EVENTS) == "ec/v1/gw-1/up/events"
    assert uplink.parse_up_topic("ec/v1/gw-1/up/telemetry") == ("gw-1", uplink.Up.TELEMETRY)
    assert uplink.parse_down_topic("ec/v1/gw-1/down/ack") == ("gw-1", uplink.Down.ACK)
    assert uplink.gateway_subscriptions("gw-1") == (
        "ec/v1/gw-1/down/ack", "ec/v1/gw-1/down/config", "ec/v1/gw-1/down/cmd")
    for bad in ("gw+1", "gw#", "a/b", ""):
        with pytest.raises(ValueError):
            uplink.up_topic(bad, uplink.Up.EVENTS)
    for t in ("ec/v1/gw-1/up/nope", "ec/v2/gw-1/up/events", "ec/v1/gw-1/down/events",
              "ec/v1/gw 1/up/events"):
        with pytest.raises(DecodeError):
            uplink.parse_up_topic(t)


def test_parsed_topics_are_cached_bounded_and_bad_ones_refused_every_time() -> None:
    """The cloud parses every uplink message's topic; the result is kept per topic (issue
    14). A bad topic is refused each time (never cached), and the cache stays bounded."""
    uplink._UP_TOPICS.clear()
    first = uplink.parse_up_topic("ec/v1/gw-1/up/events")
    assert uplink.parse_up_topic("ec/v1/gw-1/up/events") is first   # from the cache
    for _ in range(2):
        with pytest.raises(DecodeError, match="unknown uplink channel"):
            uplink.parse_up_topic("ec/v1/gw-1/up/nope")
    assert list(uplink._UP_TOPICS) == ["ec/v1/gw-1/up/events"]
    for i in range(uplink._TOPIC_CACHE_MAX + 10):
        assert uplink.parse_up_topic(f"ec/v1/gw-{i}/up/state") == (f"gw-{i}", uplink.Up.STATE)
    assert len(uplink._UP_TOPICS) <= uplink._TOPIC_CACHE_MAX


def test_lanes() -> None:
    assert envelope().lane is uplink.Lane.ALARM
    assert envelope(test=True).lane is uplink.Lane.EVENT
    assert envelope(kind=EventKind.DOOR_OPEN).lane is uplink.Lane.EVENT


def test_a_gateway_cannot_speak_for_another() -> None:
    payload = uplink.encode(envelope(gateway_id="gw-2"))
    with pytest.raises(DecodeError, match="names gateway 'gw-2'"):
        uplink.decode_uplink("ec/v1/gw-1/up/events", payload)


def test_decode_each_record_type() -> None:
    gw, msg = uplink.decode_uplink("ec/v1/gw-1/up/events", uplink.encode(envelope()))
    assert gw == "gw-1" and isinstance(msg, uplink.EventEnvelope)
    gap = uplink.GapRecord(id="gw-1-00000002", seq=2, gateway_id="gw-1", gateway_ts=NOW,
                           dropped=10, first_seq=1, last_seq=10, oldest_ts=NOW, newest_ts=NOW)
    assert uplink.decode_uplink("ec/v1/gw-1/up/events", uplink.encode(gap))[1] == gap


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"type": "mystery", "id": "x"}, "unknown record type"),
        ({"type": "event", "id": "short"}, "invalid EventEnvelope"),
        ({"type": "gap", "id": "gw-1-00000009", "seq": 1}, "invalid GapRecord"),
    ],
)
def test_bad_records(payload: dict[str, object], reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        uplink.decode_uplink("ec/v1/gw-1/up/events", json.dumps(payload).encode())


def test_config_defaults_are_safe() -> None:
    cfg = uplink.GatewayConfig(gateway_id="gw-1", version=0)
    assert cfg.sms_timeout_s == 60
    assert cfg.routine.wake_by == "10:00" and cfg.routine.timezone == "Asia/Shanghai"
    with pytest.raises(ValueError):
        uplink.Routine(wake_by="25:00")
