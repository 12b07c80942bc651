"""A simulated GPS SOS watch: the common "3G" watch protocol over TCP to the cloud.

Such a watch has its own SIM card and talks to a server directly: ``LK`` heartbeats with
its battery, ``UD`` positions, and ``AL`` alarms (the SOS key, a fall, the strap taken
off) that it repeats until the server answers ``AL``. Frames come from
:mod:`eldercare_protocols.watch`, the same codec the cloud decodes them with.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType

from eldercare_protocols import watch
from eldercare_protocols.events import EventKind
from eldercare_sim.errors import SimError

#: the status-word bit of each alarm the watch can raise
ALARM_BIT = {kind: bit for bit, kind in watch.ALARM_BITS}


@dataclass
class SimWatch:
    host: str
    port: int
    watch_id: str
    vendor: str = "3G"
    battery: int = 87
    lat: float = 30.2741
    lon: float = 120.1551
    #: how long to wait for the server's answer to an LK or AL
    reply_timeout_s: float = 5.0
    replies: list[bytes] = field(default_factory=list)
    #: the last frame sent (a scenario's ``resend`` sends it again, byte for byte)
    last_sent: bytes | None = None
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> SimWatch:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.wait_closed()

    async def send_raw(self, data: bytes) -> None:
        if self._writer is None:
            raise SimError("the watch is not connected")
        self.last_sent = data
        self._writer.write(data)
        await self._writer.drain()

    async def _exchange(self, content: str) -> bytes:
        await self.send_raw(watch.encode(self.vendor, self.watch_id, content))
        return await self.read_reply()

    async def read_reply(self) -> bytes:
        """One frame from the server; b"" when it closed the connection."""
        if self._reader is None:
            raise SimError("the watch is not connected")
        try:
            async with asyncio.timeout(self.reply_timeout_s):
                data = await self._reader.readuntil(b"]")
        except asyncio.IncompleteReadError as exc:
            return exc.partial
        except TimeoutError as exc:
            raise SimError(f"no answer from the server in {self.reply_timeout_s:g} s") from exc
        self.replies.append(data)
        return data

    async def link(self, steps: int = 0) -> bytes:
        """An LK heartbeat; returns the server's answer."""
        return await self._exchange(f"LK,{steps},0,{self.battery}")

    def _position(self, ts: datetime, status: int, fix: bool) -> str:
        t = ts.astimezone(UTC)
        return ",".join([
            t.strftime("%d%m%y"), t.strftime("%H%M%S"), "A" if fix else "V",
            f"{abs(self.lat):.6f}", "N" if self.lat >= 0 else "S",
            f"{abs(self.lon):.6f}", "E" if self.lon >= 0 else "W",
            "0.00", "0.0", "12", "7", "80", str(self.battery), "1024", "0", f"{status:08X}",
            "1", "1", "460", "0", "9360", "4082", "131"])

    async def position(self, ts: datetime, *, fix: bool = True) -> None:
        """A UD position report (the server does not answer these)."""
        await self.send_raw(watch.encode(self.vendor, self.watch_id,
                                         "UD," + self._position(ts, 0, fix)))

    async def alarm(self, ts: datetime, *kinds: EventKind, fix: bool = True) -> bytes:
        """An AL frame with these alarm bits (SOS key, fall, strap removed, …); returns the
        server's answer (b"" if it closed the connection instead)."""
        status = 0
        for kind in kinds or (EventKind.SOS,):
            status |= 1 << ALARM_BIT[kind]
        return await self._exchange("AL," + self._position(ts, status, fix))
