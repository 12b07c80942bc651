"""Issue 11 end to end on real parts: the simulator's green button and door → home
Mosquitto → the real gateway → cloud Mosquitto → the real cloud ingest → the service
desk's engine (which asks care visits about the long press and keeps the door events as
evidence) → the shared visit tables → the visitor's record over HTTP.

Both clocks are hand-driven from the same fixed instant: the simulator's stamps what the
devices say, the cloud's ManualClock is the service's time."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from care_support import BUTTON, DOOR, GW, RESIDENT, VOLUNTEER, care_settings, mint_tokens
from cv_support import T0

from broker_support import Broker, free_port, start_mosquitto
from eldercare_cloud.app import create_app
from eldercare_cloud.care.clock import ManualClock
from eldercare_cloud.db import Database
from eldercare_cloud.ingest import IngestService
from eldercare_cloud.visits import store as V
from eldercare_edge.gateway import Gateway
from eldercare_edge.settings import EdgeSettings
from eldercare_sim.clock import SimClock
from eldercare_sim.home import SimHome

pytestmark = pytest.mark.integration


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


@pytest.fixture
def cloud_broker(tmp_path: Path) -> Iterator[Broker]:
    broker = start_mosquitto(tmp_path / "cloud-mosquitto")
    try:
        yield broker
    finally:
        broker.stop()


def edge_settings(tmp: Path, home: Broker, cloud: Broker) -> EdgeSettings:
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
async def cloud_app(db_path: Path, tmp: Path, broker: Broker,
                    clock: ManualClock) -> AsyncIterator[tuple[str, Any]]:
    settings = care_settings(tmp, mqtt_url=broker.url, http_enabled=False,
                             mqtt_client_id=f"cv-{uuid.uuid4().hex[:6]}",
                             ingest_batch_wait_ms=0, care_poll_s=0.2)
    async with Database(db_path) as db, IngestService(settings, db) as ingest:
        assert await ingest.wait_connected(10)
        ingest.note_gateway_registered(GW)
        app = create_app(settings, db=db, ingest=ingest, store=ingest.store, clock=clock,
                         channels={}, run_engine=True)
        server = _Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(),
                                        log_level="warning", lifespan="on"))
        task = asyncio.create_task(server.serve(), name="cv-e2e-uvicorn")
        await until(lambda: server.started or task.done(), "uvicorn")
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{port}", app
        finally:
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 10)


async def test_a_care_visit_verified_by_the_simulated_home(
        tmp_path: Path, care_db: Path, care_template: tuple[Path, dict[str, str]],
        mosquitto: Broker, cloud_broker: Broker) -> None:
    clock = ManualClock(T0)
    sim_clock = SimClock(start=T0, speed=0)
    tokens = mint_tokens(care_template[1])
    op = {"Authorization": f"Bearer {tokens['operator']}"}

    def both(seconds: float) -> None:
        sim_clock.advance(seconds)
        clock.advance(seconds)

    async with cloud_app(care_db, tmp_path, cloud_broker, clock) as (url, app), \
            Gateway(edge_settings(tmp_path, mosquitto, cloud_broker)) as gw, \
            SimHome(mosquitto.url, "xh001", devices=[(BUTTON, "call_button"),
                                                     (DOOR, "door_contact")],
                    clock=sim_clock) as home, \
            httpx.AsyncClient(base_url=url, timeout=10) as c:
        assert await gw.wait_connected(10)
        services = app.state.services
        await ok(await c.post("/api/v1/districts/D-XH/care-plans", headers=op))
        link = await ok(await c.get(f"/api/v1/care-visitors/{VOLUNTEER}/link", headers=op))
        token = {"X-Visit-Token": link["token"]}
        me = await ok(await c.get("/api/v1/visit", headers=token))
        task = next(t for t in me["tasks"] if t["mode"] == "in_person")

        async def visit_status(want: str | None) -> bool:
            row = await V.by_order(services.db.conn, task["id"])
            return (row["status"] if row is not None else None) == want

        # the visitor at the door: it opens, she holds the green button, it closes
        both(30 * 60)
        assert await home.door(DOOR, True)
        both(40)
        assert await home.press(BUTTON, "green", "long")
        both(20)
        assert await home.door(DOOR, False)
        await until(lambda: visit_status("in_progress"), "check-in by long press")
        # forty minutes with her, then the long press on the way out
        both(40 * 60)
        assert await home.door(DOOR, True)
        both(20)
        assert await home.press(BUTTON, "green", "long")
        await until(lambda: visit_status("verified"), "check-out by long press")
        row = await V.by_order(services.db.conn, task["id"])
        assert row is not None
        assert row["check_in_method"] == row["check_out_method"] == "button"
        assert row["door_events"] >= 2 and row["worker_id"] == VOLUNTEER
        assert 40.0 <= row["duration_min"] <= 41.0
        # the presses were her visit, not service requests or alarms
        assert await ok(await c.get("/api/v1/service-requests", headers=op)) == []
        assert await ok(await c.get("/api/v1/alerts?open_only=true", headers=op)) == []

        # she records what she found on her phone afterwards
        both(5 * 60)
        entry = await ok(await c.post(f"/api/v1/visit/tasks/{task['id']}/record",
                                      headers=token, json={
                                          "mode": "in_person", "note": "一切安好",
                                          "findings": {"mood": {"level": "ok"}}}), 201)
        assert (entry["verification"], entry["visit_id"]) == ("verified", row["id"])
        hours = await ok(await c.get(f"/api/v1/care-visitors/{VOLUNTEER}/hours", headers=op))
        assert 40.0 <= hours["credited_min"] <= 41.0
        ledger = await ok(await c.get("/api/v1/care-ledger", headers=op,
                                      params={"resident_id": RESIDENT}))
        assert [e["id"] for e in ledger] == [entry["id"]]
