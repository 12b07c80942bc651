"""Every frame of Traccar's watch-protocol decoder test (the fixture keeps Traccar's
attribution) decodes here: positions with Traccar's sign rules, link frames with 0, 1 or
3 fields, vital signs as readings, TKQ acknowledged, the ZJ variant with its frame index,
and the lengths real watches declare (often not the content's length)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from eldercare_protocols import watch
from eldercare_protocols.events import EventKind

FIXTURE = Path(__file__).parent / "fixtures" / "traccar_watch_frames.txt"
FRAMES = [line.split(" => ")[0] for line in FIXTURE.read_text().splitlines()
          if line.startswith("[")]

P = "position"
# one row per fixture line, in order: ("position", time, valid, lat, lon, alarm kinds)
# or (kind of frame, the canonical kinds, the readings)
EXPECTED: list[tuple[object, ...]] = [
    (P, "2022-03-22T05:51:05", True, 22.76116, 114.36019, ()),
    ("vitals", {"temperature": 35.29}),
    (P, "2022-03-23T08:21:38", True, 59.55285, 16.66185, ()),
    (P, "2021-10-25T22:34:08", True, 41.46500, -81.53128, ()),
    (P, "2021-06-30T13:51:01", True, 32.16265, 34.88875, ()),
    (P, "2020-11-25T08:18:21", False, 0.0, 0.0, (EventKind.STRAP_REMOVED,)),
    (P, "2020-07-10T09:42:02", False, 0.0, 0.0, ()),
    (P, "2019-12-27T09:47:44", False, 0.0, 0.0, (EventKind.SOS,)),
    (P, "2019-10-16T13:49:38", True, 43.37337, -71.15762, ()),
    (P, "2018-04-04T05:21:56", True, 22.53621, 113.93867, (EventKind.STRAP_REMOVED,)),
    (P, "2017-08-15T13:21:15", False, 28.43514, -81.35433, ()),
    ("vitals", {"systolic": 120.0, "diastolic": 79.0, "heart_rate": 73.0}),
    ("vitals", {"systolic": 109.0, "diastolic": 68.0}),
    (P, "2017-08-23T09:53:46", True, 47.08395, 15.48218, (EventKind.FALL,)),
    (P, "2017-05-17T13:38:11", False, 18.51220, 73.77503, ()),
    (P, "2017-01-12T14:56:02", False, 40.05841, -76.33662, ()),
    (P, "2017-01-03T16:11:29", False, 52.74545, 0.36951, ()),
    (P, "2016-10-24T08:16:22", False, 9.95186, -84.14221, ()),
    (P, "2016-07-21T23:16:01", False, -33.48037, -70.76307, ()),
    (P, "2016-03-12T14:06:10", False, 48.77905, 9.15747, ()),
    (P, "2016-03-12T14:04:44", True, 48.77905, 9.15747, ()),
    ("link", None),
    (P, "2016-01-11T11:36:39", False, -16.47906, 68.11907, ()),
    (P, "2016-01-10T15:37:23", True, 38.0, -9.0, ()),
    ("ack", None),
    (P, "2015-10-30T08:48:40", False, 45.85310, 14.62249, ()),
    ("link", None),
    ("link", 100.0),
    (P, "2014-04-22T13:46:52", True, 22.57171, 113.86140, ()),
    (P, "2014-04-22T13:46:52", True, 22.57171, 113.86140, ()),
    (P, "2014-04-22T13:46:52", True, 22.57171, 113.86140, ()),
    ("vitals", {"heart_rate": 72.0}),
    ("vitals", {}),
    ("vitals", {"heart_rate": 71.0}),
    (P, "2018-03-07T02:08:27", False, 0.0, 0.0, ()),
    (P, "2020-01-01T02:59:46", False, 0.0, 0.0, ()),
]


def test_the_fixture_is_complete() -> None:
    # the brief said 37; the file as copied holds 36 frames
    assert len(FRAMES) == 36 == len(EXPECTED)


@pytest.mark.parametrize(("raw", "expected"), list(zip(FRAMES, EXPECTED, strict=True)),
                         ids=[f"{i:02d}-{f.split('*')[-1].split(',')[0]}"
                              for i, f in enumerate(FRAMES)])
def test_every_traccar_frame_decodes(raw: str, expected: tuple[object, ...]) -> None:
    frame = watch.FrameReader().feed(raw.encode())[0]
    assert watch.encode_frame(frame).endswith(frame.content.encode() + b"]")
    events = watch.to_canonical(frame, "w1")
    kind = expected[0]
    if kind == P:
        _, ts, valid, lat, lon, alarms = expected
        pos = watch.position(frame)
        assert pos.ts == datetime.fromisoformat(str(ts)).replace(tzinfo=UTC)
        assert pos.valid is valid
        assert (round(pos.lat, 5), round(pos.lon, 5)) == (lat, lon)
        assert tuple(e.kind for e in events if e.kind is not EventKind.LOCATION) == alarms
        # a position event only for a valid fix
        assert any(e.kind is EventKind.LOCATION for e in events) is valid
        if watch.is_alarm_type(frame.type):
            assert watch.reply(frame) is not None and b"*AL]" in (watch.reply(frame) or b"")
        else:
            assert watch.reply(frame) is None
    elif kind == "vitals":
        assert [e.data for e in events] == ([expected[1]] if expected[1] else [])
        assert all(e.kind is EventKind.VITALS for e in events)
        assert watch.reply(frame) == watch.encode(frame.vendor, frame.watch_id, frame.type,
                                                  frame.index)
    elif kind == "link":
        [hb] = events
        assert hb.kind is EventKind.HEARTBEAT
        assert hb.data == ({"battery": expected[1]} if expected[1] is not None else {})
        assert watch.reply(frame) == watch.encode(frame.vendor, frame.watch_id, "LK")
    else:
        assert events == []
        assert watch.reply(frame) == b"[3G*8800000015*0003*TKQ]"


def test_the_values_traccar_asserts() -> None:
    chile = watch.position(watch.parse_frame(FRAMES[18].encode()))
    assert (chile.ts, chile.valid, round(chile.lat, 5), round(chile.lon, 5)) == (
        datetime(2016, 7, 21, 23, 16, 1, tzinfo=UTC), False, -33.48037, -70.76307)
    shenzhen = watch.position(watch.parse_frame(FRAMES[28].encode()))
    assert (shenzhen.ts, shenzhen.valid, round(shenzhen.lat, 5), round(shenzhen.lon, 5)) == (
        datetime(2014, 4, 22, 13, 46, 52, tzinfo=UTC), True, 22.57171, 113.86140)


def test_zj_frames_carry_an_index_that_the_reply_echoes() -> None:
    frame = watch.parse_frame(FRAMES[9].encode())
    assert (frame.vendor, frame.watch_id, frame.index, frame.type) == (
        "ZJ", "014111001332708", "0075", "AL")
    assert watch.reply(frame) == b"[ZJ*014111001332708*0075*0002*AL]"
    assert watch.parse_frame(watch.encode_frame(frame)) == frame


def test_lengths_as_real_watches_declare_them() -> None:
    """Traccar ends a frame at its ``]``: a declared length that is not the content's is
    kept (and counted by the listener), a length that is not 4 hex digits is refused."""
    link = watch.parse_frame(FRAMES[21].encode())      # declares 9 bytes for 8
    assert link.declared_length == 9 and link.type == "LK"
    assert watch.parse_frame(FRAMES[0].encode()).declared_length is None
    for bad in (b"[3G*8800000015*9*LK]", b"[3G*8800000015*00G2*LK]", b"[3G*8800000015*LK]"):
        with pytest.raises(watch.DecodeError):
            watch.parse_frame(bad)


def test_a_resent_alarm_has_the_same_key_and_a_new_alarm_another() -> None:
    al = watch.parse_frame(FRAMES[7].encode())
    assert watch.alarm_key(al) == "8809008845-271219094744-00010000"
    assert watch.alarm_key(watch.parse_frame(FRAMES[7].encode())) == watch.alarm_key(al)
    later = FRAMES[7].replace("094744", "094802")
    assert watch.alarm_key(watch.parse_frame(later.encode())) != watch.alarm_key(al)
    assert watch.alarm_key(watch.parse_frame(FRAMES[0].encode())) is None
