"""The record views in headless Chromium against the real cloud: a case a responder
resolved on the phone appears in the history as 待复核, an operator signs it off (已结案)
with the condensed timeline on screen; a district administrator sees the statistics (SVG
charts) and downloads the monthly report, which opens in openpyxl.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from openpyxl import load_workbook

from eldercare_protocols.events import EventKind

from .conftest import ConsoleStack, page_errors, sign_in, wait_until

pytestmark = pytest.mark.integration

DESKTOP = {"width": 1366, "height": 768}
GW1, BUTTON1, NAME1 = "GW-XH-001", "btn-xh001", "王秀英"
#: her first contact on the ladder (family, in turn)
SON_PHONE = "13900003001"


def responder_resolves(stack: ConsoleStack) -> str:
    """A red press; the son opens the SMS link and goes, arrives, resolves (as on his
    phone page, through the same API calls)."""
    stack.publish_event(GW1, BUTTON1, EventKind.SOS)
    link = wait_until(lambda: stack.sms.link_for(SON_PHONE), 20, "the son's SMS link")
    url = urlparse(link)
    alert_id = url.path.rstrip("/").split("/")[-1]
    token = parse_qs(url.query)["token"][0]
    with stack.http() as client:
        for step in ("accept", "en-route", "on-scene"):
            resp = client.post(f"/api/v1/respond/{alert_id}/{step}", params={"token": token})
            assert resp.status_code == 200, resp.text
        resp = client.post(f"/api/v1/respond/{alert_id}/resolve", params={"token": token},
                           json={"closure_code": "helped_at_home", "note": "扶起，无外伤"})
        assert resp.status_code == 200, resp.text
    return alert_id


def test_alarm_sound_is_on_from_sign_in_and_after_a_reload(stack: ConsoleStack,
                                                          browser: Any) -> None:
    ctx = browser.new_context(viewport=DESKTOP, locale="zh-CN", timezone_id="Asia/Shanghai")
    page = ctx.new_page()
    errors = page_errors(page)
    sign_in(page, stack)
    wait_until(lambda: page.locator("#sound").get_attribute("aria-pressed") == "true", 5,
               "sound on after the sign-in click")
    assert page.evaluate("window.__eldercareBeeps || 0") >= 1  # the unlock tone
    # a reload keeps the session but the browser locks audio again until a gesture:
    # the button asks for it, and the first click anywhere turns the alarm back on
    page.reload()
    page.wait_for_selector("body[data-ready='1']", timeout=15000)
    assert page.locator("#sound").get_attribute("aria-pressed") != "true"
    assert "hint-on" in (page.locator("#sound").get_attribute("class") or "")
    page.locator("#queue-empty, #detail").first.click()
    wait_until(lambda: page.locator("#sound").get_attribute("aria-pressed") == "true", 5,
               "sound re-armed by the first click")
    # switched off by the operator: stays off across a reload
    page.click("#sound")
    assert page.locator("#sound").get_attribute("aria-pressed") == "false"
    page.reload()
    page.wait_for_selector("body[data-ready='1']", timeout=15000)
    page.locator("#detail").click()
    assert page.locator("#sound").get_attribute("aria-pressed") != "true"
    assert "hint-on" not in (page.locator("#sound").get_attribute("class") or "")
    assert errors == []
    ctx.close()


def test_history_review_and_district_reports(stack: ConsoleStack, browser: Any,
                                             artifacts: Path, tmp_path: Path) -> None:
    alert_id = responder_resolves(stack)

    ctx = browser.new_context(viewport=DESKTOP, locale="zh-CN", timezone_id="Asia/Shanghai",
                              accept_downloads=True)
    page = ctx.new_page()
    errors = page_errors(page)
    sign_in(page, stack)
    page.keyboard.press("4")
    row = page.locator(f"#history-list tr[data-id='{alert_id}']")
    row.wait_for(timeout=10000)
    assert row.get_attribute("data-state") == "pending_review"
    assert "待复核" in row.inner_text() and NAME1 in row.inner_text()
    row.click()
    page.locator("#case-timeline li").first.wait_for(timeout=10000)
    # one line per ladder step (who was asked folded in), no line per contact or message
    assert page.locator("#case-timeline li[data-action='ladder_step']").count() >= 1
    assert page.locator("#case-timeline li[data-action='offered']").count() == 0
    assert page.locator("#case-timeline li[data-action='notification']").count() == 0
    step = page.locator("#case-timeline li[data-action='ladder_step']").first.inner_text()
    assert "李建国" in step
    # times to the second (yyyy/mm/dd hh:mm:ss)
    stamp = page.locator("#case-timeline li time").first.inner_text()
    assert stamp.count(":") == 2, stamp
    page.screenshot(path=str(artifacts / "console-history-pending.png"))

    page.click("#case-review")
    page.locator("#modal").wait_for(state="visible")
    page.locator("#modal label.choice", has_text="已送医").click()
    page.fill("#modal textarea[name=note]", "电话回访：已送医观察")
    page.click("#modal-ok")
    page.locator("#modal").wait_for(state="hidden", timeout=10000)
    page.wait_for_selector("#case-state:has-text('已结案')", timeout=10000)
    page.wait_for_selector("#case-timeline li[data-action='reviewed']:has-text('已送医')")
    page.wait_for_selector(f"#history-list tr[data-id='{alert_id}'][data-state='closed']")
    assert "null" not in page.locator("#history-case").inner_text()
    page.screenshot(path=str(artifacts / "console-history-closed.png"))
    # the shift handover lists it among this shift's changes, signed off
    page.keyboard.press("6")
    changed = page.locator(f"#handover-changed li[data-id='{alert_id}']")
    changed.wait_for(timeout=10000)
    assert "复核结案" in changed.inner_text() and NAME1 in changed.inner_text()
    assert page.locator(f"#handover-follow li[data-id='{alert_id}']").count() == 0
    page.screenshot(path=str(artifacts / "console-handover.png"))
    changed.click()
    page.wait_for_selector("#case-title", timeout=10000)
    assert errors == []
    ctx.close()

    # the district administrator: statistics and the report, no live queue
    stack.add_user("district-xh", "district-pass-1", "district_admin", district_ids=["D-XH"])
    ctx = browser.new_context(viewport=DESKTOP, locale="zh-CN", timezone_id="Asia/Shanghai",
                              accept_downloads=True)
    page = ctx.new_page()
    errors = page_errors(page)
    sign_in(page, stack, "district-xh", "district-pass-1")
    assert page.locator("#tab-queue").is_hidden()
    page.locator("#chart-hour rect.bar").first.wait_for(state="attached", timeout=10000)
    assert page.locator("#chart-hour rect.bar").count() == 24
    assert int(page.locator("#kpi-alerts .kval").inner_text().replace(",", "")) >= 1
    assert "97.5" in page.locator("#kpi-ack60").inner_text()
    # the service desk's and the care visits' section, with the 90 % EVV line, in Chinese
    green = page.locator("#reports-green").inner_text()
    assert "居家服务" in green and "探访关爱" in green
    assert "至少 90%" in page.locator("#kpi-evv").inner_text()
    assert page.locator("#kpi-coverage .kval").count() == 1
    assert "null" not in page.locator("#reports-body").inner_text()
    page.screenshot(path=str(artifacts / "console-reports.png"), full_page=True)
    with page.expect_download(timeout=20000) as download:
        page.click("#report-xlsx")
    path = tmp_path / "report.xlsx"
    download.value.save_as(str(path))
    wb = load_workbook(path)
    title = wb["总览"]["A1"].value
    assert isinstance(title, str) and title.startswith("西湖区智慧养老监护服务月报")
    with page.expect_download(timeout=30000) as download:
        page.click("#report-pdf")
    pdf = tmp_path / "report.pdf"
    download.value.save_as(str(pdf))
    assert pdf.read_bytes().startswith(b"%PDF")
    # the history is readable to them too, without the sign-off button
    page.click("#tab-history")
    page.locator(f"#history-list tr[data-id='{alert_id}']").click()
    page.locator("#case-title").wait_for(timeout=10000)
    assert page.locator("#case-review").count() == 0
    assert errors == []
    ctx.close()


def test_refusals_read_in_chinese_and_sign_out_revokes(stack: ConsoleStack,
                                                       browser: Any) -> None:
    ctx = browser.new_context(viewport=DESKTOP, locale="zh-CN", timezone_id="Asia/Shanghai")
    page = ctx.new_page()
    page.goto(f"{stack.base_url}/console/")
    texts = []
    for i in range(4):
        page.fill("#login input[name=username]", "no-such-operator")
        page.fill("#login input[name=password]", f"wrong-{i}")
        page.evaluate("document.getElementById('login-error').textContent = ''")
        page.click("#login button[type=submit]")
        wait_until(lambda: page.locator("#login-error").inner_text().strip(), 10, "an error")
        texts.append(page.locator("#login-error").inner_text())
    assert texts[0] == "用户名或密码错误"
    # the fourth is throttled by the server: its reason shows in Chinese, not English
    assert "登录失败次数过多" in texts[3]
    assert not any(c.isascii() and c.isalpha() for c in texts[3]), texts[3]

    sign_in(page, stack)
    token = page.evaluate("sessionStorage.getItem('eldercare.token')")
    with stack.http() as client:
        assert client.get("/api/v1/auth/me", headers={
            "Authorization": f"Bearer {token}"}).status_code == 200
    page.click("#logout")
    page.locator("#login").wait_for(state="visible", timeout=10000)
    with stack.http() as client:
        resp = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401 and resp.json()["code"] == "token_revoked"
    ctx.close()


def test_live_card_timeline_is_one_line_per_step_with_seconds(stack: ConsoleStack,
                                                              browser: Any) -> None:
    token = stack.operator_token()
    stack.publish_event("GW-XH-003", "btn-xh003", EventKind.SOS)
    alert = wait_until(lambda: [a for a in stack.alerts(token)
                                if a["household_id"] == "H-XH-003" and a["kind"] == "sos"],
                       15, "the SOS alert")[0]
    ctx = browser.new_context(viewport=DESKTOP, locale="zh-CN", timezone_id="Asia/Shanghai")
    page = ctx.new_page()
    errors = page_errors(page)
    sign_in(page, stack)
    page.locator(f".qi[data-id='{alert['id']}']").click()
    step = page.locator("#timeline li[data-action='ladder_step']").first
    step.wait_for(timeout=10000)
    # who was asked is on the step's line; no line per contact or per message
    wait_until(lambda: "通知了" in step.inner_text(), 10, "the step names who was asked")
    assert page.locator("#timeline li[data-action='offered']").count() == 0
    assert page.locator("#timeline li[data-action='notification']").count() == 0
    assert step.locator("time").inner_text().count(":") == 2  # to the second
    assert errors == []
    ctx.close()
    with stack.http() as client:
        client.post(f"/api/v1/alerts/{alert['id']}/resolve", headers={
            "Authorization": f"Bearer {token}"}, json={"closure_code": "false_alarm"}
        ).raise_for_status()
