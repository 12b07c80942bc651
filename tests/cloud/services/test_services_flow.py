"""Issue 10 through the real HTTP API: a green press becomes a request (never an alert),
the operator calls back and orders, the worker accepts, the home's long presses and door
check the visit in and out, the elder and the family rate it, the voucher is debited,
and every step is on the record."""

from __future__ import annotations

from datetime import timedelta

import pytest
from care_support import BUTTON, DOOR, GW, RESIDENT, Running
from stack_support import ok
from svc_support import client, commit_at, count, local

from eldercare_cloud.clock import ManualClock
from eldercare_protocols.events import EventKind

pytestmark = pytest.mark.integration


async def tick(running: Running) -> None:
    await running.services.service_engine.tick()


async def leds(running: Running) -> list[tuple[str, str]]:
    cur = await running.services.db.conn.execute(
        "SELECT device_id, state FROM svc_led_outbox ORDER BY id")
    return [(r[0], r[1]) for r in await cur.fetchall()]


async def test_green_press_to_verified_rated_paid_visit(desk_http: Running) -> None:
    running = desk_http
    clock = running.clock
    assert isinstance(clock, ManualClock)
    store = running.store
    op, fam, wk = (running.auth(u) for u in ("operator", "family", "worker"))
    async with client(running) as c:
        # -- demand response: a press opens a request; a second press attaches to it
        await commit_at(store, clock, EventKind.SERVICE_REQUEST, BUTTON, GW, button="green",
                        press="single")
        await tick(running)
        [req] = await ok(await c.get("/api/v1/service-requests", headers=op))
        assert (req["resident_id"], req["status"], req["presses"]) == (RESIDENT, "open", 1)
        assert req["resident_name"] == "王秀英"
        clock.advance(30)
        await commit_at(store, clock, EventKind.SERVICE_REQUEST, BUTTON, GW, button="green",
                        press="single")
        await tick(running)
        [req] = await ok(await c.get("/api/v1/service-requests", headers=op))
        assert req["presses"] == 2
        assert await count(running, "alerts") == 0  # never on the alert queue or ladder
        assert await leds(running) == [(BUTTON, "received")]  # once, not per press

        # -- the operator calls back, then orders 助洁 for this morning
        req = await ok(await c.post(f"/api/v1/service-requests/{req['id']}/callback",
                                    json={"outcome": "asked", "note": "要打扫卫生"},
                                    headers=op))
        assert req["last_outcome"] == "asked"
        body = {"resident_id": RESIDENT, "service_type_id": "cleaning",
                "window_start": local(4, 9, 30).isoformat(),
                "window_end": local(4, 12, 30).isoformat(), "request_id": req["id"],
                "source": "button"}
        order = await ok(await c.post("/api/v1/service-orders", json=body, headers=op), 201)
        # suggested by area (翠苑), skill (cleaning) and load: 陈美华 before 杨秀芳
        assert (order["status"], order["worker_id"], order["provider_id"]) == (
            "dispatched", "W-XH-AK-01", "P-XH-AK")
        assert order["accept_due_at"] is not None
        oid = order["id"]
        request = await ok(await c.get(f"/api/v1/service-requests/{req['id']}", headers=op))
        assert request["status"] == "ordered" and request["order_ids"] == [oid]

        # providers see their orders, the worker sees theirs, the other district nothing
        for who, expect in (("provider", [oid]), ("worker", [oid]), ("operator_other", [])):
            got = await ok(await c.get("/api/v1/service-orders", headers=running.auth(who)))
            assert [o["id"] for o in got] == expect, who

        # -- the worker accepts on the phone: the LED says someone is on the way
        clock.advance(120)
        order = await ok(await c.post(f"/api/v1/service-orders/{oid}/accept", headers=wk))
        assert order["status"] == "accepted" and order["arrive_due_at"] is not None
        await tick(running)
        assert await leds(running) == [(BUTTON, "received"), (BUTTON, "help_coming")]

        # -- at the door: the door opens, the worker holds the green button (check-in) ...
        clock.set(local(4, 9, 40))
        await commit_at(store, clock, EventKind.DOOR_OPEN, DOOR, GW)
        clock.advance(60)
        await commit_at(store, clock, EventKind.SERVICE_REQUEST, BUTTON, GW, button="green",
                        press="long")
        await commit_at(store, clock, EventKind.DOOR_CLOSE, DOOR, GW,
                        at=clock.now() + timedelta(seconds=20))
        await tick(running)
        order = await ok(await c.get(f"/api/v1/service-orders/{oid}", headers=op))
        assert order["status"] == "in_progress"
        assert order["visit"]["check_in_method"] == "button"
        # ... and holds it again 2 h 30 min later (check-out)
        clock.set(local(4, 12, 11))
        await commit_at(store, clock, EventKind.SERVICE_REQUEST, BUTTON, GW, button="green",
                        press="long")
        await tick(running)
        order = await ok(await c.get(f"/api/v1/service-orders/{oid}", headers=op))
        visit = order["visit"]
        assert order["status"] == "completed"
        assert visit["status"] == "verified" and visit["flags"] == []
        assert visit["duration_min"] == 150.0 and visit["door_events"] == 2
        assert visit["verification"]["start"] == "button"
        assert visit["verification"]["location"] == "home_button"
        assert await count(running, "svc_requests") == 1  # long presses opened no request

        # -- evaluation: the elder's double press soon after the visit is her "满意"
        clock.set(local(4, 12, 20))
        await commit_at(store, clock, EventKind.SERVICE_REQUEST, BUTTON, GW, button="green",
                        press="double")
        await tick(running)
        assert await count(running, "svc_requests") == 1  # a rating, not a new request

        # -- evaluation: the centre's call-back, the family's rating and comment
        order = await ok(await c.post(f"/api/v1/service-orders/{oid}/ratings",
                                      json={"score": "satisfied", "source": "callback"},
                                      headers=op))
        assert order["callback_due"] is False  # 陈美华's first visit was due a call-back
        order = await ok(await c.post(f"/api/v1/service-orders/{oid}/ratings",
                                      json={"score": "basic", "comment": "地拖得不够干净"},
                                      headers=fam))
        assert [(r["source"], r["score"]) for r in order["ratings"]] == [
            ("button", "satisfied"), ("callback", "satisfied"), ("family", "basic")]

        # -- records: the voucher statement, the history, the worker's day, the month
        st = await ok(await c.get(f"/api/v1/residents/{RESIDENT}/vouchers?month=2025-03",
                                  headers=fam))
        assert st["allowance_cents"] == 40000  # 低保 / 半失能: the highest rule applies
        assert [(e["order_id"], e["amount_cents"], e["balance_cents"])
                for e in st["entries"]] == [(oid, -9000, 31000)]
        [hist] = await ok(await c.get(f"/api/v1/residents/{RESIDENT}/services", headers=fam))
        assert [t["action"] for t in hist["timeline"]] == [
            "created", "dispatched", "accepted", "checked_in", "checked_out", "rated", "rated",
            "rated"]
        assert all(t["ts"] and t["actor"] for t in hist["timeline"])
        assert hist["timeline"][3]["actor"] == f"device:{BUTTON}"
        day = await ok(await c.get("/api/v1/service-workers/W-XH-AK-01/day?day=2025-03-04",
                                   headers=wk))
        assert [o["id"] for o in day["orders"]] == [oid] and day["minutes"] == 150.0
        month = await ok(await c.get("/api/v1/service-providers/P-XH-AK/month?month=2025-03",
                                     headers=running.auth("provider")))
        assert (month["completed"], month["verified"], month["amount_cents"]) == (1, 1, 9000)
        assert month["ratings"] == {"satisfied": 2, "basic": 1}
        # hours later a double press is an ordinary press again: a new request
        clock.set(local(4, 16))
        await commit_at(store, clock, EventKind.SERVICE_REQUEST, BUTTON, GW, button="green",
                        press="double")
        await tick(running)
        assert await count(running, "svc_requests") == 2

        # every read of the resident's record is audited
        audit = await ok(await c.get("/api/v1/audit?record_type=resident", headers=running.auth(
            "admin")))
        reasons = {e["reason"] for e in audit if e["record_id"] == RESIDENT}
        assert {"service history", "voucher statement", "service order"} <= reasons


async def test_unsatisfied_rating_opens_a_followup_for_the_provider(desk_http: Running) -> None:
    running = desk_http
    clock = running.clock
    assert isinstance(clock, ManualClock)
    op, wk, prov = (running.auth(u) for u in ("operator", "worker", "provider"))
    async with client(running) as c:
        body = {"resident_id": RESIDENT, "service_type_id": "company",
                "window_start": local(4, 10).isoformat(),
                "window_end": local(4, 11).isoformat()}
        order = await ok(await c.post("/api/v1/service-orders", json=body, headers=op), 201)
        oid = order["id"]
        early = await c.post(f"/api/v1/service-orders/{oid}/ratings",
                             json={"score": "satisfied"}, headers=op)
        assert early.status_code == 409 and early.json()["code"] == "not_completed"
        await ok(await c.post(f"/api/v1/service-orders/{oid}/accept", headers=wk))
        clock.set(local(4, 10, 5))
        await ok(await c.post(f"/api/v1/service-orders/{oid}/check-in",
                              json={"latitude": 30.2868, "longitude": 120.1229}, headers=wk))
        clock.set(local(4, 10, 55))
        order = await ok(await c.post(f"/api/v1/service-orders/{oid}/check-out",
                                      json={"note": "聊天"}, headers=wk))
        assert order["visit"]["verification"]["location"] == "phone_position"
        assert order["visit"]["flags"] == ["no_device_evidence"]
        await ok(await c.post(f"/api/v1/service-orders/{oid}/ratings",
                              json={"score": "unsatisfied", "comment": "迟到且态度差"},
                              headers=op))
        [fu] = await ok(await c.get("/api/v1/service-followups", headers=prov))
        assert (fu["order_id"], fu["provider_id"], fu["reason"]) == (oid, "P-XH-AK",
                                                                     "迟到且态度差")
        assert await ok(await c.get("/api/v1/service-followups",
                                    headers=running.auth("operator_other"))) == []
        closed = await ok(await c.post(f"/api/v1/service-followups/{fu['id']}/close",
                                       json={"resolution": "已约谈服务人员"}, headers=prov))
        assert closed["status"] == "closed"
