"""Responder links over real HTTP: signed, expiring, scoped to one alert and one contact;
the key-safe code only for the responder who accepted, and that read audited."""

from __future__ import annotations

import httpx
import pytest
from care_support import DAUGHTER, GW, SON, Running, commit_event

from eldercare_protocols.events import EventKind

pytestmark = pytest.mark.integration


async def raise_alert(running: Running, kind: EventKind = EventKind.SOS,
                      device: str = "btn-xh001") -> str:
    await commit_event(running.store, kind, device_id=device, gateway_id=GW,
                       at=running.clock.now())
    await running.services.engine.tick()
    await running.services.dispatcher.deliver_due()
    cur = await running.services.db.conn.execute(
        "SELECT id FROM alerts WHERE kind = ? ORDER BY opened_at DESC LIMIT 1", (kind.value,))
    return str((await cur.fetchone())[0])


async def link_of(running: Running, alert_id: str, contact_id: str) -> tuple[str, str]:
    cur = await running.services.db.conn.execute(
        "SELECT link FROM notifications WHERE alert_id = ? AND contact_id = ?",
        (alert_id, contact_id))
    link = str((await cur.fetchone())[0])
    assert link.startswith(running.settings.http.public_base_url + f"/respond/{alert_id}?token=")
    return link, link.split("token=", 1)[1]


async def test_responder_flow_with_key_safe(care_http: Running) -> None:
    alert_id = await raise_alert(care_http)
    _, token = await link_of(care_http, alert_id, SON)
    r = f"/api/v1/respond/{alert_id}"
    async with httpx.AsyncClient(base_url=care_http.url) as c:
        q = {"token": token}
        view = await c.get(r, params=q)
        assert view.status_code == 200, view.text
        body = view.json()
        assert body["kind_text"] == "紧急呼叫" and body["resident"]["name"] == "王秀英"
        assert "翠苑一区" in body["resident"]["address"]
        assert body["resident"]["coordinates"]["latitude"] == pytest.approx(30.2868)
        assert body["you"]["name"] == "李建国" and body["actions"] == ["accept", "decline"]
        assert body["medical"] is None and body["has_key_safe"] is False
        # the header works as well as the query string
        assert (await c.get(r, headers={"X-Responder-Token": token})).status_code == 200
        # not before accepting
        assert (await c.get(r + "/key-safe", params=q)).status_code == 403
        accepted = await c.post(r + "/accept", params=q)
        assert accepted.status_code == 200
        assert accepted.json()["you_accepted"] and accepted.json()["has_key_safe"]
        assert "二甲双胍 0.5g 每日两次" in accepted.json()["medical"]["medications"]
        key = await c.get(r + "/key-safe", params=q)
        assert key.status_code == 200 and key.json()["code"] == "4721"
        assert (await c.post(r + "/en-route", params=q)).json()["status"] == "en_route"
        assert (await c.post(r + "/on-scene", params=q)).json()["status"] == "on_scene"
        assert (await c.post(r + "/resolve", params=q, json={})).status_code == 422
        done = await c.post(r + "/resolve", params=q,
                            json={"closure_code": "taken_to_hospital", "note": "送浙大一院"})
        assert done.status_code == 200 and done.json()["status"] == "resolved"
        assert done.json()["actions"] == []
        assert (await c.get(r + "/key-safe", params=q)).status_code == 403
        assert (await c.post(r + "/accept", params=q)).status_code == 409
    async with httpx.AsyncClient(base_url=care_http.url) as client:
        log = (await client.get("/api/v1/audit", params={"record_id": "H-XH-001"},
                                headers=care_http.auth("admin"))).json()
        reads = [e for e in log if e["action"] == "read_key_safe"]
        assert len(reads) == 1 and reads[0]["actor"] == f"contact:{SON}"
        assert reads[0]["reason"] == f"accepted alert {alert_id}"
        detail = (await client.get(f"/api/v1/alerts/{alert_id}",
                                   headers=care_http.auth("operator"))).json()
        stamps = [detail[k] for k in ("raised_at", "received_at", "committed_at", "opened_at",
                                      "first_notified_at", "accepted_at", "on_scene_at",
                                      "resolved_at")]
        assert all(stamps), stamps


async def test_link_refuses_another_alert_forgery_expiry_and_bearer_use(
        care_http: Running) -> None:
    sos_id = await raise_alert(care_http)
    fall_id = await raise_alert(care_http, EventKind.FALL, "radar-xh001")
    _, token = await link_of(care_http, sos_id, SON)
    async with httpx.AsyncClient(base_url=f"{care_http.url}/api/v1") as c:
        assert (await c.get(f"/respond/{sos_id}", params={"token": token})).status_code == 200
        # the son's link for the SOS does not open the fall alert, nor a made-up one
        for other in (fall_id, "AL-000000-deadbeef"):
            assert (await c.get(f"/respond/{other}", params={"token": token})).status_code == 404
            assert (await c.post(f"/respond/{other}/accept",
                                 params={"token": token})).status_code == 404
        forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        assert (await c.get(f"/respond/{sos_id}", params={"token": forged})).status_code == 401
        assert (await c.get(f"/respond/{sos_id}")).status_code == 401
        # a responder link is not a bearer token
        assert (await c.get("/alerts", headers={"Authorization": f"Bearer {token}"})
                ).status_code == 401
        # someone never asked has no link at all: the daughter's turn has not come
        cur = await care_http.services.db.conn.execute(
            "SELECT COUNT(*) FROM notifications WHERE contact_id = ?", (DAUGHTER,))
        assert (await cur.fetchone())[0] == 0
        assert care_http.clock is not None
        care_http.clock.advance(care_http.settings.auth.responder_link_ttl_s + 1)
        expired = await c.get(f"/respond/{sos_id}", params={"token": token})
        assert expired.status_code == 401 and "expired" in expired.text
