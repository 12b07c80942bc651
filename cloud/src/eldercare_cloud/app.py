"""The care core's FastAPI app: ``create_app(settings, db=..., ingest=..., store=...)``.

Everything is built here from the settings object, never at import. The lifespan runs
the migrations of every care component and starts the care engine (ingest tail, cloud
rules, ladder timers, notification delivery) as named tasks that stop with the app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from eldercare_cloud.api import console_support, installer
from eldercare_cloud.api.deps import Services, public
from eldercare_cloud.api.routes import (
    alerts,
    audit,
    auth,
    ladders,
    registry,
    responder,
    stream,
    users,
)
from eldercare_cloud.audit import AuditLog
from eldercare_cloud.auth.users import UserService
from eldercare_cloud.care.clock import Clock, SystemClock
from eldercare_cloud.care.engine import CareEngine, IngestLink, IngestReader
from eldercare_cloud.care.ladder import LadderContext
from eldercare_cloud.care.responder import ResponderService
from eldercare_cloud.care.service import CareService
from eldercare_cloud.db import Database
from eldercare_cloud.errors import (
    AuthenticationError,
    CloudError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
)
from eldercare_cloud.ingest.store import COMMITS_CHANNEL
from eldercare_cloud.notify.base import Channel
from eldercare_cloud.notify.dispatcher import Dispatcher
from eldercare_cloud.notify.factory import channels_from_settings
from eldercare_cloud.registry import RegistryService
from eldercare_cloud.settings import CloudSettings
from eldercare_cloud.stream import StreamHub
from eldercare_cloud.web import mount_console

API_PREFIX = "/api/v1"

_STATUS: tuple[tuple[type[CloudError], int], ...] = (
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (InvalidRequestError, 422),
)


class Health(BaseModel):
    status: str
    engine_failures: int


def build_services(settings: CloudSettings, db: Database, *, clock: Clock | None = None,
                   store: IngestReader | None = None, ingest: IngestLink | None = None,
                   channels: Mapping[str, Channel] | None = None) -> Services:
    """Wire the care core's services (also used by tests that drive the engine directly)."""
    clock = clock or SystemClock()
    audit_log = AuditLog(db, clock)
    hub = StreamHub(db, clock)
    wake: list[Any] = []

    def wake_engine() -> None:
        for fn in wake:
            fn()

    registry_svc = RegistryService(db, clock, audit_log, settings.tenant, wake_engine)
    ctx = LadderContext(registry=registry_svc, hub=hub, secret_key=settings.secret_key,
                        public_base_url=settings.public_base_url,
                        link_ttl_s=settings.responder_link_ttl_s,
                        life_safety_timeout_s=settings.ladder_life_safety_timeout_s,
                        default_timeout_s=settings.ladder_default_timeout_s)
    care = CareService(db, clock, audit_log, hub, ctx, wake_engine)
    dispatcher = Dispatcher(db, clock, hub,
                            channels if channels is not None
                            else channels_from_settings(settings),
                            max_attempts=settings.notify_max_attempts,
                            retry_base_s=settings.notify_retry_base_s)
    engine = CareEngine(settings, db, clock, registry_svc, care, dispatcher, store, ingest)
    wake.append(engine.wake)
    return Services(
        settings=settings, db=db, clock=clock, audit=audit_log,
        users=UserService(db, clock, settings.secret_key, settings.tenant,
                          settings.access_token_ttl_s),
        registry=registry_svc, hub=hub, care=care,
        responder=ResponderService(db, clock, registry_svc, care, audit_log,
                                   settings.secret_key, settings.tenant),
        dispatcher=dispatcher, engine=engine)


async def migrate(services: Services) -> None:
    """Every care component's tables, in dependency order."""
    await services.registry.migrate()
    await services.users.migrate()
    await services.audit.migrate()
    await services.hub.migrate()
    await services.care.migrate()


def create_app(settings: CloudSettings, db: Database | None = None, ingest: Any = None,
               store: Any = None, *, clock: Clock | None = None,
               channels: Mapping[str, Channel] | None = None,
               run_engine: bool = True) -> FastAPI:
    """The HTTP app. ``db``/``ingest``/``store`` come from ``CloudService``; without a
    ``store`` the app opens its own ``IngestStore`` reader on the same database."""
    own_db = db is None
    database = db if db is not None else Database(settings.database)
    reader: Any = store if store is not None else getattr(ingest, "store", None)
    holder: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if own_db:
                await stack.enter_async_context(database)
            ingest_reader = reader
            if ingest_reader is None:
                from eldercare_cloud.ingest import IngestStore

                ingest_reader = await stack.enter_async_context(IngestStore(database))
            services = build_services(settings, database, clock=clock, store=ingest_reader,
                                      ingest=ingest, channels=channels)
            await migrate(services)
            await stack.enter_async_context(services.hub.listening())
            if settings.demo_data:
                from eldercare_cloud.demo import load_demo

                await load_demo(database)
            app.state.services = services
            holder["services"] = services
            if run_engine:
                await stack.enter_async_context(services.engine)
                # ingest in other processes (role "ingest") wakes this engine by NOTIFY
                await stack.enter_async_context(
                    database.listen(COMMITS_CHANNEL, services.engine.wake))
            yield

    app = FastAPI(title="eldercare cloud", version="0.1.0", lifespan=lifespan,
                  description="Residents, alerts, the escalation ladder, responders, roles, "
                              "audit and the live stream of the smart-eldercare platform.")

    for exc_type, code in _STATUS:
        app.add_exception_handler(exc_type, _handler(code))

    api = APIRouter(prefix=API_PREFIX)

    @api.get("/health", response_model=Health, tags=["health"], **public("liveness probe"))
    async def health(request: Request) -> Health:
        services: Services = request.app.state.services
        return Health(status="ok", engine_failures=services.engine.failures)

    for module in (auth, users, registry, ladders, alerts, responder, stream, audit):
        api.include_router(module.router)
    api.include_router(console_support.router)
    api.include_router(installer.router)
    app.include_router(api)
    mount_console(app, settings)
    return app


def _handler(code: int) -> Any:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
        return JSONResponse({"detail": str(exc)}, status_code=code, headers=headers)
    return handle
