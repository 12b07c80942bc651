"""The ledger over real HTTP: a visitor's signed link, an in-person visit verified by the
home's devices (the green button's long press, door and motion, committed by ingest and
tailed by the service desk's engine into the shared visit tables), follow-ups through
the service desk, search and export, the time bank, and refusals that change nothing."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import httpx
from care_support import GW, NEIGHBOUR, OTHER_RESIDENT, RESIDENT, VOLUNTEER, Running
from cv_support import commit_many, local

from eldercare_cloud.visits import store as V
from eldercare_protocols.events import EventKind

API = "/api/v1"
DOOR, BUTTON, RADAR = "door-xh001", "btn-xh001", "radar-xh001"


async def ok(resp: httpx.Response, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    return resp.json()


async def count(running: Running, table: str) -> int:
    cur = await running.services.db.conn.execute(f"SELECT COUNT(*) FROM {table}")
    return int((await cur.fetchone())[0])


async def press(running: Running, at_minute: tuple[int, int, int], **data: Any) -> None:
    day, hour, minute = at_minute
    await commit_many(running.store, GW, [(EventKind.SERVICE_REQUEST, BUTTON,
                                           local(day, hour, minute),
                                           {"button": "green", **data})])


async def test_an_in_person_visit_verified_by_the_home_and_recorded_on_the_phone(
        cv_http: Running) -> None:
    running = cv_http
    assert running.clock is not None
    services = running.services
    op = running.auth("operator")
    async with httpx.AsyncClient(base_url=running.url, timeout=10) as client:
        plans = await ok(await client.post(f"{API}/districts/D-XH/care-plans", headers=op))
        assert {p["resident_id"]: p["tier"] for p in plans}[RESIDENT] == "medium"
        risk = await ok(await client.get(f"{API}/residents/{RESIDENT}/care-risk", headers=op))
        assert (risk["tier"], risk["rule"]["id"], risk["rule"]["zh"]) == (
            "medium", "age80_alone", "80岁以上且独居")
        assert risk["facts"]["age"] == 86 and risk["visit_every_days"] == 7
        link = await ok(await client.get(f"{API}/care-visitors/{VOLUNTEER}/link", headers=op))
        token = link["token"]
        assert link["url"].startswith("http://127.0.0.1:9/visit/?token=")
        me = await ok(await client.get(f"{API}/visit", params={"token": token}))
        assert me["name"] and {t["mode"] for t in me["tasks"]} == {"in_person", "phone"}
        visit_task = next(t for t in me["tasks"] if t["mode"] == "in_person")
        call_task = next(t for t in me["tasks"] if t["mode"] == "phone")

        # at the door: the door opens, the visitor's long press checks in; motion; a long
        # press at departure checks out — all through ingest and the desk's engine
        running.clock.set(local(4, 10, 40))
        await commit_many(running.store, GW, [
            (EventKind.DOOR_OPEN, DOOR, local(4, 10, 0), {}),
            (EventKind.SERVICE_REQUEST, BUTTON, local(4, 10, 1),
             {"button": "green", "press": "long"}),
            (EventKind.MOTION, RADAR, local(4, 10, 12), {}),
            (EventKind.SERVICE_REQUEST, BUTTON, local(4, 10, 31),
             {"button": "green", "press": "long"})])
        await services.service_engine.tick()
        visit = await V.by_order(services.db.conn, visit_task["id"])
        assert visit is not None
        assert (visit["status"], visit["check_in_method"], visit["check_out_method"]) == (
            "verified", "button", "button")
        assert (visit["door_events"], visit["motion_events"], visit["worker_id"]) == (
            1, 1, VOLUNTEER)
        # the long presses were the visit, not service requests
        assert await count(running, "svc_requests") == 0

        before = await count(running, "svc_orders")
        body = {"mode": "in_person", "note": "精神尚可",
                "findings": {"health": {"level": "attention", "note": "膝盖疼，走路慢"},
                             "food": {"level": "ok", "note": "冰箱有菜"}},
                "followups": {"concern": "希望社区安排助浴",
                              "record_note": "下次带血压计",
                              "service_order": {
                                  "service_type_id": "cleaning",
                                  "window_start": local(5, 9).isoformat(),
                                  "window_end": local(5, 11).isoformat()}}}
        entry = await ok(await client.post(f"{API}/visit/tasks/{visit_task['id']}/record",
                                           params={"token": token}, json=body), 201)
        assert (entry["verification"], entry["visit_id"], entry["flags"]) == (
            "verified", visit["id"], [])
        assert entry["started_at"].startswith("2025-03-04T02:01")
        assert entry["findings"]["health"] == {"level": "attention", "note": "膝盖疼，走路慢"}
        # the follow-ups: an order on the service desk, a concern for the community worker
        assert entry["order_id"] and await count(running, "svc_orders") == before + 1
        order = await ok(await client.get(f"{API}/service-orders/{entry['order_id']}",
                                          headers=op))
        assert (order["resident_id"], order["service_type_id"]) == (RESIDENT, "cleaning")
        concerns = await ok(await client.get(f"{API}/care-concerns", headers=op))
        assert [(c["id"], c["kind"]) for c in concerns] == [(entry["concern_id"], "visitor")]
        # a volunteer's verified half hour is in the time bank
        hours = await ok(await client.get(f"{API}/care-visitors/{VOLUNTEER}/hours",
                                          headers=op))
        assert (hours["credited_min"], hours["balance_min"]) == (30.0, 30.0)

        # the call: by phone, no visit row, no hours
        running.clock.set(local(5, 18, 0))
        call = await ok(await client.post(
            f"{API}/visit/tasks/{call_task['id']}/record", params={"token": token},
            json={"mode": "phone", "started_at": local(5, 17, 50).isoformat(),
                  "ended_at": local(5, 17, 58).isoformat(), "note": "电话问候，一切安好"}),
            201)
        assert (call["verification"], call["visit_id"]) == ("phone", None)

        # the next visit is scheduled from the one done; recorded with no device evidence
        await services.care_visit_engine.tick(check=False)
        me = await ok(await client.get(f"{API}/visit", params={"token": token}))
        nxt = next(t for t in me["tasks"] if t["mode"] == "in_person" and t["status"] == "open")
        # her open concern (raised by this visit) lifted her to high at the engine's
        # re-plan: in person every 3 days now, so the next visit is due on the 7th
        assert nxt["due_date"] == "2025-03-07"
        running.clock.set(local(7, 16, 0))
        flagged = await ok(await client.post(
            f"{API}/visit/tasks/{nxt['id']}/record", params={"token": token},
            json={"mode": "in_person", "started_at": local(7, 15, 0).isoformat(),
                  "ended_at": local(7, 15, 40).isoformat()}), 201)
        assert (flagged["verification"], flagged["flags"]) == (
            "flagged", ["no_device_evidence"])
        hours = await ok(await client.get(f"{API}/care-visitors/{VOLUNTEER}/hours",
                                          headers=op))
        assert hours["credited_min"] == 30.0  # nothing for an unverified visit

        # the ledger: per community and month, searchable, exportable
        rows = await ok(await client.get(f"{API}/care-ledger", headers=op, params={
            "district_id": "D-XH", "community_id": "C-XH-CY", "month": "2025-03"}))
        assert [r["id"] for r in rows] == [flagged["id"], call["id"], entry["id"]]
        hits = await ok(await client.get(f"{API}/care-ledger", headers=op,
                                         params={"q": "膝盖"}))
        assert [r["id"] for r in hits] == [entry["id"]]
        assert await ok(await client.get(f"{API}/care-ledger", headers=op,
                                         params={"month": "2025-04"})) == []
        resp = await client.get(f"{API}/districts/D-XH/care-ledger.csv", headers=op,
                                params={"month": "2025-03"})
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
        table = list(csv.reader(io.StringIO(resp.text.lstrip("\ufeff"))))
        assert table[0][:3] == ["编号", "社区", "老人"]
        assert [(r[0], r[2], r[7]) for r in table[1:]] == [
            (entry["id"], "王秀英", "verified"), (call["id"], "王秀英", "phone"),
            (flagged["id"], "王秀英", "flagged")]
        # the family sees their elder's visits; another district's operator sees none
        fam = await ok(await client.get(f"{API}/care-ledger", headers=running.auth("family")))
        assert len(fam) == 3
        assert await ok(await client.get(f"{API}/care-ledger",
                                         headers=running.auth("operator_other"))) == []
        coverage = await ok(await client.get(f"{API}/districts/D-XH/care-coverage",
                                             headers=op, params={"month": "2025-03"}))
        vol = {r["key"]: r for r in coverage["by_visitor"]}[VOLUNTEER]
        assert vol["on_time"] >= 3 and vol["late"] == 0

    # every read of her record is audited: the risk view, and the visitor's link
    cur = await services.db.conn.execute(
        "SELECT actor, reason FROM audit_log WHERE record_id = ? ORDER BY id", (RESIDENT,))
    audit = [(r[0], r[1]) for r in await cur.fetchall()]
    assert any(reason == "care-visit risk tier" for _, reason in audit)
    assert any(actor == f"visitor:{VOLUNTEER}" for actor, _ in audit)


async def test_refusals_change_nothing(cv_http: Running) -> None:
    running = cv_http
    assert running.clock is not None
    services = running.services
    op = running.auth("operator")
    async with httpx.AsyncClient(base_url=running.url, timeout=10) as client:
        await ok(await client.post(f"{API}/districts/D-XH/care-plans", headers=op))
        token = services.care_visits.visitor_token(VOLUNTEER)
        me = await ok(await client.get(f"{API}/visit", params={"token": token}))
        task = next(t for t in me["tasks"] if t["mode"] == "in_person")
        url = f"{API}/visit/tasks/{task['id']}/record"
        entries = await count(running, "cv_entries")
        visits = await count(running, "visits")

        async def refused(status: int, code: str | None, **kw: Any) -> None:
            resp = await client.post(url, **kw)
            assert resp.status_code == status, resp.text
            if code is not None:
                assert resp.json()["code"] == code and resp.json()["message_zh"]
            assert await count(running, "cv_entries") == entries
            assert await count(running, "visits") == visits

        future = running.clock.now() + timedelta(hours=1)
        await refused(422, "time_in_future", params={"token": token}, json={
            "mode": "in_person", "started_at": running.clock.now().isoformat(),
            "ended_at": future.isoformat()})
        await refused(422, "start_required", params={"token": token},
                      json={"mode": "in_person"})
        await refused(422, "visit_needs_person", params={"token": token},
                      json={"mode": "phone"})
        await refused(422, None, params={"token": token}, json={"mode": "by_pigeon"})
        await refused(422, None, params={"token": token},
                      json={"mode": "phone", "extra": 1})
        # a visitor of another elder cannot record this one's visit
        other = (await services.registry.contacts_of(OTHER_RESIDENT))[0].id
        await refused(422, "task_other_visitor",
                      params={"token": services.care_visits.visitor_token(other)},
                      json={"mode": "in_person", "started_at": local(4, 8).isoformat()})
        # the backup is not asked before the ladder reaches them
        await refused(422, "task_other_visitor",
                      params={"token": services.care_visits.visitor_token(NEIGHBOUR)},
                      json={"mode": "in_person", "started_at": local(4, 8).isoformat()})
        await refused(401, None, params={"token": token[:-3] + "abc"},
                      json={"mode": "phone"})
        await refused(401, None, json={"mode": "phone"})
        # NaN in an arrival's position
        resp = await client.post(f"{API}/visit/tasks/{task['id']}/arrive",
                                 params={"token": token},
                                 content='{"latitude": NaN, "longitude": 120.1}',
                                 headers={"Content-Type": "application/json"})
        assert resp.status_code == 422
        assert await count(running, "visits") == visits
        # the service desk's refusal of a follow-up order leaves the ledger untouched
        await refused(422, "unknown_service_type", params={"token": token}, json={
            "mode": "in_person", "started_at": local(4, 8).isoformat(),
            "ended_at": local(4, 8, 30).isoformat(),
            "followups": {"service_order": {"service_type_id": "moon_trip",
                                            "window_start": local(5, 9).isoformat(),
                                            "window_end": local(5, 10).isoformat()}}})
        # once recorded, a second record of the same task is a conflict
        await ok(await client.post(url, params={"token": token}, json={
            "mode": "in_person", "started_at": local(4, 8).isoformat(),
            "ended_at": local(4, 8, 30).isoformat()}), 201)
        entries, visits = entries + 1, visits + 1
        await refused(409, "task_done", params={"token": token}, json={
            "mode": "in_person", "started_at": local(4, 8).isoformat()})
        # an unknown district, a redeem beyond the balance
        resp = await client.get(f"{API}/districts/D-NOPE/care-coverage", headers=op)
        assert resp.status_code == 404
        resp = await client.post(f"{API}/care-visitors/{VOLUNTEER}/redeem", headers=op,
                                 json={"minutes": 5, "note": "兑换理发"})
        assert resp.status_code == 409 and resp.json()["code"] == "hours_exhausted"


async def test_arrival_on_the_phone_then_the_record_closes_the_visit(cv_http: Running) -> None:
    running = cv_http
    assert running.clock is not None
    services = running.services
    async with httpx.AsyncClient(base_url=running.url, timeout=10) as client:
        await ok(await client.post(f"{API}/districts/D-XH/care-plans",
                                   headers=running.auth("operator")))
        token = services.care_visits.visitor_token(VOLUNTEER)
        me = await ok(await client.get(f"{API}/visit", headers={"X-Visit-Token": token}))
        task = next(t for t in me["tasks"] if t["mode"] == "in_person")
        call = next(t for t in me["tasks"] if t["mode"] == "phone")
        running.clock.set(local(4, 14, 0))
        arrived = await ok(await client.post(
            f"{API}/visit/tasks/{task['id']}/arrive", headers={"X-Visit-Token": token},
            json={"latitude": 30.2868, "longitude": 120.1229}))
        assert arrived["visit_status"] == "in_progress"
        resp = await client.post(f"{API}/visit/tasks/{task['id']}/arrive",
                                 headers={"X-Visit-Token": token}, json={})
        assert resp.status_code == 409 and resp.json()["code"] == "already_checked_in"
        resp = await client.post(f"{API}/visit/tasks/{call['id']}/arrive",
                                 headers={"X-Visit-Token": token}, json={})
        assert resp.status_code == 422 and resp.json()["code"] == "not_in_person"
        # the door closes behind the visitor; the desk's engine keeps it as evidence
        await commit_many(running.store, GW, [(EventKind.DOOR_CLOSE, DOOR, local(4, 14, 1), {})])
        await services.service_engine.tick()
        running.clock.set(local(4, 14, 25))
        entry = await ok(await client.post(
            f"{API}/visit/tasks/{task['id']}/record", headers={"X-Visit-Token": token},
            json={"mode": "in_person"}), 201)
        assert (entry["verification"], entry["started_at"], entry["ended_at"]) == (
            "verified", "2025-03-04T06:00:00Z", "2025-03-04T06:25:00Z")
        visit = await V.by_order(services.db.conn, task["id"])
        assert visit is not None
        assert (visit["check_in_method"], visit["check_out_method"], visit["door_events"]) == (
            "phone", "phone", 1)
        assert "phone_position" in visit["verification"]
    cur = await services.db.conn.execute(
        "SELECT reason FROM audit_log WHERE actor = ? AND record_id = ?",
        (f"visitor:{VOLUNTEER}", RESIDENT))
    reasons = {r[0] for r in await cur.fetchall()}
    assert {f"care visit {task['id']} arrival", f"care visit {task['id']} record",
            "care visits (visitor link)"} <= reasons


async def test_a_visit_answers_a_welfare_alert_and_its_outcome_resolves_it(
        cv_http: Running) -> None:
    running = cv_http
    assert running.clock is not None
    services = running.services
    op = running.auth("operator")
    # the gateway's inactivity rule and a red press, committed by ingest, raised by the engine
    running.clock.set(local(4, 11, 0))
    await commit_many(running.store, GW, [
        (EventKind.INACTIVITY, DOOR, local(4, 10, 59), {"hours": 12}),
        (EventKind.SOS, BUTTON, local(4, 10, 59), {"button": "red"})])
    await services.engine.tick()
    cur = await services.db.conn.execute("SELECT id, kind FROM alerts WHERE resident_id = ?",
                                         (RESIDENT,))
    alerts = {r[1]: r[0] for r in await cur.fetchall()}
    async with httpx.AsyncClient(base_url=running.url, timeout=10) as client:
        resp = await client.post(f"{API}/alerts/{alerts['sos']}/care-visit", headers=op)
        assert resp.status_code == 422 and resp.json()["code"] == "alert_not_for_visit"
        resp = await client.post(f"{API}/alerts/{alerts['inactivity']}/care-visit",
                                 headers=running.auth("operator_other"))
        assert resp.status_code == 404
        task = await ok(await client.post(f"{API}/alerts/{alerts['inactivity']}/care-visit",
                                          headers=op), 201)
        assert (task["mode"], task["alert_id"], task["assignee_contact_id"], task["due_date"]) == (
            "in_person", alerts["inactivity"], VOLUNTEER, "2025-03-04")
        token = services.care_visits.visitor_token(VOLUNTEER)
        await commit_many(running.store, GW, [(EventKind.DOOR_OPEN, DOOR, local(4, 11, 20), {})])
        await services.service_engine.tick()
        running.clock.set(local(4, 11, 45))
        entry = await ok(await client.post(
            f"{API}/visit/tasks/{task['id']}/record", headers={"X-Visit-Token": token},
            json={"mode": "in_person", "started_at": local(4, 11, 20).isoformat(),
                  "note": "老人睡过头了，一切正常"}), 201)
        assert entry["verification"] == "verified"
        alert = await ok(await client.get(f"{API}/alerts/{alerts['inactivity']}", headers=op))
        assert (alert["status"], alert["closure_code"]) == ("resolved", "helped_at_home")
        assert any("老人睡过头了" in str(e.get("detail")) for e in alert["timeline"])
