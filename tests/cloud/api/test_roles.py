"""The role × endpoint matrix, generated from /openapi.json so no endpoint escapes it.

Every operation must declare who may call it (``x-roles``, written by ``roles(...)``,
which also enforces it) or say why it is public (``x-public``). Then, for every
operation: no token → 401; a role not declared → 403 (or 404); a declared role →
neither 401 nor 403, and never a server error. A declaration that is not enforced, or
an endpoint without one, fails here.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from care_support import GRID, GW, NEIGHBOUR, RESIDENT, Running, commit_event, mint_tokens

from eldercare_protocols.events import EventKind

pytestmark = pytest.mark.integration

ROLES = ("admin", "operator", "family", "volunteer", "worker", "installer", "provider",
         "district_admin", "supervisor")
METHODS = ("get", "post", "put", "patch", "delete")

#: public on purpose; adding one means adding it here, knowingly
PUBLIC = {
    ("post", "/api/v1/auth/token"),
    ("get", "/api/v1/health"),
    ("get", "/api/v1/respond/{alert_id}"),
    ("post", "/api/v1/respond/{alert_id}/accept"),
    ("post", "/api/v1/respond/{alert_id}/decline"),
    ("post", "/api/v1/respond/{alert_id}/en-route"),
    ("post", "/api/v1/respond/{alert_id}/on-scene"),
    ("post", "/api/v1/respond/{alert_id}/resolve"),
    ("get", "/api/v1/respond/{alert_id}/key-safe"),
    # the service worker's phone page: a signed link scoped to one order and one worker
    ("get", "/api/v1/jobs/{order_id}"),
    ("post", "/api/v1/jobs/{order_id}/accept"),
    ("post", "/api/v1/jobs/{order_id}/decline"),
    ("post", "/api/v1/jobs/{order_id}/check-in"),
    ("post", "/api/v1/jobs/{order_id}/check-out"),
    # the care visitor's phone page: a signed link scoped to one visitor (issue 11)
    ("get", "/api/v1/visit"),
    ("post", "/api/v1/visit/tasks/{task_id}/arrive"),
    ("post", "/api/v1/visit/tasks/{task_id}/record"),
}


async def sample_values(running: Running) -> dict[str, str]:
    """Path parameters that exist and sit inside the operator's, family's and (after the
    ladder reached them) the volunteer's and worker's scope."""
    await commit_event(running.store, EventKind.SOS, gateway_id=GW, at=running.clock.now())
    services = running.services
    await services.engine.tick()
    assert running.clock is not None
    for _ in range(3):  # daughter, then neighbour + volunteer, then the grid worker
        running.clock.advance(60)
        await services.engine.tick()
    cur = await services.db.conn.execute("SELECT id FROM alerts LIMIT 1")
    alert_id = str((await cur.fetchone())[0])
    offered = await services.db.conn.execute(
        "SELECT contact_id FROM ladder_offers WHERE alert_id = ?", (alert_id,))
    assert GRID in {r[0] for r in await offered.fetchall()}
    return {"alert_id": alert_id, "resident_id": RESIDENT, "district_id": "D-XH",
            "community_id": "C-XH-CY", "household_id": "H-XH-001", "contact_id": NEIGHBOUR,
            "gateway_id": GW, "device_id": "btn-xh001",
            "user_id": running.user_ids["operator"], "tier": "high",
            **await service_values(running), **await care_visit_values(running)}


async def care_visit_values(running: Running) -> dict[str, str]:
    """Care visits (issue 11): plans for the district and a concern to close."""
    from eldercare_cloud.visits.routine import ConcernKind

    visits = running.services.care_visits
    concern = await visits.raise_concern(RESIDENT, ConcernKind.OPERATOR, "matrix", {})
    assert concern is not None
    return {"concern_id": concern}


async def service_values(running: Running) -> dict[str, str]:
    """Records of the service desk (issue 10) inside the operator's, family's, provider's
    and worker's scope: a request, a completed (flagged) order with a follow-up, a plan,
    and a second order dispatched to the worker account's 陈美华."""
    from datetime import timedelta

    from eldercare_cloud.auth.models import Principal, Role
    from eldercare_cloud.services.desk import Actor
    from eldercare_cloud.services.models import (
        CheckOutCreate,
        OrderCreate,
        PlanCreate,
        RatingCreate,
        Score,
    )

    assert running.clock is not None
    desk = running.services.desk
    admin = Principal(user_id=running.user_ids["admin"], username="admin", role=Role.ADMIN,
                      tenant="default")
    await commit_event(running.store, EventKind.SERVICE_REQUEST, gateway_id=GW,
                       button="green", press="single", at=running.clock.now())
    await running.services.service_engine.tick()
    [request] = await desk.list_requests(admin)
    now = running.clock.now()
    done = await desk.create_order(admin, OrderCreate(
        resident_id=RESIDENT, service_type_id="company", window_start=now,
        window_end=now + timedelta(hours=1)))
    worker = Actor("user:test", "陈美华")
    for action in ("accept", "check_in", "check_out"):
        await desk.worker_act(done.id, "W-XH-AK-01", worker, action, CheckOutCreate()
                              if action == "check_out" else None)
    await desk.rate(admin, done.id, RatingCreate(score=Score.UNSATISFIED))
    [followup] = await desk.list_followups(admin)
    visit = (await desk.get_order(admin, done.id)).visit
    assert visit is not None and visit["status"] == "flagged"
    later = await desk.create_order(admin, OrderCreate(
        resident_id=RESIDENT, service_type_id="cleaning", window_start=now + timedelta(hours=3),
        window_end=now + timedelta(hours=5), dispatch=False))
    later = await desk.dispatch(admin, later.id, "W-XH-AK-01")
    plan = await desk.create_plan(admin, PlanCreate(
        resident_id=RESIDENT, service_type_id="meal", every_days=1,
        first_date=now.date(), start_time="11:00", end_time="12:00"))  # type: ignore[arg-type]
    return {"request_id": request.id, "order_id": later.id, "visit_id": str(visit["id"]),
            "followup_id": followup.id, "plan_id": plan.id, "provider_id": "P-XH-AK",
            "worker_id": "W-XH-AK-01"}


def fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "x-unknown-1"), path)


async def call(client: httpx.AsyncClient, method: str, url: str,
               headers: dict[str, str]) -> int:
    if url.endswith("/stream"):
        async with client.stream(method.upper(), url, headers=headers) as resp:
            return resp.status_code
    body: dict[str, Any] | None = {} if method in ("post", "put", "patch") else None
    resp = await client.request(method.upper(), url, json=body, headers=headers)
    return resp.status_code


async def test_every_endpoint_declares_and_enforces_its_roles(care_http: Running) -> None:
    values = await sample_values(care_http)
    async with httpx.AsyncClient(base_url=care_http.url, timeout=10) as client:
        spec = (await client.get("/openapi.json")).json()
        operations = [(method, path, op) for path, item in spec["paths"].items()
                      for method, op in item.items() if method in METHODS]
        assert len(operations) > 40
        undeclared = [f"{m.upper()} {p}" for m, p, op in operations
                      if "x-roles" not in op and "x-public" not in op]
        assert undeclared == [], f"endpoints without a role declaration: {undeclared}"
        public = {(m, p) for m, p, op in operations if "x-public" in op}
        assert public <= PUBLIC, f"new public endpoints: {public - PUBLIC}"
        problems: list[str] = []
        spare = mint_tokens(care_http.user_ids, care_http.clock.now(), ttl_s=7200)
        # deleting first would leave later roles nothing to reach: deletes go last
        operations.sort(key=lambda o: o[0] == "delete")
        for method, path, op in operations:
            if "x-public" in op:
                continue
            url = fill(path, values)
            allowed = set(op["x-roles"])
            assert allowed <= set(ROLES), (path, allowed)
            if (status := await call(client, method, url, {})) != 401:
                problems.append(f"{method.upper()} {path} without a token: {status}")
            for role in ROLES:
                headers = care_http.auth(role)
                if path.endswith("/auth/logout"):
                    # signing out revokes the token: spend a token of its own on it
                    headers = {"Authorization": f"Bearer {spare[role]}"}
                status = await call(client, method, url, headers)
                if status >= 500:
                    problems.append(f"{method.upper()} {path} as {role}: {status}")
                elif role in allowed and status in (401, 403):
                    problems.append(f"{method.upper()} {path} as {role}: {status}, declared"
                                    " allowed")
                elif role not in allowed and status not in (403, 404):
                    problems.append(f"{method.upper()} {path} as {role}: {status}, declared"
                                    " not allowed")
        assert problems == [], "\n".join(problems)


async def test_scoped_roles_reach_their_own_records(care_http: Running) -> None:
    """The matrix shows roles pass the gate; here each reads what it should, with 200."""
    values = await sample_values(care_http)
    expect = {
        "family": [f"/api/v1/residents/{RESIDENT}", f"/api/v1/alerts/{values['alert_id']}",
                   "/api/v1/households/H-XH-001", f"/api/v1/residents/{RESIDENT}/card"],
        "volunteer": [f"/api/v1/alerts/{values['alert_id']}"],
        "worker": [f"/api/v1/alerts/{values['alert_id']}"],
        "installer": ["/api/v1/gateways/GW-XH-001", "/api/v1/devices/btn-xh001",
                      "/api/v1/gateways/GW-XH-001/config"],
        "operator": [f"/api/v1/residents/{RESIDENT}/ladder", "/api/v1/districts/D-XH/ladder",
                     f"/api/v1/residents/{RESIDENT}/contacts", "/api/v1/service-requests",
                     f"/api/v1/service-orders/{values['order_id']}",
                     "/api/v1/districts/D-XH/service-levels"],
        "provider": ["/api/v1/service-providers/P-XH-AK/workers",
                     f"/api/v1/service-orders/{values['order_id']}",
                     "/api/v1/service-providers/P-XH-AK/month", "/api/v1/service-followups"],
    }
    expect["worker"] += [f"/api/v1/service-orders/{values['order_id']}",
                         "/api/v1/service-workers/W-XH-AK-01/day"]
    expect["family"] += [f"/api/v1/residents/{RESIDENT}/services",
                         f"/api/v1/residents/{RESIDENT}/vouchers"]
    # care visits (issue 11)
    expect["operator"] += [f"/api/v1/residents/{RESIDENT}/care-risk",
                           f"/api/v1/residents/{RESIDENT}/care-routine",
                           "/api/v1/districts/D-XH/care-tiers", "/api/v1/care-plans",
                           "/api/v1/care-tasks", "/api/v1/care-ledger",
                           "/api/v1/care-concerns", "/api/v1/districts/D-XH/care-coverage",
                           "/api/v1/districts/D-XH/care-ledger.csv",
                           f"/api/v1/care-visitors/{NEIGHBOUR}/hours",
                           f"/api/v1/care-visitors/{NEIGHBOUR}/link"]
    expect["family"] += ["/api/v1/care-plans", "/api/v1/care-ledger", "/api/v1/care-tasks"]
    async with httpx.AsyncClient(base_url=care_http.url) as client:
        for role, urls in expect.items():
            for url in urls:
                resp = await client.get(url, headers=care_http.auth(role))
                assert resp.status_code == 200, (role, url, resp.text)
