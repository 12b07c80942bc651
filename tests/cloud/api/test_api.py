"""The HTTP API over a real loopback port: auth, registry, scoping, audit, the alert
queue, the resident card. 401 for bad credentials, 403/404 for scope, 422 with a reason."""

from __future__ import annotations

import httpx
import pytest
from care_support import GW, OTHER_RESIDENT, PASSWORD, RESIDENT, Running, commit_event

from eldercare_cloud.ingest import Received
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import DeviceStatus, GatewayState, TelemetryBatch, TelemetryRecord

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(care_http: Running) -> httpx.AsyncClient:
    async with httpx.AsyncClient(base_url=care_http.url + "/api/v1") as c:
        yield c  # type: ignore[misc]


async def test_credentials(care_http: Running, client: httpx.AsyncClient) -> None:
    ok = await client.post("/auth/token", data={"username": "operator", "password": PASSWORD})
    assert ok.status_code == 200 and ok.json()["token_type"] == "bearer"
    assert ok.json()["role"] == "operator"
    me_op = await client.get("/auth/me",
                             headers={"Authorization": f"Bearer {ok.json()['access_token']}"})
    assert me_op.json()["district_ids"] == ["D-XH"]
    bad = await client.post("/auth/token", data={"username": "admin", "password": "wrong pw!"})
    assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"
    nobody = await client.post("/auth/token", data={"username": "ghost", "password": "x" * 9})
    assert nobody.status_code == 401
    assert (await client.get("/residents")).status_code == 401
    forged = {"Authorization": "Bearer " + care_http.tokens["family"][:-3] + "abc"}
    assert (await client.get("/residents", headers=forged)).status_code == 401
    me = await client.get("/auth/me", headers=care_http.auth("family"))
    assert me.status_code == 200
    assert me.json()["role"] == "family" and me.json()["resident_ids"] == [RESIDENT]
    # a deactivated account's tokens stop working at once
    uid = care_http.user_ids["installer"]
    off = await client.patch(f"/users/{uid}", json={"active": False},
                             headers=care_http.auth("admin"))
    assert off.status_code == 200
    assert (await client.get("/gateways", headers=care_http.auth("installer"))).status_code == 401


async def test_registry_round_trip_and_config_push(care_http: Running,
                                                   client: httpx.AsyncClient) -> None:
    admin = care_http.auth("admin")
    hh = await client.post("/households", headers=admin, json={
        "community_id": "C-XH-CY", "address": "杭州市西湖区文二西路1号101室",
        "coordinates": {"latitude": 30.28, "longitude": 120.12}, "rooms": ["卧室", "客厅"],
        "key_safe": {"code": "1234", "location": "门边"}})
    assert hh.status_code == 201, hh.text
    assert hh.json()["has_key_safe"] is True and "key_safe" not in hh.json()
    hid = hh.json()["id"]
    res = await client.post("/residents", headers=admin, json={
        "household_id": hid, "name": "测试老人", "birth_date": "1940-01-01", "sex": "female",
        "conditions": ["高血压"], "thresholds": {"heart_rate": {"low": 40, "high": 130}}})
    assert res.status_code == 201, res.text
    rid = res.json()["id"]
    gw = await client.post("/gateways", headers=admin, json={"id": "gw-new-1",
                                                              "household_id": hid})
    assert gw.status_code == 201 and gw.json()["config_version"] == 1
    k = await client.post(f"/residents/{rid}/contacts", headers=admin, json={
        "name": "儿子", "relation": "family", "phone": "13900009999"})
    assert k.status_code == 201
    dev = await client.post("/devices", headers=admin, json={
        "id": "btn-new-1", "type": "call_button", "gateway_id": "gw-new-1", "room": "卧室",
        "resident_id": rid})
    assert dev.status_code == 201, dev.text
    assert dev.json()["household_id"] == hid
    config = (await client.get("/gateways/gw-new-1/config", headers=admin)).json()
    assert config["resident"]["name"] == "测试老人"
    assert config["sms_contacts"] == [{"name": "儿子", "phone": "13900009999",
                                       "relation": "family"}]
    assert config["devices"][0]["device_id"] == "btn-new-1"
    assert config["thresholds"]["heart_rate"] == {"low": 40.0, "high": 130.0}
    version = config["version"]
    upd = await client.patch(f"/residents/{rid}", headers=admin, json={"name": "测试老人甲"})
    assert upd.status_code == 200 and upd.json()["name"] == "测试老人甲"
    after = (await client.get("/gateways/gw-new-1/config", headers=admin)).json()
    assert after["version"] > version and after["resident"]["name"] == "测试老人甲"


async def test_invalid_requests_say_why_and_change_nothing(care_http: Running,
                                                           client: httpx.AsyncClient) -> None:
    admin = care_http.auth("admin")
    cases = [
        ("/residents/R-XH-001/contacts", {"name": "x", "relation": "family", "phone": "12ab"},
         "phone"),
        ("/devices", {"id": "d-1", "type": "toaster"}, "unknown device type"),
        ("/residents", {"household_id": "H-XH-001", "name": "x", "surprise": 1}, "surprise"),
        ("/residents/R-XH-001/contacts", {"name": "x", "relation": "family",
                                          "phone": "13900000000",
                                          "preferred_channel": "webhook"}, "webhook_url"),
        ("/devices", {"id": "d-2", "type": "call_button", "household_id": "H-XH-001",
                      "room": "阁楼"}, "no room"),
    ]
    for path, body, reason in cases:
        resp = await client.post(path, json=body, headers=admin)
        assert resp.status_code == 422, (path, resp.text)
        assert reason in resp.text, (path, resp.text)
    assert (await client.post("/residents", json={"household_id": "H-NOPE", "name": "x"},
                              headers=admin)).status_code == 404
    dup = await client.post("/districts", json={"id": "D-XH", "name": "again"}, headers=admin)
    assert dup.status_code == 409
    contacts = (await client.get("/residents/R-XH-001/contacts", headers=admin)).json()
    assert len(contacts) == 5
    assert (await client.get("/devices/d-1", headers=admin)).status_code == 404


async def test_scope_hides_what_a_role_may_not_see(care_http: Running,
                                                   client: httpx.AsyncClient) -> None:
    other = care_http.auth("operator_other")
    assert (await client.get("/residents", headers=other)).json() == []
    assert (await client.get(f"/residents/{RESIDENT}", headers=other)).status_code == 404
    assert (await client.get("/residents/R-DOES-NOT-EXIST",
                             headers=other)).status_code == 404
    family = care_http.auth("family")
    mine = (await client.get("/residents", headers=family)).json()
    assert [r["id"] for r in mine] == [RESIDENT]
    assert (await client.get(f"/residents/{OTHER_RESIDENT}",
                             headers=family)).status_code == 404
    assert (await client.get("/gateways", headers=family)).status_code == 403
    installer = care_http.auth("installer")
    assert (await client.get(f"/residents/{RESIDENT}", headers=installer)).status_code == 403
    hh = await client.get("/households/H-XH-001", headers=installer)
    assert hh.status_code == 200 and "1234" not in hh.text and "4721" not in hh.text
    assert (await client.get("/audit", headers=care_http.auth("operator"))).status_code == 403
    volunteer = care_http.auth("volunteer")
    assert (await client.get(f"/residents/{RESIDENT}", headers=volunteer)).status_code == 403


async def test_every_read_of_a_resident_is_audited(care_http: Running,
                                                   client: httpx.AsyncClient) -> None:
    resp = await client.get(f"/residents/{RESIDENT}", params={"reason": "回访"},
                            headers=care_http.auth("family"))
    assert resp.status_code == 200 and resp.json()["allergies"] == ["青霉素"]
    await client.get(f"/residents/{RESIDENT}/card", headers=care_http.auth("operator"))
    log = (await client.get("/audit", params={"record_id": RESIDENT},
                            headers=care_http.auth("admin"))).json()
    seen = {(e["actor_name"], e["action"], e["reason"]) for e in log}
    assert ("family", "read", "回访") in seen
    assert ("operator", "read", "resident card") in seen


async def test_resident_card_has_recent_vitals_and_device_states(
        care_http: Running, client: httpx.AsyncClient) -> None:
    store = care_http.store
    gw, device = "GW-XH-004", "vitals-xh004"
    await store.add_gateway(gw, "gateway-secret-" + gw)
    now = care_http.clock.now()
    state = GatewayState(gateway_id=gw, status="health", ts=now, devices={
        device: DeviceStatus(type="vitals_monitor", online=True, battery=81.0, last_seen=now)})
    batch = TelemetryBatch(id="tel-batch-0001", seq=1, gateway_id=gw, gateway_ts=now,
                           records=[TelemetryRecord(device_id=device, kind=EventKind.VITALS,
                                                    ts=now, values={"heart_rate": 72.0,
                                                                    "spo2": 97.0})])
    await store.commit([Received(gw, state, now), Received(gw, batch, now)])
    card = await client.get("/residents/R-XH-005/card", headers=care_http.auth("admin"))
    assert card.status_code == 200, card.text
    body = card.json()
    assert body["resident"]["name"] == "孙阿大" and body["gateway_online"] is True
    states = {d["device"]["id"]: d for d in body["devices"]}
    assert states[device]["online"] is True and states[device]["battery"] == 81.0
    assert body["vitals"][0]["values"] == {"heart_rate": 72.0, "spo2": 97.0}
    assert [c["relation"] for c in body["contacts"]][:2] == ["family", "family"]


async def test_alert_queue_and_operator_actions(care_http: Running,
                                                client: httpx.AsyncClient) -> None:
    services = care_http.services
    await commit_event(care_http.store, EventKind.SOS, gateway_id=GW,
                       at=care_http.clock.now())
    await services.engine.tick()
    op = care_http.auth("operator")
    queue = (await client.get("/alerts", params={"open_only": True}, headers=op)).json()
    assert [a["kind"] for a in queue] == ["sos"]
    alert_id = queue[0]["id"]
    assert (await client.get("/alerts", headers=care_http.auth("operator_other"))).json() == []
    assert (await client.get(f"/alerts/{alert_id}",
                             headers=care_http.auth("operator_other"))).status_code == 404
    fam = (await client.get("/alerts", headers=care_http.auth("family"))).json()
    assert [a["id"] for a in fam] == [alert_id]
    # the volunteer sees it only once it is offered to her (third step)
    vol = care_http.auth("volunteer")
    assert (await client.get(f"/alerts/{alert_id}", headers=vol)).status_code == 404
    assert care_http.clock is not None
    for _ in range(2):  # the daughter's minute, then the neighbour and the volunteer
        care_http.clock.advance(60)
        await services.engine.tick()
    mine = await client.get(f"/alerts/{alert_id}", headers=vol)
    assert mine.status_code == 200
    assert [o["name"] for o in mine.json()["offers"]] == ["周晓燕"]
    assert mine.json()["timeline"] == []
    assert (await client.post(f"/alerts/{alert_id}/acknowledge", headers=vol)).status_code == 403
    # the operator works it
    ack = await client.post(f"/alerts/{alert_id}/acknowledge", headers=op)
    assert ack.status_code == 200 and ack.json()["status"] == "acknowledged"
    note = await client.post(f"/alerts/{alert_id}/notes", json={"text": "已致电家属"},
                             headers=op)
    assert note.status_code == 200
    assert (await client.post(f"/alerts/{alert_id}/notes", json={"text": "   "},
                              headers=op)).status_code == 422
    sev = await client.post(f"/alerts/{alert_id}/severity",
                            json={"severity": "high", "reason": "老人回电说没事"}, headers=op)
    assert sev.json()["severity"] == "high" and sev.json()["severity_override"] == "high"
    assert (await client.post(f"/alerts/{alert_id}/close", headers=op)).status_code == 409
    missing = await client.post(f"/alerts/{alert_id}/resolve", json={}, headers=op)
    assert missing.status_code == 422 and "closure_code" in missing.text
    done = await client.post(f"/alerts/{alert_id}/resolve",
                             json={"closure_code": "false_alarm", "note": "误按"}, headers=op)
    assert done.status_code == 200 and done.json()["closure_code"] == "false_alarm"
    closed = await client.post(f"/alerts/{alert_id}/close", headers=op)
    assert closed.json()["status"] == "closed"
    detail = (await client.get(f"/alerts/{alert_id}", headers=op)).json()
    actions = [t["action"] for t in detail["timeline"]]
    for expected in ("opened", "offered", "acknowledged", "note", "severity", "resolved",
                     "closed"):
        assert expected in actions
    actors = {t["action"]: t["actor_name"] for t in detail["timeline"]}
    assert actors["acknowledged"] == "operator" and actors["opened"] == "系统"
