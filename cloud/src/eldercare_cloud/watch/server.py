"""A TCP listener for GPS SOS watches speaking the common "3G" watch protocol.

Such watches have a SIM card and connect straight to a server, not to a home gateway.
Each connection is one watch: its first frame names it, and a watch the registry does
not know (a ``gps_tracker`` device whose id is the watch's id) is counted, logged and
disconnected with nothing stored. Alarms (SOS, fall, strap removed, fence, low battery)
and positions become the same canonical records a gateway sends and are committed on
ingest's path (:meth:`IngestService.commit_local`), so an SOS climbs the same ladder as a
red button; the watch gets its ``AL`` reply only after the commit, so it keeps repeating
an alarm the cloud has not stored. An alarm without a GPS fix carries the last position
this connection heard. Malformed, truncated and oversized frames are counted and logged,
and the connection is closed (a byte stream that lost sync cannot be trusted).

The listener holds no state but its connections, so it scales with the cloud: any number
of cloud processes can listen behind a TCP load balancer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

from eldercare_cloud.ingest.store import Received
from eldercare_protocols import watch
from eldercare_protocols.errors import DecodeError
from eldercare_protocols.events import CanonicalEvent, EventKind
from eldercare_protocols.uplink import EventEnvelope, TelemetryBatch, TelemetryRecord

log = logging.getLogger(__name__)

#: the gateway id watch records are filed under (they came through no home gateway)
WATCH_GATEWAY = "cloud-watch"
READ_CHUNK = 4096


@dataclass
class WatchCounters:
    connections: int = 0
    frames: int = 0
    bad_frames: int = 0
    unregistered: int = 0
    alarms: int = 0
    positions: int = 0
    commit_failures: int = 0
    replies: int = 0


Registered = Callable[[str], Awaitable[bool]]
Commit = Callable[[list[Received]], Awaitable[bool]]


class WatchServer:
    """``async with WatchServer(...) as server``: listening on ``server.port``."""

    def __init__(self, *, host: str, port: int, registered: Registered, commit: Commit,
                 now: Callable[[], datetime], idle_timeout_s: float = 900.0,
                 max_connections: int = 10_000) -> None:
        self.host, self.port = host, port
        self._registered, self._commit, self._now = registered, commit, now
        self.idle_timeout_s = idle_timeout_s
        self.max_connections = max_connections
        self.counters = WatchCounters()
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()
        self._seq = itertools.count(1)

    async def __aenter__(self) -> WatchServer:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("watch listener on %s:%d", self.host, self.port)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._conns):
            task.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    # ------------------------------------------------------------------ one watch

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                      ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        peer = writer.get_extra_info("peername")
        try:
            if len(self._conns) > self.max_connections:
                log.warning("watch connection from %s refused: %d connections", peer,
                            len(self._conns))
                return
            self.counters.connections += 1
            await self._session(reader, writer, str(peer))
        finally:
            self._conns.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       peer: str) -> None:
        frames = watch.FrameReader()
        watch_id: str | None = None
        last: watch.Position | None = None
        while True:
            try:
                async with asyncio.timeout(self.idle_timeout_s):
                    data = await reader.read(READ_CHUNK)
            except TimeoutError:
                log.info("watch %s at %s silent for %.0f s: closing", watch_id, peer,
                         self.idle_timeout_s)
                return
            if not data:
                return
            try:
                batch = frames.feed(data)
            except DecodeError as exc:
                self._bad(peer, watch_id, exc)
                return
            for frame in batch:
                self.counters.frames += 1
                if watch_id is None:
                    if not await self._registered(frame.watch_id):
                        self.counters.unregistered += 1
                        log.warning("unregistered watch %s at %s (%s frame): closing, nothing"
                                    " stored", frame.watch_id, peer, frame.type)
                        return
                    watch_id = frame.watch_id
                    log.info("watch %s connected from %s", watch_id, peer)
                elif frame.watch_id != watch_id:
                    self._bad(peer, watch_id, DecodeError(
                        f"frame of watch {frame.watch_id} on the connection of {watch_id}"))
                    return
                try:
                    events = watch.to_canonical(frame, watch_id, last)
                    if frame.type in watch.POSITION_TYPES:
                        pos = watch.position(frame)
                        if pos.valid:
                            last = pos
                except DecodeError as exc:
                    self._bad(peer, watch_id, exc)
                    return
                if not await self._store(watch_id, events):
                    return      # no reply: the watch repeats the alarm, we may store it then
                answer = watch.reply(frame)
                if answer is not None:
                    writer.write(answer)
                    await writer.drain()
                    self.counters.replies += 1

    def _bad(self, peer: str, watch_id: str | None, exc: DecodeError) -> None:
        self.counters.bad_frames += 1
        log.warning("bad frame from watch %s at %s: %s | %s; closing", watch_id or "?", peer,
                    exc.reason, exc.preview())

    async def _store(self, watch_id: str, events: list[CanonicalEvent]) -> bool:
        now = self._now()
        items: list[Received] = []
        readings: list[TelemetryRecord] = []
        for ev in events:
            if ev.kind is EventKind.HEARTBEAT:
                continue
            if ev.kind is EventKind.LOCATION:
                self.counters.positions += 1
                readings.append(TelemetryRecord(
                    device_id=watch_id, kind=ev.kind, ts=ev.ts or now,
                    values={k: float(v) for k, v in ev.data.items() if k in ("lat", "lon")}))
                continue
            self.counters.alarms += 1
            items.append(Received(WATCH_GATEWAY, EventEnvelope(
                id=self._record_id(), seq=next(self._seq), gateway_id=WATCH_GATEWAY,
                gateway_ts=now, device_id=watch_id, kind=ev.kind, device_ts=ev.ts,
                source="watch", data=ev.data), now))
        if readings:
            items.append(Received(WATCH_GATEWAY, TelemetryBatch(
                id=self._record_id(), seq=next(self._seq), gateway_id=WATCH_GATEWAY,
                gateway_ts=now, records=readings), now))
        if not items:
            return True
        if await self._commit(items):
            return True
        self.counters.commit_failures += 1
        log.error("watch %s: %d records not stored; the watch will repeat its alarm",
                  watch_id, len(items))
        return False

    @staticmethod
    def _record_id() -> str:
        # the protocol has no sequence number, so ids are random: an AL repeated after a
        # lost reply is stored again (a second record of the same alarm)
        return f"{WATCH_GATEWAY}-{uuid.uuid4().hex}"
