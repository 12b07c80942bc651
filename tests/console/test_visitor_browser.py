"""Issue 11 in headless Chromium against the real cloud: the operator plans the district's
care visits; the volunteer opens their signed link on a 360 px phone, the home's door
and motion (published over Mosquitto exactly as a gateway does) reach
the shared visit tables through ingest and the service desk's engine, and the recorded
visit is verified by them and lands in the ledger with its concern."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eldercare_protocols.events import EventKind

from .conftest import ConsoleStack, page_errors, sign_in, wait_until

pytestmark = pytest.mark.integration

PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1366, "height": 768}
GW1, DOOR1, RADAR1 = "GW-XH-001", "door-xh001", "radar-xh001"
RESIDENT, VOLUNTEER, NAME = "R-XH-001", "K-XH-001-04", "王秀英"


def test_a_visit_recorded_on_the_visitors_phone(stack: ConsoleStack, browser: Any,
                                                artifacts: Path) -> None:
    token = stack.operator_token()
    auth = {"Authorization": f"Bearer {token}"}
    with stack.http() as client:
        plans = client.post("/api/v1/districts/D-XH/care-plans", headers=auth)
        assert plans.status_code == 200, plans.text
        link = client.get(f"/api/v1/care-visitors/{VOLUNTEER}/link", headers=auth).json()
    assert "/visit/?token=" in link["url"]

    ctx = browser.new_context(viewport=PHONE, locale="zh-CN", timezone_id="Asia/Shanghai")
    phone = ctx.new_page()
    errors = page_errors(phone)
    phone.goto(link["url"])
    phone.wait_for_selector("body[data-ready='1']", timeout=15000)
    assert NAME in phone.inner_text("#tasks")
    assert phone.locator("button[id^='v-arrive-']").count() == 1  # in person only
    task_id = (phone.locator("button[id^='v-arrive-']").get_attribute("id") or ""
               ).removeprefix("v-arrive-")

    # the home sees the visitor: door and motion, through Mosquitto, ingest and the engine
    stack.publish_event(GW1, DOOR1, EventKind.DOOR_OPEN)
    stack.publish_event(GW1, RADAR1, EventKind.MOTION)

    async def evidence() -> int:
        cur = await stack.cloud.db.conn.execute(
            "SELECT COUNT(*) FROM visit_evidence WHERE household_id = 'H-XH-001'")
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    wait_until(lambda: stack.loop.run(evidence()) >= 2, 20, "the door and motion evidence")

    # recorded afterwards: a 30-minute visit ending now, its window holding the events
    phone.click(f"#v-open-{task_id}")
    phone.select_option("#v-minutes", "30")
    phone.select_option("#f-health", "attention")
    phone.fill("#fn-health", "膝盖疼")
    phone.fill("#v-note", "精神不错，聊了半小时")
    phone.fill("#v-concern", "希望社区安排助浴")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the phone page is {width}px wide"
    phone.screenshot(path=str(artifacts / "care-visitor-phone.png"), full_page=True)
    phone.click("#v-submit")
    phone.wait_for_selector("body[data-saved]", timeout=10000)
    assert "设备已核验" in phone.inner_text("#v-msg")
    assert errors == []

    with stack.http() as client:
        ledger = client.get("/api/v1/care-ledger", headers=auth,
                            params={"resident_id": RESIDENT}).json()
        concerns = client.get("/api/v1/care-concerns", headers=auth).json()
    [entry] = [e for e in ledger if e["task_id"] == task_id]
    assert (entry["verification"], entry["mode"], entry["visitor_contact_id"]) == (
        "verified", "in_person", VOLUNTEER)
    assert entry["findings"]["health"] == {"level": "attention", "note": "膝盖疼"}
    assert [c["kind"] for c in concerns if c["id"] == entry["concern_id"]] == ["visitor"]


def test_the_console_shows_plans_ledger_and_concerns(stack: ConsoleStack, browser: Any,
                                                     artifacts: Path) -> None:
    """Runs after the phone test in this module (same stack): the console's care-visit
    tab shows the tiers with their rules, the visit in the ledger, and the concern."""
    ctx = browser.new_context(viewport=DESKTOP, locale="zh-CN", timezone_id="Asia/Shanghai")
    page = ctx.new_page()
    errors = page_errors(page)
    sign_in(page, stack)
    page.click("#tab-visits")
    page.wait_for_selector("#cv-generate", timeout=10000)
    assert page.locator("#view-queue").is_hidden()
    page.click("#cv-generate")
    page.wait_for_selector("#cv-msg.ok", timeout=10000)
    # the visitor's open concern (the phone test above) lifts her from medium to high,
    # and the console says so, with the other rules that matched
    row = page.locator(f"tr[data-resident='{RESIDENT}'][data-tier='high']")
    row.wait_for(timeout=10000)
    assert "高风险" in row.inner_text() and "有未处理的关注事项" in row.inner_text()
    assert "80岁以上且独居" in row.inner_text()
    # the operator hands the visitor their link from the plan
    row.locator("button[data-link]").click()
    assert "/visit/?token=" in page.input_value("tr[data-resident='R-XH-001'] input.cv-link")
    page.screenshot(path=str(artifacts / "care-visits-plans.png"))

    page.click("#view-visits button[data-sub='ledger']")
    entry = page.locator("tr.cv-entry", has_text=NAME)
    entry.wait_for(timeout=10000)
    assert entry.get_attribute("data-verification") == "verified"
    assert "设备已核验" in entry.inner_text() and "膝盖疼" in entry.inner_text()
    page.fill("#cv-q", "没有这个词")
    page.click("#cv-apply")
    page.wait_for_selector("#cv-main[data-q='没有这个词']", timeout=10000)
    assert page.locator("tr.cv-entry").count() == 0

    page.click("#view-visits button[data-sub='concerns']")
    concern = page.locator("li.cv-concern[data-kind='visitor']")
    concern.wait_for(timeout=10000)
    assert "希望社区安排助浴" in concern.inner_text()
    page.screenshot(path=str(artifacts / "care-visits-concerns.png"))
    # back to the alert queue: the care view hides again
    page.click("#tab-queue")
    assert page.locator("#view-visits").is_hidden()
    assert errors == []


def test_the_family_sees_the_visits_to_their_elder(stack: ConsoleStack, browser: Any,
                                                   artifacts: Path) -> None:
    """After the phone test in this module: the family page lists the verified visit."""
    stack.add_user("family-cv", "family-pass-456", "family", resident_ids=[RESIDENT])
    ctx = browser.new_context(viewport=PHONE, locale="zh-CN", timezone_id="Asia/Shanghai")
    page = ctx.new_page()
    errors = page_errors(page)
    page.goto(f"{stack.base_url}/family/")
    page.fill("#signin input[name=username]", "family-cv")
    page.fill("#signin input[name=password]", "family-pass-456")
    page.click("#signin button[type=submit]")
    visit = page.locator("li.cv-visit[data-verification='verified']")
    visit.wait_for(timeout=15000)
    text = visit.inner_text()
    assert "上门探访" in text and "设备已核验" in text and "需关注：健康" in text
    page.screenshot(path=str(artifacts / "care-family-visits.png"), full_page=True)
    assert errors == []
