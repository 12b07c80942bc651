"""The console's own API (eldercare_cloud.api.console_support) over real HTTP: fleet health,
care map, a relative's status view and the operator's dispatch, with roles and scope."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import DeviceStatus, GatewayState, Up, encode, up_topic

from .conftest import ConsoleStack, wait_until

pytestmark = pytest.mark.integration

#: demo: household H-XH-004 (gateway GW-XH-004, resident R-XH-005, community C-XH-CY)
GW4, HH4 = "GW-XH-004", "H-XH-004"


def _get(stack: ConsoleStack, token: str, path: str, **params: Any) -> httpx.Response:
    with stack.http() as client:
        return client.get(path, params=params, headers={"Authorization": f"Bearer {token}"})


def _post(stack: ConsoleStack, token: str, path: str, body: Any) -> httpx.Response:
    with stack.http() as client:
        return client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture(scope="module")
def tokens(stack: ConsoleStack) -> dict[str, str]:
    stack.add_user("cs-admin", "admin-pass-123", "admin")
    admin = stack.token("cs-admin", "admin-pass-123")
    with stack.http() as client:
        client.post("/api/v1/districts", json={"id": "D-OTHER", "name": "拱墅区"},
                    headers={"Authorization": f"Bearer {admin}"}).raise_for_status()
    stack.add_user("cs-other-op", "other-pass-123", "operator", district_ids=["D-OTHER"])
    stack.add_user("cs-family", "family-pass-123", "family", resident_ids=["R-XH-001"])
    stack.add_user("cs-installer", "install-pass-123", "installer", district_ids=["D-XH"])
    stack.add_user("cs-volunteer", "volunteer-pass-123", "volunteer")
    return {"operator": stack.operator_token(), "admin": admin,
            "other": stack.token("cs-other-op", "other-pass-123"),
            "family": stack.token("cs-family", "family-pass-123"),
            "installer": stack.token("cs-installer", "install-pass-123"),
            "volunteer": stack.token("cs-volunteer", "volunteer-pass-123")}


def _publish_state(stack: ConsoleStack, state: GatewayState) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:6]}")
    client.connect(stack.broker.host, stack.broker.port, keepalive=10)
    client.loop_start()
    try:
        client.publish(up_topic(state.gateway_id, Up.STATE), encode(state), qos=1,
                       retain=True).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def _open_alert(stack: ConsoleStack, token: str, household: str, kind: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = wait_until(
        lambda: [a for a in stack.alerts(token) if a["household_id"] == household
                 and a["kind"] == kind], 15, f"{kind} alert in {household}")
    return found[0]


def test_fleet_reports_offline_low_battery_and_untested_devices(
        stack: ConsoleStack, tokens: dict[str, str]) -> None:
    now = datetime.now(UTC)  # the console stack's cloud is a process on the system clock
    _publish_state(stack, GatewayState(
        gateway_id=GW4, status="health", ts=now, version="1.0.0",
        devices={"btn-xh004": DeviceStatus(type="call_button", online=True, battery=12.0,
                                           last_seen=now),
                 "door-xh004": DeviceStatus(type="door_contact", online=False, battery=80.0,
                                            last_seen=now - timedelta(hours=2))}))
    stack.publish_event(GW4, "smoke-xh004", EventKind.SELF_TEST)

    def fleet() -> dict[str, Any] | None:
        body: dict[str, Any] = _get(stack, tokens["operator"], "/api/v1/console/fleet").json()
        devices = {d["id"]: d for d in body["devices"]}
        ready = (devices["btn-xh004"]["battery"] == 12.0
                 and devices["smoke-xh004"]["last_test_at"] is not None)
        return body if ready else None

    body = wait_until(fleet, 15, "health report and self-test committed")
    devices = {d["id"]: d for d in body["devices"]}
    gateways = {g["id"]: g for g in body["gateways"]}
    assert gateways[GW4]["online"] is True and gateways[GW4]["version"] == "1.0.0"
    assert "low_battery" in devices["btn-xh004"]["problems"]
    assert devices["btn-xh004"]["resident_name"]
    assert "offline" in devices["door-xh004"]["problems"]
    assert "not_tested" not in devices["smoke-xh004"]["problems"]
    assert "not_tested" in devices["btn-xh004"]["problems"]
    # a device the online gateway does not mention is "not reported", not "fine"
    assert "not_reported" in devices["radar-xh004"]["problems"]
    assert body["summary"]["low_battery"] >= 1 and body["summary"]["devices_offline"] >= 1
    # the window is a parameter; nonsense is a 422 with the reason
    resp = _get(stack, tokens["operator"], "/api/v1/console/fleet", tested_within_days=0)
    assert resp.status_code == 422 and "tested_within_days" in resp.text

    # the care map colours that household "device problem"
    pins = {p["id"]: p for p in
            _get(stack, tokens["operator"], "/api/v1/console/map").json()["households"]}
    assert pins[HH4]["state"] == "device" and pins[HH4]["device_problems"] >= 2
    assert pins[HH4]["coordinates"]["latitude"] > 30


def test_map_states_and_community_filter(stack: ConsoleStack, tokens: dict[str, str]) -> None:
    stack.publish_event("GW-XH-006", "btn-xh006", EventKind.SOS, button="red")
    alert = _open_alert(stack, tokens["operator"], "H-XH-006", "sos")
    body = _get(stack, tokens["operator"], "/api/v1/console/map").json()
    pins = {p["id"]: p for p in body["households"]}
    assert len(pins) == 10 and len(body["communities"]) == 3
    pin = pins["H-XH-006"]
    assert (pin["state"], pin["open_alerts"], pin["top_severity"]) == ("alert", 1, "critical")
    assert pin["alert_ids"] == [alert["id"]] and pin["residents"]
    community = pin["community_id"]
    only = _get(stack, tokens["operator"], "/api/v1/console/map",
                community_id=community).json()["households"]
    assert {p["community_id"] for p in only} == {community}
    assert "H-XH-006" in {p["id"] for p in only}


def test_roles_and_scope(stack: ConsoleStack, tokens: dict[str, str]) -> None:
    # another district's operator sees none of this district
    assert _get(stack, tokens["other"], "/api/v1/console/map").json()["households"] == []
    fleet = _get(stack, tokens["other"], "/api/v1/console/fleet").json()
    assert fleet["gateways"] == [] and fleet["devices"] == []
    assert _get(stack, tokens["other"],
                "/api/v1/console/residents/R-XH-001/status").status_code == 404
    # a relative: no fleet, no map, their own elder only
    assert _get(stack, tokens["family"], "/api/v1/console/fleet").status_code == 403
    assert _get(stack, tokens["family"], "/api/v1/console/map").status_code == 403
    assert _get(stack, tokens["family"],
                "/api/v1/console/residents/R-XH-002/status").status_code == 404
    # an installer: the fleet, but not the map (it shows alerts) and no status
    assert _get(stack, tokens["installer"], "/api/v1/console/fleet").status_code == 200
    assert _get(stack, tokens["installer"], "/api/v1/console/map").status_code == 403
    assert _get(stack, tokens["volunteer"], "/api/v1/console/fleet").status_code == 403
    # no token at all
    with stack.http() as client:
        assert client.get("/api/v1/console/fleet").status_code == 401


def test_family_status_is_their_elder_and_is_audited(stack: ConsoleStack,
                                                     tokens: dict[str, str]) -> None:
    resp = _get(stack, tokens["family"], "/api/v1/console/residents/R-XH-001/status")
    assert resp.status_code == 200
    body = resp.json()
    assert body["resident_id"] == "R-XH-001" and body["name"] == "王秀英"
    assert isinstance(body["devices_ok"], bool) and isinstance(body["open_alerts"], list)
    audit = _get(stack, tokens["admin"], "/api/v1/audit").json()
    assert any(e["action"] == "read_status" and e["record_id"] == "R-XH-001"
               for e in audit)


def test_dispatch_sends_the_link_and_refuses_what_does_not_fit(
        stack: ConsoleStack, tokens: dict[str, str]) -> None:
    op = tokens["operator"]
    stack.publish_event("GW-XH-007", "btn-xh007", EventKind.SOS, button="red")
    alert = _open_alert(stack, op, "H-XH-007", "sos")
    path = f"/api/v1/console/alerts/{alert['id']}/dispatch"
    # the ladder's first SMS is delivered asynchronously and its outcome lands on the
    # timeline: wait for it, so "nothing changes" below compares like with like
    def delivered() -> dict[str, Any] | None:
        d: dict[str, Any] = _get(stack, op, f"/api/v1/alerts/{alert['id']}").json()
        done = d["notifications"] and all(n["status"] != "pending" for n in d["notifications"])
        return d if done else None

    detail = wait_until(delivered, 15, "the first step's deliveries")
    timeline_before = len(detail["timeline"])
    contacts = _get(stack, op, f"/api/v1/residents/{alert['resident_id']}/contacts").json()
    volunteer = next(c for c in contacts if c["relation"] == "volunteer")
    stranger = next(c for c in _get(stack, op, "/api/v1/residents/R-XH-001/contacts").json())

    # bad input: a clear 4xx and nothing changes
    assert _post(stack, op, path, {"contact_id": volunteer["id"], "x": 1}).status_code == 422
    assert _post(stack, op, path, {}).status_code == 422
    resp = _post(stack, op, path, {"contact_id": stranger["id"]})
    assert resp.status_code == 422 and "not a contact" in resp.text
    assert _post(stack, op, "/api/v1/console/alerts/AL-nope/dispatch",
                 {"contact_id": volunteer["id"]}).status_code == 404
    assert _post(stack, tokens["other"], path, {"contact_id": volunteer["id"]}
                 ).status_code == 404
    assert _post(stack, tokens["family"], path, {"contact_id": volunteer["id"]}
                 ).status_code == 403
    after = _get(stack, op, f"/api/v1/alerts/{alert['id']}").json()
    assert len(after["timeline"]) == timeline_before

    # dispatched: an offer, a timeline entry, an SMS with a working link
    resp = _post(stack, op, path, {"contact_id": volunteer["id"], "note": "请带上血压计"})
    assert resp.status_code == 200, resp.text
    detail = _get(stack, op, f"/api/v1/alerts/{alert['id']}").json()
    offer = next(o for o in detail["offers"] if o["contact_id"] == volunteer["id"])
    assert offer["status"] == "offered"
    entry = next(e for e in detail["timeline"] if e["action"] == "dispatched")
    assert entry["detail"]["name"] == volunteer["name"]
    link = wait_until(lambda: stack.sms.link_for(volunteer["phone"]), 15, "dispatch SMS")
    assert "请带上血压计" in stack.sms.to(volunteer["phone"])[-1]
    token = link.split("token=", 1)[1]
    with stack.http() as client:
        view = client.get(f"/api/v1/respond/{alert['id']}",
                          headers={"X-Responder-Token": httpx.URL(link).params["token"]})
        assert view.status_code == 200 and view.json()["you"]["name"] == volunteer["name"]
        # they said no on the page, then said yes on the phone: the operator asks again
        client.post(f"/api/v1/respond/{alert['id']}/decline",
                    headers={"X-Responder-Token": httpx.URL(link).params["token"]}
                    ).raise_for_status()
    assert token
    assert _post(stack, op, path, {"contact_id": volunteer["id"]}).status_code == 200
    detail = _get(stack, op, f"/api/v1/alerts/{alert['id']}").json()
    assert next(o for o in detail["offers"]
                if o["contact_id"] == volunteer["id"])["status"] == "offered"
    fresh = wait_until(lambda: len(stack.sms.to(volunteer["phone"])) >= 2, 15, "second SMS")
    assert fresh
    new_link = stack.sms.link_for(volunteer["phone"])
    assert new_link is not None
    with stack.http() as client:
        client.post(f"/api/v1/respond/{alert['id']}/accept",
                    headers={"X-Responder-Token": httpx.URL(new_link).params["token"]}
                    ).raise_for_status()
    # someone accepted: dispatching is over
    family = next(c for c in contacts if c["relation"] == "family")
    resp = _post(stack, op, path, {"contact_id": family["id"]})
    assert resp.status_code == 409 and "accepted" in resp.text
    _post(stack, op, f"/api/v1/alerts/{alert['id']}/resolve",
          {"closure_code": "helped_at_home"}).raise_for_status()
    assert _post(stack, op, path, {"contact_id": family["id"]}).status_code == 409
