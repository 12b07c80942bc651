"""Positions, distances and routes for the GPS wristband."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

EARTH_R = 6_371_000.0

#: an old-town neighbourhood in Hangzhou; homes are scattered around it
CITY_CENTRE = (30.2590, 120.1690)


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    dlat, dlon = lat2 - lat1, lon2 - lon1
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_R * math.asin(math.sqrt(h))


def offset(origin: tuple[float, float], north_m: float, east_m: float) -> tuple[float, float]:
    lat, lon = origin
    dlat = north_m / EARTH_R
    dlon = east_m / (EARTH_R * math.cos(math.radians(lat)))
    return lat + math.degrees(dlat), lon + math.degrees(dlon)


def home_position(rng: random.Random) -> tuple[float, float]:
    return offset(CITY_CENTRE, rng.uniform(-3000, 3000), rng.uniform(-3000, 3000))


@dataclass
class Route:
    """Waypoints walked at a constant pace, there and (optionally) back."""

    points: list[tuple[float, float]]
    speed_mps: float = 0.9

    @classmethod
    def errand(cls, home: tuple[float, float], rng: random.Random, radius_m: float) -> Route:
        """A walk to the market and back that stays inside the geofence."""
        bearing = rng.uniform(0, 2 * math.pi)
        far = rng.uniform(0.3, 0.7) * radius_m
        mid = offset(home, far * 0.5 * math.cos(bearing + 0.3), far * 0.5 * math.sin(bearing + 0.3))
        end = offset(home, far * math.cos(bearing), far * math.sin(bearing))
        return cls([home, mid, end, mid, home])

    @classmethod
    def wander(cls, home: tuple[float, float], rng: random.Random, radius_m: float) -> Route:
        """A walk that leaves the geofence and keeps going (a person who got lost)."""
        bearing = rng.uniform(0, 2 * math.pi)
        pts = [home]
        for step in range(1, 7):
            dist = radius_m * 0.45 * step
            wobble = rng.uniform(-0.25, 0.25)
            pts.append(offset(home, dist * math.cos(bearing + wobble),
                              dist * math.sin(bearing + wobble)))
        return cls(pts, speed_mps=0.8)

    def length_m(self) -> float:
        return sum(distance_m(a, b) for a, b in zip(self.points, self.points[1:], strict=False))

    def position(self, elapsed_s: float) -> tuple[float, float]:
        """Where the walker is after ``elapsed_s``; the last point once the route is done."""
        left = elapsed_s * self.speed_mps
        for a, b in zip(self.points, self.points[1:], strict=False):
            seg = distance_m(a, b)
            if left <= seg and seg > 0:
                f = left / seg
                return a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f
            left -= seg
        return self.points[-1]

    def duration_s(self) -> float:
        return self.length_m() / self.speed_mps
