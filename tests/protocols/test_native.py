"""Native device protocol: topics, validation against the catalogue, clear errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from eldercare_protocols import native
from eldercare_protocols.errors import DecodeError
from eldercare_protocols.events import EventKind

TS = "2026-11-23T03:12:05Z"


def ev(**kw: object) -> bytes:
    body = {"v": 1, "seq": 1, "ts": TS, "type": "call_button", "kind": "sos"} | kw
    return json.dumps(body).encode()


def test_topics_round_trip() -> None:
    for ch in native.Channel:
        t = native.topic("h1-btn", ch)
        assert native.parse_topic(t) == ("h1-btn", ch)
    with pytest.raises(ValueError):
        native.topic("bad/id", native.Channel.EVENT)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (ev(kind="gas_alarm"), "does not emit"),
        (ev(type="toaster"), "unknown device type"),
        (ev(kind="explode"), "kind"),
        (ev(seq=-1), "seq"),
        (ev(v=2), "v"),
        (ev(extra_field=1), "extra"),
        (b"{", "not JSON"),
        (b"[]", "expected a JSON object"),
    ],
)
def test_bad_events_are_rejected_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        native.decode("eldercare/h1-btn/event", payload)
    assert reason.lower() in str(info.value).lower()
    assert info.value.topic == "eldercare/h1-btn/event"


def test_telemetry_ranges_come_from_the_catalogue() -> None:
    def tel(values: dict[str, float]) -> bytes:
        return json.dumps({"v": 1, "seq": 2, "ts": TS, "type": "vitals_monitor",
                           "kind": "vitals", "values": values}).encode()

    (event,) = native.decode_canonical("eldercare/v1/telemetry", tel({"heart_rate": 40}))
    assert event.kind is EventKind.VITALS and event.data == {"heart_rate": 40.0}
    with pytest.raises(DecodeError, match="heart_rate=400"):
        native.decode("eldercare/v1/telemetry", tel({"heart_rate": 400}))
    with pytest.raises(DecodeError, match="does not measure"):
        native.decode("eldercare/v1/telemetry", tel({"lel": 3}))


def test_state_needs_ts_and_type_when_online() -> None:
    with pytest.raises(DecodeError):
        native.decode("eldercare/x/state", b'{"v":1,"online":true,"reason":"boot"}')
    _, msg = native.decode("eldercare/x/state", native.will_payload())
    assert isinstance(msg, native.DeviceState) and not msg.online


def test_encode_decode_every_model() -> None:
    now = datetime(2026, 11, 23, 3, 12, tzinfo=UTC)
    msgs: list[tuple[native.Channel, native.NativeMessage]] = [
        (native.Channel.EVENT, native.DeviceEvent(seq=1, ts=now, type="door_contact",
                                                  kind=EventKind.DOOR_OPEN)),
        (native.Channel.TELEMETRY, native.DeviceTelemetry(seq=2, ts=now, type="gas_detector",
                                                          kind=EventKind.GAS_LEVEL,
                                                          values={"lel": 2.5})),
        (native.Channel.STATE, native.DeviceState(online=True, reason=native.StateReason.BOOT,
                                                  ts=now, type="door_contact", battery=99)),
        (native.Channel.CMD, native.DeviceCommand(id="c1", command="ping", ts=now)),
        (native.Channel.CMD_ACK, native.DeviceCommandAck(id="c1", ok=True, ts=now)),
    ]
    for ch, msg in msgs:
        dev, back = native.decode(native.topic("d1", ch), native.encode(msg))
        assert dev == "d1" and back == msg


def test_unknown_channel_and_prefix() -> None:
    for t in ("eldercare/d1/whatever", "other/d1/event", "eldercare/", "eldercare/bad id/event"):
        with pytest.raises(DecodeError):
            native.parse_topic(t)
