"""The care engine: turns what ingest committed into alerts, and moves ladders on time.

It tails ingest's committed events and gateway log by rowid and keeps its cursors in
``care_cursors``; alerts are created and the cursor advanced in one transaction, so a
crash between ingest's commit and ours loses nothing and repeats nothing. Commit
notifications only wake it up; the cursor is the truth.

Timers live in ``ladder_runs.due_at``: the loop sleeps until the earliest due time (or a
wake-up), so a restart picks up exactly where the database says it was.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Protocol

from eldercare_cloud.care import commissioning as C
from eldercare_cloud.care import gateways as G
from eldercare_cloud.care import ladder as L
from eldercare_cloud.care import maintenance as M
from eldercare_cloud.care import supervision as S
from eldercare_cloud.care.alerts import AlertSpec
from eldercare_cloud.care.models import (
    DEVICE_SUBJECT_ALERTS,
    EVENT_ALERTS,
    AlertKind,
    AlertPosition,
    PositionSource,
    Severity,
)
from eldercare_cloud.care.service import CareService
from eldercare_cloud.clock import Clock, iso, parse_iso
from eldercare_cloud.db import DATABASE_ERRORS, Connection, Database
from eldercare_cloud.engine_loop import Tasks, run_loop
from eldercare_cloud.errors import CloudError
from eldercare_cloud.ingest.models import (
    GatewayLiveness,
    GatewayLogEntry,
    GatewayRecord,
    StoredEvent,
    StoredTelemetry,
)
from eldercare_cloud.notify.dispatcher import Dispatcher
from eldercare_cloud.registry import RegistryService
from eldercare_cloud.settings import CloudSettings
from eldercare_cloud.telemetry import sqlite as telemetry_sqlite
from eldercare_protocols.events import ACTIVITY_KINDS, EventKind
from eldercare_protocols.uplink import GatewayConfig

#: a pass that failed on these is logged and retried on the next pass
_PASS_ERRORS: tuple[type[Exception], ...] = (CloudError, *DATABASE_ERRORS)

log = logging.getLogger(__name__)

BATCH = 200


class IngestReader(Protocol):
    """What the engine reads of ingest's committed data (``IngestStore`` provides it)."""

    async def events_after(self, cursor: int, limit: int = 500) -> list[StoredEvent]: ...

    async def gateway_log_after(self, cursor: int,
                                limit: int = 500) -> list[GatewayLogEntry]: ...

    async def gateways(self) -> list[GatewayRecord]: ...

    async def online_gateways(self) -> list[GatewayLiveness]: ...

    async def gateways_reported_since(self, since: datetime | None, *,
                                      containing: str | None = None
                                      ) -> list[GatewayRecord]: ...

    async def telemetry(self, device_id: str, since: datetime | None = None,
                        limit: int = 1000) -> list[StoredTelemetry]: ...


class IngestLink(Protocol):
    """What the engine asks of the running ingest (``IngestService`` provides it)."""

    def add_commit_listener(self, listener: Callable[[Any], None]) -> Callable[[], None]: ...

    async def publish_config(self, gateway_id: str, config: GatewayConfig) -> None: ...


#: bound gateways checked between two turns of the event loop in the periodic rules
_RULES_SLICE = 500
#: health reports are read again from this long before the newest one seen: a report
#: committed late by another ingest worker (an older receive time) is not missed
_HEALTH_OVERLAP = timedelta(seconds=10)
#: the health counters of client id conflicts are named client_id_conflict_{home,cloud}
_CONFLICT_COUNTER = "client_id_conflict_"


def _conflicts(rec: GatewayRecord) -> bool:
    health = rec.last_health
    return health is not None and any(
        health.counters.get(f"{_CONFLICT_COUNTER}{link}", 0) > 0 for link in ("home", "cloud"))


@dataclass(frozen=True)
class Where:
    """Where an event happened, resolved through the registry's bindings."""

    resident_id: str | None
    household_id: str | None
    district_id: str | None
    room: str | None


class CareEngine:
    def __init__(self, settings: CloudSettings, db: Database, clock: Clock,
                 registry: RegistryService, care: CareService, dispatcher: Dispatcher,
                 store: IngestReader | None, link: IngestLink | None) -> None:
        self._settings = settings
        self._db = db
        self._clock = clock
        self._registry = registry
        self._care = care
        self._dispatcher = dispatcher
        self._store = store
        self._link = link
        self._wake = asyncio.Event()
        self._deliver_wake = asyncio.Event()
        self._tick_lock = asyncio.Lock()
        self._tasks = Tasks()
        self._unlisten: Callable[[], None] | None = None
        self._next_rules: datetime | None = None
        self._next_config_try: datetime | None = None
        self._next_maintenance: datetime | None = None
        self._next_retention: datetime | None = None
        self._maintenance_ready = False
        #: the newest health report the periodic rules decoded (they decode only newer)
        self._health_seen: datetime | None = None
        self.failures = 0
        #: one engine per database moves alerts; others on PostgreSQL stand by and take
        #: over when its connection ends (see Database.leadership)
        self._lead = db.leadership("care-engine")
        self._leading = False

    # -- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> CareEngine:
        if await self._lead.held():
            await self._lead_acquired()
        if self._link is not None:
            self._unlisten = self._link.add_commit_listener(lambda _info: self.wake())
        poll_s = self._settings.care.poll_s
        self._tasks.start("care-engine", run_loop(
            "care engine pass", self._clock, self._wake, self._pass, poll_s=poll_s,
            errors=_PASS_ERRORS, failed=self._failed))
        self._tasks.start("care-notify", run_loop(
            "notification delivery", self._clock, self._deliver_wake, self._deliver,
            poll_s=poll_s * 5, errors=_PASS_ERRORS, failed=self._failed))
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._unlisten is not None:
            self._unlisten()
        await self._tasks.stop()

    def wake(self) -> None:
        self._wake.set()
        self._deliver_wake.set()

    @property
    def leading(self) -> bool:
        """Whether this engine moves alerts now (False: another process leads)."""
        return self._leading

    async def _lead_acquired(self) -> None:
        """Now the engine that moves alerts: resend what the previous one (this process
        before a restart, or another that died) left in flight."""
        if not self._leading:
            self._leading = True
            log.info("care engine: leading")
            await self._dispatcher.recover()
            self._deliver_wake.set()

    def _failed(self) -> None:
        self.failures += 1

    async def _pass(self) -> datetime | None:
        """One pass when this engine leads; while another leads, only the check (again
        after a poll interval, or when woken)."""
        if not await self._lead.held():
            if self._leading:
                self._leading = False
                log.warning("care engine: lost the lead; standing by")
            return None
        await self._lead_acquired()
        await self.tick()
        return await self._next_deadline()

    async def _deliver(self) -> datetime | None:
        """Every notification that is due, by the leader (the outbox is the leader's)."""
        if not self._leading:
            return None
        while await self._dispatcher.deliver_due():
            pass
        return await self._dispatcher.next_due()

    async def _next_deadline(self) -> datetime:
        now = self._clock.now()
        candidates = [now + timedelta(seconds=self._settings.care.poll_s)]
        due = await L.next_due(self._db.conn)
        if due is not None:
            candidates.append(due)
        if self._next_rules is not None:
            candidates.append(self._next_rules)
        if self._next_maintenance is not None:
            candidates.append(self._next_maintenance)
        supervise = await S.next_due(self._db.conn, self._care.ctx.supervisor_escalation_s)
        if supervise is not None:
            candidates.append(supervise)
        return min(candidates)

    # -- one pass ----------------------------------------------------------------------

    async def tick(self) -> None:
        """Everything that is due now: new ingest rows, rules, ladder timers, configs."""
        async with self._tick_lock:
            await self.pull_ingest()
            now = self._clock.now()
            if self._next_rules is None or now >= self._next_rules:
                await self.run_rules()
                self._next_rules = now + timedelta(seconds=self._settings.care.rules_interval_s)
            if self._next_maintenance is None or now >= self._next_maintenance:
                await self.run_maintenance()
                self._next_maintenance = now + timedelta(
                    seconds=self._settings.care.maintenance_scan_interval_s)
            if self._next_retention is None or now >= self._next_retention:
                await self.run_retention()
                self._next_retention = now + timedelta(hours=24)
            await self.run_due()
            await self.run_supervision()
            await self.publish_configs()
        self._deliver_wake.set()

    async def _cursor(self, name: str) -> int:
        cur = await self._db.conn.execute("SELECT value FROM care_cursors WHERE name = ?",
                                          (name,))
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    async def _set_cursor(conn: Connection, name: str, value: int) -> None:
        await conn.execute("INSERT INTO care_cursors(name, value) VALUES (?, ?) ON CONFLICT(name)"
                           " DO UPDATE SET value = excluded.value", (name, value))

    async def pull_ingest(self) -> int:
        """Process committed events and gateway transitions after our cursors."""
        if self._store is None:
            return 0
        done = 0
        for _ in range(1000):  # bounded: 200k rows per pass, the rest next pass
            cursor = await self._cursor("events")
            rows = await self._store.events_after(cursor, BATCH)
            if not rows:
                break
            async with self._db.transaction() as conn:
                for ev in rows:
                    await self._handle_event(conn, ev)
                await self._set_cursor(conn, "events", rows[-1].rowid)
            self._care.committed()
            done += len(rows)
        for _ in range(1000):
            cursor = await self._cursor("gateway_log")
            entries = await self._store.gateway_log_after(cursor, BATCH)
            if not entries:
                break
            async with self._db.transaction() as conn:
                for entry in entries:
                    await self._handle_gateway_log(conn, entry)
                await self._set_cursor(conn, "gateway_log", entries[-1].rowid)
            self._care.committed()
            done += len(entries)
        return done

    async def _where(self, conn: Connection, gateway_id: str,
                     device_id: str | None) -> Where:
        household_id = resident_id = room = None
        if device_id is not None:
            cur = await conn.execute("SELECT household_id, resident_id, room FROM devices"
                                     " WHERE id = ?", (device_id,))
            d = await cur.fetchone()
            if d is not None:
                household_id, resident_id, room = d["household_id"], d["resident_id"], d["room"]
        if household_id is None:
            cur = await conn.execute("SELECT household_id FROM gateway_bindings WHERE id = ?",
                                     (gateway_id,))
            g = await cur.fetchone()
            household_id = g["household_id"] if g is not None else None
        district_id = None
        if household_id is not None:
            cur = await conn.execute(
                "SELECT c.district_id FROM households h JOIN communities c"
                " ON c.id = h.community_id WHERE h.id = ?", (household_id,))
            h = await cur.fetchone()
            district_id = h[0] if h is not None else None
            if resident_id is None:
                cur = await conn.execute("SELECT id FROM residents WHERE household_id = ?"
                                         " ORDER BY id LIMIT 1", (household_id,))
                r = await cur.fetchone()
                resident_id = r[0] if r is not None else None
        return Where(resident_id, household_id, district_id, room)

    async def _handle_event(self, conn: Connection, ev: StoredEvent) -> None:
        if ev.test:
            return  # recorded by ingest; a test press never becomes an alarm
        now = self._clock.now()
        where = await self._where(conn, ev.gateway_id, ev.device_id)
        if ev.kind in ACTIVITY_KINDS:
            seen = iso(ev.device_ts or ev.gateway_ts)
            await conn.execute(
                "INSERT INTO care_gateway_watch(gateway_id, last_activity_at) VALUES (?, ?)"
                " ON CONFLICT(gateway_id) DO UPDATE SET last_activity_at = CASE WHEN"
                " excluded.last_activity_at > COALESCE(care_gateway_watch.last_activity_at, '')"
                " THEN excluded.last_activity_at ELSE care_gateway_watch.last_activity_at END",
                (ev.gateway_id, seen))
        kind = EVENT_ALERTS.get(ev.kind)
        if kind is not None or ev.kind is EventKind.CANCEL:
            window = await C.get(conn, ev.gateway_id)
            if window is not None and window.covers(now, ev.received_at):
                await self._commissioning_entry(conn, ev, where, window, now)
                return
        severity: Severity | None = None
        if kind in (AlertKind.STRAP_REMOVED, AlertKind.GEOFENCE_EXIT) and where.resident_id:
            profile = await self._registry.watch_profile_of(where.resident_id)
            if profile is not None:
                if kind is AlertKind.STRAP_REMOVED and not profile.strap_alert:
                    log.info("strap of %s removed (resident %s): recorded, no alert (the"
                             " resident's watch profile)", ev.device_id, where.resident_id)
                    return
                # a concern to check (medium), high for a resident at risk of wandering:
                # neither is a life-safety alarm, which SOS and fall remain
                severity = Severity.HIGH if profile.effective_high_risk else Severity.MEDIUM
        if kind is not None:
            if where.household_id is None:
                log.warning("alarm %s (%s) from gateway %s device %s is not bound to a"
                            " household; raising it unscoped", ev.id, ev.kind, ev.gateway_id,
                            ev.device_id)
            spec = AlertSpec(
                kind=kind, subject=self._subject(kind, ev.gateway_id, ev.device_id, where),
                source="gateway", resident_id=where.resident_id,
                household_id=where.household_id, district_id=where.district_id,
                gateway_id=ev.gateway_id, device_id=ev.device_id, room=where.room,
                raised_at=ev.device_ts, received_at=ev.gateway_ts,
                committed_at=ev.committed_at,
                detail={"record_id": ev.id, "device_id": ev.device_id, "rule": ev.rule,
                        "data": ev.data},
                severity=severity, position=await self._position(ev))
            await self._care.raise_alert(conn, spec, now, record_id=ev.id, cursor=ev.rowid)
        elif ev.kind is EventKind.CANCEL and where.resident_id is not None:
            await self._care.cancel_requested(conn, where.resident_id, now,
                                              {"record_id": ev.id, "device_id": ev.device_id})
        elif ev.kind in (EventKind.GAS_CLEAR, EventKind.SMOKE_CLEAR):
            alarm = AlertKind.GAS_ALARM if ev.kind is EventKind.GAS_CLEAR else AlertKind.SMOKE_ALARM
            await self._care.system_note(
                conn, self._subject(alarm, ev.gateway_id, ev.device_id, where), alarm,
                "探测器报告浓度已恢复正常（仍需人工确认）", now)
        elif ev.kind is EventKind.GEOFENCE_ENTER:
            await self._care.system_note(
                conn, self._subject(AlertKind.GEOFENCE_EXIT, ev.gateway_id, ev.device_id, where),
                AlertKind.GEOFENCE_EXIT, "已返回安全区域（仍请确认老人情况）", now)
        elif ev.kind is EventKind.DEVICE_ONLINE:
            await self._care.system_note(conn, f"device:{ev.device_id}",
                                         AlertKind.DEVICE_OFFLINE, "设备已恢复在线", now)

    async def _position(self, ev: StoredEvent) -> AlertPosition | None:
        """Where the person was: the event's own fix, else the newest valid fix the
        watch reported (up to a day before), else the coordinates it wrote without a fix."""
        data = ev.data
        raw_lat, raw_lon = data.get("lat"), data.get("lon")
        source = data.get("position")
        has = isinstance(raw_lat, int | float) and isinstance(raw_lon, int | float)
        lat = float(raw_lat) if isinstance(raw_lat, int | float) else 0.0
        lon = float(raw_lon) if isinstance(raw_lon, int | float) else 0.0
        if has and source == PositionSource.FIX.value:
            return AlertPosition(lat=lat, lon=lon, at=ev.device_ts, valid=True,
                                 source=PositionSource.FIX)
        if has and source == PositionSource.LAST_KNOWN.value:
            at = data.get("position_ts")
            return AlertPosition(lat=lat, lon=lon,
                                 at=parse_iso(at) if isinstance(at, str) else None,
                                 valid=True, source=PositionSource.LAST_KNOWN)
        if ev.source == "watch" and ev.device_id is not None and self._store is not None:
            until = ev.device_ts or ev.gateway_ts
            points = await self._store.telemetry(ev.device_id, until - timedelta(days=1))
            fixes = [p for p in points if p.kind is EventKind.LOCATION and p.ts <= until
                     and "lat" in p.values and "lon" in p.values]
            if fixes:
                last = fixes[-1]
                return AlertPosition(lat=last.values["lat"], lon=last.values["lon"],
                                     at=last.ts, valid=True, source=PositionSource.LAST_KNOWN)
        if has and source == PositionSource.NO_FIX.value:
            return AlertPosition(lat=lat, lon=lon, at=ev.device_ts, valid=False,
                                 source=PositionSource.NO_FIX)
        return None

    async def _commissioning_entry(self, conn: Connection, ev: StoredEvent,
                                   where: Where, window: C.Window, now: datetime) -> None:
        """An alarm during the gateway's commissioning window: one low entry per gateway
        (each press a repeat on it), never a ladder (``commissioning`` does not escalate)."""
        spec = AlertSpec(
            kind=AlertKind.COMMISSIONING, subject=f"gateway:{ev.gateway_id}", source="gateway",
            resident_id=where.resident_id, household_id=where.household_id,
            district_id=where.district_id, gateway_id=ev.gateway_id, device_id=ev.device_id,
            room=where.room, raised_at=ev.device_ts, received_at=ev.gateway_ts,
            committed_at=ev.committed_at,
            detail={"record_id": ev.id, "device_id": ev.device_id, "event_kind": ev.kind.value,
                    "commissioning_until": iso(window.until),
                    "text": "调试期间的报警（安装测试，不通知家属）"})
        await self._care.raise_alert(conn, spec, now, record_id=ev.id, cursor=ev.rowid)

    @staticmethod
    def _subject(kind: AlertKind, gateway_id: str, device_id: str | None, where: Where) -> str:
        if kind in DEVICE_SUBJECT_ALERTS and device_id is not None:
            return f"device:{device_id}"
        if kind is AlertKind.GATEWAY_OFFLINE:
            return f"gateway:{gateway_id}"
        if where.resident_id is not None:
            return f"resident:{where.resident_id}"
        if where.household_id is not None:
            return f"household:{where.household_id}"
        return f"gateway:{gateway_id}"

    async def _gateway_alert(self, conn: Connection, gateway_id: str,
                             why: str, now: datetime, since: datetime | None) -> None:
        where = await self._where(conn, gateway_id, None)
        spec = AlertSpec(kind=AlertKind.GATEWAY_OFFLINE, subject=f"gateway:{gateway_id}",
                         source="cloud", resident_id=where.resident_id,
                         household_id=where.household_id, district_id=where.district_id,
                         gateway_id=gateway_id, raised_at=since,
                         detail={"why": why, "since": iso(since) if since else None})
        await self._care.raise_alert(conn, spec, now)

    async def _handle_gateway_log(self, conn: Connection,
                                  entry: GatewayLogEntry) -> None:
        now = self._clock.now()
        if entry.status == "offline" and await G.revoked_at(conn, entry.gateway_id):
            # the installer revoked it and the revoke recorded it offline: not a fault
            await self._care.system_note(conn, f"gateway:{entry.gateway_id}",
                                         AlertKind.GATEWAY_OFFLINE, "网关已被注销", now)
            return
        if entry.status == "offline":
            await self._gateway_alert(conn, entry.gateway_id, f"last will ({entry.reason})",
                                      now, entry.ts or entry.received_at)
            await conn.execute(
                "INSERT INTO care_gateway_watch(gateway_id, offline_alerted_for) VALUES (?, ?)"
                " ON CONFLICT(gateway_id) DO UPDATE SET offline_alerted_for ="
                " excluded.offline_alerted_for", (entry.gateway_id, iso(entry.received_at)))
        else:
            await self._care.system_note(conn, f"gateway:{entry.gateway_id}",
                                         AlertKind.GATEWAY_OFFLINE, "网关已恢复在线", now)

    # -- cloud rules ---------------------------------------------------------------------

    async def run_rules(self) -> None:
        """Silent gateways (no health for N minutes) and quiet homes (no activity for N hours).

        Nothing here blocks the event loop (which may also run ingest) for long, and the
        write transaction is opened only for the gateways that need an alert: the rows are
        read without their health JSON, the watch rows in one query, the decisions made in
        slices between turns of the loop, and only health reports received since the last
        run are decoded (issue 14: loading and parsing every gateway every 30 s took
        180-370 ms at 10,000 gateways, while the broker's queue for the cloud overflowed)."""
        if self._store is None:
            return
        now = self._clock.now()
        online = {g.id: g for g in await self._store.online_gateways()}
        bound = await self._registry.bound_gateways()
        cur = await self._db.conn.execute(
            "SELECT gateway_id, offline_alerted_for, last_activity_at, welfare_alerted_for,"
            " revoked_at FROM care_gateway_watch")
        watches = {str(r[0]): (r[1], r[2], r[3], r[4]) for r in await cur.fetchall()}
        offline_after = timedelta(seconds=self._settings.care.gateway_offline_after_s)
        quiet_after = timedelta(hours=self._settings.care.welfare_inactive_hours)
        silent: list[tuple[str, datetime, str]] = []
        quiet: list[tuple[Any, str | None, str]] = []
        for n, b in enumerate(bound):
            if n and n % _RULES_SLICE == 0:
                await asyncio.sleep(0)
            rec = online.get(b["id"])
            if rec is None:
                continue  # never seen, or offline: the Last Will already raised it
            offline_for, activity, welfare_for, revoked = watches.get(
                b["id"], (None, None, None, None))
            if revoked is not None:
                continue  # revoked: silent by design, and its home has no gateway
            last_seen = rec.last_seen or rec.created_at
            if now - last_seen > offline_after:
                marker = iso(last_seen)
                if offline_for != marker:
                    silent.append((b["id"], last_seen, marker))
                continue
            reference = activity or b["bound_at"]
            if now - parse_iso(reference) > quiet_after and welfare_for != reference:
                quiet.append((b, activity, reference))
        health_since = self._health_seen
        reported = await self._store.gateways_reported_since(
            None if health_since is None else health_since - _HEALTH_OVERLAP,
            containing=_CONFLICT_COUNTER)
        newest = max((r.last_health_at for r in reported if r.last_health_at is not None),
                     default=health_since)
        if not silent and not quiet and not any(_conflicts(r) for r in reported):
            self._health_seen = newest
            return
        changed = False
        async with self._db.transaction() as conn:
            for gateway_id, last_seen, marker in silent:
                await self._gateway_alert(conn, gateway_id, "no health report", now,
                                          last_seen)
                await self._watch(conn, gateway_id, "offline_alerted_for", marker)
                changed = True
            for b, activity, reference in quiet:
                cur = await conn.execute(
                    "SELECT last_activity_at, welfare_alerted_for FROM care_gateway_watch"
                    " WHERE gateway_id = ?", (b["id"],))
                row = await cur.fetchone()
                if row is not None and (row[0] != activity or row[1] == reference):
                    continue  # activity (or this alert) since the read above
                for resident_id in await self._registry.residents_of_household(
                        b["household_id"]):
                    spec = AlertSpec(
                        kind=AlertKind.WELFARE_CHECK, subject=f"resident:{resident_id}",
                        source="cloud", resident_id=resident_id,
                        household_id=b["household_id"], district_id=b["district_id"],
                        gateway_id=b["id"],
                        detail={"why": "no activity", "last_activity_at": activity,
                                "hours": self._settings.care.welfare_inactive_hours})
                    await self._care.raise_alert(conn, spec, now)
                await self._watch(conn, b["id"], "welfare_alerted_for", reference)
                changed = True
            changed = await self._id_conflicts(conn, reported, now) or changed
        self._health_seen = newest
        if changed:
            self._care.committed()

    async def _id_conflicts(self, conn: Connection, records: Iterable[GatewayRecord],
                            now: datetime) -> bool:
        """A gateway whose health counts client id conflicts (two gateways run with one
        gateway id and knock each other off the brokers) gets one maintenance alert.

        The counters are cumulative since the gateway started, so a count that differs
        from the one last seen (more conflicts, or a restart that counted some again) is
        news; the same count in the next report is not. While the alert is open a new
        count is a repeat on it, never a second alert."""
        changed = False
        for rec in records:
            health = rec.last_health
            if health is None:
                continue
            counts = {link: health.counters.get(f"client_id_conflict_{link}", 0)
                      for link in ("home", "cloud")}
            total = sum(counts.values())
            if total <= 0:
                continue
            cur = await conn.execute("SELECT id_conflicts_seen FROM care_gateway_watch"
                                     " WHERE gateway_id = ?", (rec.id,))
            row = await cur.fetchone()
            if row is not None and row[0] is not None and int(row[0]) == total:
                continue
            where = await self._where(conn, rec.id, None)
            links = [link for link, n in counts.items() if n > 0]
            spec = AlertSpec(
                kind=AlertKind.GATEWAY_ID_CONFLICT, subject=f"gateway:{rec.id}",
                source="cloud", resident_id=where.resident_id,
                household_id=where.household_id, district_id=where.district_id,
                gateway_id=rec.id, raised_at=rec.last_health_at,
                detail={"why": "client id conflict", "links": links, "counts": counts,
                        "text": "两台网关使用同一网关编号，互相挤下线（请检查安装配置）"})
            await self._care.raise_alert(conn, spec, now)
            await conn.execute(
                "INSERT INTO care_gateway_watch(gateway_id, id_conflicts_seen) VALUES (?, ?)"
                " ON CONFLICT(gateway_id) DO UPDATE SET"
                " id_conflicts_seen = excluded.id_conflicts_seen", (rec.id, total))
            changed = True
        return changed

    @staticmethod
    async def _watch(conn: Connection, gateway_id: str, column: str,
                     value: str) -> None:
        await conn.execute(
            f"INSERT INTO care_gateway_watch(gateway_id, {column}) VALUES (?, ?)"
            f" ON CONFLICT(gateway_id) DO UPDATE SET {column} = excluded.{column}",
            (gateway_id, value))

    async def run_maintenance(self) -> int:
        """Overdue gas/smoke self-tests become installer tasks without anyone asking (the
        installer API runs the same scan, scoped, when the tool asks)."""
        if self._store is None:
            return 0
        if not self._maintenance_ready:
            await M.ensure_tables(self._db)
            self._maintenance_ready = True
        return await M.scan(self._db, self._store, await M.all_detectors(self._db.conn),
                            self._clock.now())

    # -- ladder timers -------------------------------------------------------------------

    async def run_due(self) -> int:
        """Advance every run whose step timed out; each in its own transaction."""
        now = self._clock.now()
        moved = 0
        for alert_id in await L.due_alerts(self._db.conn, now):
            async with self._db.transaction() as conn:
                if await L.process_due(conn, alert_id, now, self._care.ctx):
                    moved += 1
        if moved:
            self._care.committed()
        return moved

    async def run_retention(self) -> int:
        """Telemetry older than ``telemetry.retention_days`` goes (once a day)."""
        days = self._settings.telemetry.retention_days
        if days <= 0 or self._store is None:
            return 0
        async with self._db.transaction() as conn:
            purged = await telemetry_sqlite.purge_before(
                conn, self._clock.now() - timedelta(days=days))
        if purged:
            log.info("purged %d telemetry rows older than %d days", purged, days)
        return purged

    async def run_supervision(self) -> int:
        """Alerts nobody acknowledged in time go to the district's shift supervisors."""
        ctx = self._care.ctx
        now = self._clock.now()
        moved = 0
        for alert_id in await S.due_alerts(self._db.conn, now, ctx.supervisor_escalation_s):
            row = await self._db.conn.execute("SELECT district_id FROM alerts WHERE id = ?",
                                              (alert_id,))
            found = await row.fetchone()
            district_id = found[0] if found is not None else None
            people = await ctx.supervisors(district_id) if ctx.supervisors else []
            async with self._db.transaction() as conn:
                if await S.escalate(conn, alert_id, now, ctx, people):
                    moved += 1
        if moved:
            self._care.committed()
        return moved

    # -- gateway configs -----------------------------------------------------------------

    async def publish_configs(self) -> int:
        if self._link is None:
            return 0
        now = self._clock.now()
        if self._next_config_try is not None and now < self._next_config_try:
            return 0
        published = 0
        for gateway_id, version in await self._registry.pending_configs():
            config = await self._registry.build_gateway_config(
                gateway_id, self._settings.care.gateway_sms_timeout_s)
            if config is None:
                continue
            try:
                await self._link.publish_config(gateway_id, config)
            except CloudError as exc:
                log.warning("config v%d for gateway %s not published: %s", version,
                            gateway_id, exc)
                await self._registry.mark_published(gateway_id, version, str(exc))
                self._next_config_try = now + timedelta(
                    seconds=self._settings.care.rules_interval_s)
                return published
            await self._registry.mark_published(gateway_id, version, None)
            published += 1
        self._next_config_try = None
        return published

    async def recent_vitals(self, device_ids: Sequence[str], since: datetime,
                            limit: int = 200) -> list[StoredTelemetry]:
        if self._store is None:
            return []
        out: list[StoredTelemetry] = []
        for device_id in device_ids:
            out += await self._store.telemetry(device_id, since=since, limit=limit)
        return sorted(out, key=lambda t: t.ts)[-limit:]

    async def gateway_record(self, gateway_id: str) -> GatewayRecord | None:
        if self._store is None:
            return None
        for g in await self._store.gateways():
            if g.id == gateway_id:
                return g
        return None
