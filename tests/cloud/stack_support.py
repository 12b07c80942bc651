"""One simulated home on real parts for the green-half end-to-end tests (services, care
visits): the real gateway between a home Mosquitto and a cloud Mosquitto, and the real
cloud (ingest, engines, HTTP API under uvicorn) on the test's database.

A plain module (not a conftest) so every test folder under tests/cloud can import it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from care_support import BUTTON, DOOR, GW, care_settings

from broker_support import Broker, free_port
from eldercare_cloud.app import create_app
from eldercare_cloud.clock import ManualClock
from eldercare_cloud.db import Database
from eldercare_cloud.ingest import IngestService
from eldercare_edge.settings import EdgeSettings


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def until(cond: Callable[[], Awaitable[bool] | bool], what: str,
                within_s: float = 15.0) -> None:
    """Poll a condition against a monotonic deadline (never a bare sleep as sync)."""
    deadline = time.monotonic() + within_s
    while True:
        value = cond()
        if not isinstance(value, bool):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def ok(resp: httpx.Response, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    return resp.json()


def edge_settings(tmp: Path, home: Broker, cloud: Broker) -> EdgeSettings:
    """The home's gateway: a green/red button and a door, fast ticks for tests."""
    return EdgeSettings(**{
        "gateway_id": GW, "data_dir": str(tmp / "gw"),
        "home_broker": {"url": home.url, "reconnect_min_s": 0.2, "reconnect_max_s": 0.5},
        "cloud": {"url": cloud.url, "reconnect_min_s": 0.2, "reconnect_max_s": 0.5,
                  "resend_after_s": 5.0},
        "outbox": {"telemetry_flush_s": 0.2},
        "home": {"resident": {"name": "王秀英", "address": "翠苑一区3幢2单元301室"},
                 "devices": [{"device_id": BUTTON, "type": "call_button"},
                             {"device_id": DOOR, "type": "door_contact"}]},
        "rules_tick_s": 0.2, "health_interval_s": 1.0, "sms_check_s": 0.1})


@contextlib.asynccontextmanager
async def cloud_app(db_path: Path, tmp: Path, broker: Broker, clock: ManualClock,
                    name: str) -> AsyncIterator[tuple[str, Any]]:
    """Ingest on ``broker`` and the whole app (engines on ``clock``) served on a free
    port; yields the base URL and the app. ``name`` tells this test's clients apart."""
    settings = care_settings(tmp, http={"enabled": False}, ingest={"batch_wait_ms": 0},
                             mqtt={"url": broker.url,
                                   "client_id": f"{name}-{uuid.uuid4().hex[:6]}"},
                             care={"poll_s": 0.2})
    async with Database(db_path) as db, IngestService(settings, db) as ingest:
        assert await ingest.wait_connected(10)
        ingest.note_gateway_registered(GW)
        app = create_app(settings, db=db, ingest=ingest, store=ingest.store, clock=clock,
                         channels={}, run_engine=True)
        server = _Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(),
                                        log_level="warning", lifespan="on"))
        task = asyncio.create_task(server.serve(), name=f"{name}-e2e-uvicorn")
        await until(lambda: server.started or task.done(), "uvicorn")
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{port}", app
        finally:
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 10)
