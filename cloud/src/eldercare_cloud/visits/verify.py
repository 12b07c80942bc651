"""How a visit is judged: pure functions, no I/O, so the rules read top to bottom.

A visit is *verified* when the home's devices corroborate it: the door contact or a
motion sensor reported something in the visit window (widened by ``SLACK`` on both
sides, because the door opens before the worker presses the button). A check-in or
check-out on the phone alone is accepted as the second method but is never counted as
device corroboration. Everything else is a flag for a person to review, never a silent
pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

#: how far outside [check-in, check-out] a door or motion event still corroborates
SLACK = timedelta(minutes=10)
#: how far outside the ordered window a visit may start or end before it is flagged
WINDOW_GRACE = timedelta(minutes=30)


class Flag(StrEnum):
    NO_DEVICE_EVIDENCE = "no_device_evidence"
    TOO_SHORT = "too_short"
    OUTSIDE_WINDOW = "outside_window"


class Method(StrEnum):
    BUTTON = "button"  # a long press of the home's green button
    PHONE = "phone"    # the worker's phone page (account or signed link)


@dataclass(frozen=True)
class Evidence:
    kind: str  # door_open, door_close, motion
    ts: datetime


@dataclass(frozen=True)
class Verdict:
    flags: tuple[Flag, ...]
    duration_min: float
    door_events: int
    motion_events: int
    #: fact → how it was verified (the EVV "how")
    how: dict[str, str]

    @property
    def verified(self) -> bool:
        return not self.flags


def verify(*, check_in: datetime, check_out: datetime, check_in_method: Method,
           check_out_method: Method, window_start: datetime, window_end: datetime,
           min_minutes: int, evidence: Sequence[Evidence],
           phone_position: bool) -> Verdict:
    lo, hi = check_in - SLACK, check_out + SLACK
    seen = [e for e in evidence if lo <= e.ts <= hi]
    doors = sum(1 for e in seen if e.kind.startswith("door"))
    motions = sum(1 for e in seen if e.kind == "motion")
    duration = (check_out - check_in).total_seconds() / 60.0
    flags: list[Flag] = []
    if doors + motions == 0:
        flags.append(Flag.NO_DEVICE_EVIDENCE)
    if duration < min_minutes:
        flags.append(Flag.TOO_SHORT)
    if check_in < window_start - WINDOW_GRACE or check_out > window_end + WINDOW_GRACE:
        flags.append(Flag.OUTSIDE_WINDOW)
    button = Method.BUTTON in (check_in_method, check_out_method)
    where = ("home_button" if button else
             "phone_position" if phone_position else "unverified")
    how = {
        "service_type": "order",
        "recipient": "home_device" if button or doors + motions else "order",
        "date": check_in_method.value,
        "location": where,
        "provider": "worker_identity",
        "start": check_in_method.value,
        "end": check_out_method.value,
        "corroboration": (f"door:{doors},motion:{motions}" if doors + motions else "none"),
    }
    return Verdict(tuple(flags), round(duration, 1), doors, motions, how)
