"""Physiologically plausible vital signs for an elderly resident, through the day.

Readings follow a circadian curve (heart rate, temperature and blood pressure
lowest in the small hours, blood pressure surging after waking, glucose after
meals) with sensor noise, and can be pushed out of range on cue by an episode.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from enum import StrEnum


class Episode(StrEnum):
    BRADYCARDIA = "bradycardia"
    SPO2_DROP = "spo2_drop"
    HYPERTENSIVE_CRISIS = "hypertensive_crisis"
    TACHYCARDIA = "tachycardia"
    FEVER = "fever"


#: target values an episode pulls readings towards (and the fraction of the way per reading)
_EPISODE_TARGETS: dict[Episode, dict[str, tuple[float, float]]] = {
    Episode.BRADYCARDIA: {"heart_rate": (38.0, 3.0)},
    Episode.TACHYCARDIA: {"heart_rate": (138.0, 6.0)},
    Episode.SPO2_DROP: {"spo2": (84.0, 1.5), "respiration_rate": (26.0, 2.0)},
    Episode.HYPERTENSIVE_CRISIS: {"systolic": (198.0, 6.0), "diastolic": (122.0, 4.0),
                                  "heart_rate": (96.0, 4.0)},
    Episode.FEVER: {"body_temperature": (39.3, 0.2), "heart_rate": (104.0, 4.0)},
}


def _circadian(hour: float, low_hour: float) -> float:
    """-1 at ``low_hour``, +1 twelve hours later."""
    return -math.cos((hour - low_hour) / 24.0 * 2.0 * math.pi)


@dataclass
class Baseline:
    heart_rate: float = 70.0
    respiration_rate: float = 15.0
    spo2: float = 96.5
    systolic: float = 132.0
    diastolic: float = 80.0
    body_temperature: float = 36.5
    blood_glucose: float = 6.0

    @classmethod
    def for_resident(cls, rng: random.Random) -> Baseline:
        return cls(
            heart_rate=rng.uniform(62, 78),
            respiration_rate=rng.uniform(13, 17),
            spo2=rng.uniform(95, 98),
            systolic=rng.uniform(122, 145),
            diastolic=rng.uniform(72, 86),
            body_temperature=rng.uniform(36.2, 36.7),
            blood_glucose=rng.uniform(5.2, 6.8),
        )


class VitalsModel:
    def __init__(self, rng: random.Random, baseline: Baseline | None = None) -> None:
        self.rng = rng
        self.base = baseline or Baseline.for_resident(rng)
        self.episode: Episode | None = None
        self.episode_until: float = 0.0
        self._pull: dict[str, float] = {}

    def start_episode(self, episode: Episode, now: float, duration_s: float) -> None:
        self.episode = episode
        self.episode_until = now + duration_s
        self._pull = {}

    def end_episode(self) -> None:
        self.episode = None
        self._pull = {}

    def reading(self, local_hour: float, now: float, *, asleep: bool = False,
                hours_since_meal: float = 4.0, full: bool = True) -> dict[str, float]:
        if self.episode is not None and now >= self.episode_until:
            self.end_episode()
        b, g = self.base, self.rng.gauss
        day = _circadian(local_hour, low_hour=4.0)  # -1 at 04:00, +1 at 16:00
        # morning surge in blood pressure in the two hours after ~06:30
        surge = max(0.0, 1.0 - abs(local_hour - 7.5) / 1.5)
        values: dict[str, float] = {
            "heart_rate": b.heart_rate + 6 * day - (5 if asleep else 0) + g(0, 2.0),
            "respiration_rate": b.respiration_rate + 1.2 * day - (1.5 if asleep else 0)
            + g(0, 0.8),
            "spo2": b.spo2 - (0.8 if asleep else 0) + g(0, 0.5),
        }
        if full:
            values.update({
                "systolic": b.systolic + 7 * day + 12 * surge + g(0, 4),
                "diastolic": b.diastolic + 4 * day + 6 * surge + g(0, 3),
                "body_temperature": b.body_temperature + 0.35 * _circadian(local_hour, 4.5)
                + g(0, 0.08),
                "blood_glucose": b.blood_glucose
                + 2.8 * math.exp(-((hours_since_meal - 1.0) ** 2) / 0.8) + g(0, 0.25),
            })
        if self.episode is not None:
            for name, (target, noise) in _EPISODE_TARGETS[self.episode].items():
                if name not in values:
                    continue
                # ramp in over a few readings, as a real deterioration would
                frac = min(1.0, self._pull.get(name, 0.0) + 0.5)
                self._pull[name] = frac
                values[name] = values[name] + (target - values[name]) * frac + g(0, noise)
        values["spo2"] = min(100.0, values["spo2"])
        return {k: round(v, 1) for k, v in values.items()}
