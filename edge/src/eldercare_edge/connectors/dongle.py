"""The serial RF receiver dongle: one frame per line, read without a thread.

The port's file descriptor is watched by the event loop (``add_reader``); a line
that grows past the frame limit without an end is dropped and counted as corrupt.
A port that vanishes (USB unplugged, the far end of a pty closed) is reopened
after ``reopen_s``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import serial

from eldercare_edge.counters import Counters
from eldercare_edge.settings import SerialSettings
from eldercare_protocols.lograte import RateLimitedLog
from eldercare_protocols.serial_frame import MAX_FRAME

log = logging.getLogger(__name__)

MAX_LINE = MAX_FRAME * 4


class SerialDongle:
    def __init__(self, settings: SerialSettings, on_line: Callable[[bytes], None],
                 counters: Counters, warn: RateLimitedLog | None = None) -> None:
        self.settings = settings
        self._on_line = on_line
        self._counters = counters
        #: an unplugged dongle retries every reopen_s for as long as it is out: rate-limited
        self.warn = warn or RateLimitedLog(log)
        self._buf = bytearray()
        self.opened = asyncio.Event()

    @property
    def topic(self) -> str:
        return f"serial:{self.settings.port}"

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                port = serial.Serial(self.settings.port, self.settings.baud, timeout=0)
            except (serial.SerialException, OSError) as exc:
                self._counters.inc("serial_open_failed")
                self.warn.warning("dongle_open", "serial dongle %s cannot be opened: %s;"
                                  " retrying in %.1fs", self.settings.port, exc,
                                  self.settings.reopen_s)
                await asyncio.sleep(self.settings.reopen_s)
                continue
            lost: asyncio.Future[None] = loop.create_future()
            loop.add_reader(port.fileno(), self._readable, port, lost)
            self.opened.set()
            log.info("serial dongle open on %s at %d baud", self.settings.port,
                     self.settings.baud)
            try:
                await lost
            finally:
                loop.remove_reader(port.fileno())
                port.close()
                self.opened.clear()
                self._buf.clear()
            await asyncio.sleep(self.settings.reopen_s)

    def _readable(self, port: serial.Serial, lost: asyncio.Future[None]) -> None:
        try:
            data = port.read(port.in_waiting or 1)
        except (serial.SerialException, OSError) as exc:
            self.warn.warning("dongle_lost", "serial dongle %s lost: %s", self.settings.port,
                              exc)
            if not lost.done():
                lost.set_result(None)
            return
        if not data:
            return
        self._buf += data
        while True:
            end = self._buf.find(b"\n")
            if end < 0:
                break
            line = bytes(self._buf[:end + 1])
            del self._buf[:end + 1]
            if line.strip():
                self._on_line(line)
        if len(self._buf) > MAX_LINE:
            self._counters.inc("malformed_serial")
            self.warn.warning("dongle_overlong", "serial dongle %s: %d bytes without a line"
                              " end dropped: %r", self.settings.port, len(self._buf),
                              bytes(self._buf[:60]))
            self._buf.clear()
