"""The care-visit engine: schedules plan tasks, climbs the missed-visit ladder, keeps each
home's daily activity counts and checks them against the learned routine.

It reads committed events through the ingest store's query functions by its own cursor
(``cv_cursors``), advanced in the same transaction as the counts the events add, so a
crash repeats nothing and loses nothing. The ladder's timers are rows
(``cv_tasks.next_step_at``): the loop sleeps until the earliest, and a restart resumes
from the database. Device presses and visit evidence are not handled here: the service
desk's engine asks ``CareVisits`` about them (one cursor, one evidence table).
"""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import UTC, datetime, timedelta
from types import TracebackType

from eldercare_cloud.clock import Clock
from eldercare_cloud.db import DATABASE_ERRORS, Database
from eldercare_cloud.engine_loop import Tasks, run_loop
from eldercare_cloud.errors import CloudError
from eldercare_cloud.registry import RegistryService
from eldercare_cloud.services.catalogue import LOCAL_TZ
from eldercare_cloud.services.engine import EventReader
from eldercare_cloud.visits import routine as R
from eldercare_cloud.visits.care import CareVisits
from eldercare_protocols.events import EventKind

log = logging.getLogger(__name__)

#: what a tick may fail with and be retried (a bug elsewhere still ends the engine loudly)
_TICK_ERRORS: tuple[type[Exception], ...] = (CloudError, *DATABASE_ERRORS)

CURSOR = "events"
BATCH = 500
#: what counts as the resident being active at home
ACTIVITY = frozenset({EventKind.DOOR_OPEN, EventKind.DOOR_CLOSE, EventKind.MOTION,
                      EventKind.BED_EXIT, EventKind.BED_ENTER, EventKind.SERVICE_REQUEST})


class CareVisitEngine:
    def __init__(self, db: Database, clock: Clock, registry: RegistryService,
                 visits: CareVisits, store: EventReader | None, *, poll_s: float = 5.0,
                 check_every_s: float = 300.0, replan_every_s: float = 86400.0) -> None:
        self._db = db
        self._clock = clock
        self._registry = registry
        self._visits = visits
        self._store = store
        self._poll_s = poll_s
        self._check_every = timedelta(seconds=check_every_s)
        self._next_check: datetime | None = None
        self._replan_every = timedelta(seconds=replan_every_s)
        self._next_replan: datetime | None = None
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._tasks = Tasks()
        self._homes: dict[str, str | None] = {}
        self.failures = 0

    async def __aenter__(self) -> CareVisitEngine:
        self._tasks.start("care-visit-engine", run_loop(
            "care-visit engine pass", self._clock, self._wake, self._pass,
            poll_s=max(self._poll_s, 0.05), errors=_TICK_ERRORS, failed=self._failed))
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._tasks.stop()

    def wake(self) -> None:
        self._wake.set()

    async def init_cursor(self) -> None:
        """On first start, learn from the history ingest already holds (unlike presses,
        past activity is exactly what a routine is learned from)."""
        async with self._db.transaction() as conn:
            await conn.execute("INSERT INTO cv_cursors(name, value) VALUES (?, 0)"
                               " ON CONFLICT (name) DO NOTHING", (CURSOR,))

    def _failed(self) -> None:
        self.failures += 1

    async def _pass(self) -> datetime | None:
        await self.tick()
        return await self._visits.next_due()

    async def tick(self, *, check: bool | None = None) -> None:
        """One pass: new events, the plans re-assessed (every ``replan_every_s``), the
        schedule, due ladder steps, and (every ``check_every_s``, or when ``check`` says
        so) the routine check."""
        async with self._lock:
            await self.pull_events()
            now = self._clock.now()
            if self._next_replan is None or now >= self._next_replan:
                await self._visits.replan()
                self._next_replan = now + self._replan_every
            await self._visits.schedule()
            await self._visits.run_due()
            now = self._clock.now()
            if check or (check is None and (self._next_check is None
                                            or now >= self._next_check)):
                await self.pull_vitals()
                await self._visits.check_routines()
                await self._visits.check_vitals()
                self._next_check = now + self._check_every

    async def _cursor(self) -> int:
        cur = await self._db.conn.execute("SELECT value FROM cv_cursors WHERE name = ?",
                                          (CURSOR,))
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def _home(self, device_id: str, gateway_id: str) -> str | None:
        key = f"{gateway_id}/{device_id}"
        if key not in self._homes:
            household = None
            device = await self._registry.device_binding(device_id)
            if device is not None:
                household = device["household_id"]
            if household is None:
                gw = await self._registry.gateway_binding(gateway_id)
                household = gw["household_id"] if gw is not None else None
            self._homes[key] = household
        return self._homes[key]

    async def pull_vitals(self) -> int:
        """Each vitals monitor's new telemetry into daily sums per home and metric, with
        the device's cursor (the last reading's time, in microseconds) in the same
        transaction. Read through ingest's ``telemetry`` query; readings that arrive
        later with an older time than the cursor are not counted (a gateway's backlog
        after an outage: the day's mean is learned without them)."""
        read = getattr(self._store, "telemetry", None)
        if read is None:
            return 0
        devices = [d for d in await self._registry.list_devices(self._visits.system)
                   if d.type == "vitals_monitor" and d.household_id is not None]
        done = 0
        for device in devices:
            name = f"vitals:{device.id}"
            cur = await self._db.conn.execute("SELECT value FROM cv_cursors WHERE name = ?",
                                              (name,))
            row = await cur.fetchone()
            after_us = int(row[0]) if row else 0
            since = datetime.fromtimestamp(after_us / 1e6, tz=UTC) if after_us else None
            for _ in range(100):  # bounded: 100k readings per device and pass
                points = [p for p in await read(device.id, since, 1000)
                          if _us(p.ts) > after_us]
                if not points:
                    break
                sums: dict[tuple[str, str, str], tuple[int, float]] = {}
                for p in points:
                    day = p.ts.astimezone(LOCAL_TZ).date().isoformat()
                    for metric, value in p.values.items():
                        if not math.isfinite(value):
                            continue
                        key = (str(device.household_id), day, metric)
                        n, total = sums.get(key, (0, 0.0))
                        sums[key] = (n + 1, total + value)
                after_us = max(_us(p.ts) for p in points)
                async with self._db.transaction() as conn:
                    await self._visits.add_vitals(conn, sums)
                    await conn.execute(
                        "INSERT INTO cv_cursors(name, value) VALUES (?, ?) ON CONFLICT (name)"
                        " DO UPDATE SET value = excluded.value", (name, after_us))
                since = datetime.fromtimestamp(after_us / 1e6, tz=UTC)
                done += len(points)
        return done

    async def pull_events(self) -> int:
        if self._store is None:
            return 0
        done = 0
        for _ in range(400):  # bounded per pass: 200k events, the rest next pass
            cursor = await self._cursor()
            rows = await self._store.events_after(cursor, BATCH)
            if not rows:
                break
            counts: dict[tuple[str, str], tuple[int, int, int | None]] = {}
            for ev in rows:
                if ev.test or ev.kind not in ACTIVITY:
                    continue
                household = await self._home(ev.device_id, ev.gateway_id)
                if household is None:
                    continue
                at = (ev.device_ts or ev.gateway_ts).astimezone(LOCAL_TZ)
                night = at.hour < R.DAY_START_H
                minute = None if night else at.hour * 60 + at.minute
                key = (household, at.date().isoformat())
                events, nights, first = counts.get(key, (0, 0, None))
                if minute is not None and (first is None or minute < first):
                    first = minute
                counts[key] = (events + 1, nights + int(night), first)
            async with self._db.transaction() as conn:
                await self._visits.add_activity(conn, counts)
                await conn.execute(
                    "INSERT INTO cv_cursors(name, value) VALUES (?, ?) ON CONFLICT (name)"
                    " DO UPDATE SET value = excluded.value", (CURSOR, rows[-1].rowid))
            done += len(rows)
        return done


def _us(ts: datetime) -> int:
    return int(ts.timestamp() * 1_000_000)
