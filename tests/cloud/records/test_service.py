"""The monitoring centre's record: KPIs against hand-computed values, case history with
sign-off (待复核 → 已结案), the condensed timeline, and the monthly report files.

The KPI month is generated straight into the care tables (the facts the engine would
have written), so every figure below can be checked by hand; the history and report
tests go through the real HTTP server.
"""

from __future__ import annotations

import asyncio
import io
import shutil
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from care_support import (
    GW,
    RESIDENT,
    SON,
    Care,
    Running,
    care_settings,
    commit_event,
    mint_tokens,
    open_care,
    serve,
)
from openpyxl import load_workbook
from pypdf import PdfReader

from eldercare_cloud.auth.models import Principal, Role
from eldercare_cloud.clock import ManualClock, iso
from eldercare_cloud.records import export
from eldercare_cloud.records.kpi import percentile
from eldercare_cloud.services.desk import Actor
from eldercare_cloud.services.models import (
    CheckOutCreate,
    OrderCreate,
    Payment,
    RatingCreate,
    Score,
)
from eldercare_cloud.visits import store as V
from eldercare_cloud.visits.care_models import ConcernClose, ConcernCreate
from eldercare_protocols.events import EventKind

pytestmark = pytest.mark.integration

LOCAL = ZoneInfo("Asia/Shanghai")
MONTH_START = datetime(2025, 3, 1, tzinfo=LOCAL)
MONTH_END = datetime(2025, 4, 1, tzinfo=LOCAL)


#: every test here runs on a hand-driven clock seeded with a fixed instant
T0 = datetime(2025, 3, 14, 1, 30, tzinfo=UTC)


@pytest.fixture
async def care(tmp_path: Path, care_db: Path,
               care_template: tuple[Path, dict[str, str]]) -> AsyncIterator[Care]:
    async with open_care(care_db, care_settings(tmp_path), ManualClock(T0),
                         care_template[1]) as c:
        yield c


@pytest.fixture
async def care_http(tmp_path: Path, care_db: Path,
                    care_template: tuple[Path, dict[str, str]]) -> AsyncIterator[Running]:
    async with serve(care_db, care_settings(tmp_path), ManualClock(T0), care_template[1],
                     signed_in=True) as running:
        yield running


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=LOCAL)


async def insert_alert(care: Care, alert_id: str, kind: str, opened: datetime, *,
                       status: str = "open", ack: float | None = None,
                       ack_by: str | None = None, accept: float | None = None,
                       accept_step: int | None = None, on_scene: float | None = None,
                       resolved: float | None = None, closure: str | None = None,
                       cancelled: bool = False) -> None:
    """One alert as the engine would have left it: stamps, the acknowledging operator's
    timeline entry and the accepted offer."""

    def at(s: float | None) -> str | None:
        return None if s is None else iso(opened + timedelta(seconds=s))

    category = {"sos": "life_safety"}.get(kind, "maintenance")
    async with care.db.transaction() as conn:
        await conn.execute(
            "INSERT INTO alerts(id, subject, kind, category, severity, status, resident_id,"
            " household_id, district_id, gateway_id, source, opened_at, acknowledged_at,"
            " accepted_at, on_scene_at, cancel_requested_at, resolved_at, closed_at,"
            " closure_code, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (alert_id, f"test:{alert_id}", kind, category, "critical", status, RESIDENT,
             "H-XH-001", "D-XH", GW, "gateway", iso(opened), at(ack), at(accept),
             at(on_scene), at(5) if cancelled else None, at(resolved),
             at(resolved) if status == "closed" else None, closure, iso(opened)))
        if ack is not None and ack_by is not None:
            await conn.execute(
                "INSERT INTO alert_timeline(alert_id, ts, actor, actor_name, action,"
                " from_status, to_status, detail) VALUES (?,?,?,?,?,?,?,?)",
                (alert_id, at(ack), f"user:{ack_by}", ack_by, "acknowledged", "open",
                 "acknowledged", "{}"))
        if accept is not None and accept_step is not None:
            await conn.execute(
                "INSERT INTO ladder_offers(alert_id, step_index, contact_id, name, relation,"
                " channel, status, offered_at, responded_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (alert_id, accept_step, SON, "张伟", "family", "sms", "accepted",
                 iso(opened), at(accept)))


async def generate_month(care: Care) -> dict[str, str]:
    """40 SOS calls in March 2025 (local time), maintenance alerts, and two just outside."""
    op, admin = care.user_ids["operator"], care.user_ids["admin"]
    for i in range(40):
        opened = local(1 + i // 2, 8 + i % 3)
        ack = 10.0 + i if i < 38 else (120.0 if i == 38 else None)
        status = ("closed" if i < 15 else "resolved" if i < 30
                  else "cancel_requested" if i < 34 else "acknowledged")
        if ack is None:
            status = "open"
        await insert_alert(
            care, f"AL-SOS-{i:02d}", "sos", opened, status=status, ack=ack,
            ack_by=(op if i % 2 == 0 else admin) if ack is not None else None,
            accept=100.0 + 10 * i if i < 10 else None,
            accept_step=(0 if i < 6 else 1) if i < 10 else None,
            on_scene=600.0 + 60 * i if i < 5 else None,
            resolved=1800.0 if i < 30 else None,
            closure=("false_alarm" if i < 6 else "helped_at_home") if i < 30 else None,
            cancelled=30 <= i < 34)
    # 90 minutes offline, resolved; 60 minutes offline at the month's end, still open
    await insert_alert(care, "AL-GW-1", "gateway_offline", local(10, 0), status="resolved",
                       resolved=90 * 60, closure="device_fault")
    await insert_alert(care, "AL-DEV-1", "device_offline", local(31, 23))
    # batteries: two changed, one a device fault (not a replacement)
    for n, code in enumerate(("other", "helped_at_home", "device_fault")):
        await insert_alert(care, f"AL-BAT-{n}", "battery_low", local(12, 12), status="closed",
                           resolved=3600, closure=code)
    # just outside March in Hangzhou: 23:59:59 on 28 February and 00:00 on 1 April
    await insert_alert(care, "AL-FEB", "sos", MONTH_START - timedelta(seconds=1), ack=5,
                       ack_by=op)
    await insert_alert(care, "AL-APR", "sos", MONTH_END, ack=5, ack_by=op)
    return {"operator": op, "admin": admin}


async def principal(care: Care, name: str) -> Principal:
    token = mint_tokens({name: care.user_ids[name]}, care.clock.now())[name]
    return await care.services.users.principal(token)


def test_percentile_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0], 90) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentile([float(x) for x in range(1, 11)], 90) == 9.0
    assert percentile([float(x) for x in range(1, 12)], 90) == 10.0


async def test_kpis_of_a_generated_month_match_hand_computed_values(care: Care) -> None:
    users = await generate_month(care)
    cur = await care.db.conn.execute(
        "SELECT COUNT(*) FROM residents r JOIN households h ON h.id = r.household_id"
        " JOIN communities c ON c.id = h.community_id WHERE c.district_id = 'D-XH'")
    residents = int((await cur.fetchone())[0])
    report = await care.services.records.kpis(await principal(care, "district_admin"),
                                              "2025-03")
    f = report.overall
    # 40 SOS + 2 offline + 3 battery; February's and April's calls are left out
    assert f.alerts == 45
    assert f.alarm_calls == 40
    # acknowledged: 38 in 10..47 s, one at 120 s, one never
    assert f.acknowledged == 39
    assert f.ack_within_60s_pct == 95.0          # 38 / 40
    assert f.ack_within_180s_pct == 97.5         # 39 / 40
    assert f.meets_standard is False
    assert f.ack_median_s == 29.0                # rank ceil(0.5*39)=20 → 10+19
    assert f.ack_p90_s == 45.0                   # rank ceil(0.9*39)=36 → 10+35
    # accepted: 100, 110, …, 190 s; 6 at step 1, 4 at step 2
    assert f.accepted == 10
    assert f.accept_median_s == 140.0            # rank 5
    assert f.accept_p90_s == 180.0               # rank 9
    assert f.accepted_at_step == {"1": 6, "2": 4}
    # on scene: 600, 660, …, 840 s
    assert f.on_scene == 5
    assert f.on_scene_median_s == 720.0          # rank 3
    assert f.on_scene_p90_s == 840.0             # rank 5
    # closure codes on 30 SOS + 1 gateway + 3 batteries = 34; 6 false alarms
    assert f.closed_with_code == 34
    assert f.false_alarms == 6
    assert f.false_alarm_rate_pct == round(100 * 6 / 34, 2)
    assert f.cancelled == 4
    assert f.cancel_rate_pct == 10.0             # 4 / 40
    assert f.residents == residents
    assert f.alerts_per_100_residents == round(100 * 40 / residents, 2)
    assert f.device_offline_minutes == 150.0     # 90 + 60 (clipped at 1 April 00:00)
    assert f.battery_replacements == 2
    assert report.standard == {"ack_within_60s_pct": 97.5, "ack_within_180s_pct": 99.0}

    by_operator = {g.key: g.figures.alerts for g in report.by_operator}
    # even calls acknowledged by the operator (0..38: 20), odd by the admin (1..37: 19)
    assert by_operator == {f"user:{users['operator']}": 20, f"user:{users['admin']}": 19}
    by_hour = {g.key: g.figures.alerts for g in report.by_hour}
    assert len(by_hour) == 24
    assert by_hour["08"] == 14 and by_hour["09"] == 13 and by_hour["10"] == 13
    assert by_hour["00"] == 1 and by_hour["23"] == 1 and by_hour["12"] == 3
    assert [g.key for g in report.by_month] == ["2025-03"]
    community = {g.key: g.figures for g in report.by_community}
    assert community["C-XH-CY"].alerts == 45
    assert all(community[k].alerts == 0 for k in community if k != "C-XH-CY")
    assert sum(c.residents or 0 for c in community.values()) == residents

    # an operator of another district sees none of it
    other = await care.services.records.kpis(await principal(care, "operator_other"),
                                             "2025-03")
    assert other.overall.alerts == 0


async def _sos_accepted_and_resolved(http: Running) -> str:
    await commit_event(http.store, EventKind.SOS, gateway_id=GW, at=http.clock.now())
    await http.services.engine.tick()
    cur = await http.services.db.conn.execute(
        "SELECT a.id, n.link FROM alerts a JOIN notifications n ON n.alert_id = a.id"
        " WHERE n.contact_id = ?", (SON,))
    row = await cur.fetchone()
    assert row is not None, "the son was not asked"
    alert_id, link = str(row[0]), str(row[1])
    token = link.split("token=", 1)[1]
    async with httpx.AsyncClient(base_url=http.url) as client:
        for step in ("accept", "en-route", "on-scene"):
            assert http.clock is not None
            http.clock.advance(30)
            resp = await client.post(f"/api/v1/respond/{alert_id}/{step}",
                                     params={"token": token})
            assert resp.status_code == 200, resp.text
        resp = await client.post(f"/api/v1/respond/{alert_id}/resolve", params={"token": token},
                                 json={"closure_code": "helped_at_home", "note": "扶起，无外伤"})
        assert resp.status_code == 200, resp.text
    return alert_id


async def test_a_responder_resolved_case_waits_for_review_then_closes(
        care_http: Running) -> None:
    alert_id = await _sos_accepted_and_resolved(care_http)
    op = care_http.auth("operator")
    async with httpx.AsyncClient(base_url=care_http.url) as client:
        resp = await client.get("/api/v1/records/history", headers=op,
                                params={"state": "pending_review"})
        assert resp.status_code == 200, resp.text
        page = resp.json()
        assert [c["id"] for c in page["items"]] == [alert_id]
        case = page["items"][0]
        assert case["review_state"] == "pending_review" and case["status"] == "resolved"
        assert case["responder_name"] and case["accepted_step"] == 1
        assert case["accept_s"] == 30.0 and case["on_scene_s"] == 90.0
        assert case["community_id"] == "C-XH-CY"
        # nothing is closed yet
        resp = await client.get("/api/v1/records/history", headers=op,
                                params={"state": "closed"})
        assert resp.json()["total"] == 0

        # the operator signs it off, correcting the closure code
        care_http.clock.advance(12.5)  # type: ignore[union-attr]
        resp = await client.post(f"/api/v1/alerts/{alert_id}/review", headers=op,
                                 json={"closure_code": "taken_to_hospital",
                                       "note": "电话回访：已送医"})
        assert resp.status_code == 200, resp.text
        assert resp.json()["status"] == "closed"
        assert resp.json()["closure_code"] == "taken_to_hospital"
        resp = await client.post(f"/api/v1/alerts/{alert_id}/review", headers=op, json={})
        assert resp.status_code == 409

        # filters: closed, by closure code, by operator, by resident name, by date
        operator_id = care_http.user_ids["operator"]
        today = care_http.clock.now().astimezone(LOCAL).date()  # type: ignore[union-attr]
        for params, hit in (
                ({"state": "closed"}, True), ({"closure_code": "taken_to_hospital"}, True),
                ({"closure_code": "false_alarm"}, False), ({"operator_id": operator_id}, True),
                ({"operator_id": care_http.user_ids["admin"]}, False),
                ({"responder_id": SON}, True), ({"q": "王秀"}, True), ({"q": "nobody"}, False),
                ({"responder": "李建"}, True), ({"responder": "张"}, False),
                ({"operator": "OPERATOR"}, True), ({"operator": "admin"}, False),
                ({"kind": "sos", "community_id": "C-XH-CY"}, True),
                ({"community_id": "C-XH-GD"}, False),
                ({"since": str(today), "until": str(today)}, True),
                ({"since": str(today + timedelta(days=1))}, False)):
            resp = await client.get("/api/v1/records/history", headers=op, params=params)
            assert resp.status_code == 200, (params, resp.text)
            assert ([c["id"] for c in resp.json()["items"]] == [alert_id]) is hit, params

        resp = await client.get(f"/api/v1/records/cases/{alert_id}", headers=op)
        assert resp.status_code == 200, resp.text
        record = resp.json()
        actions = [line["action"] for line in record["timeline"]]
        assert "offered" not in actions and "notification" not in actions
        step = next(line for line in record["timeline"] if line["action"] == "ladder_step")
        assert step["detail"]["offered"] and step["detail"]["delivered"] >= 0
        assert actions.index("accepted") < actions.index("resolved") < actions.index("reviewed")
        reviewed = record["timeline"][actions.index("reviewed")]
        assert reviewed["actor"] == f"user:{operator_id}"
        assert reviewed["detail"]["closure_code_was"] == "helped_at_home"
        # seconds are kept: the review came 12.5 s after the resolution
        resolved = record["timeline"][actions.index("resolved")]
        gap = (datetime.fromisoformat(reviewed["ts"]) - datetime.fromisoformat(resolved["ts"]))
        assert gap == timedelta(seconds=12.5)
        assert [n["action"] for n in record["notes"]] == ["reviewed"]

        # the district administrator reads the record; family and volunteers may not
        resp = await client.get("/api/v1/records/history",
                                headers=care_http.auth("district_admin"))
        assert resp.json()["total"] == 1
        for role in ("family", "volunteer", "installer"):
            resp = await client.get("/api/v1/records/history", headers=care_http.auth(role))
            assert resp.status_code == 403, role
        resp = await client.get("/api/v1/records/history",
                                headers=care_http.auth("operator_other"))
        assert resp.json()["total"] == 0
        resp = await client.get("/api/v1/records/history", headers=op,
                                params={"since": "2025-02-30"})
        assert resp.status_code == 422

    audit = await care_http.services.audit.entries(care_http.settings.tenant,
                                                   record_type="resident", record_id=RESIDENT)
    assert any(e.action == "read_case" and alert_id in e.reason for e in audit)


async def test_an_operator_cannot_review_an_open_alert(care_http: Running) -> None:
    await commit_event(care_http.store, EventKind.SOS, gateway_id=GW,
                       at=care_http.clock.now())
    await care_http.services.engine.tick()
    cur = await care_http.services.db.conn.execute("SELECT id FROM alerts")
    alert_id = str((await cur.fetchone())[0])
    async with httpx.AsyncClient(base_url=care_http.url) as client:
        resp = await client.post(f"/api/v1/alerts/{alert_id}/review",
                                 headers=care_http.auth("operator"), json={})
        assert resp.status_code == 409
        resp = await client.post(f"/api/v1/alerts/{alert_id}/review",
                                 headers=care_http.auth("operator"),
                                 json={"closure_code": "nonsense"})
        assert resp.status_code == 422
    cur = await care_http.services.db.conn.execute("SELECT status FROM alerts WHERE id = ?",
                                                   (alert_id,))
    assert (await cur.fetchone())[0] == "open"


async def test_monthly_report_as_xlsx_and_pdf(care_http: Running) -> None:
    alert_id = await _sos_accepted_and_resolved(care_http)
    assert alert_id
    month = care_http.clock.now().astimezone(LOCAL).strftime("%Y-%m")  # type: ignore[union-attr]
    da = care_http.auth("district_admin")
    async with httpx.AsyncClient(base_url=care_http.url, timeout=60) as client:
        resp = await client.get("/api/v1/records/kpis", headers=da,
                                params={"from_month": month})
        assert resp.status_code == 200, resp.text
        kpis = resp.json()
        assert kpis["overall"]["alarm_calls"] == 1 and kpis["overall"]["accepted"] == 1
        # the green half's fields are there too (no orders or visits in this month)
        assert kpis["services"]["orders"] == 0 and kpis["services"]["verified_pct"] is None
        assert kpis["services"]["evv_standard_pct"] == 90.0
        assert kpis["care_visits"]["coverage_pct"] is None

        resp = await client.get("/api/v1/records/reports/monthly.xlsx", headers=da,
                                params={"month": month})
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"].startswith(
            "application/vnd.openxmlformats-officedocument.spreadsheetml")
        wb = load_workbook(io.BytesIO(resp.content))
        assert wb.sheetnames == ["总览", "按社区", "按值班员", "按小时", "按月份", "按区", "服务",
                                 "探访"]
        ws = wb["总览"]
        assert ws["A1"].value == f"西湖区智慧养老监护服务月报（{month}）"
        rows = {r[0]: r[1] for r in ws.iter_rows(min_row=6, values_only=True) if r[0]}
        assert rows["报警总数"] == 1 and rows["紧急报警（呼叫）数"] == 1
        assert rows["响应人接单数"] == 1 and rows["接单时间中位数（秒）"] == 30
        hours = [r for r in wb["按小时"].iter_rows(min_row=2, values_only=True)]
        assert len(hours) == 24 and sum(r[1] for r in hours) == 1

        resp = await client.get("/api/v1/records/reports/monthly.pdf", headers=da,
                                params={"month": month, "district_id": "D-XH"})
        assert resp.status_code == 200, resp.text
        assert resp.content.startswith(b"%PDF")
        reader = PdfReader(io.BytesIO(resp.content))
        text = reader.pages[0].extract_text()
        assert f"西湖区智慧养老监护服务月报（{month}）" in text
        assert "97.5%" in text
        fonts = [f.get_object() for f in reader.pages[0]["/Resources"]["/Font"].values()]
        cjk = [f for f in fonts if "WenQuanYi" in str(f.get("/BaseFont"))
               or "STSong" in str(f.get("/BaseFont"))]
        assert cjk, [f.get("/BaseFont") for f in fonts]
        if "WenQuanYi" in str(cjk[0]["/BaseFont"]):
            # a subset of the TrueType font is embedded in the file itself
            assert "/FontFile2" in cjk[0]["/FontDescriptor"].get_object()
        if shutil.which("pdftoppm"):
            # the first page rendered to an image by poppler (PDF on stdin, PNG on stdout)
            proc = await asyncio.create_subprocess_exec(
                "pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", "-", stdin=PIPE,
                stdout=PIPE, stderr=PIPE)
            png, err = await asyncio.wait_for(proc.communicate(resp.content), 60)
            assert proc.returncode == 0, err
            assert png.startswith(b"\x89PNG") and len(png) > 2000  # not a blank page

        # exports are for administrators; an operator gets 403, a bad month 422
        resp = await client.get("/api/v1/records/reports/monthly.xlsx",
                                headers=care_http.auth("operator"), params={"month": month})
        assert resp.status_code == 403
        resp = await client.get("/api/v1/records/reports/monthly.pdf", headers=da,
                                params={"month": "2025-13"})
        assert resp.status_code == 422
        resp = await client.get("/api/v1/records/reports/monthly.pdf", headers=da,
                                params={"month": month, "district_id": "D-OTHER"})
        assert resp.status_code == 404

    audit = await care_http.services.audit.entries(care_http.settings.tenant,
                                                   record_type="report")
    assert {e.action for e in audit} == {"export_xlsx", "export_pdf"}
    assert all(e.actor == f"user:{care_http.user_ids['district_admin']}" for e in audit)



async def test_shift_handover_lists_open_changed_and_follow_up(care: Care) -> None:
    # a case resolved three days ago, never signed off
    await insert_alert(care, "AL-OLD", "sos", T0 - timedelta(days=3), status="resolved",
                       ack=20, ack_by=care.user_ids["operator"], resolved=600,
                       closure="helped_at_home")
    await care.commit(EventKind.SOS, gateway_id=GW)
    await care.commit(EventKind.SOS, device_id="btn-xh005", gateway_id="GW-XH-005")
    await care.run()
    mine, other = [a["id"] for a in await care.open_alerts()]
    op = await principal(care, "operator")
    care.clock.advance(20)
    await care.services.care.acknowledge(op, other)
    await care.services.care.responder_act(mine, SON, "accept")

    report = await care.services.records.handover(op, care.clock.now() - timedelta(hours=8))
    assert {i.case.id for i in report.open} == {mine, other}
    changed = {i.case.id: i for i in report.changed}
    assert set(changed) == {mine, other}
    assert changed[mine].changes[:2] == ["opened", "ladder_step"]
    assert "accepted" in changed[mine].changes and "offered" not in changed[mine].changes
    assert "acknowledged" in changed[other].changes
    follow = {i.case.id: i.follow_up for i in report.follow_up}
    assert follow["AL-OLD"] == ["pending_review"]
    assert follow[mine] == ["not_on_scene"]
    assert other not in follow
    # the unanswered alert of another district's operator is not in this handover
    other_op = await principal(care, "operator_other")
    assert (await care.services.records.handover(
        other_op, care.clock.now() - timedelta(hours=8))).open == []


# -- the green half: service desk and care visits in the same monthly report --------------

STATS_ADMIN = Principal(user_id="U-test-admin", username="admin", role=Role.ADMIN,
                        tenant="default")
DESK_OP = Principal(user_id="U-test-operator", username="operator", role=Role.OPERATOR,
                    tenant="default", district_ids=frozenset({"D-XH"}))
ZHENG = "R-XH-009"  # 郑长根, H-XH-008


async def desk_visit(care: Care, resident: str, household: str, type_id: str, worker: str,
                     start: datetime, minutes: int, *, late_min: int = 0,
                     evidence: bool = True, payment: Payment = Payment.VOUCHER) -> str:
    """One order through the desk's own functions: created, dispatched, accepted, checked
    in ``late_min`` after the window opens, checked out ``minutes`` later."""
    desk, clock = care.services.desk, care.clock
    clock.set(start - timedelta(hours=2))
    order = await desk.create_order(DESK_OP, OrderCreate(
        resident_id=resident, service_type_id=type_id, window_start=start,
        window_end=start + timedelta(minutes=minutes + 30), payment=payment, dispatch=False))
    await desk.dispatch(DESK_OP, order.id, worker)
    who = Actor(f"worker:{worker}", worker)
    await desk.worker_act(order.id, worker, who, "accept")
    arrive = start + timedelta(minutes=late_min)
    clock.set(arrive)
    if evidence:
        async with desk.db.transaction() as conn:
            await V.add_evidence(conn, household, f"ev-{order.id}", "door", "door_open",
                                 arrive - timedelta(minutes=1))
    await desk.worker_act(order.id, worker, who, "check_in")
    clock.set(arrive + timedelta(minutes=minutes))
    await desk.worker_act(order.id, worker, who, "check_out", CheckOutCreate())
    return order.id


async def plan_task(care: Care, task_id: str, due: datetime, *, done_min: int | None = None,
                    reason: str = "plan") -> None:
    """A care-visit task as the visit scheduler leaves it (done ``done_min`` minutes
    after its due time, negative: before; None: never done)."""
    async with care.db.transaction() as conn:
        await conn.execute(
            "INSERT INTO cv_tasks(id, resident_id, household_id, community_id, district_id,"
            " mode, reason, due_date, due_at, status, done_at, created_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (task_id, RESIDENT, "H-XH-001", "C-XH-CY", "D-XH", "in_person", reason,
             due.astimezone(LOCAL).date().isoformat(), iso(due),
             "open" if done_min is None else "done",
             None if done_min is None else iso(due + timedelta(minutes=done_min)),
             iso(due - timedelta(days=1))))


async def test_service_and_care_visit_figures_of_a_generated_month(care: Care) -> None:
    """March 2025 in 西湖区, computed by hand:

    orders (8 in March; a February one is left out):
      A 王秀英 助洁 AK-01 3rd 150 min, on time, verified, voucher 90 元, rated 满意
      B 王秀英 助洁 AK-03 17th 160 min, arrives 40 min after the window opens (the
        助洁 arrive time is 30 min: late), verified, voucher 90 元, rated 基本满意
      C 王秀英 陪聊 AK-01 10th 60 min, no device evidence: flagged, voucher 30 元
      D 郑长根 助洁 XY-01 4th 100 min verified, voucher 90 元, rated 满意
      E 郑长根 助洁 XY-01 12th 200 min verified, voucher 90 元, rated 不满意 (complaint,
        later closed)
      F, G 郑长根 陪聊 XY-02 6th, 21st 45 min verified, self-paid; F rated 不满意
        (complaint, open)
      H 郑长根 助洁 28th, never dispatched, cancelled
    → 8 orders, 7 completed, 1 cancelled; 助洁 5/4/1, 陪聊 3/3/0; 安康 3/3/0,
    夕阳红 4/4/0, 未派单 1/0/1; 7 arrived, 6 on time (85.71 %); 7 visits closed,
    6 verified (85.71 %, under the 90 % EVV line), 1 flagged and still open; ratings
    2 / 1 / 2; 2 complaints, 1 closed; minimum levels: 8 entitled, 1 met (郑长根: 助洁
    2 times 300 min, 陪聊 2 times; 王秀英's only 陪聊 is flagged) → 12.5 %;
    vouchers 90 + 90 + 30 + 90 + 90 = 390 元.
    care visits: plan tasks due in March: 2 on time, 1 late, 1 missed (a fifth is due
    after "now" and a concern's task is not a plan task; a February one is left out)
    → 4 due, 50 % coverage; concerns 2 raised, 1 answered.
    """
    wang = (RESIDENT, "H-XH-001")
    zheng = (ZHENG, "H-XH-008")
    a = await desk_visit(care, *wang, "cleaning", "W-XH-AK-01", local(3, 9), 150)
    b = await desk_visit(care, *wang, "cleaning", "W-XH-AK-03", local(17, 14), 160,
                         late_min=40)
    await desk_visit(care, *wang, "company", "W-XH-AK-01", local(10, 15), 60, evidence=False)
    d = await desk_visit(care, *zheng, "cleaning", "W-XH-XY-01", local(4, 9), 100)
    e = await desk_visit(care, *zheng, "cleaning", "W-XH-XY-01", local(12, 9), 200)
    f = await desk_visit(care, *zheng, "company", "W-XH-XY-02", local(6, 16), 45,
                         payment=Payment.SELF)
    await desk_visit(care, *zheng, "company", "W-XH-XY-02", local(21, 16), 45,
                     payment=Payment.SELF)
    await desk_visit(care, *zheng, "cleaning", "W-XH-XY-01",
                     datetime(2025, 2, 25, 9, tzinfo=LOCAL), 200)
    desk = care.services.desk
    care.clock.set(local(27, 8))
    h = await desk.create_order(DESK_OP, OrderCreate(
        resident_id=ZHENG, service_type_id="cleaning", window_start=local(28, 9),
        window_end=local(28, 11), payment=Payment.SELF, dispatch=False))
    await desk.cancel(DESK_OP, h.id, "老人住院")
    for order_id, score in ((a, Score.SATISFIED), (b, Score.BASIC), (d, Score.SATISFIED),
                            (e, Score.UNSATISFIED), (f, Score.UNSATISFIED)):
        await desk.rate(DESK_OP, order_id, RatingCreate(score=score, comment="回访"))
    complaint = next(c for c in await desk.list_followups(DESK_OP) if c.order_id == e)
    await desk.close_followup(DESK_OP, complaint.id, "已更换服务人员")

    await plan_task(care, "T-1", local(5, 18), done_min=-30)
    await plan_task(care, "T-2", local(12, 18), done_min=-5)
    await plan_task(care, "T-3", local(19, 18), done_min=90)
    await plan_task(care, "T-4", local(26, 18))
    await plan_task(care, "T-5", local(31, 18))  # due after "now": not counted yet
    await plan_task(care, "T-6", local(8, 18), reason="concern:CC-x")
    await plan_task(care, "T-7", datetime(2025, 2, 20, 18, tzinfo=LOCAL), done_min=-10)
    care.clock.set(local(20, 10))
    visits = care.services.care_visits
    first = await visits.create_concern(DESK_OP, ConcernCreate(resident_id=RESIDENT,
                                                               note="电话无人接听"))
    await visits.create_concern(DESK_OP, ConcernCreate(resident_id=ZHENG, note="邻居反映"))
    await visits.close_concern(DESK_OP, first.id, ConcernClose(resolution="已上门，老人安好"))
    care.clock.set(local(31, 12))

    report = await care.services.records.kpis(STATS_ADMIN, "2025-03")
    s = report.services
    assert s is not None
    assert (s.orders, s.completed, s.cancelled) == (8, 7, 1)
    assert [(g.key, g.label, g.orders, g.completed, g.cancelled) for g in s.by_type] == [
        ("cleaning", "助洁", 5, 4, 1), ("company", "陪聊", 3, 3, 0)]
    assert [(g.key, g.orders, g.completed, g.cancelled) for g in s.by_provider] == [
        ("-", 1, 0, 1), ("P-XH-AK", 3, 3, 0), ("P-XH-XY", 4, 4, 0)]
    assert s.by_provider[0].label == "未派单"
    assert (s.arrived, s.on_time, s.on_time_pct) == (7, 6, 85.71)
    assert (s.visits_closed, s.verified, s.verified_pct) == (7, 6, 85.71)
    assert s.evv_standard_pct == 90.0 and s.meets_evv_standard is False
    assert (s.flagged, s.flagged_open) == (1, 1)
    assert s.ratings == {"satisfied": 2, "basic": 1, "unsatisfied": 2}
    assert (s.complaints, s.complaints_closed) == (2, 1)
    assert (s.entitled_residents, s.levels_met, s.levels_met_pct) == (8, 1, 12.5)
    assert s.voucher_debited_cents == 39000
    c = report.care_visits
    assert c is not None
    assert (c.due, c.on_time, c.late, c.missed, c.coverage_pct) == (4, 2, 1, 1, 50.0)
    assert (c.concerns_raised, c.concerns_answered, c.concerns_answered_pct) == (2, 1, 50.0)

    # the same figures in the workbook, on the sheets 服务 and 探访
    wb = load_workbook(io.BytesIO(export.to_xlsx(report, "西湖区")))
    assert wb.sheetnames[-2:] == ["服务", "探访"]
    svc = {r[0]: r[1:] for r in wb["服务"].iter_rows(values_only=True) if r and r[0]}
    assert svc["服务订单数"][0] == 8 and svc["已取消"][0] == 1
    assert svc["按时到达率 %"][0] == 85.71
    assert svc["电子核验率 %（标准 90）"][0] == 85.71 and svc["核验是否达标"][0] == "未达标"
    assert svc["被标记的上门服务"][0] == 1
    assert (svc["评价：满意"][0], svc["评价：基本满意"][0], svc["评价：不满意"][0]) == (2, 1, 2)
    assert svc["投诉（整改单）"][0] == 2 and svc["投诉已处理"][0] == 1
    assert svc["享受补贴的老人（人·月）"][0] == 8 and svc["达到最低服务标准（人·月）"][0] == 1
    assert svc["服务券支出（元）"][0] == 390
    assert svc["助洁"][:3] == (5, 4, 1) and svc["夕阳红为老服务社"][:3] == (4, 4, 0)
    cv = {r[0]: r[1] for r in wb["探访"].iter_rows(values_only=True) if r and r[0]}
    assert cv["探访计划覆盖率 %"] == 50.0 and cv["未完成"] == 1
    assert cv["关注事项"] == 2 and cv["已答复（关闭）"] == 1

    # and in the PDF, a section each with its Chinese heading and the 90 % line
    reader = PdfReader(io.BytesIO(export.to_pdf(report, "西湖区")))
    text = "".join(page.extract_text() for page in reader.pages)
    assert "居家服务" in text and "探访关爱" in text and "至少 90%" in text
