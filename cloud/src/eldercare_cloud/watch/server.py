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

A watch that did not hear the ``AL`` reply sends the alarm again: the record ids of an
alarm are made from the watch, the frame's own date and time and its status word
(:func:`eldercare_protocols.watch.alarm_key`), so the resend hits ingest's unique record
id, is acknowledged again and is one alarm (on SQLite and PostgreSQL alike).

With a resident's watch profile (:class:`~eldercare_cloud.registry.models.WatchProfile`)
a valid fix outside the safe area is one ``geofence_exit`` event per exit (the fence
re-arms on return, with hysteresis, :mod:`eldercare_cloud.watch.fence`); its state is in
the database, not in this process.

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

from eldercare_cloud.clock import iso
from eldercare_cloud.db import DATABASE_ERRORS
from eldercare_cloud.ingest.store import Received
from eldercare_cloud.registry.models import WatchProfilePublic
from eldercare_cloud.watch import fence as F
from eldercare_cloud.watch.store import WatchStore
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
    #: frames whose declared length was not their content's (tolerated, as Traccar does)
    length_mismatches: int = 0
    fence_exits: int = 0


Profile = Callable[[str], Awaitable[WatchProfilePublic | None]]


#: a fence that cannot be read or saved costs the fence check, never the position or alarm
_FENCE_ERRORS: tuple[type[Exception], ...] = DATABASE_ERRORS

Registered = Callable[[str], Awaitable[bool]]
Commit = Callable[[list[Received]], Awaitable[bool]]


class WatchServer:
    """``async with WatchServer(...) as server``: listening on ``server.port``."""

    def __init__(self, *, host: str, port: int, registered: Registered, commit: Commit,
                 now: Callable[[], datetime], idle_timeout_s: float = 900.0,
                 max_connections: int = 10_000, profile: Profile | None = None,
                 store: WatchStore | None = None) -> None:
        self.host, self.port = host, port
        self._registered, self._commit, self._now = registered, commit, now
        self._profile, self._store_db = profile, store
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
                if frame.declared_length is not None:
                    self.counters.length_mismatches += 1
                    log.debug("watch %s: %s frame declares %d bytes, has %d", watch_id,
                              frame.type, frame.declared_length, len(frame.content))
                fix: watch.Position | None = None
                try:
                    events = watch.to_canonical(frame, watch_id, last)
                    if watch.is_position_type(frame.type):
                        pos = watch.position(frame)
                        if pos.valid:
                            last = fix = pos
                except DecodeError as exc:
                    self._bad(peer, watch_id, exc)
                    return
                moved = None
                if fix is not None:
                    try:
                        moved = await self._fence(watch_id, fix, events)
                    except _FENCE_ERRORS as exc:
                        log.error("watch %s: geofence not checked: %s: %s", watch_id,
                                  type(exc).__name__, exc)
                if not await self._store(watch_id, frame, events):
                    return      # no reply: the watch repeats the alarm, we may store it then
                if moved is not None and self._store_db is not None:
                    try:
                        await self._store_db.set_fence(watch_id, moved, iso(self._now()))
                    except _FENCE_ERRORS as exc:
                        # the exit is stored; the next fix outside raises it once more,
                        # a repeat on the open concern rather than a second one
                        log.error("watch %s: geofence state not saved: %s: %s", watch_id,
                                  type(exc).__name__, exc)
                answer = watch.reply(frame)
                if answer is not None:
                    writer.write(answer)
                    await writer.drain()
                    self.counters.replies += 1

    async def _fence(self, watch_id: str, fix: watch.Position,
                     events: list[CanonicalEvent]) -> F.FenceState | None:
        """Check a valid fix against the resident's safe area; an exit adds a
        ``geofence_exit`` event (a return a ``geofence_enter``) to ``events``. Returns the
        fence's new state, saved once the events are committed."""
        if self._profile is None or self._store_db is None:
            return None
        profile = await self._profile(watch_id)
        if profile is None or profile.home is None or profile.radius_m is None:
            return None
        state = await self._store_db.fence(watch_id)
        moved = F.step(state, fix.lat, fix.lon, fix.ts, profile.home.latitude,
                       profile.home.longitude, profile.radius_m)
        if moved.change is None:
            return None
        kind = (EventKind.GEOFENCE_EXIT if moved.change == "exit"
                else EventKind.GEOFENCE_ENTER)
        if kind is EventKind.GEOFENCE_EXIT:
            self.counters.fence_exits += 1
        events.insert(0, CanonicalEvent(
            device_id=watch_id, kind=kind, ts=fix.ts, source="watch",
            data={"lat": fix.lat, "lon": fix.lon, "position": "fix", "rule": "cloud_geofence",
                  "distance_m": round(moved.distance_m, 1), "radius_m": profile.radius_m}))
        return moved.state

    def _bad(self, peer: str, watch_id: str | None, exc: DecodeError) -> None:
        self.counters.bad_frames += 1
        log.warning("bad frame from watch %s at %s: %s | %s; closing", watch_id or "?", peer,
                    exc.reason, exc.preview())

    async def _store(self, watch_id: str, frame: watch.Frame,
                      events: list[CanonicalEvent]) -> bool:
        now = self._now()
        key = watch.alarm_key(frame)
        stamp = (f"{frame.fields[0]}{frame.fields[1]}"
                 if watch.is_position_type(frame.type) else None)
        items: list[Received] = []
        readings: list[TelemetryRecord] = []
        for ev in events:
            if ev.kind is EventKind.HEARTBEAT:
                continue
            if ev.kind in (EventKind.LOCATION, EventKind.VITALS):
                if ev.kind is EventKind.LOCATION:
                    self.counters.positions += 1
                values = {k: float(v) for k, v in ev.data.items()
                          if ev.kind is EventKind.VITALS or k in ("lat", "lon")}
                readings.append(TelemetryRecord(device_id=watch_id, kind=ev.kind,
                                                ts=ev.ts or now, values=values))
                continue
            self.counters.alarms += 1
            # the same alarm resent, or the same fence crossing seen again, has the same
            # id: ingest's unique id makes it one record
            if key is not None:
                record_id = f"{WATCH_GATEWAY}-{key}-{ev.kind.value}"
            elif stamp is not None:
                record_id = f"{WATCH_GATEWAY}-{watch_id}-{stamp}-{ev.kind.value}"
            else:
                record_id = self._record_id()
            items.append(Received(WATCH_GATEWAY, EventEnvelope(
                id=record_id, seq=next(self._seq), gateway_id=WATCH_GATEWAY,
                gateway_ts=now, device_id=watch_id, kind=ev.kind, device_ts=ev.ts,
                source="watch", data=ev.data), now))
        if readings:
            if key is not None:
                batch_id = f"{WATCH_GATEWAY}-{key}-pos"
            elif stamp is not None:
                batch_id = f"{WATCH_GATEWAY}-{watch_id}-{stamp}-{frame.type[:12]}"
            else:
                batch_id = self._record_id()
            items.append(Received(WATCH_GATEWAY, TelemetryBatch(
                id=batch_id, seq=next(self._seq), gateway_id=WATCH_GATEWAY,
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
        return f"{WATCH_GATEWAY}-{uuid.uuid4().hex}"
