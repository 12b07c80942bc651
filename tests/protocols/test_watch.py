"""The common "3G" watch protocol: frames, positions, alarm bits, replies, bad input."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eldercare_protocols import watch
from eldercare_protocols.errors import DecodeError
from eldercare_protocols.events import EventKind

# frames as these watches send them (the layout of the published watch-protocol test
# frames: date, time, fix, lat, N/S, lon, E/W, speed, course, altitude, satellites,
# signal, battery, steps, tumbles, status, then cell data)
_POS = ("220414,134652,A,22.571707,N,113.8613968,E,0.1,0.0,100,7,60,90,1000,50,{status},4,1,"
        "460,0,9360,4082,131,9360,4092,148")
LK = b"[3G*8800000015*000C*LK,50,100,87]"
UD = watch.encode("3G", "8800000015", "UD," + _POS.format(status="00000000"))
AL_SOS = watch.encode("SG", "8800000015", "AL," + _POS.format(status="00010000"))


def test_frames_parse_and_lengths_are_checked() -> None:
    f = watch.parse_frame(LK)
    assert (f.vendor, f.watch_id, f.type, f.fields) == ("3G", "8800000015", "LK",
                                                        ("50", "100", "87"))
    assert watch.encode_frame(f) == LK
    assert watch.parse_frame(b"[3G*8800000015*0002*LK]").fields == ()
    # a declared length that is not the content's is tolerated (real watches send them,
    # Traccar accepts them) and kept on the frame; one that is not 4 hex digits is not
    assert watch.parse_frame(b"[3G*8800000015*0003*LK]").declared_length == 3
    with pytest.raises(DecodeError, match="length"):
        watch.parse_frame(b"[3G*8800000015*003*LK]")
    assert watch.parse_frame(UD).type == "UD"
    assert watch.parse_frame(AL_SOS).vendor == "SG"


def test_heartbeat_position_and_replies() -> None:
    lk = watch.parse_frame(LK)
    [hb] = watch.to_canonical(lk, "8800000015")
    assert hb.kind is EventKind.HEARTBEAT and hb.data == {"battery": 87.0}
    assert watch.reply(lk) == b"[3G*8800000015*0002*LK]"
    ud = watch.parse_frame(UD)
    [loc] = watch.to_canonical(ud, "8800000015")
    assert loc.kind is EventKind.LOCATION and loc.source == "watch"
    assert loc.data == {"lat": 22.571707, "lon": 113.8613968}
    assert loc.ts == datetime(2014, 4, 22, 13, 46, 52, tzinfo=UTC)
    assert watch.reply(ud) is None


def test_sos_alarm_with_its_position_and_reply() -> None:
    al = watch.parse_frame(AL_SOS)
    events = watch.to_canonical(al, "8800000015")
    assert [e.kind for e in events] == [EventKind.SOS, EventKind.LOCATION]
    assert events[0].life_safety
    assert events[0].data == {"lat": 22.571707, "lon": 113.8613968, "position": "fix"}
    assert watch.reply(al) == b"[SG*8800000015*0002*AL]"


@pytest.mark.parametrize(("bit", "kind"), watch.ALARM_BITS)
def test_each_alarm_bit(bit: int, kind: EventKind) -> None:
    text = AL_SOS.decode().replace("00010000", f"{1 << bit:08X}")
    events = watch.to_canonical(watch.parse_frame(text.encode()), "w1")
    assert events[0].kind is kind


def test_alarm_without_fix_carries_the_last_known_position() -> None:
    last = watch.position(watch.parse_frame(UD))
    no_fix = AL_SOS.replace(b",A,", b",V,")
    events = watch.to_canonical(watch.parse_frame(no_fix), "w1", last)
    assert [e.kind for e in events] == [EventKind.SOS]       # no LOCATION without a fix
    assert events[0].data["position"] == "last_known"
    assert events[0].data["lat"] == 22.571707
    # no fix heard before: the coordinates the watch wrote, marked as no fix
    assert watch.to_canonical(watch.parse_frame(no_fix), "w1")[0].data == {
        "lat": 22.571707, "lon": 113.8613968, "position": "no_fix"}
    zero = no_fix.replace(b"22.571707", b"0.000000").replace(b"113.8613968", b"0.0000000")
    assert watch.to_canonical(watch.parse_frame(zero), "w1")[0].data == {}


def test_reader_splits_a_stream_and_refuses_garbage() -> None:
    r = watch.FrameReader()
    stream = LK + b"\r\n" + UD + AL_SOS
    frames = r.feed(stream[:10]) + r.feed(stream[10:100]) + r.feed(stream[100:])
    assert [f.type for f in frames] == ["LK", "UD", "AL"] and r.pending == 0
    for bad in (b"hello", b"[XX*8800000015*0002*LK]", b"[3G*abc*0002*LK]",
                b"[3G*8800000015*0002*,LK]", b"[3G*8800000015*zz*LK]", b"[\xff]"):
        with pytest.raises(DecodeError):
            watch.FrameReader().feed(bad)
    with pytest.raises(DecodeError, match="no frame end"):
        watch.FrameReader().feed(b"[3G*8800000015*0002*" + b"x" * 5000)


@pytest.mark.parametrize("content", [
    "UD,220414,134652,A,22.5,N",                                # truncated
    "UD,991399,134652,A,22.5,N,113.8,E",                        # no such date
    "UD,220414,134652,A,95.0,N,113.8,E",                        # latitude out of range
    "UD,220414,134652,A,nan,N,113.8,E",                         # not a number
    "UD,220414,134652,X,22.5,N,113.8,E",                        # fix flag
    "AL,220414,134652,A,22.5,N,113.8,E,0,0,0,0,0,900,0,0,1",     # battery 900
    "AL,220414,134652,A,22.5,N,113.8,E,0,0,0,0,0,90,0,0,ZZZZ",   # status word
    "LK,0,0,300",
])
def test_bad_fields_are_decode_errors(content: str) -> None:
    with pytest.raises(DecodeError):
        watch.to_canonical(watch.parse_frame(watch.encode("3G", "8800000015", content)), "w")


@given(st.binary(max_size=400))
@settings(max_examples=300)
def test_any_bytes_only_ever_raise_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        for f in watch.FrameReader().feed(data):
            watch.to_canonical(f, "w")


@given(st.text(alphabet="0123456789ANSEWV.,-", max_size=120))
@settings(max_examples=300)
def test_any_content_only_ever_raises_decode_error(content: str) -> None:
    with contextlib.suppress(DecodeError):
        frame = watch.parse_frame(watch.encode("3G", "8800000015", "AL," + content))
        watch.to_canonical(frame, "w")
