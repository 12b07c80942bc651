"""A battery that drains with time and with every radio transmission."""

from __future__ import annotations

from dataclasses import dataclass

#: days a fresh battery lasts with the radio idle (coin cell / AA pack, typical)
DEFAULT_LIFE_DAYS = 540.0
#: percent one transmission costs: waking the radio is the expensive part
DEFAULT_TX_COST = 0.0004


@dataclass
class Battery:
    level: float = 100.0
    life_days: float = DEFAULT_LIFE_DAYS
    tx_cost: float = DEFAULT_TX_COST
    #: percent below which the device reports battery_low (the catalogue's normal_low)
    low_threshold: float = 20.0
    #: a sink that drains faster than life_days allows (a scenario's "battery dies")
    extra_per_s: float = 0.0
    low_reported: bool = False
    _last: float | None = None

    @property
    def dead(self) -> bool:
        return self.level <= 0.0

    @property
    def low(self) -> bool:
        return self.reported < self.low_threshold

    def elapse(self, sim_now: float) -> None:
        """Drain for the simulated time since the last call."""
        if self._last is None:
            self._last = sim_now
            return
        dt = max(0.0, sim_now - self._last)
        self._last = sim_now
        per_s = 100.0 / (self.life_days * 86400.0) + self.extra_per_s
        self.level = max(0.0, self.level - per_s * dt)

    def transmit(self) -> None:
        self.level = max(0.0, self.level - self.tx_cost)

    def set_level(self, level: float, sim_now: float) -> None:
        self.level = max(0.0, min(100.0, level))
        self._last = sim_now
        if not self.low:
            self.low_reported = False

    def take_low_edge(self) -> bool:
        """True exactly once each time the level falls below the threshold."""
        if self.low and not self.low_reported:
            self.low_reported = True
            return True
        return False

    @property
    def reported(self) -> float:
        return round(self.level, 1)
