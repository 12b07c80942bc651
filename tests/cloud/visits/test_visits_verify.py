"""The visit rules on their own: device corroboration in the widened window, minimum
length, the ordered window, and how each fact was verified."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from eldercare_cloud.visits.verify import Evidence, Flag, Method, verify

T = datetime(2025, 3, 4, 1, 30, tzinfo=UTC)
WINDOW = (T - timedelta(minutes=30), T + timedelta(hours=3))


def judge(minutes: float, evidence: list[Evidence], *, start: datetime = T,
          method: Method = Method.BUTTON, position: bool = False) -> tuple[Flag, ...]:
    return verify(check_in=start, check_out=start + timedelta(minutes=minutes),
                  check_in_method=method, check_out_method=method, window_start=WINDOW[0],
                  window_end=WINDOW[1], min_minutes=60, evidence=evidence,
                  phone_position=position).flags


def test_a_door_just_before_the_check_in_corroborates() -> None:
    assert judge(90, [Evidence("door_open", T - timedelta(minutes=9))]) == ()
    assert judge(90, [Evidence("motion", T + timedelta(minutes=99))]) == ()


def test_events_outside_the_slack_do_not() -> None:
    far = [Evidence("door_open", T - timedelta(minutes=11)),
           Evidence("motion", T + timedelta(minutes=101))]
    assert judge(90, far) == (Flag.NO_DEVICE_EVIDENCE,)


def test_too_short_and_outside_the_window_are_flagged_together() -> None:
    late = WINDOW[1] + timedelta(minutes=31)
    flags = judge(20, [Evidence("door_close", late)], start=late)
    assert flags == (Flag.TOO_SHORT, Flag.OUTSIDE_WINDOW)


def test_how_each_fact_was_verified() -> None:
    door = [Evidence("door_open", T)]
    button = verify(check_in=T, check_out=T + timedelta(hours=1), check_in_method=Method.BUTTON,
                    check_out_method=Method.PHONE, window_start=WINDOW[0],
                    window_end=WINDOW[1], min_minutes=60, evidence=door, phone_position=False)
    assert button.verified and button.door_events == 1 and button.duration_min == 60.0
    assert (button.how["start"], button.how["end"], button.how["location"]) == (
        "button", "phone", "home_button")
    phone = verify(check_in=T, check_out=T + timedelta(hours=1), check_in_method=Method.PHONE,
                   check_out_method=Method.PHONE, window_start=WINDOW[0], window_end=WINDOW[1],
                   min_minutes=60, evidence=[], phone_position=True)
    assert not phone.verified and phone.how["location"] == "phone_position"
    assert phone.how["corroboration"] == "none"
