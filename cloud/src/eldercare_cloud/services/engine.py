"""The service desk's engine: tails ingest's committed events by its own cursor, runs
the dispatch deadlines, sends the button's LED commands and generates recurring orders.

Like the care engine it reads events through the ingest store's query functions and
keeps its cursor in its own table (``svc_cursors``), advanced in the same transaction as
the requests, check-ins and evidence the events cause: a crash repeats nothing and loses
nothing. Deadlines are rows (``svc_orders.accept_due_at``/``arrive_due_at``); the loop
sleeps until the earliest one, so a restart resumes every timer from the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Protocol

from eldercare_cloud.clock import Clock
from eldercare_cloud.db import DATABASE_ERRORS, Database
from eldercare_cloud.engine_loop import Tasks, earliest, run_loop
from eldercare_cloud.errors import CloudError
from eldercare_cloud.ingest.models import StoredEvent
from eldercare_cloud.notify.base import Channel, Outbound
from eldercare_cloud.registry import RegistryService
from eldercare_cloud.services.desk import ServiceDesk
from eldercare_cloud.visits import store as V
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import DownCommand

log = logging.getLogger(__name__)

#: what a tick may fail with and be retried (a bug elsewhere still ends the engine loudly)
_TICK_ERRORS: tuple[type[Exception], ...] = (CloudError, *DATABASE_ERRORS)

BATCH = 200
CURSOR = "events"
#: home-device evidence outlives the longest visit's check-out by this much, then goes
EVIDENCE_KEEP = timedelta(days=2)


class EventReader(Protocol):
    async def events_after(self, cursor: int, limit: int = 500) -> list[StoredEvent]: ...


class CommandLink(Protocol):
    """What the engine asks of the running ingest (``IngestService`` provides it)."""

    def add_commit_listener(self, listener: Callable[[Any], None]) -> Callable[[], None]: ...

    async def publish_command(self, gateway_id: str, command: DownCommand) -> None: ...


@dataclass(frozen=True)
class _Where:
    household_id: str | None
    resident_id: str | None


class ServiceEngine:
    def __init__(self, db: Database, clock: Clock, registry: RegistryService, desk: ServiceDesk,
                 store: EventReader | None, link: CommandLink | None, *,
                 channels: Mapping[str, Channel] | None = None, sms_max_attempts: int = 3,
                 poll_s: float = 5.0, plan_every_s: float = 600.0) -> None:
        self._db = db
        self._clock = clock
        self._registry = registry
        self._desk = desk
        self._store = store
        self._link = link
        self._channels = dict(channels or {})
        self._sms_max_attempts = sms_max_attempts
        self._poll_s = poll_s
        self._plan_every = timedelta(seconds=plan_every_s)
        self._next_plans: datetime | None = None
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._tasks = Tasks()
        self._unlisten: Callable[[], None] | None = None
        self.failures = 0

    async def __aenter__(self) -> ServiceEngine:
        if self._link is not None:
            self._unlisten = self._link.add_commit_listener(lambda _info: self.wake())
        self._tasks.start("service-engine", run_loop(
            "service engine pass", self._clock, self._wake, self._pass, poll_s=self._poll_s,
            errors=_TICK_ERRORS, failed=self._failed))
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._unlisten is not None:
            self._unlisten()
        await self._tasks.stop()

    def wake(self) -> None:
        self._wake.set()

    def _failed(self) -> None:
        self.failures += 1

    async def _pass(self) -> datetime | None:
        await self.tick()
        return earliest(await self._desk.next_due(), self._next_plans)

    async def tick(self) -> None:
        async with self._lock:
            await self.pull_events()
            now = self._clock.now()
            if self._next_plans is None or now >= self._next_plans:
                await self._desk.generate_plans()
                await self.prune_evidence(now)
                self._next_plans = now + self._plan_every
            await self._desk.run_due()
            await self.send_leds()
            await self.send_messages()

    async def prune_evidence(self, now: datetime) -> int:
        """Home-device evidence is kept while a visit may still be judged against it."""
        async with self._db.transaction() as conn:
            pruned = await V.prune_evidence(conn, now - EVIDENCE_KEEP)
        if pruned:
            log.info("pruned %d visit evidence rows older than %s", pruned, EVIDENCE_KEEP)
        return pruned

    async def init_cursor(self) -> None:
        """On the desk's first start, begin at ingest's current end: presses committed
        before the service desk existed are history, not a queue of requests to call
        back. Later starts keep the stored cursor (nothing lost, nothing repeated)."""
        # IngestStore.max_rowids; a reader without it (a test double) starts at 0
        max_rowids = getattr(self._store, "max_rowids", None)
        if max_rowids is None:
            return
        end = int((await max_rowids()).get("events", 0))
        async with self._db.transaction() as conn:
            await conn.execute("INSERT INTO svc_cursors(name, value) VALUES (?, ?)"
                               " ON CONFLICT (name) DO NOTHING", (CURSOR, end))

    async def _cursor(self) -> int:
        cur = await self._db.conn.execute("SELECT value FROM svc_cursors WHERE name = ?",
                                          (CURSOR,))
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def _where(self, ev: StoredEvent) -> _Where:
        household_id = resident_id = None
        device = await self._registry.device_binding(ev.device_id)
        if device is not None:
            household_id, resident_id = device["household_id"], device["resident_id"]
        if household_id is None:
            gw = await self._registry.gateway_binding(ev.gateway_id)
            household_id = gw["household_id"] if gw is not None else None
        if household_id is not None and resident_id is None:
            ids = await self._registry.residents_of_household(household_id)
            resident_id = ids[0] if ids else None
        return _Where(household_id, resident_id)

    async def pull_events(self) -> int:
        if self._store is None:
            return 0
        done = 0
        for _ in range(1000):  # bounded: 200k events per pass, the rest next pass
            cursor = await self._cursor()
            rows = await self._store.events_after(cursor, BATCH)
            if not rows:
                break
            # registry lookups before the transaction (reads of another domain's tables)
            relevant = [ev for ev in rows if not ev.test and ev.kind in (
                EventKind.SERVICE_REQUEST, EventKind.DOOR_OPEN, EventKind.DOOR_CLOSE,
                EventKind.MOTION)]
            wheres = {ev.id: await self._where(ev) for ev in relevant}
            residents = {}
            for w in wheres.values():
                if w.resident_id is not None and w.resident_id not in residents:
                    residents[w.resident_id] = await self._registry.resident_unscoped(
                        w.resident_id)
            async with self._db.transaction() as conn:
                for ev in relevant:
                    where = wheres[ev.id]
                    if where.household_id is None:
                        log.warning("%s %s from %s/%s is not bound to a household; ignored",
                                    ev.kind.value, ev.id, ev.gateway_id, ev.device_id)
                        continue
                    at = ev.device_ts or ev.gateway_ts
                    if ev.kind is EventKind.SERVICE_REQUEST:
                        resident = residents.get(where.resident_id or "")
                        if ev.data.get("press") == "long" and await self._desk.long_press(
                                conn, where.household_id, ev.device_id, at):
                            continue
                        if ev.data.get("press") == "double" and await self._desk.button_rating(
                                conn, where.household_id, ev.device_id, at):
                            continue
                        if resident is None:
                            log.warning("green press %s: no resident at %s", ev.id,
                                        where.household_id)
                            continue
                        await self._desk.press(conn, resident=resident,
                                               gateway_id=ev.gateway_id,
                                               device_id=ev.device_id, record_id=ev.id,
                                               pressed_at=at)
                    elif await self._desk.has_active_order(conn, where.household_id, at):
                        await V.add_evidence(conn, where.household_id, ev.id, ev.device_id,
                                             ev.kind.value, at)
                await conn.execute(
                    "INSERT INTO svc_cursors(name, value) VALUES (?, ?) ON CONFLICT (name)"
                    " DO UPDATE SET value = excluded.value", (CURSOR, rows[-1].rowid))
            done += len(rows)
        return done

    async def send_leds(self) -> int:
        """Each LED row is published once (QoS 1, PUBACK awaited) and then marked sent."""
        if self._link is None:
            return 0
        sent = 0
        for row in await self._desk.pending_leds():
            cmd = DownCommand(id=f"svc-led-{row['id']}", device_id=row["device_id"],
                              command="led", args={"state": row["state"]},
                              ts=self._clock.now())
            try:
                await self._link.publish_command(row["gateway_id"], cmd)
            except CloudError as exc:
                log.warning("LED %s for %s not sent: %s", row["state"], row["device_id"], exc)
                await self._desk.mark_led(row["id"], False, str(exc))
                continue
            await self._desk.mark_led(row["id"], True, None)
            sent += 1
        return sent

    async def send_messages(self) -> int:
        """Offer SMS to workers through the configured ``sms`` channel: each row is marked
        ``sent``, ``failed`` (after ``sms_max_attempts`` transient failures or one permanent
        one) or ``skipped`` (no SMS channel: the operator gives the link from the console)."""
        sent = 0
        channel = self._channels.get("sms")
        for row in await self._desk.pending_messages():
            if channel is None:
                await self._desk.mark_message(row["id"], "skipped", "no sms channel")
                continue
            # Outbound is shaped for alerts; alert_id carries the order id here
            result = await channel.send(Outbound(
                notification_id=f"svc-{row['id']}", alert_id=row["order_id"], channel="sms",
                address=row["address"], text=row["body"], link=row["link"],
                payload={"order_id": row["order_id"], "worker_id": row["worker_id"]}))
            if result.status != "failed":
                await self._desk.mark_message(row["id"], "sent", None)
                sent += 1
            elif result.transient and row["attempts"] + 1 < self._sms_max_attempts:
                await self._desk.mark_message(row["id"], "pending", result.error)
            else:
                await self._desk.mark_message(row["id"], "failed", result.error)
        return sent
