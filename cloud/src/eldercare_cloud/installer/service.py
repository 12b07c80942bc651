"""What the installer endpoints do: claim, pair, walk-test lookups, records, maintenance.

Built on the other components' public interfaces: the registry (households, gateway
bindings, devices, with the installer's district scope), ingest (``IngestStore``:
gateway registration, committed events, unknown-device reports, telemetry) and the
broker's dynamic-security plugin. The installer sees gateways, devices, rooms and
residents' names, never a resident's record.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any, Protocol

from eldercare_cloud.audit import AuditLog
from eldercare_cloud.auth.models import Principal
from eldercare_cloud.broker import AccountExistsError, AsyncDynsecClient
from eldercare_cloud.broker.errors import BrokerUnavailableError, DynsecCommandError
from eldercare_cloud.broker.names import check_gateway_id, gateway_client_id
from eldercare_cloud.broker.settings import BrokerAdminSettings
from eldercare_cloud.care import commissioning, maintenance
from eldercare_cloud.care import gateways as care_gateways
from eldercare_cloud.care.models import AlertKind
from eldercare_cloud.care.service import CareService
from eldercare_cloud.clock import Clock, iso, opt_iso, opt_parse, parse_iso
from eldercare_cloud.db import Database
from eldercare_cloud.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
)
from eldercare_cloud.ingest import IngestStore, Received, RegistrationError
from eldercare_cloud.ingest.credentials import generate_secret
from eldercare_cloud.installer import retained
from eldercare_cloud.installer.models import (
    BindRequest,
    BoundDevice,
    BrokerCredentials,
    ClaimRequest,
    ClaimResponse,
    CommissioningRecord,
    CommissioningWindow,
    Cursor,
    InstallerHousehold,
    MaintenanceScan,
    MaintenanceTask,
    ReportDevice,
    ReportStep,
    ReportStored,
    ResidentRef,
    RevokeResponse,
    SeenDevice,
    WalkEvent,
    WalkRun,
    WalkRunStored,
    WalkStep,
)
from eldercare_cloud.installer.report import render_html
from eldercare_cloud.installer.schema import MIGRATIONS
from eldercare_cloud.registry import RegistryService
from eldercare_cloud.registry.models import DeviceCreate, DeviceUpdate, GatewayCreate
from eldercare_cloud.settings import CloudSettings
from eldercare_protocols.catalogue import CATALOGUE, DeviceType, device_type_for_z2m_model
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import GatewayState

log = logging.getLogger(__name__)

#: (the 30-day self-test rule is ``care.maintenance``: one definition for the engine's
#: periodic scan, this API and the console's board)
#: how often a waiting walk-test lookup looks at newly committed rows
POLL_S = 0.1
MAX_WAIT_S = 30.0

#: the catalogue's walk-test steps, zh-CN first on the installer's screen
WALK_TEXT_ZH = {
    "press the red button": "请按下红色按钮",
    "open the door": "请打开门",
    "press the gas detector's test button": "请按下燃气报警器的测试按钮",
    "press the smoke alarm's test button": "请按下烟雾报警器的测试按钮",
    "take one reading with the monitor": "请用监测仪测量一次",
    "lie on the bed and get up": "请在床上躺下再起身",
    "walk in front of the motion sensor": "请在人体感应器前走动",
    "walk through the radar's field of view": "请走过雷达的探测范围",
    "press the wristband's SOS key": "请按下手环的 SOS 键",
}


def walk_steps(dtype: DeviceType) -> list[WalkStep]:
    return [WalkStep(text_en=text, text_zh=WALK_TEXT_ZH.get(text, text), kind=kind,
                     channel="telemetry" if kind in dtype.telemetry_kinds else "event")
            for text, kind in dtype.walk_tests]


def _window_out(gateway_id: str, window: commissioning.Window | None,
                now: datetime) -> CommissioningWindow:
    if window is None:
        return CommissioningWindow(gateway_id=gateway_id, active=False, started_at=None,
                                   until=None)
    return CommissioningWindow(gateway_id=gateway_id, active=window.active(now),
                               started_at=window.started_at, until=window.until,
                               ended_at=window.ended_at)


class BrokerNotConfiguredError(ConflictError):
    """The cloud has no broker admin account, so it cannot issue gateway credentials."""


class InstallerDeps(Protocol):
    """The other components the installer builds on (the app's services satisfy it), so
    this domain needs nothing from the API layer."""

    @property
    def settings(self) -> CloudSettings: ...
    @property
    def db(self) -> Database: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def audit(self) -> AuditLog: ...
    @property
    def registry(self) -> RegistryService: ...
    @property
    def care(self) -> CareService: ...


class InstallerService:
    def __init__(self, services: InstallerDeps, broker: BrokerAdminSettings) -> None:
        self.s = services
        self.broker = broker
        self._migrated = False
        self._migrate_lock = asyncio.Lock()

    # -- plumbing --------------------------------------------------------------------------

    async def ready(self) -> InstallerService:
        if not self._migrated:
            async with self._migrate_lock:
                if not self._migrated:
                    await self.s.db.migrate("installer", MIGRATIONS)
                    self._migrated = True
        return self

    @asynccontextmanager
    async def _ingest(self) -> AsyncIterator[IngestStore]:
        async with IngestStore(self.s.db) as store:
            yield store

    def _now(self) -> datetime:
        return self.s.clock.now()

    async def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        cur = await self.s.db.conn.execute(sql, params)
        return list(await cur.fetchall())

    async def _audit(self, p: Principal, action: str, record_type: str, record_id: str,
                     reason: str) -> None:
        await self.s.audit.record(tenant=p.tenant, actor=p.actor, actor_name=p.username,
                                  role=p.role.value, action=action, record_type=record_type,
                                  record_id=record_id, reason=reason)

    def _dynsec(self) -> AsyncDynsecClient:
        if not self.broker.configured:
            raise BrokerNotConfiguredError(
                "this cloud cannot issue gateway credentials: broker administration is not "
                "configured (ELDERCARE_CLOUD_BROKER__ADMIN_USERNAME / _PASSWORD)")
        return AsyncDynsecClient(self.broker.dynsec_options(self.s.settings.mqtt.url))

    # -- claim and revoke ------------------------------------------------------------------

    async def claim(self, p: Principal, req: ClaimRequest) -> ClaimResponse:
        household = await self.s.registry.get_household(p, req.household_id)
        gateway_id = check_gateway_id(req.gateway_id or f"gw-{secrets.token_hex(5)}")
        async with self._ingest() as store:
            if await store.gateway(gateway_id) is not None:
                raise ConflictError(f"gateway {gateway_id} is already registered")
        if await self._rows("SELECT 1 FROM gateway_bindings WHERE id = ?", (gateway_id,)):
            raise ConflictError(f"gateway {gateway_id} is already registered")
        secret = generate_secret()
        async with self._dynsec() as dynsec:
            try:
                await dynsec.create_gateway(gateway_id, secret)
            except AccountExistsError as exc:
                raise ConflictError(f"the broker already has an account {gateway_id}") from exc
            try:
                async with self._ingest() as store:
                    await store.add_gateway(gateway_id, secret)
                await self.s.registry.create_gateway(
                    p, GatewayCreate(id=gateway_id, household_id=household.id,
                                     label=req.label))
            except (RegistrationError, ConflictError, InvalidRequestError, NotFoundError):
                # nothing may keep a credential that no record in the cloud explains
                await dynsec.revoke_gateway(gateway_id)
                raise
        now = self._now()
        url = self.broker.public_url(self.s.settings.mqtt.url)
        async with self.s.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO installer_claims(gateway_id, household_id, claimed_by, claimed_at,"
                " broker_url) VALUES (?, ?, ?, ?, ?)",
                (gateway_id, household.id, p.actor, iso(now), url))
            # the installer is about to press every button in the home
            window = await commissioning.start(
                conn, gateway_id, now,
                timedelta(seconds=self.s.settings.care.commissioning_window_s), p.actor)
        await self._audit(p, "claim", "gateway", gateway_id,
                          f"claimed for household {household.id}")
        return ClaimResponse(gateway_id=gateway_id, household_id=household.id, claimed_at=now,
                             broker=BrokerCredentials(url=url, username=gateway_id,
                                                      password=secret,
                                                      client_id=gateway_client_id(gateway_id)),
                             commissioning_until=window.until)

    async def revoke(self, p: Principal, gateway_id: str) -> RevokeResponse:
        """Cut the gateway off at the broker, then make the cloud say so.

        Mosquitto publishes no Last Will for a client whose account it deleted, so the
        cloud would go on showing the gateway online: the revoke records it revoked (care
        core) and offline (through ingest's own commit path, as if its Last Will had come,
        so ingest's record and log agree), and clears its retained birth on the broker so
        that a restarted ingest does not read it back.
        """
        await self.s.registry.get_gateway(p, gateway_id)
        async with self._dynsec() as dynsec:
            existed = await dynsec.revoke_gateway(gateway_id)
            now = self._now()
            async with self.s.db.transaction() as conn:
                await conn.execute("UPDATE installer_claims SET revoked_at = ?, revoked_by = ?"
                                   " WHERE gateway_id = ?", (iso(now), p.actor, gateway_id))
                # before the offline record, so the engine reads that as a revoke, not a fault
                await care_gateways.mark_revoked(conn, gateway_id, now)
                await commissioning.end(conn, gateway_id, now, p.actor)
            async with self._ingest() as store:
                # every ingest worker refuses it from now on (not only after a restart)
                if await store.revoke_gateway(gateway_id, now):
                    await store.commit([Received(
                        gateway_id, GatewayState(gateway_id=gateway_id, status="offline",
                                                 ts=now), now)])
            self.s.care.committed()
            cleared = await self._clear_retained_state(dynsec, gateway_id)
        await self._audit(p, "revoke", "gateway", gateway_id, "broker account revoked")
        return RevokeResponse(gateway_id=gateway_id, revoked_at=now,
                              broker_account_existed=existed, retained_state_cleared=cleared)

    async def _clear_retained_state(self, dynsec: AsyncDynsecClient, gateway_id: str) -> bool:
        try:
            await retained.clear_state(self.s.settings, dynsec, gateway_id,
                                       self.broker.timeout_s)
        except (retained.RetainedClearError, DynsecCommandError,
                BrokerUnavailableError) as exc:
            # the revoke itself stands (account gone, cloud shows it revoked); say so
            log.warning("gateway %s revoked, but its retained state was not cleared: %s",
                        gateway_id, exc)
            return False
        return True

    # -- commissioning window ------------------------------------------------------------------

    async def start_commissioning(self, p: Principal, gateway_id: str,
                                  minutes: int) -> CommissioningWindow:
        """Open or extend the window in which the gateway's alarms are walk tests."""
        await self.s.registry.get_gateway(p, gateway_id)
        now = self._now()
        async with self.s.db.transaction() as conn:
            window = await commissioning.start(conn, gateway_id, now,
                                               timedelta(minutes=minutes), p.actor)
        await self._audit(p, "commissioning_start", "gateway", gateway_id,
                          f"alarms are tests until {iso(window.until)}")
        return _window_out(gateway_id, window, now)

    async def end_commissioning(self, p: Principal, gateway_id: str) -> CommissioningWindow:
        """Close the window now: from here on every alarm from the gateway is real."""
        await self.s.registry.get_gateway(p, gateway_id)
        now = self._now()
        async with self.s.db.transaction() as conn:
            ended = await commissioning.end(conn, gateway_id, now, p.actor)
            if ended:
                await self.s.care.system_note(conn, f"gateway:{gateway_id}",
                                              AlertKind.COMMISSIONING,
                                              "调试结束，此后报警均为真实报警", now)
            window = await commissioning.get(conn, gateway_id)
        if ended:
            self.s.care.committed()
            await self._audit(p, "commissioning_end", "gateway", gateway_id,
                              "alarms are real again")
        return _window_out(gateway_id, window, now)

    async def commissioning(self, p: Principal, gateway_id: str) -> CommissioningWindow:
        await self.s.registry.get_gateway(p, gateway_id)
        return _window_out(gateway_id, await commissioning.get(self.s.db.conn, gateway_id),
                           self._now())

    # -- households and pairing ----------------------------------------------------------------

    async def _residents(self, household_id: str) -> list[ResidentRef]:
        rows = await self._rows("SELECT id, name FROM residents WHERE household_id = ?"
                                " ORDER BY id", (household_id,))
        return [ResidentRef(id=r[0], name=r[1]) for r in rows]

    async def household(self, p: Principal, household_id: str) -> InstallerHousehold:
        hh = await self.s.registry.get_household(p, household_id)
        residents = await self._residents(hh.id)
        gateways = [g.id for g in await self.s.registry.list_gateways(p)
                    if g.household_id == hh.id]
        await self._audit(p, "read", "household", hh.id, "installer: residents' names for "
                          "device binding")
        return InstallerHousehold(id=hh.id, address=hh.address, rooms=hh.rooms,
                                  residents=residents, gateways=gateways)

    async def _unknown_devices(self, gateway_id: str) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with self._ingest() as store:
            cursor = 0
            for _ in range(10_000):  # bounded: pages of 500
                page = await store.unknown_devices_after(cursor, 500)
                if not page:
                    break
                for u in page:
                    if u.gateway_id != gateway_id:
                        continue
                    # a later report may know the type (Zigbee2MQTT's device list)
                    first = seen.get(u.device_id)
                    if first is None or (first.device_type is None and u.device_type):
                        seen[u.device_id] = u
                cursor = page[-1].rowid
        return seen

    async def seen(self, p: Principal, gateway_id: str) -> list[SeenDevice]:
        await self.s.registry.get_gateway(p, gateway_id)
        unknown = await self._unknown_devices(gateway_id)
        bound = {d.id: d for d in await self.s.registry.list_devices(p, gateway_id=gateway_id)}
        out: list[SeenDevice] = []
        for device_id in sorted(set(unknown) | set(bound)):
            u = unknown.get(device_id)
            b = bound.get(device_id)
            type_name = b.type if b is not None else (u.device_type if u is not None else None)
            dtype = CATALOGUE.get(type_name) if type_name else None
            source = b.source if b is not None else (u.source if u is not None else "native")
            out.append(SeenDevice(
                device_id=device_id, source=source,
                device_type=dtype.name if dtype else None,
                label_zh=dtype.label_zh if dtype else None,
                label_en=dtype.label_en if dtype else None,
                topic=u.topic if u else None, first_seen=u.committed_at if u else None,
                bound=b is not None, room=b.room if b else None,
                resident_id=b.resident_id if b else None))
        return out

    async def bind(self, p: Principal, gateway_id: str, device_id: str,
                   req: BindRequest) -> BoundDevice:
        gw = await self.s.registry.get_gateway(p, gateway_id)
        if gw.household_id is None:
            raise InvalidRequestError(f"gateway {gateway_id} is not installed in a household")
        unknown = (await self._unknown_devices(gateway_id)).get(device_id)
        type_name = req.type or (unknown.device_type if unknown else None)
        if type_name is None and req.z2m_model:
            dt = device_type_for_z2m_model(req.z2m_model)
            type_name = dt.name if dt is not None else None
        if type_name is None:
            raise InvalidRequestError(f"device {device_id}: its type is not known yet; give "
                                      f"one of {sorted(CATALOGUE)}")
        if type_name not in CATALOGUE:
            raise InvalidRequestError(f"unknown device type {type_name!r}; known: "
                                      f"{sorted(CATALOGUE)}")
        resident_id = req.resident_id
        if resident_id is None:
            residents = await self._residents(gw.household_id)
            if len(residents) == 1:
                resident_id = residents[0].id
        source = req.source or (unknown.source if unknown else "native")
        z2m_name = req.z2m_name
        if source == "z2m" and z2m_name is None and unknown is not None:
            z2m_name = unknown.device_id
        try:
            existing = await self.s.registry.get_device(p, device_id)
        except NotFoundError:
            existing = None
        if existing is None:
            await self.s.registry.create_device(p, DeviceCreate(
                id=device_id, type=type_name, gateway_id=gateway_id,
                household_id=gw.household_id, resident_id=resident_id, room=req.room,
                source=source, z2m_model=req.z2m_model, z2m_name=z2m_name))
        else:
            if existing.type != type_name:
                raise ConflictError(f"device {device_id} is registered as {existing.type}, "
                                    f"not {type_name}")
            await self.s.registry.update_device(p, device_id, DeviceUpdate(
                gateway_id=gateway_id, household_id=gw.household_id, resident_id=resident_id,
                room=req.room, z2m_model=req.z2m_model or existing.z2m_model,
                z2m_name=z2m_name or existing.z2m_name))
        now = self._now()
        async with self.s.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO installer_pairings(device_id, gateway_id, serial, bound_by,"
                " bound_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(device_id) DO UPDATE SET"
                " gateway_id = excluded.gateway_id, serial = excluded.serial,"
                " bound_by = excluded.bound_by, bound_at = excluded.bound_at",
                (device_id, gateway_id, req.serial or device_id, p.actor, iso(now)))
        for d in await self.devices(p, gateway_id):
            if d.device_id == device_id:
                return d
        raise NotFoundError(f"device {device_id} not found")  # pragma: no cover

    async def devices(self, p: Principal, gateway_id: str) -> list[BoundDevice]:
        await self.s.registry.get_gateway(p, gateway_id)
        pairings = {r[0]: r for r in await self._rows(
            "SELECT device_id, serial, bound_by, bound_at FROM installer_pairings"
            " WHERE gateway_id = ?", (gateway_id,))}
        out: list[BoundDevice] = []
        for d in await self.s.registry.list_devices(p, gateway_id=gateway_id):
            dtype = CATALOGUE.get(d.type)
            if dtype is None:
                continue
            pr = pairings.get(d.id)
            out.append(BoundDevice(
                device_id=d.id, type=d.type, label_zh=dtype.label_zh, label_en=dtype.label_en,
                room=d.room, resident_id=d.resident_id, source=d.source,
                serial=pr[1] if pr else d.id, walk_tests=walk_steps(dtype),
                bound_at=opt_parse(pr[3]) if pr else None, bound_by=pr[2] if pr else None))
        return out

    # -- walk-test ----------------------------------------------------------------------

    async def cursor(self, p: Principal, gateway_id: str) -> Cursor:
        await self.s.registry.get_gateway(p, gateway_id)
        async with self._ingest() as store:
            rowids = await store.max_rowids()
        return Cursor(events=rowids["events"], at=self._now())

    async def walk_event(self, p: Principal, gateway_id: str, device_id: str, kind: EventKind,
                         after: int, since: datetime | None, wait_s: float) -> WalkEvent:
        await self.s.registry.get_gateway(p, gateway_id)
        device = await self.s.registry.get_device(p, device_id)
        if device.gateway_id != gateway_id:
            raise InvalidRequestError(f"device {device_id} is not bound to {gateway_id}")
        dtype = CATALOGUE[device.type]
        telemetry = kind in dtype.telemetry_kinds
        if telemetry and since is None:
            raise InvalidRequestError("a reading is looked up by time: give since")
        deadline = asyncio.get_running_loop().time() + min(max(wait_s, 0.0), MAX_WAIT_S)
        cursor = after
        async with self._ingest() as store:
            while True:
                if telemetry:
                    assert since is not None
                    for t in await store.telemetry(device_id, since=since, limit=50):
                        if t.kind is kind and t.gateway_id == gateway_id:
                            return WalkEvent(found=True, cursor=cursor, kind=kind,
                                             device_ts=t.ts)
                else:
                    for _ in range(100):  # bounded: at most 50,000 rows per poll
                        page = await store.events_after(cursor, 500)
                        if not page:
                            break
                        cursor = page[-1].rowid
                        for ev in page:
                            if (ev.gateway_id == gateway_id and ev.device_id == device_id
                                    and ev.kind is kind):
                                if kind is EventKind.SELF_TEST:
                                    await self._note_self_test(device_id,
                                                               ev.device_ts or ev.gateway_ts)
                                return WalkEvent(
                                    found=True, cursor=ev.rowid, event_id=ev.id, kind=ev.kind,
                                    test=ev.test, device_ts=ev.device_ts,
                                    gateway_ts=ev.gateway_ts, committed_at=ev.committed_at)
                if asyncio.get_running_loop().time() >= deadline:
                    return WalkEvent(found=False, cursor=cursor)
                # ingest commits from another task; its rows are polled, not pushed here
                await asyncio.sleep(POLL_S)

    async def store_walk(self, p: Principal, gateway_id: str, run: WalkRun) -> WalkRunStored:
        await self.s.registry.get_gateway(p, gateway_id)
        bound = {d.id for d in await self.s.registry.list_devices(p, gateway_id=gateway_id)}
        stray = sorted({r.device_id for r in run.results} - bound)
        if stray:
            raise InvalidRequestError(f"not bound to {gateway_id}: {', '.join(stray)}")
        run_id = f"WT-{secrets.token_hex(6)}"
        async with self.s.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO installer_walk_runs(id, gateway_id, simulated, tested_by,"
                " created_at) VALUES (?, ?, ?, ?, ?)",
                (run_id, gateway_id, int(run.simulated), p.actor, iso(self._now())))
            await conn.executemany(
                "INSERT INTO installer_walk_results(run_id, position, device_id, kind, step,"
                " result, attempts, latency_ms, event_id, device_ts, committed_at, tested_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, i, r.device_id, r.kind.value, r.step, r.result, r.attempts,
                  r.latency_ms, r.event_id, opt_iso(r.device_ts), opt_iso(r.committed_at),
                  iso(r.tested_at)) for i, r in enumerate(run.results)])
            for r in run.results:
                if r.kind is EventKind.SELF_TEST and r.result == "passed":
                    await maintenance.note_self_test(conn, r.device_id,
                                                     r.device_ts or r.tested_at)
        counts = {k: sum(r.result == k for r in run.results)
                  for k in ("passed", "failed", "skipped")}
        return WalkRunStored(run_id=run_id, gateway_id=gateway_id, **counts)

    async def _note_self_test(self, device_id: str, at: datetime) -> None:
        async with self.s.db.transaction() as tx:
            await maintenance.note_self_test(tx, device_id, at)

    # -- maintenance ------------------------------------------------------------------------

    async def scan_maintenance(self, p: Principal, gateway_id: str | None = None
                               ) -> MaintenanceScan:
        """Gas and smoke detectors without a self-test in 30 days get one open task each."""
        if gateway_id is not None:
            await self.s.registry.get_gateway(p, gateway_id)
        devices = await self.s.registry.list_devices(p, gateway_id=gateway_id)
        async with self._ingest() as store:
            created = await maintenance.scan(self.s.db, store,
                                             [(d.id, d.type) for d in devices], self._now())
        return MaintenanceScan(created=created,
                               open=await self.maintenance(p, gateway_id, status="open"))

    async def maintenance(self, p: Principal, gateway_id: str | None = None,
                          status: str | None = None) -> list[MaintenanceTask]:
        devices = {d.id: d for d in await self.s.registry.list_devices(p, gateway_id=gateway_id)}
        if not devices:
            return []
        tests = await maintenance.last_self_tests(self.s.db.conn)
        sql = ("SELECT id, device_id, kind, reason, status, created_at, done_at"
               " FROM installer_maintenance")
        params: tuple[Any, ...] = ()
        if status is not None:
            sql += " WHERE status = ?"
            params = (status,)
        out = []
        for r in await self._rows(sql + " ORDER BY created_at, id", params):
            d = devices.get(r[1])
            if d is None:
                continue  # out of the caller's scope, or another gateway's
            out.append(MaintenanceTask(
                id=r[0], device_id=r[1], device_type=d.type, gateway_id=d.gateway_id,
                household_id=d.household_id, kind=r[2], reason=r[3], status=r[4],
                created_at=parse_iso(r[5]), last_self_test=tests.get(r[1]),
                done_at=opt_parse(r[6])))
        return out

    # -- the commissioning record -----------------------------------------------------------

    async def build_report(self, p: Principal, gateway_id: str) -> ReportStored:
        gw = await self.s.registry.get_gateway(p, gateway_id)
        # the record closes commissioning: from now on the home's alarms are real
        await self.end_commissioning(p, gateway_id)
        scan = await self.scan_maintenance(p, gateway_id)
        address = community = None
        residents: dict[str, str] = {}
        if gw.household_id is not None:
            hh = await self.s.registry.get_household(p, gw.household_id)
            address = hh.address
            comm = await self._rows("SELECT name FROM communities WHERE id = ?",
                                    (hh.community_id,))
            community = comm[0][0] if comm else None
            residents = {r.id: r.name for r in await self._residents(hh.id)}
        tests = await maintenance.last_self_tests(self.s.db.conn)
        devices = [ReportDevice(device_id=d.device_id, serial=d.serial, type=d.type,
                                label_zh=d.label_zh, label_en=d.label_en, room=d.room,
                                resident=residents.get(d.resident_id or ""),
                                last_self_test=tests.get(d.device_id))
                   for d in await self.devices(p, gateway_id)]
        run = await self._rows("SELECT id, simulated FROM installer_walk_runs WHERE"
                               " gateway_id = ? ORDER BY created_at DESC, id LIMIT 1",
                               (gateway_id,))
        steps: list[ReportStep] = []
        if run:
            for r in await self._rows(
                    "SELECT device_id, kind, step, result, attempts, latency_ms, tested_at,"
                    " committed_at FROM installer_walk_results WHERE run_id = ?"
                    " ORDER BY position", (run[0][0],)):
                steps.append(ReportStep(device_id=r[0], kind=EventKind(r[1]), step=r[2],
                                        result=r[3], attempts=r[4], latency_ms=r[5],
                                        tested_at=parse_iso(r[6]),
                                        committed_at=opt_parse(r[7])))
        user = await self._rows("SELECT display_name FROM users WHERE id = ?", (p.user_id,))
        tested = {(s.device_id, s.kind) for s in steps if s.result == "passed"}
        wanted = {(d.device_id, step.kind) for d in await self.devices(p, gateway_id)
                  for step in d.walk_tests}
        record = CommissioningRecord(
            id=f"CR-{secrets.token_hex(6)}", gateway_id=gateway_id,
            household_id=gw.household_id, address=address, community=community,
            residents=sorted(residents.values()), devices=devices, walk_test=steps,
            walk_test_simulated=bool(run and run[0][1]),
            all_passed=bool(wanted) and wanted <= tested,
            installer=p.username, installer_name=(user[0][0] if user else "") or p.username,
            created_at=self._now(),
            maintenance=[f"{t.device_id}: {t.reason}" for t in scan.open])
        html = render_html(record)
        async with self.s.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO installer_reports(id, gateway_id, created_by, created_at, record,"
                " html) VALUES (?, ?, ?, ?, ?, ?)",
                (record.id, gateway_id, p.actor, iso(record.created_at),
                 record.model_dump_json(), html))
        return ReportStored(record=record, html=html)

    async def latest_report(self, p: Principal, gateway_id: str) -> ReportStored:
        await self.s.registry.get_gateway(p, gateway_id)
        rows = await self._rows("SELECT record, html FROM installer_reports WHERE"
                                " gateway_id = ? ORDER BY created_at DESC, id LIMIT 1",
                                (gateway_id,))
        if not rows:
            raise NotFoundError(f"no commissioning record for {gateway_id} yet")
        return ReportStored(record=CommissioningRecord.model_validate(json.loads(rows[0][0])),
                            html=rows[0][1])
