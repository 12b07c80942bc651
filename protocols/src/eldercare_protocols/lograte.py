"""Warnings that survive a flood: at most ``burst`` lines per kind per ``interval_s``.

"Tolerant reader, loud logger" (one warning per bad payload) turns into a disk-filling
log and a CPU spent formatting when a device or a peer sends thousands of bad messages
a second. Every part that logs a rejected input (the gateway, the cloud ingest, the
serial dongle) goes through a :class:`RateLimitedLog`: the first ``burst`` warnings of a
kind in a window are logged as usual, the rest are counted, and the next line of that
kind after the window says how many were suppressed. Counters, not logs, are the
complete record.

The clock is injected (``time.monotonic`` by default) so tests step it by hand.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class _Window:
    start: float
    logged: int = 0
    suppressed: int = 0


class RateLimitedLog:
    def __init__(self, logger: logging.Logger, *, interval_s: float = 10.0, burst: int = 10,
                 clock: Callable[[], float] = time.monotonic, max_kinds: int = 256) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self.burst = burst
        self.clock = clock
        self.max_kinds = max_kinds
        self._windows: dict[str, _Window] = {}
        #: every line this object suppressed, all kinds
        self.suppressed_total = 0

    def warning(self, kind: str, msg: str, *args: Any, exc_info: Any = None) -> bool:
        return self.log(logging.WARNING, kind, msg, *args, exc_info=exc_info)

    def error(self, kind: str, msg: str, *args: Any, exc_info: Any = None) -> bool:
        return self.log(logging.ERROR, kind, msg, *args, exc_info=exc_info)

    def log(self, level: int, kind: str, msg: str, *args: Any, exc_info: Any = None) -> bool:
        """Log ``msg % args`` unless this kind is over its budget; True when logged."""
        now = self.clock()
        window = self._windows.get(kind)
        note = ""
        if window is None or now - window.start >= self.interval_s:
            if window is not None and window.suppressed:
                note = (f" ({window.suppressed} more like this suppressed in"
                        f" {now - window.start:.0f} s)")
            if window is None and len(self._windows) >= self.max_kinds:
                # bounded: kinds come from code, but never let input grow this dict
                self._windows.pop(next(iter(self._windows)))
            window = self._windows[kind] = _Window(now)
        if window.logged >= self.burst:
            window.suppressed += 1
            self.suppressed_total += 1
            return False
        window.logged += 1
        if not note:
            self.logger.log(level, msg, *args, exc_info=exc_info)
        elif args:
            self.logger.log(level, msg + "%s", *args, note, exc_info=exc_info)
        else:
            self.logger.log(level, "%s%s", msg, note, exc_info=exc_info)
        return True

    def flush(self) -> None:
        """Say how many lines each kind suppressed since its last line (at shutdown)."""
        for kind, window in self._windows.items():
            if window.suppressed:
                self.logger.warning("%d more %r warnings suppressed", window.suppressed, kind)
                window.suppressed = 0
