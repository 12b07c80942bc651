"""Issue 10 end to end on real parts: the simulator's green button and door → home
Mosquitto → the real gateway → cloud Mosquitto → the real cloud ingest → the service
desk (its engine woken by ingest's commits) → the HTTP API, and the LED commands back
the same way to the simulated button.

Both clocks are hand-driven and start at the same fixed instant: the simulator's (frozen,
moved with ``advance``) stamps what the devices say; the cloud's ManualClock runs the
desk's deadlines. The link to the worker's phone page is read from the API, as the
console shows it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from care_support import BUTTON, DOOR, RESIDENT, mint_tokens
from stack_support import cloud_app, edge_settings, ok, until
from svc_support import T0, local

from broker_support import Broker
from eldercare_cloud.clock import ManualClock
from eldercare_edge.gateway import Gateway
from eldercare_sim.clock import SimClock
from eldercare_sim.home import SimHome

pytestmark = pytest.mark.integration


async def test_green_press_to_verified_visit_on_real_parts(
        tmp_path: Path, care_db: Path, care_template: tuple[Path, dict[str, str]],
        mosquitto: Broker, cloud_broker: Broker) -> None:
    clock = ManualClock(T0)
    sim_clock = SimClock(start=T0, speed=0)
    tokens = mint_tokens(care_template[1], T0)
    op = {"Authorization": f"Bearer {tokens['operator']}"}
    fam = {"Authorization": f"Bearer {tokens['family']}"}

    def both(seconds: float) -> None:
        sim_clock.advance(seconds)
        clock.advance(seconds)

    async with cloud_app(care_db, tmp_path, cloud_broker, clock, "svc") as (url, app), \
            Gateway(edge_settings(tmp_path, mosquitto, cloud_broker)) as gw, \
            SimHome(mosquitto.url, "xh001", devices=[(BUTTON, "call_button"),
                                                     (DOOR, "door_contact")],
                    clock=sim_clock) as home, \
            httpx.AsyncClient(base_url=url, timeout=10) as c:
        assert await gw.wait_connected(10)
        desk = app.state.services.desk

        async def requests() -> list[Any]:
            return list(await ok(await c.get("/api/v1/service-requests", headers=op)))

        # a green press: a request in the service queue, and the LED says "received"
        assert await home.press(BUTTON, "green")
        await until(lambda: home.led_state(BUTTON) == "received", "LED received")
        [req] = await requests()
        assert (req["resident_id"], req["presses"], req["source"]) == (RESIDENT, 1, "button")
        both(60)
        assert await home.press(BUTTON, "green")  # a second press attaches to it

        async def pressed_twice() -> bool:
            return [r["presses"] for r in await requests()] == [2]

        await until(pressed_twice, "second press on the same request")
        alerts = await ok(await c.get("/api/v1/alerts?open_only=true", headers=op))
        assert alerts == []  # never an alarm

        # the operator calls back and orders; the engine offers it to 陈美华
        await ok(await c.post(f"/api/v1/service-requests/{req['id']}/callback",
                              json={"outcome": "asked", "note": "想请人打扫"}, headers=op))
        order = await ok(await c.post("/api/v1/service-orders", headers=op, json={
            "resident_id": RESIDENT, "service_type_id": "cleaning", "request_id": req["id"],
            "source": "button", "window_start": local(4, 9, 30).isoformat(),
            "window_end": local(4, 12, 30).isoformat()}), 201)
        oid = order["id"]
        assert order["worker_id"] == "W-XH-AK-01"
        link = await ok(await c.get(f"/api/v1/service-orders/{oid}/work-link", headers=op))

        # the worker accepts on the phone page's API: the LED says help is coming
        view = await ok(await c.post(f"/api/v1/jobs/{oid}/accept?token={link['token']}"))
        assert view["order"]["status"] == "accepted"
        await until(lambda: home.led_state(BUTTON) == "help_coming", "LED help coming")

        # arrival: the door opens, the worker holds the green button
        both(35 * 60)
        assert await home.door(DOOR, True)
        both(40)
        assert await home.press(BUTTON, "green", "long")
        both(20)
        assert await home.door(DOOR, False)

        async def status(want: str) -> bool:
            o = await ok(await c.get(f"/api/v1/service-orders/{oid}", headers=op))
            return bool(o["status"] == want)

        await until(lambda: status("in_progress"), "check-in by long press")
        # 2 h 20 min of cleaning, then the long press again
        both(140 * 60)
        assert await home.door(DOOR, True)
        both(30)
        assert await home.press(BUTTON, "green", "long")
        await until(lambda: status("completed"), "check-out by long press")
        order = await ok(await c.get(f"/api/v1/service-orders/{oid}", headers=op))
        visit = order["visit"]
        assert (visit["status"], visit["flags"]) == ("verified", [])
        assert visit["check_in_method"] == visit["check_out_method"] == "button"
        assert visit["door_events"] >= 2
        assert 140.0 <= visit["duration_min"] <= 141.0

        # the elder's call-back rating and the voucher debit, on the record
        await ok(await c.post(f"/api/v1/service-orders/{oid}/ratings",
                              json={"score": "satisfied"}, headers=op))
        st = await ok(await c.get(f"/api/v1/residents/{RESIDENT}/vouchers?month=2025-03",
                                  headers=fam))
        assert [(e["order_id"], e["amount_cents"]) for e in st["entries"]] == [(oid, -9000)]
        [hist] = await ok(await c.get(f"/api/v1/residents/{RESIDENT}/services", headers=fam))
        assert [t["action"] for t in hist["timeline"]] == [
            "created", "dispatched", "accepted", "checked_in", "checked_out", "rated"]
        assert len(await requests()) == 0  # the request was turned into the order
        assert desk is not None
        # exactly one LED command per state, however many presses
        cur = await app.state.services.db.conn.execute(
            "SELECT state, status FROM svc_led_outbox ORDER BY id")
        assert [(r[0], r[1]) for r in await cur.fetchall()] == [
            ("received", "sent"), ("help_coming", "sent"), ("off", "sent")]
