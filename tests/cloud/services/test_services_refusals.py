"""Bad input: a clear 4xx with the reason (and a Chinese message for the console), and
nothing changed."""

from __future__ import annotations

from typing import Any

import pytest
from care_support import OTHER_RESIDENT, RESIDENT, Running
from stack_support import ok
from svc_support import client, count, local

from eldercare_cloud.clock import ManualClock

pytestmark = pytest.mark.integration

TABLES = ("svc_orders", "svc_requests", "svc_dispatches", "svc_vouchers", "visits",
          "svc_timeline", "svc_ratings")


async def snapshot(running: Running) -> dict[str, int]:
    return {t: await count(running, t) for t in TABLES}


def order(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"resident_id": RESIDENT, "service_type_id": "cleaning",
                            "window_start": local(5, 9).isoformat(),
                            "window_end": local(5, 11).isoformat()}
    body.update(over)
    return body


async def refused(running: Running, method: str, url: str, status: int, code: str | None,
                  user: str = "operator", **kw: Any) -> dict[str, Any]:
    before = await snapshot(running)
    async with client(running) as c:
        resp = await c.request(method, url, headers=running.auth(user), **kw)
    assert resp.status_code == status, resp.text
    data: dict[str, Any] = resp.json()
    if code is not None:
        assert data["code"] == code, data
        assert any("\u4e00" <= ch <= "\u9fff" for ch in data["message_zh"]), data
    assert await snapshot(running) == before, f"{method} {url} changed something"
    return data


async def test_refusals_change_nothing(desk_http: Running) -> None:
    running = desk_http
    clock = running.clock
    assert isinstance(clock, ManualClock)
    url = "/api/v1/service-orders"
    await refused(running, "POST", url, 422, "unknown_service_type",
                  json=order(service_type_id="massage"))
    # 钱美娟 (over 80, alone, no assessed category): meals yes, subsidised cleaning no
    data = await refused(running, "POST", url, 422, "not_entitled",
                         json=order(resident_id=OTHER_RESIDENT))
    assert "不享受助洁补贴" in data["message_zh"]
    await refused(running, "POST", url, 422, None,
                  content=b'{"resident_id": "R-XH-001", "service_type_id": "cleaning",'
                          b' "window_start": "2025-03-05T09:00:00+08:00",'
                          b' "window_end": "2025-03-05T11:00:00+08:00", "x": NaN}',
                  )
    await refused(running, "POST", url, 422, None,
                  json=order(window_end=local(5, 8).isoformat()))
    await refused(running, "POST", url, 404, None, json=order(resident_id="R-NOPE"))
    await refused(running, "POST", url, 404, None, user="operator_other", json=order())
    # a family member may order for their own elder only
    await refused(running, "POST", url, 404, None, user="family",
                  json=order(resident_id=OTHER_RESIDENT, service_type_id="meal"))

    # the voucher: 王秀英 has 400 元 a month; four 助洁 at 90 元 reserve 360 元
    async with client(running) as c:
        ids = []
        for day in (5, 6, 7, 10):
            o = await ok(await c.post(url, json=order(
                window_start=local(day, 9).isoformat(), window_end=local(day, 11).isoformat(),
                dispatch=False), headers=running.auth("operator")), 201)
            ids.append(o["id"])
        ent = await ok(await c.get(f"/api/v1/residents/{RESIDENT}/entitlement?month=2025-03",
                                   headers=running.auth("family")))
        assert (ent["allowance_cents"], ent["reserved_cents"], ent["balance_cents"]) == (
            40000, 36000, 4000)
    data = await refused(running, "POST", url, 422, "voucher_exhausted",
                         json=order(window_start=local(11, 9).isoformat(),
                                    window_end=local(11, 11).isoformat()))
    assert "服务券余额不足" in data["message_zh"]

    # overlapping orders for one worker: 陈美华 holds 5 March 9–11 after this dispatch
    async with client(running) as c:
        first = await ok(await c.post(f"/api/v1/service-orders/{ids[0]}/dispatch",
                                      json={"worker_id": "W-XH-AK-01"},
                                      headers=running.auth("operator")))
        assert first["worker_id"] == "W-XH-AK-01"
        other = await ok(await c.post(url, json=order(
            service_type_id="company", window_start=local(5, 10).isoformat(),
            window_end=local(5, 12).isoformat(), dispatch=False),
            headers=running.auth("operator")), 201)
    await refused(running, "POST", f"/api/v1/service-orders/{other['id']}/dispatch", 409,
                  "worker_overlap", json={"worker_id": "W-XH-AK-01"})
    # a worker of the wrong skill (刘建军 repairs) cannot take 陪聊
    await refused(running, "POST", f"/api/v1/service-orders/{other['id']}/dispatch", 422,
                  "worker_unsuitable", json={"worker_id": "W-XH-AK-02"})

    # check-out before check-in
    async with client(running) as c:
        await ok(await c.post(f"/api/v1/service-orders/{ids[0]}/accept",
                              headers=running.auth("worker")))
    await refused(running, "POST", f"/api/v1/service-orders/{ids[0]}/check-out", 409,
                  "check_out_before_check_in", user="worker", json={})
    # the worker account cannot act on an order that is not theirs
    await refused(running, "POST", f"/api/v1/service-orders/{other['id']}/accept", 404,
                  "order_not_found", user="worker")

    # a link used for another order
    async with client(running) as c:
        link = await ok(await c.get(f"/api/v1/service-orders/{ids[0]}/work-link",
                                    headers=running.auth("operator")))
        view = await ok(await c.get(f"/api/v1/jobs/{ids[0]}?token={link['token']}"))
        assert view["order"]["status"] == "accepted" and view["route_url"].startswith("https://")
    await refused(running, "POST", f"/api/v1/jobs/{other['id']}/accept?token={link['token']}",
                  422, "link_other_order", user="nobody-uses-this", )
    await refused(running, "POST", f"/api/v1/jobs/{ids[0]}/accept?token=forged.token", 401,
                  None, user="nobody-uses-this")


@pytest.fixture(autouse=True)
def _anonymous(desk_http: Running) -> None:
    desk_http.tokens["nobody-uses-this"] = "not-a-token"
