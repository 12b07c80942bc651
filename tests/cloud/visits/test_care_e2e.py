"""Issue 11 end to end on real parts: the simulator's green button and door → home
Mosquitto → the real gateway → cloud Mosquitto → the real cloud ingest → the service
desk's engine (which asks care visits about the long press and keeps the door events as
evidence) → the shared visit tables → the visitor's record over HTTP.

Both clocks are hand-driven from the same fixed instant: the simulator's stamps what the
devices say, the cloud's ManualClock is the service's time."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from care_support import BUTTON, DOOR, RESIDENT, VOLUNTEER, mint_tokens
from cv_support import T0
from stack_support import cloud_app, edge_settings, ok, until

from broker_support import Broker
from eldercare_cloud.clock import ManualClock
from eldercare_cloud.visits import store as V
from eldercare_edge.gateway import Gateway
from eldercare_sim.clock import SimClock
from eldercare_sim.home import SimHome

pytestmark = pytest.mark.integration


async def test_a_care_visit_verified_by_the_simulated_home(
        tmp_path: Path, care_db: Path, care_template: tuple[Path, dict[str, str]],
        mosquitto: Broker, cloud_broker: Broker) -> None:
    clock = ManualClock(T0)
    sim_clock = SimClock(start=T0, speed=0)
    tokens = mint_tokens(care_template[1], T0)
    op = {"Authorization": f"Bearer {tokens['operator']}"}

    def both(seconds: float) -> None:
        sim_clock.advance(seconds)
        clock.advance(seconds)

    async with cloud_app(care_db, tmp_path, cloud_broker, clock, "cv") as (url, app), \
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
