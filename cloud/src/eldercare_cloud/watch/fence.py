"""The resident's safe area around home, as a circle, with hysteresis.

A watch's fix outside the circle is one exit: nothing more is raised while the resident
stays out, and the fence re-arms only when a fix comes back inside by a margin (GPS
wanders by tens of metres, and a resident standing at the edge must not raise an alert
per report). Only valid fixes move the state; a fix older than the last one that moved it
is ignored (watches resend stored positions after a network gap).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

EARTH_RADIUS_M = 6_371_008.8
#: the re-arm margin: 10 % of the radius, at least 20 m, at most half the radius
MIN_MARGIN_M = 20.0


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine), good to well under a metre at fence scale."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def margin_m(radius_m: float) -> float:
    return min(max(MIN_MARGIN_M, 0.1 * radius_m), radius_m / 2)


@dataclass(frozen=True)
class FenceState:
    outside: bool
    #: the fix time that last moved the state
    fix_ts: datetime | None = None


@dataclass(frozen=True)
class Step:
    state: FenceState
    #: "exit", "return" or None (no change)
    change: str | None
    distance_m: float


def step(state: FenceState, lat: float, lon: float, fix_ts: datetime,
         home_lat: float, home_lon: float, radius_m: float) -> Step:
    d = distance_m(home_lat, home_lon, lat, lon)
    if state.fix_ts is not None and fix_ts <= state.fix_ts:
        return Step(state, None, d)
    if not state.outside and d > radius_m:
        return Step(FenceState(True, fix_ts), "exit", d)
    if state.outside and d <= radius_m - margin_m(radius_m):
        return Step(FenceState(False, fix_ts), "return", d)
    return Step(state, None, d)
