"""The cloud's installer endpoints over real HTTP semantics (Starlette's TestClient runs the
app with its lifespan), on a SQLite file, with a hand-driven clock. Records reach the
endpoints the way they do in production: committed by ingest's own ``IngestStore``.

What an installer sees (names, never medical data), scope, bad input changing nothing,
claim refusing to run without a usable broker, walk-test lookups and the 30-day
self-test rule.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from installer_support import root_conftest

import db_support
from clock_support import TEST_EPOCH
from eldercare_cloud.app import build_services, create_app, migrate
from eldercare_cloud.auth.models import Role, UserCreate
from eldercare_cloud.clock import ManualClock
from eldercare_cloud.db import Database
from eldercare_cloud.ingest import IngestStore, Received
from eldercare_cloud.registry.models import (
    CommunityCreate,
    DistrictCreate,
    GatewayCreate,
    HouseholdCreate,
    ResidentCreate,
)
from eldercare_cloud.settings import CloudSettings, DatabaseSettings, reveal
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import (
    EventEnvelope,
    TelemetryBatch,
    TelemetryRecord,
    UnknownDeviceSeen,
)

PASSWORD = "installer-api-password"
GW = "gw-api-01"
START = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)
USERS = {
    "admin": {"role": Role.ADMIN},
    "installer": {"role": Role.INSTALLER, "district_ids": ["D-1"]},
    "installer_other": {"role": Role.INSTALLER, "district_ids": ["D-2"]},
    "operator": {"role": Role.OPERATOR, "district_ids": ["D-1"]},
}


async def _seed(settings: CloudSettings, clock: ManualClock) -> None:
    async with Database(settings.database) as db, IngestStore(db) as store:
        services = build_services(settings, db, clock=clock, store=store, channels={})
        await migrate(services)
        await services.users.create(UserCreate(username="admin", password=PASSWORD,
                                               display_name="admin 师傅", role=Role.ADMIN))
        admin = await services.users.principal(
            (await services.users.authenticate("admin", PASSWORD)).access_token)
        reg = services.registry
        for d in ("D-1", "D-2"):
            await reg.create_district(admin, DistrictCreate(id=d, name=f"区{d}", city="杭州市"))
            await reg.create_community(admin, CommunityCreate(id=f"C-{d}", district_id=d,
                                                              name=f"社区{d}"))
            await reg.create_household(admin, HouseholdCreate(
                id=f"H-{d}", community_id=f"C-{d}", address=f"杭州市某路{d}号",
                rooms=["客厅", "卧室", "厨房"]))
            await reg.create_resident(admin, ResidentCreate(
                id=f"R-{d}", household_id=f"H-{d}", name="张桂兰", conditions=["糖尿病"],
                medications=["二甲双胍"]))
        for name, spec in USERS.items():
            if name != "admin":
                await services.users.create(UserCreate(username=name, password=PASSWORD,
                                                       display_name=f"{name} 师傅", **spec))
        await reg.create_gateway(admin, GatewayCreate(id=GW, household_id="H-D-1"))
        await store.add_gateway(GW, "gateway-secret-0123456789")


@dataclass
class Api:
    client: httpx.AsyncClient
    db: Database
    clock: ManualClock
    tokens: dict[str, str]
    app: Any = None

    async def tick(self) -> None:
        """One pass of the care engine (the app runs without its background engine here)."""
        await self.app.state.services.engine.tick()

    async def login(self, user: str) -> None:
        """Tokens expire by the cloud's clock: after moving it on by days, log in again."""
        r = await self.client.post("/api/v1/auth/token",
                                   data={"username": user, "password": PASSWORD})
        self.tokens[user] = r.json()["access_token"]

    async def _req(self, method: str, user: str | None, path: str,
                   **kw: Any) -> httpx.Response:
        if user is not None and user not in self.tokens:
            await self.login(user)  # argon2 is slow on purpose: only who the test needs
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        return await self.client.request(method, f"/api/v1{path}", headers=headers, **kw)

    async def get(self, user: str | None, path: str, **kw: Any) -> httpx.Response:
        return await self._req("GET", user, path, **kw)

    async def post(self, user: str | None, path: str, **kw: Any) -> httpx.Response:
        return await self._req("POST", user, path, **kw)

    async def put(self, user: str | None, path: str, **kw: Any) -> httpx.Response:
        return await self._req("PUT", user, path, **kw)

    async def commit(self, *msgs: Any) -> None:
        async with IngestStore(self.db) as store:
            await store.commit([Received(GW, m, self.clock.now()) for m in msgs])

    async def count(self, sql: str) -> int:
        cur = await self.db.conn.execute(sql)
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


_TEMPLATE: dict[str, Path] = {}


@asynccontextmanager
async def make_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                   broker_env: dict[str, str] | None = None) -> AsyncIterator[Api]:
    for key in ("URL", "ADMIN_USERNAME", "ADMIN_PASSWORD", "GATEWAY_URL"):
        monkeypatch.delenv(f"ELDERCARE_CLOUD_BROKER__{key}", raising=False)
    for key, value in (broker_env or {}).items():
        monkeypatch.setenv(f"ELDERCARE_CLOUD_BROKER__{key}", value)
    settings = CloudSettings(environment="test", data_dir=tmp_path,
                             auth={"secret_key": "installer-api-secret-key-0123456789"},
                             mqtt={"url": "mqtt://127.0.0.1:9"})
    clock = ManualClock(START)
    if "path" not in _TEMPLATE:  # argon2 and fsync'd migrations: seed once, copy per test
        update: dict[str, Any] = {"data_dir": tmp_path / "template"}
        if db_support.POSTGRES:  # a database of its own, kept for the session
            update["db"] = DatabaseSettings(url=db_support.create_database())
        template = settings.model_copy(update=update)
        await _seed(template, clock)
        _TEMPLATE["path"] = reveal(template.db.url) or template.db_path
    if db_support.POSTGRES:  # CREATE DATABASE ... TEMPLATE: the copy
        settings = settings.model_copy(
            update={"db": DatabaseSettings(url=db_support.CURRENT.new(_TEMPLATE["path"]))})
    else:
        settings.db_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(_TEMPLATE["path"], settings.db_path)
    async with Database(settings.database) as db:
        app = create_app(settings, db, clock=clock, channels={}, run_engine=False)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://cloud") as client:
            yield Api(client, db, clock, {}, app)


@pytest.fixture
async def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Api]:
    async with make_api(tmp_path, monkeypatch) as a:
        yield a


_SEQ = [0]


def _record_base() -> dict[str, Any]:
    _SEQ[0] += 1
    return {"id": uuid.uuid4().hex, "seq": _SEQ[0], "gateway_id": GW,
            "gateway_ts": TEST_EPOCH}


def unknown(device_id: str, device_type: str | None, source: str = "native"
            ) -> UnknownDeviceSeen:
    return UnknownDeviceSeen(**_record_base(), device_id=device_id, source=source,
                             topic=f"eldercare/{device_id}/state", device_type=device_type)


def event(device_id: str, kind: EventKind, ts: datetime, test: bool = True) -> EventEnvelope:
    return EventEnvelope(**_record_base(), device_id=device_id, kind=kind, test=test,
                         device_ts=ts, data={"heart_rate_hidden": 1})


# -- what an installer sees ------------------------------------------------------------------

async def test_household_has_names_and_rooms_never_medical_data(api: Api) -> None:
    r = await api.get("installer", "/installer/households/H-D-1")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["residents"] == [{"id": "R-D-1", "name": "张桂兰"}]
    assert body["rooms"] == ["客厅", "卧室", "厨房"] and body["gateways"] == [GW]
    assert "糖尿病" not in r.text and "二甲双胍" not in r.text
    # the read of residents' names is on the audit log
    assert await api.count("SELECT COUNT(*) FROM audit_log WHERE record_id = 'H-D-1'") == 1
    # another district's installer: as if it did not exist; an operator: not their job
    assert (await api.get("installer_other", "/installer/households/H-D-1")).status_code == 404
    assert (await api.get("operator", "/installer/households/H-D-1")).status_code == 403
    assert (await api.get(None, "/installer/households/H-D-1")).status_code == 401


# -- claim ------------------------------------------------------------------------------------

COUNTS = ("SELECT COUNT(*) FROM gateways", "SELECT COUNT(*) FROM gateway_bindings")


async def test_claim_without_broker_administration_changes_nothing(api: Api) -> None:
    before = [await api.count(q) for q in COUNTS]
    r = await api.post("installer", "/installer/gateways/claim",
                       json={"household_id": "H-D-1", "gateway_id": "gw-new-01"})
    assert r.status_code == 409 and "not configured" in r.json()["detail"]
    assert [await api.count(q) for q in COUNTS] == before


async def test_claim_with_unreachable_broker_is_503_and_changes_nothing(
        request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = root_conftest(request.config).free_port()
    env = {"URL": f"mqtt://127.0.0.1:{port}", "ADMIN_USERNAME": "admin",
           "ADMIN_PASSWORD": "admin-password-0123"}
    async with make_api(tmp_path, monkeypatch, env) as a:
        before = [await a.count(q) for q in COUNTS]
        r = await a.post("installer", "/installer/gateways/claim",
                         json={"household_id": "H-D-1", "gateway_id": "gw-new-02"})
        assert r.status_code == 503 and "cannot reach the broker" in r.json()["detail"]
        assert [await a.count(q) for q in COUNTS] == before


async def test_claim_refuses_bad_input(api: Api) -> None:
    for body in ({"household_id": "H-D-1", "gateway_id": "gw/evil"},
                 {"household_id": "H-D-1", "gateway_id": "gw+"},
                 {"household_id": "H-D-1", "extra": 1}, {}):
        r = await api.post("installer", "/installer/gateways/claim", json=body)
        assert r.status_code == 422, body
    r = await api.post("installer_other", "/installer/gateways/claim",
                       json={"household_id": "H-D-1"})
    assert r.status_code == 404


# -- pairing --------------------------------------------------------------------------------

async def test_seen_devices_and_binding(api: Api) -> None:
    await api.commit(unknown("btn-1", "call_button"), unknown("zb-door", None, "z2m"),
                     unknown("btn-1", "call_button"))
    seen = (await api.get("installer", f"/installer/gateways/{GW}/seen")).json()
    assert [(d["device_id"], d["device_type"], d["bound"]) for d in seen] == \
        [("btn-1", "call_button", False), ("zb-door", None, False)]
    assert seen[0]["label_zh"] == "红绿双键呼叫器"
    url = f"/installer/gateways/{GW}/devices"
    # a room the household does not have, an unknown type, a type the device cannot say
    assert (await api.put("installer", f"{url}/btn-1", json={"room": "阁楼"})).status_code == 422
    r = await api.put("installer", f"{url}/btn-1", json={"room": "卧室", "type": "toaster"})
    assert r.status_code == 422
    r = await api.put("installer", f"{url}/zb-door", json={"room": "客厅"})
    assert r.status_code == 422 and "type is not known" in r.json()["detail"]
    assert await api.count("SELECT COUNT(*) FROM devices") == 0
    # now properly
    r = await api.put("installer", f"{url}/btn-1", json={"room": "卧室", "serial": "SN-001"})
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["resident_id"] == "R-D-1" and b["serial"] == "SN-001"
    assert b["walk_tests"] == [{"text_en": "press the red button", "text_zh": "请按下红色按钮",
                                "kind": "sos", "channel": "event"}]
    r = await api.put("installer", f"{url}/zb-door", json={"room": "客厅",
                                                           "type": "door_contact"})
    assert r.status_code == 200 and r.json()["source"] == "z2m"
    # re-binding to another room moves it; another type is a conflict
    r = await api.put("installer", f"{url}/btn-1", json={"room": "客厅"})
    assert r.json()["room"] == "客厅"
    r = await api.put("installer", f"{url}/btn-1", json={"room": "客厅", "type": "gas_detector"})
    assert r.status_code == 409
    seen = (await api.get("installer", f"/installer/gateways/{GW}/seen")).json()
    assert all(d["bound"] for d in seen)
    # the other district's installer cannot touch this gateway
    r = await api.get("installer_other", f"/installer/gateways/{GW}/seen")
    assert r.status_code == 404


# -- walk-test ------------------------------------------------------------------------------

async def test_walk_event_lookup_says_when_not_what(api: Api) -> None:
    base = f"/installer/gateways/{GW}"
    for dev, typ in (("btn-1", "call_button"), ("vit-1", "vitals_monitor")):
        r = await api.put("installer", f"{base}/devices/{dev}", json={"room": "卧室", "type": typ})
        assert r.status_code == 200
    cursor = (await api.get("installer", f"{base}/cursor")).json()
    q = {"device_id": "btn-1", "kind": "sos", "after": cursor["events"], "wait_s": 0}
    assert (await api.get("installer", f"{base}/walk-event", params=q)).json()["found"] is False
    now = TEST_EPOCH
    await api.commit(event("btn-1", EventKind.SERVICE_REQUEST, now),
                     event("btn-1", EventKind.SOS, now))
    found = (await api.get("installer", f"{base}/walk-event", params=q)).json()
    assert found["found"] is True and found["kind"] == "sos" and found["test"] is True
    assert found["committed_at"] and "data" not in found and "hidden" not in str(found)
    # a reading is found by time, without its values (vitals are medical data)
    batch = TelemetryBatch(**_record_base(), records=[TelemetryRecord(
        device_id="vit-1", kind=EventKind.VITALS, ts=now, values={"heart_rate": 71.0})])
    await api.commit(batch)
    r = await api.get("installer", f"{base}/walk-event", params={
        "device_id": "vit-1", "kind": "vitals", "since": (now - timedelta(seconds=1)).isoformat(),
        "wait_s": 0})
    # (not just "71": the timestamps in the answer may contain those digits)
    assert r.json()["found"] is True and "heart_rate" not in r.text and "71.0" not in r.text
    r = await api.get("installer", f"{base}/walk-event",
                      params={"device_id": "nobody", "kind": "sos"})
    assert r.status_code == 404


async def test_walk_results_only_for_bound_devices(api: Api) -> None:
    base = f"/installer/gateways/{GW}"
    await api.put("installer", f"{base}/devices/btn-1", json={"room": "卧室",
                                                             "type": "call_button"})
    result = {"device_id": "btn-1", "kind": "sos", "step": "按下红色按钮", "result": "passed",
              "attempts": 1, "latency_ms": 120.0, "tested_at": TEST_EPOCH.isoformat()}
    stray = dict(result, device_id="btn-elsewhere")
    r = await api.post("installer", f"{base}/walk-tests", json={"results": [result, stray]})
    assert r.status_code == 422 and "btn-elsewhere" in r.json()["detail"]
    assert await api.count("SELECT COUNT(*) FROM installer_walk_runs") == 0
    assert (await api.get("installer", f"{base}/report")).status_code == 404
    r = await api.post("installer", f"{base}/walk-tests", json={"results": [result]})
    assert r.status_code == 201 and r.json()["passed"] == 1
    rec = (await api.post("installer", f"{base}/report")).json()["record"]
    assert rec["all_passed"] is True and rec["installer_name"] == "installer 师傅"
    html = await api.get("installer", f"{base}/report.html")
    assert html.status_code == 200 and "张桂兰" in html.text and "糖尿病" not in html.text


# -- maintenance ----------------------------------------------------------------------------

async def test_self_test_older_than_30_days_becomes_a_task(api: Api) -> None:
    base = f"/installer/gateways/{GW}"
    for dev, typ in (("gas-1", "gas_detector"), ("smoke-1", "smoke_detector"),
                     ("btn-1", "call_button")):
        await api.put("installer", f"{base}/devices/{dev}", json={"room": "厨房", "type": typ})

    async def scan() -> dict[str, Any]:
        r = await api.post("installer", "/installer/maintenance/scan")
        assert r.status_code == 200, r.text
        return dict(r.json())

    first = await scan()
    assert first["created"] == 2
    assert sorted(t["device_id"] for t in first["open"]) == ["gas-1", "smoke-1"]
    assert all("never" in t["reason"] for t in first["open"])
    assert (await scan())["created"] == 0  # scanning again opens nothing twice
    # the gas detector's test button is pressed (today, by the cloud's clock)
    await api.commit(event("gas-1", EventKind.SELF_TEST, api.clock.now()))
    assert [t["device_id"] for t in (await scan())["open"]] == ["smoke-1"]
    done = (await api.get("installer", "/installer/maintenance",
                          params={"status": "done"})).json()
    assert [t["device_id"] for t in done] == ["gas-1"]
    # 29 days on it is still fine; 31 days on it is a task again
    api.clock.advance(29 * 86400)
    await api.login("installer")
    assert (await scan())["created"] == 0
    api.clock.advance(2 * 86400)
    await api.login("installer")
    later = await scan()
    assert later["created"] == 1
    gas = next(t for t in later["open"] if t["device_id"] == "gas-1")
    assert "31" in gas["reason"] and gas["last_self_test"] is not None
    # scoped: the other district's installer sees none of it
    await api.login("installer_other")
    assert (await api.get("installer_other", "/installer/maintenance")).json() == []


# -- commissioning ---------------------------------------------------------------------------

async def test_commissioning_window_turns_walk_test_alarms_into_tests_until_report(
        api: Api) -> None:
    base = f"/installer/gateways/{GW}"
    await api.put("installer", f"{base}/devices/btn-1", json={"room": "卧室",
                                                              "type": "call_button"})
    assert (await api.get("installer", f"{base}/commissioning")).json()["active"] is False
    # bad input is refused and opens nothing
    for bad in ({"minutes": 0}, {"minutes": 241}, {"minutes": "x"}, {"until": "never"}):
        r = await api.post("installer", f"{base}/commissioning", json=bad)
        assert r.status_code == 422, (bad, r.text)
    assert (await api.get("installer", f"{base}/commissioning")).json()["active"] is False
    # out of scope: the other district's installer cannot open this gateway's window
    r = await api.post("installer_other", f"{base}/commissioning", json={"minutes": 30})
    assert r.status_code == 404
    assert (await api.post("operator", f"{base}/commissioning", json={})).status_code == 403

    r = await api.post("installer", f"{base}/commissioning", json={"minutes": 30})
    assert r.status_code == 200, r.text
    window = r.json()
    assert window["active"] is True
    assert datetime.fromisoformat(window["until"]) == api.clock.now() + timedelta(minutes=30)

    # a real (non-test) red-button press during the window: a low commissioning entry
    await api.commit(event("btn-1", EventKind.SOS, api.clock.now(), test=False))
    await api.tick()
    cur = await api.db.conn.execute("SELECT kind, severity FROM alerts")
    assert [tuple(r) for r in await cur.fetchall()] == [("commissioning", "low")]
    assert await api.count("SELECT COUNT(*) FROM ladder_runs") == 0

    # the commissioning record ends the window: the next press is a real SOS
    assert (await api.post("installer", f"{base}/report")).status_code == 201
    assert (await api.get("installer", f"{base}/commissioning")).json()["active"] is False
    await api.commit(event("btn-1", EventKind.SOS, api.clock.now(), test=False))
    await api.tick()
    cur = await api.db.conn.execute("SELECT kind, severity FROM alerts ORDER BY opened_at")
    assert sorted(tuple(r) for r in await cur.fetchall()) == [("commissioning", "low"),
                                                              ("sos", "critical")]
    assert await api.count("SELECT COUNT(*) FROM ladder_runs") == 1
