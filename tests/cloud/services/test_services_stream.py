"""The service desk on the live stream (GET /api/v1/stream) over real HTTP: requests and
orders announce themselves as typed, staff-only events (``service.request.opened``,
``service.request.updated``, ``service.order.created``, ``service.order.updated``) that
reach the monitoring centre of the district and nobody else, not even the family of the
elder who pressed; and the set-up endpoints the console's administration screens use
refuse bad bodies (NaN included) with a 422 and change nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from care_support import BUTTON, GW, RESIDENT, Running
from stack_support import ok
from svc_support import client, commit_at, count, local

from eldercare_cloud.clock import ManualClock
from eldercare_protocols.events import EventKind

pytestmark = pytest.mark.integration

#: roles that read the stream but must never see the service desk's events
NOT_STAFF = ("family", "volunteer", "worker", "operator_other")
#: roles the stream itself refuses
NO_STREAM = ("provider", "installer", "district_admin")


@asynccontextmanager
async def events(running: Running, user: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
    """Everything the user's stream replays from the first event, read in a task."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def read(resp: httpx.Response) -> None:
        event: dict[str, Any] = {}
        async for line in resp.aiter_lines():
            if line == "":
                if "data" in event:
                    await queue.put(event)
                event = {}
            elif not line.startswith(":"):
                key, _, value = line.partition(": ")
                event[key] = json.loads(value) if key == "data" else value

    async with (httpx.AsyncClient(base_url=running.url, timeout=10) as c,
                c.stream("GET", "/api/v1/stream", params={"after": "0"},
                         headers=running.auth(user)) as resp):
        assert resp.status_code == 200, await resp.aread()
        task = asyncio.create_task(read(resp), name="sse-reader")
        try:
            yield queue
        finally:
            task.cancel()


async def drain(queue: asyncio.Queue[dict[str, Any]], seconds: float) -> list[dict[str, Any]]:
    """What arrives until nothing more comes for ``seconds``."""
    got = []
    while True:
        try:
            async with asyncio.timeout(seconds):
                got.append(await queue.get())
        except TimeoutError:
            return got


async def service_events(running: Running, user: str, want: int = 0,
                         quiet_s: float = 0.6) -> list[tuple[str, dict[str, Any]]]:
    async with events(running, user) as queue:
        got = await drain(queue, quiet_s if not want else 3.0)
        while want and len([e for e in got if e["event"].startswith("service.")]) < want:
            more = await drain(queue, 3.0)
            if not more:
                break
            got += more
    return [(e["event"], e["data"]) for e in got if e["event"].startswith("service.")]


async def test_requests_and_orders_reach_the_centre_only(desk_http: Running) -> None:
    running = desk_http
    clock = running.clock
    assert isinstance(clock, ManualClock)
    await commit_at(running.store, clock, EventKind.SERVICE_REQUEST, BUTTON, GW,
                    button="green", press="single")
    await running.services.service_engine.tick()

    opened = await service_events(running, "operator", want=1)
    assert [t for t, _ in opened] == ["service.request.opened"]
    request_id = opened[0][1]["request_id"]
    assert opened[0][1]["action"] == "opened"
    # no name or address on the stream: the console reads the record through the API
    assert "王秀英" not in json.dumps(opened, ensure_ascii=False)
    for user in ("admin", "supervisor"):
        assert [t for t, _ in await service_events(running, user, want=1)] == [
            "service.request.opened"], user

    # the call-back and the order: every step of the request and the order is announced
    op = running.auth("operator")
    async with client(running) as c:
        await ok(await c.post(f"/api/v1/service-requests/{request_id}/callback",
                              json={"outcome": "asked", "note": "要打扫卫生"}, headers=op))
        order = await ok(await c.post("/api/v1/service-orders", json={
            "resident_id": RESIDENT, "service_type_id": "cleaning",
            "window_start": local(4, 9, 30).isoformat(),
            "window_end": local(4, 12, 30).isoformat(), "request_id": request_id,
            "source": "button"}, headers=op), 201)
    got = await service_events(running, "operator", want=5)
    assert [(t, d.get("request_id") or d.get("order_id"), d["action"]) for t, d in got] == [
        ("service.request.opened", request_id, "opened"),
        ("service.request.updated", request_id, "callback"),
        ("service.order.created", order["id"], "created"),
        ("service.request.updated", request_id, "ordered"),
        ("service.order.updated", order["id"], "dispatched"),
    ]

    # nobody outside the centre of this district sees any of it; the family of the very
    # elder who pressed included (their stream carries her alerts, not the desk's work)
    for user in NOT_STAFF:
        assert await service_events(running, user) == [], user
    async with httpx.AsyncClient(base_url=running.url, timeout=10) as c:
        for user in NO_STREAM:
            resp = await c.get("/api/v1/stream", headers=running.auth(user))
            assert resp.status_code == 403, (user, resp.text)


async def test_a_live_reader_is_woken_by_a_green_press(desk_http: Running) -> None:
    running = desk_http
    clock = running.clock
    assert isinstance(clock, ManualClock)
    async with (httpx.AsyncClient(base_url=running.url, timeout=10) as c,
                c.stream("GET", "/api/v1/stream", headers=running.auth("operator")) as resp):
        assert resp.status_code == 200
        lines = resp.aiter_lines()
        assert (await anext(lines)).startswith("retry:")
        await commit_at(running.store, clock, EventKind.SERVICE_REQUEST, BUTTON, GW,
                        button="green", press="single")
        await running.services.service_engine.tick()
        async with asyncio.timeout(5):
            async for line in lines:
                if line.startswith("event:"):
                    assert line == "event: service.request.opened"
                    break


async def stream_rows(running: Running) -> int:
    return await count(running, "stream_events")


SETUP_BAD: list[tuple[str, str, bytes]] = [
    ("POST", "/api/v1/service-types",
     b'{"id": "massage", "name_zh": "\\u6309\\u6469", "name_en": "Massage",'
     b' "duration_min": NaN, "unit_price_cents": 5000}'),
    ("POST", "/api/v1/service-types",
     b'{"id": "Massage!", "name_zh": "x", "name_en": "x", "duration_min": 60,'
     b' "unit_price_cents": 5000}'),
    ("POST", "/api/v1/service-providers",
     b'{"district_id": "D-XH", "name": "x", "phone": "not-a-phone",'
     b' "communities": ["C-XH-CY"], "service_types": ["cleaning"]}'),
    ("POST", "/api/v1/service-providers/P-XH-AK/workers",
     b'{"name": "x", "phone": "13800000000", "skills": []}'),
    ("POST", "/api/v1/entitlement-rules",
     b'{"district_id": "D-XH", "category": "dibao", "label": "x",'
     b' "monthly_voucher_cents": NaN, "service_types": ["cleaning"]}'),
    ("POST", "/api/v1/entitlement-rules",
     b'{"district_id": "D-XH", "category": "dibao", "label": "x",'
     b' "monthly_voucher_cents": -1, "service_types": ["cleaning"]}'),
    ("PUT", "/api/v1/districts/D-XH/service-config",
     b'{"callback_share": NaN, "new_worker_visits": 3}'),
    ("PUT", "/api/v1/districts/D-XH/service-config",
     b'{"callback_share": Infinity, "new_worker_visits": 3}'),
    ("PUT", "/api/v1/districts/D-XH/service-config",
     b'{"callback_share": 1.5, "new_worker_visits": 3}'),
]


@pytest.mark.parametrize(("method", "url", "body"), SETUP_BAD,
                         ids=[f"{m} {u} {i}" for i, (m, u, _) in enumerate(SETUP_BAD)])
async def test_bad_setup_bodies_are_422_and_change_nothing(
        desk_http: Running, method: str, url: str, body: bytes) -> None:
    running = desk_http
    admin = running.auth("admin")

    async def state(c: httpx.AsyncClient) -> list[Any]:
        return [await ok(await c.get(u, headers=admin)) for u in (
            "/api/v1/service-types", "/api/v1/service-providers",
            "/api/v1/service-providers/P-XH-AK/workers",
            "/api/v1/districts/D-XH/entitlement-rules",
            "/api/v1/districts/D-XH/service-config")] + [await stream_rows(running)]

    async with client(running) as c:
        before = await state(c)
        resp = await c.request(method, url, content=body,
                               headers={**admin, "Content-Type": "application/json"})
        assert resp.status_code == 422, resp.text
        assert resp.json()["code"] == "validation"
        assert await state(c) == before
