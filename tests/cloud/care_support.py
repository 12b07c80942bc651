"""Helpers for the care-core tests (no tests here).

A demo database (the 西湖区 data set plus one account per role) is built once per
session and copied for every test, so each test starts from the same registry in a
few milliseconds. Events reach the care core the way they do in production: committed
by ``IngestStore.commit`` into ingest's tables, then tailed by the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn

import db_support
from eldercare_cloud.api.deps import Services
from eldercare_cloud.app import build_services, create_app, migrate
from eldercare_cloud.auth.models import Role, UserCreate
from eldercare_cloud.auth.signing import sign
from eldercare_cloud.auth.users import TOKEN_PURPOSE
from eldercare_cloud.clock import ManualClock
from eldercare_cloud.db import Database
from eldercare_cloud.demo import load_demo
from eldercare_cloud.ingest import IngestStore, Received, StoredEvent
from eldercare_cloud.notify.base import Channel, Delivery, Outbound
from eldercare_cloud.registry.models import DistrictCreate
from eldercare_cloud.services.models import AccountLink
from eldercare_cloud.settings import CloudSettings
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import EventEnvelope, GatewayState
from settings_support import merged

SECRET = "care-tests-secret-key-0123456789"
PASSWORD = "correct horse battery"

# the demo data set: 王秀英 lives alone in H-XH-001 behind gateway GW-XH-001
GW = "GW-XH-001"
RESIDENT = "R-XH-001"
BUTTON = "btn-xh001"
DOOR = "door-xh001"
GAS = "gas-xh001"
# her contacts in ladder order: two children, a neighbour, a volunteer, the grid worker
SON, DAUGHTER, NEIGHBOUR, VOLUNTEER, GRID = (f"K-XH-001-0{i}" for i in range(1, 6))
# another elder, in another community of the same district
OTHER_RESIDENT = "R-XH-006"
OTHER_GW = "GW-XH-005"
OTHER_BUTTON = "btn-xh005"

#: one account per role (plus an operator of another district, to test scoping)
USERS: dict[str, dict[str, Any]] = {
    "admin": {"role": Role.ADMIN},
    "operator": {"role": Role.OPERATOR, "district_ids": ["D-XH"]},
    "operator_other": {"role": Role.OPERATOR, "district_ids": ["D-OTHER"]},
    "family": {"role": Role.FAMILY, "resident_ids": [RESIDENT]},
    "volunteer": {"role": Role.VOLUNTEER, "contact_ids": [VOLUNTEER]},
    "worker": {"role": Role.WORKER, "contact_ids": [GRID]},
    "installer": {"role": Role.INSTALLER, "district_ids": ["D-XH"]},
    "provider": {"role": Role.PROVIDER},
    "district_admin": {"role": Role.DISTRICT_ADMIN, "district_ids": ["D-XH"]},
    "supervisor": {"role": Role.SUPERVISOR, "district_ids": ["D-XH"]},
}
#: the service desk's accounts (issue 10): the provider's administrator and one of its
#: workers (the demo's 陈美华); the worker account also answers for the grid worker above
SERVICE_PROVIDER = "P-XH-AK"
SERVICE_WORKER = "W-XH-AK-01"


def care_settings(tmp_path: Path, **overrides: Any) -> CloudSettings:
    """Nested ``overrides`` are merged section by section (settings_support.merged)."""
    values: dict[str, Any] = {
        "environment": "test", "data_dir": tmp_path, "auth": {"secret_key": SECRET},
        "http": {"public_base_url": "http://127.0.0.1:9"},
        "care": {"poll_s": 0.05, "rules_interval_s": 0.01, "gateway_offline_after_s": 300,
                 "welfare_inactive_hours": 12.0},
        "notify": {"retry_base_s": 1.0, "max_attempts": 3, "webhook_timeout_s": 2.0},
        "stream": {"heartbeat_s": 0.5}}
    return CloudSettings(**merged(values, overrides))


async def _build_template(path: Path | str, data_dir: Path) -> dict[str, str]:
    settings = care_settings(data_dir)
    async with Database(path) as db, IngestStore(db) as store:
        services = build_services(settings, db, store=store, channels={})
        await migrate(services)
        await load_demo(db)
        admin_p = None
        ids: dict[str, str] = {}
        for username, spec in USERS.items():
            if username == "operator_other" and admin_p is not None:
                await services.registry.create_district(
                    admin_p, DistrictCreate(id="D-OTHER", name="拱墅区", city="杭州市"))
            user = await services.users.create(UserCreate(username=username, password=PASSWORD,
                                                          **spec))
            ids[username] = user.id
            if username == "admin":
                admin_p = await services.users.principal(
                    (await services.users.authenticate("admin", PASSWORD)).access_token)
        for gw in (GW, OTHER_GW):
            await store.add_gateway(gw, "gateway-secret-" + gw)
        assert admin_p is not None
        for username, worker in (("provider", None), ("worker", SERVICE_WORKER)):
            await services.desk.link_account(admin_p, AccountLink(
                user_id=ids[username], provider_id=SERVICE_PROVIDER, worker_id=worker))
    return ids


_TEMPLATE: dict[str, Any] = {}


def demo_template(directory: Path) -> tuple[Path | str, dict[str, str]]:
    """Build the demo database once (per session) and return where it is (a SQLite file,
    or a PostgreSQL database to copy with CREATE DATABASE ... TEMPLATE) and the user ids."""
    if "path" not in _TEMPLATE:
        path: Path | str = (db_support.create_database() if db_support.POSTGRES
                            else directory / "template.sqlite3")
        ids = _run_in_thread(_build_template(path, directory))
        _TEMPLATE.update(path=path, ids=ids)
    return _TEMPLATE["path"], _TEMPLATE["ids"]


def _run_in_thread(coro: Any) -> Any:
    """asyncio.run in a helper thread: a session fixture may be set up inside a running loop."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    t.join(120)
    if "error" in box:
        raise box["error"]
    return box["value"]


def copy_template(template: Path | str, target_dir: Path) -> Path | str:
    """A copy of the template for one test: a file, or a database of the running test."""
    if isinstance(template, str):
        return db_support.CURRENT.new(template)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / "cloud.sqlite3"
    shutil.copyfile(template, target)
    return target


class RecordingChannel:
    """The far end of SMS in ladder tests: records each message and answers as told.

    The channels themselves are tested against a loopback HTTP server and the simulated
    modem in notify/test_channels.py; here only who was asked, and when, matters."""

    def __init__(self, name: str = "sms") -> None:
        self.name = name
        self.sent: list[Outbound] = []
        self.fail_next: list[Delivery] = []

    async def send(self, msg: Outbound) -> Delivery:
        self.sent.append(msg)
        if self.fail_next:
            return self.fail_next.pop(0)
        return Delivery("sent", provider_ref=f"ref-{len(self.sent)}")

    def to(self, phone: str) -> list[Outbound]:
        return [m for m in self.sent if m.address == phone]


_SEQ = [0]


async def commit_event(store: IngestStore, kind: EventKind, device_id: str = BUTTON,
                       gateway_id: str = GW, test: bool = False, *, at: datetime,
                       **data: Any) -> StoredEvent:
    """Commit one event envelope through ingest's own write path (as ingest would),
    received ``at`` the test clock's time."""
    _SEQ[0] += 1
    seq = _SEQ[0]
    now = at
    env = EventEnvelope(id=uuid.uuid4().hex, seq=seq, gateway_id=gateway_id,
                        gateway_ts=now - timedelta(milliseconds=20), device_id=device_id,
                        kind=kind, test=test, device_ts=now - timedelta(milliseconds=80),
                        device_seq=seq, data=data)
    info = await store.commit([Received(gateway_id, env, now)])
    assert len(info.events) == 1
    return info.events[0]


@dataclass
class Care:
    """The care core on a copy of the demo database, with a hand-driven clock."""

    settings: CloudSettings
    db: Database
    store: IngestStore
    services: Services
    clock: ManualClock
    sms: RecordingChannel
    user_ids: dict[str, str]

    async def commit(self, kind: EventKind, device_id: str = BUTTON, gateway_id: str = GW,
                     test: bool = False, **data: Any) -> StoredEvent:
        return await commit_event(self.store, kind, device_id, gateway_id, test,
                                  at=self.clock.now(), **data)

    async def gateway_state(self, status: str, gateway_id: str = GW) -> None:
        now = self.clock.now()
        state = GatewayState(gateway_id=gateway_id, status=status,  # type: ignore[arg-type]
                             ts=now)
        await self.store.commit([Received(gateway_id, state, now)])

    async def run(self) -> None:
        """One engine pass and every delivery that is due."""
        await self.services.engine.tick()
        for _ in range(20):
            if not await self.services.dispatcher.deliver_due():
                break

    async def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await self.run()

    async def alert(self, alert_id: str) -> dict[str, Any]:
        cur = await self.db.conn.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,))
        row = await cur.fetchone()
        assert row is not None
        return dict(row)

    async def open_alerts(self) -> list[dict[str, Any]]:
        cur = await self.db.conn.execute("SELECT * FROM alerts WHERE status NOT IN"
                                         " ('resolved', 'closed') ORDER BY opened_at")
        return [dict(r) for r in await cur.fetchall()]

    async def offers(self, alert_id: str) -> dict[str, str]:
        cur = await self.db.conn.execute("SELECT contact_id, status FROM ladder_offers"
                                         " WHERE alert_id = ? ORDER BY id", (alert_id,))
        return {r[0]: r[1] for r in await cur.fetchall()}

    async def asked(self, alert_id: str) -> list[str]:
        """Contacts notified for an alert, in order (one row per notification)."""
        cur = await self.db.conn.execute(
            "SELECT n.contact_id FROM notifications n LEFT JOIN ladder_offers o"
            " ON o.alert_id = n.alert_id AND o.contact_id = n.contact_id"
            " WHERE n.alert_id = ? AND n.contact_id IS NOT NULL"
            " ORDER BY n.created_at, o.id", (alert_id,))  # offer order breaks ties
        return [r[0] for r in await cur.fetchall()]

    async def link_token(self, alert_id: str, contact_id: str) -> str:
        cur = await self.db.conn.execute("SELECT link FROM notifications WHERE alert_id = ?"
                                         " AND contact_id = ?", (alert_id, contact_id))
        row = await cur.fetchone()
        assert row is not None, f"{contact_id} was never asked about {alert_id}"
        return str(row[0]).split("token=", 1)[1]


@contextlib.asynccontextmanager
async def open_care(db_path: Path | str, settings: CloudSettings, clock: ManualClock,
                    user_ids: dict[str, str],
                    channels: dict[str, Channel] | None = None) -> AsyncIterator[Care]:
    sms = RecordingChannel()
    chans: dict[str, Channel] = {"sms": sms}
    chans.update(channels or {})
    async with Database(db_path) as db, IngestStore(db) as store:
        services = build_services(settings, db, clock=clock, store=store, channels=chans)
        await migrate(services)
        await services.dispatcher.recover()
        yield Care(settings, db, store, services, clock, sms, user_ids)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Server(uvicorn.Server):
    """uvicorn inside the test: the test runner owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Running:
    url: str
    app: Any
    settings: CloudSettings
    clock: ManualClock
    sms: RecordingChannel
    user_ids: dict[str, str]
    store: IngestStore
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    def auth(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[username]}"}


def mint_tokens(user_ids: dict[str, str], now: datetime,
                ttl_s: int = 90 * 24 * 3600) -> dict[str, str]:
    """Bearer tokens as /auth/token issues them at ``now`` (the server's clock), without
    paying for argon2 every test; they outlive the days a test's clock may advance."""
    expires = now + timedelta(seconds=ttl_s)
    return {name: sign(SECRET, TOKEN_PURPOSE, {"sub": uid, "v": 1}, expires)
            for name, uid in user_ids.items()}


async def login(client: httpx.AsyncClient, username: str) -> str:
    resp = await client.post("/api/v1/auth/token",
                             data={"username": username, "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


@contextlib.asynccontextmanager
async def serve(db_path: Path | str, settings: CloudSettings, clock: ManualClock,
                user_ids: dict[str, str], *, run_engine: bool = False,
                channels: dict[str, Channel] | None = None,
                signed_in: bool = False) -> AsyncIterator[Running]:
    """The real app on a real loopback port, in the test's event loop; ``signed_in``: with
    every user's token minted at the clock's time (argon2 verification is slow on purpose:
    the tokens a login would return, without paying for it in every test)."""
    sms = RecordingChannel()
    chans: dict[str, Channel] = {"sms": sms}
    chans.update(channels or {})
    async with Database(db_path) as db, IngestStore(db) as store:
        app = create_app(settings, db=db, store=store, clock=clock, channels=chans,
                         run_engine=run_engine)
        server = _Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(),
                                        log_level="warning", lifespan="on"))
        task = asyncio.create_task(server.serve(), name="test-uvicorn")
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        assert server.started, "uvicorn did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        running = Running(f"http://127.0.0.1:{port}", app, settings, clock, sms, user_ids,
                          store)
        if signed_in:
            running.tokens.update(mint_tokens(user_ids, clock.now()))
        try:
            yield running
        finally:
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 10)


def serve_in_thread(db_path: Path | str, settings: CloudSettings,
                    clock: ManualClock) -> Iterator[str]:
    """The app on a loopback port in its own thread and loop, for synchronous clients
    (schemathesis, the role matrix); yields the base URL."""
    port = free_port()
    started = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        async with Database(db_path) as db, IngestStore(db) as store:
            app = create_app(settings, db=db, store=store, clock=clock, channels={})
            server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                            log_level="warning", lifespan="on"))
            holder["server"] = server
            task = asyncio.create_task(server.serve())
            for _ in range(3000):  # bounded: 30 s
                if server.started or task.done():
                    break
                await asyncio.sleep(0.01)
            started.set()
            await task

    thread = threading.Thread(target=lambda: asyncio.run(main()), name="care-http")
    thread.start()
    if not started.wait(30):
        raise RuntimeError("the app did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        holder["server"].should_exit = True
        thread.join(15)
