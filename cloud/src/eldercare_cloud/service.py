"""The whole cloud process: one database, ingest, and (when present) the care core's app.

``CloudService`` is what ``eldercare-cloud run`` and ``scripts/run.py`` start. The HTTP
app comes from ``eldercare_cloud.app.create_app`` when that module exists, so ingest
runs on its own while the care core is being built, and ``http.enabled=false`` runs an
ingest-only worker (several of them can share ``$share/...``).

``settings.role`` picks the parts of the production shape this process runs, each
scaled on its own against one PostgreSQL database:

=========  ==================  ========  ===========================================
role       uplink subscriber   HTTP API  care engine
=========  ==================  ========  ===========================================
all        yes                 yes       yes (the one-command run)
ingest     yes ($share/...)    no        no
api        no                  yes       no (live stream by LISTEN/NOTIFY)
engine     no (publishes)      no        yes (one leads per database; woken by NOTIFY)
=========  ==================  ========  ===========================================
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import inspect
import json
import logging
import os
import signal
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager, suppress
from types import TracebackType
from typing import Any

import uvicorn

from eldercare_cloud.db import Database, redact_url
from eldercare_cloud.ingest import IngestService, IngestStore
from eldercare_cloud.ingest.service import BeforeAck
from eldercare_cloud.settings import CloudSettings

log = logging.getLogger(__name__)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside our process: the process owns SIGINT/SIGTERM (run_until_signalled,
    scripts/run.py), so uvicorn must neither take them over nor re-raise them."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class CloudService:
    def __init__(self, settings: CloudSettings, *, before_ack: BeforeAck | None = None) -> None:
        """``before_ack``: see ``IngestService`` (crash drills only)."""
        self.settings = settings
        self.db = Database(settings.database)
        self.store = IngestStore(
            self.db, telemetry_sqlite=settings.telemetry.sqlite or not settings.influx.url)
        role = settings.role
        #: None for the api role: it neither takes uplink nor publishes to gateways
        self.ingest: IngestService | None = (
            IngestService(settings, self.db, store=self.store,
                          subscribe=role in ("all", "ingest"), before_ack=before_ack)
            if role != "api" else None)
        self.serves_http = settings.http.enabled and role in ("all", "api")
        self.runs_engine = role in ("all", "engine")
        self.app: Any = None
        self.http_url: str | None = None
        self._server: uvicorn.Server | None = None
        self._server_task: asyncio.Task[None] | None = None
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> CloudService:
        try:
            await self._stack.enter_async_context(self.db)
            await self._stack.enter_async_context(self.store)
            if self.ingest is not None:
                await self._stack.enter_async_context(self.ingest)
            if self.serves_http:
                self.app = self._create_app()
                if self.app is not None:
                    await self._start_http()
            elif self.runs_engine and self.settings.role == "engine":
                # the engine without HTTP: the app's lifespan (migrations, engine) alone
                self.app = self._create_app()
                if self.app is not None:
                    await self._stack.enter_async_context(
                        self.app.router.lifespan_context(self.app))
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._stack.aclose()

    def _create_app(self) -> Any:
        try:
            module = importlib.import_module("eldercare_cloud.app")
        except ModuleNotFoundError as exc:
            if exc.name != "eldercare_cloud.app":
                raise  # the app exists but something it imports is missing: say so
            log.info("no eldercare_cloud.app yet: running ingest only")
            return None
        create_app = module.create_app
        offered = {"db": self.db, "ingest": self.ingest, "store": self.store,
                   "run_engine": self.runs_engine}
        params = inspect.signature(create_app).parameters
        kwargs = {k: v for k, v in offered.items() if k in params}
        return create_app(self.settings, **kwargs)

    @property
    def server_task(self) -> asyncio.Task[None] | None:
        return self._server_task

    async def _start_http(self) -> None:
        config = uvicorn.Config(self.app, host=self.settings.http.host,
                                port=self.settings.http.port, log_level="warning",
                                lifespan="on")
        server = _EmbeddedServer(config)
        self._server = server
        self._server_task = asyncio.create_task(server.serve(), name="http")
        self._stack.push_async_callback(self._stop_http)
        for _ in range(500):  # bounded: 10 s
            if server.started or self._server_task.done():
                break
            await asyncio.sleep(0.02)
        if self._server_task.done() or not server.started:
            await self._stop_http()
            raise RuntimeError(f"HTTP server did not start on {self.settings.http.host}:"
                               f"{self.settings.http.port}")
        port = self.settings.http.port
        for srv in server.servers:
            for sock in srv.sockets:
                port = int(sock.getsockname()[1])
        self.http_url = f"http://{self.settings.http.host}:{port}"
        log.info("HTTP API on %s", self.http_url)

    async def _stop_http(self) -> None:
        if self._server is not None and self._server_task is not None:
            self._server.should_exit = True
            with suppress(asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._server_task), 10)
            if not self._server_task.done():
                self._server_task.cancel()
            self._server = None


#: exit status when a long-lived task died (EX_SOFTWARE): the supervisor restarts us
EXIT_TASK_DIED = 70
#: allocations between collections of the youngest generation in a cloud process
GC_GEN0 = 20_000
#: exit status when shutting down took longer than its budget, or a second signal came
EXIT_STOP_TIMEOUT = 71
STOP_BUDGET_S = 20.0


async def run_until_signalled(settings: CloudSettings, *,
                              before_ack: BeforeAck | None = None,
                              process_gc: bool = False) -> int:
    """Run the cloud until SIGINT or SIGTERM, then shut down cleanly (commit, ack, close);
    returns the exit status. A dead ingest task (the committer, the MQTT connection) or
    HTTP server ends the run at once with status 70: living on deaf would be worse. The
    shutdown has a time budget, and a second signal during it exits immediately.

    ``process_gc`` (the run command, which owns its process): what start-up built is
    frozen out of the collector's sight, and the youngest generation is collected every
    ``GC_GEN0`` allocations instead of 700 (issue 14: the collector walked the messages
    waiting in ingest's queues several times per batch, ~3 us of CPU per record)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            log.warning("second signal during shutdown: exiting now")
            logging.shutdown()
            os._exit(EXIT_STOP_TIMEOUT)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    cloud = CloudService(settings, before_ack=before_ack)
    await cloud.__aenter__()
    if process_gc:
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_GEN0, *gc.get_threshold()[1:])
    code = 0
    try:
        host, port = settings.mqtt.host_port
        log.info("cloud role %s: broker %s:%d, database %s", settings.role, host, port,
                 redact_url(settings.database))
        if cloud.http_url:
            log.info("console and API: %s", cloud.http_url)
        waiters: list[asyncio.Task[Any]] = [asyncio.create_task(stop.wait(), name="signal")]
        if cloud.ingest is not None:   # the api role has no ingest
            waiters.append(asyncio.create_task(cloud.ingest.dead.wait(), name="ingest-dead"))
        own = len(waiters)
        if cloud.server_task is not None:
            waiters.append(cloud.server_task)
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters[:own]:
                w.cancel()
        if cloud.ingest is not None and cloud.ingest.dead.is_set():
            log.critical("ingest died (%r): exiting with status %d", cloud.ingest.died,
                         EXIT_TASK_DIED)
            code = EXIT_TASK_DIED
        elif not stop.is_set():
            log.critical("the HTTP server stopped: exiting with status %d", EXIT_TASK_DIED)
            code = EXIT_TASK_DIED
        else:
            log.info("stopping")
    finally:
        try:
            async with asyncio.timeout(STOP_BUDGET_S):
                await cloud.__aexit__(None, None, None)
        except TimeoutError:
            log.error("shutdown took longer than %.0f s: exiting anyway", STOP_BUDGET_S)
            code = code or EXIT_STOP_TIMEOUT
    if cloud.ingest is not None:
        # one line an operator (or a test) can read: what this worker did
        log.info("ingest counters: %s", json.dumps(cloud.ingest.counters.as_dict()))
    return code
