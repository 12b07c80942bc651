"""The care core's FastAPI app: ``create_app(settings, db=..., ingest=..., store=...)``.

Everything is built here from the settings object, never at import. The lifespan runs
the migrations of every care component and starts the care engine (ingest tail, cloud
rules, ladder timers, notification delivery) as named tasks that stop with the app.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, cast

from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel

from eldercare_cloud.api import console_support
from eldercare_cloud.api.deps import Services, public
from eldercare_cloud.api.json_guard import RejectNonFiniteJson
from eldercare_cloud.api.routes import (
    alerts,
    audit,
    auth,
    installer,
    ladders,
    records,
    registry,
    responder,
    stream,
    users,
)
from eldercare_cloud.api.routes import (
    care_visits as care_visit_routes,
)
from eldercare_cloud.api.routes import (
    services as service_routes,
)
from eldercare_cloud.audit import AuditLog
from eldercare_cloud.auth.models import Role
from eldercare_cloud.auth.users import UserService
from eldercare_cloud.care.engine import CareEngine, IngestLink, IngestReader
from eldercare_cloud.care.ladder import LadderContext
from eldercare_cloud.care.responder import ResponderService
from eldercare_cloud.care.service import CareService
from eldercare_cloud.clock import Clock, SystemClock
from eldercare_cloud.db import Database
from eldercare_cloud.errors import (
    AuthenticationError,
    CloudError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    ThrottledError,
)
from eldercare_cloud.ingest.store import COMMITS_CHANNEL
from eldercare_cloud.notify.base import Channel
from eldercare_cloud.notify.dispatcher import Dispatcher
from eldercare_cloud.notify.factory import channels_from_settings
from eldercare_cloud.notify.sms_outbox import SmsOutbox, render_page
from eldercare_cloud.records import RecordsService
from eldercare_cloud.records.privacy import PrivacyService
from eldercare_cloud.registry import RegistryService
from eldercare_cloud.services import ServiceDesk, ServiceEngine, ServiceRecords
from eldercare_cloud.services.engine import CommandLink
from eldercare_cloud.services.errors import DeskError
from eldercare_cloud.settings import CloudSettings
from eldercare_cloud.stream import StreamHub
from eldercare_cloud.visits.care import CareVisits
from eldercare_cloud.visits.care_engine import CareVisitEngine
from eldercare_cloud.web import mount_console

API_PREFIX = "/api/v1"

_STATUS: tuple[tuple[type[CloudError], int], ...] = (
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (InvalidRequestError, 422),
    (ThrottledError, 429),
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
    secret_key = settings.auth.secret_key.get_secret_value()
    users = UserService(db, clock, secret_key, settings.tenant,
                        settings.auth.access_token_ttl_s, audit=audit_log,
                        totp_required=frozenset({Role.ADMIN}) if settings.auth.admin_totp_required
                        else frozenset(), hub=hub)
    ctx = LadderContext(registry=registry_svc, hub=hub, secret_key=secret_key,
                        public_base_url=settings.http.public_base_url,
                        link_ttl_s=settings.auth.responder_link_ttl_s,
                        life_safety_timeout_s=settings.care.ladder_life_safety_timeout_s,
                        default_timeout_s=settings.care.ladder_default_timeout_s,
                        supervisor_escalation_s=settings.care.supervisor_escalation_s,
                        supervisors=users.supervisors)
    care = CareService(db, clock, audit_log, hub, ctx, wake_engine)
    chans = dict(channels) if channels is not None else channels_from_settings(settings)
    outbox = None
    if settings.sms.provider == "outbox" and "sms" not in chans:
        outbox = SmsOutbox(db, clock)
        chans["sms"] = outbox
    dispatcher = Dispatcher(db, clock, hub, chans,
                            max_attempts=settings.notify.max_attempts,
                            retry_base_s=settings.notify.retry_base_s)
    engine = CareEngine(settings, db, clock, registry_svc, care, dispatcher, store, ingest)
    wake.append(engine.wake)
    desk = ServiceDesk(db, clock, registry_svc, audit_log, secret_key=secret_key,
                       public_base_url=settings.http.public_base_url, tenant=settings.tenant,
                       hub=hub)
    # the running IngestService is both links; a care-only test passes a narrower one
    link = cast("CommandLink | None", ingest if hasattr(ingest, "publish_command") else None)
    service_engine = ServiceEngine(db, clock, registry_svc, desk, store, link, channels=chans,
                                   sms_max_attempts=settings.notify.max_attempts,
                                   poll_s=max(settings.care.poll_s, 0.05))
    desk.set_wake(service_engine.wake)
    care_visits = CareVisits(db, clock, registry_svc, audit_log, care, desk,
                             dispatcher.channels, secret_key=secret_key,
                             public_base_url=settings.http.public_base_url, tenant=settings.tenant)
    desk.add_visit_hook(care_visits)
    care_visit_engine = CareVisitEngine(db, clock, registry_svc, care_visits, store,
                                        poll_s=max(settings.care.poll_s, 0.05))
    service_records = ServiceRecords(db, registry_svc, desk)
    return Services(
        settings=settings, db=db, clock=clock, audit=audit_log,
        users=users,
        registry=registry_svc, hub=hub, care=care,
        responder=ResponderService(db, clock, registry_svc, care, audit_log,
                                   secret_key, settings.tenant),
        dispatcher=dispatcher, engine=engine, desk=desk,
        service_records=service_records, service_engine=service_engine,
        records=RecordsService(db, clock, audit_log, service_records, care_visits),
        sms_outbox=outbox,
        privacy=PrivacyService(db, clock, audit_log, registry_svc, care,
                               store.telemetry if store is not None else None,
                               outbox is not None),
        care_visits=care_visits, care_visit_engine=care_visit_engine)


async def migrate(services: Services) -> None:
    """Every care component's tables, in dependency order."""
    await services.registry.migrate()
    await services.users.migrate()
    await services.audit.migrate()
    await services.hub.migrate()
    await services.care.migrate()
    await services.desk.migrate()
    await services.service_engine.init_cursor()
    if services.sms_outbox is not None:
        await services.sms_outbox.migrate()
    await services.care_visits.migrate()
    await services.care_visit_engine.init_cursor()


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
                await stack.enter_async_context(services.service_engine)
                await stack.enter_async_context(services.care_visit_engine)
                # ingest in other processes (role "ingest") wakes this engine by NOTIFY
                await stack.enter_async_context(
                    database.listen(COMMITS_CHANNEL, services.engine.wake))
            if settings.watch.port is not None and ingest is not None:
                from eldercare_cloud.watch import WatchServer, WatchStore

                watch_store = WatchStore(database)
                await watch_store.migrate()
                await stack.enter_async_context(WatchServer(
                    host=settings.watch.host, port=settings.watch.port,
                    registered=services.registry.is_watch, commit=ingest.commit_local,
                    now=services.clock.now, idle_timeout_s=settings.watch.idle_timeout_s,
                    profile=services.registry.watch_profile_for_device, store=watch_store))
            yield

    app = FastAPI(title="eldercare cloud", version="0.1.0", lifespan=lifespan,
                  description="Residents, alerts, the escalation ladder, responders, roles, "
                              "audit and the live stream of the smart-eldercare platform.")

    for exc_type, code in _STATUS:
        app.add_exception_handler(exc_type, _handler(code))
    app.add_exception_handler(DeskError, _desk_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    # NaN / Infinity in a JSON body: a 422 with the reason on every route, never a 500
    app.add_middleware(RejectNonFiniteJson)

    api = APIRouter(prefix=API_PREFIX)

    @api.get("/health", response_model=Health, tags=["health"], **public("liveness probe"))
    async def health(request: Request) -> Health:
        services: Services = request.app.state.services
        return Health(status="ok", engine_failures=services.engine.failures)

    for module in (auth, users, registry, ladders, alerts, responder, stream, audit, records,
                   service_routes, care_visit_routes):
        api.include_router(module.router)
    api.include_router(console_support.router)
    api.include_router(installer.router)
    app.include_router(api)
    if settings.sms.provider == "outbox":
        @app.get("/dev/sms", include_in_schema=False, response_class=HTMLResponse)
        async def sms_outbox_page(request: Request) -> HTMLResponse:
            """The demo run's SMS outbox (settings refuse the outbox in production)."""
            services: Services = request.app.state.services
            assert services.sms_outbox is not None
            return HTMLResponse(render_page(await services.sms_outbox.messages()),
                                headers={"Cache-Control": "no-store"})

    mount_console(app, settings)
    return app


def _handler(code: int) -> Any:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
        if isinstance(exc, ThrottledError):
            headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}
        # the English detail for logs and API clients, the stable code for the pages
        return JSONResponse({"detail": str(exc), "code": getattr(exc, "code", "error")},
                            status_code=code, headers=headers)
    return handle


def _finite(value: Any) -> Any:
    """The invalid input echoed in a 422, with NaN/Infinity as text (JSON has no such
    numbers: echoing them raw turned a clear refusal into a 500)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


async def _desk_handler(request: Request, exc: Exception) -> JSONResponse:
    """A service-desk refusal: the status of its cloud error class, plus a stable code and
    the Chinese message the console shows."""
    code = next((c for t, c in _STATUS if isinstance(exc, t)), 400)
    assert isinstance(exc, DeskError)
    return JSONResponse({"detail": str(exc), "code": exc.code, "message_zh": exc.zh},
                        status_code=code)


async def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own 422 body (a NaN it echoes made finite, so the body is valid JSON),
    plus the stable code the pages translate."""
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": _finite(jsonable_encoder(exc.errors())), "code": "validation"},
                        status_code=422)
