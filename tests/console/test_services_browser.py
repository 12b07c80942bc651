"""Issue 10 in headless Chromium against the real cloud: a green press (published over
Mosquitto exactly as a gateway does) appears in the console's service queue (not in the
alert queue); the operator records the call-back and creates an order, which the desk
dispatches; the worker's phone page (360 px, opened from the signed link the console
shows) accepts, checks in and out; the console shows the visit flagged for want of
device evidence and takes the elder's call-back rating."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from eldercare_protocols.events import EventKind

from .conftest import ConsoleStack, page_errors, sign_in, wait_until

pytestmark = pytest.mark.integration

DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 360, "height": 740}
#: demo household H-XH-008: 郑长根 (低边, alone) in 玉泉社区; 夕阳红's 黄丽娟 cleans there
GW8, BUTTON8, NAME8, RESIDENT8 = "GW-XH-008", "btn-xh008", "郑长根", "R-XH-009"


def test_green_press_through_console_and_worker_page(stack: ConsoleStack, browser: Any,
                                                     artifacts: Path) -> None:
    console_ctx = browser.new_context(viewport=DESKTOP, locale="zh-CN",
                                      timezone_id="Asia/Shanghai")
    page = console_ctx.new_page()
    errors = page_errors(page)
    sign_in(page, stack)
    stack.publish_event(GW8, BUTTON8, EventKind.SERVICE_REQUEST, button="green",
                        press="single")

    # 1. the service queue, on its own tab
    page.click("#tab-services")
    request = page.locator(".svc-request", has_text=NAME8)
    request.wait_for(timeout=20000)
    assert page.locator("#view-queue").is_hidden()
    assert "按键 1 次" in request.inner_text()
    token = stack.operator_token()
    assert [a for a in stack.alerts(token) if a["resident_id"] == RESIDENT8] == []

    # 2. call-back, then an order (a fixed date: the test never reads the clock)
    request.click()
    page.select_option("#svc-outcome", "asked")
    page.fill("#svc-note", "需要打扫卫生")
    page.click("#svc-callback")
    page.wait_for_selector("#svc-msg.ok")
    page.select_option("#svc-type", "cleaning")
    page.fill("#svc-date", "2030-03-05")
    page.fill("#svc-start", "09:00")
    page.fill("#svc-end", "11:30")
    page.click("#svc-order")
    page.wait_for_selector("#svc-order-status[data-status='dispatched']", timeout=10000)
    assert "黄丽娟" in page.locator("#svc-pane").inner_text()
    assert page.locator(".svc-col[data-status='dispatched'] .svc-card",
                        has_text=NAME8).count() == 1
    page.screenshot(path=str(artifacts / "services-order-dispatched.png"))
    page.click("#svc-link")
    link = wait_until(lambda: page.input_value("#svc-link-url"), 10, "the worker link")
    assert "/job/" in link and "token=" in link

    # 3. the worker's phone page, 360 px wide
    phone_ctx = browser.new_context(viewport=PHONE, locale="zh-CN",
                                    timezone_id="Asia/Shanghai")
    phone = phone_ctx.new_page()
    phone_errors = page_errors(phone)
    phone.goto(link)
    phone.wait_for_selector("#w-accept", timeout=15000)
    assert NAME8 in phone.inner_text("#orders")
    assert phone.get_attribute("#w-route", "href", timeout=5000)
    phone.click("#w-accept")
    phone.wait_for_selector("article.order[data-status='accepted']", timeout=10000)
    phone.click("#w-check-in")
    phone.wait_for_selector("article.order[data-status='in_progress']", timeout=15000)
    phone.fill("textarea", "已打扫厨房和卫生间")
    phone.click("#w-check-out")
    phone.wait_for_selector("article.order[data-status='completed']", timeout=15000)
    assert "无设备佐证" in phone.inner_text("#orders")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the phone page is {width}px wide"
    phone.screenshot(path=str(artifacts / "services-worker-phone.png"), full_page=True)

    # 4. back in the console: completed, flagged (no door or motion seen), rated
    page.click("button[data-sub='board']")
    card = page.locator(".svc-col[data-status='completed'] .svc-card", has_text=NAME8)
    card.wait_for(timeout=10000)
    card.click()
    page.wait_for_selector("#svc-order-status[data-status='completed']")
    assert "无设备佐证" in page.inner_text("#svc-visit-status")
    page.click("button[data-score='satisfied']")
    page.wait_for_selector("#svc-ratings:has-text('满意')", timeout=10000)
    assert "checked_out" in [page.locator("#svc-timeline li").nth(i).get_attribute(
        "data-action") for i in range(page.locator("#svc-timeline li").count())]
    page.screenshot(path=str(artifacts / "services-order-completed.png"))
    # a person reviews the flagged visit and counts it
    page.click("#svc-review-accept")
    page.wait_for_selector("#svc-visit-status:has-text('复核通过')", timeout=10000)

    # the record the console showed is the record the API keeps
    with httpx.Client(base_url=stack.base_url, timeout=10) as client:
        orders = client.get("/api/v1/service-orders",
                            headers={"Authorization": f"Bearer {token}"},
                            params={"resident_id": RESIDENT8}).json()
    assert [(o["status"], o["worker_id"], o["service_type_id"], o["window_start"])
            for o in orders] == [("completed", "W-XH-XY-01", "cleaning",
                                  "2030-03-05T01:00:00Z")]
    assert errors == [] and phone_errors == []
    phone_ctx.close()
    console_ctx.close()

    # the family page: the service received, the family's rating and a request for help
    stack.add_user("family-zheng", "family-pass-456", "family", resident_ids=[RESIDENT8])
    fam_ctx = browser.new_context(viewport=PHONE, locale="zh-CN", timezone_id="Asia/Shanghai")
    fam = fam_ctx.new_page()
    fam_errors = page_errors(fam)
    fam.goto(f"{stack.base_url}/family/")
    fam.fill("#signin input[name=username]", "family-zheng")
    fam.fill("#signin input[name=password]", "family-pass-456")
    fam.click("#signin button[type=submit]")
    item = fam.locator(f"#family-services li[data-order='{orders[0]['id']}']")
    item.wait_for(timeout=15000)
    assert "助洁" in item.inner_text() and "黄丽娟" in item.inner_text()
    item.locator("input[value='basic']").check()
    item.locator("[data-field=comment]").fill("还可以")
    item.locator("button").click()
    fam.wait_for_selector(f"#family-services li[data-order='{orders[0]['id']}']"
                          ":has-text('您的评价: 基本满意 — 还可以')", timeout=10000)
    fam.fill(f"#fam-note-{RESIDENT8}", "想订下周的助餐")
    fam.click(f"section[data-resident='{RESIDENT8}'] button.primary")
    fam.wait_for_selector(f"#fam-msg-{RESIDENT8}:has-text('已提交')", timeout=10000)
    assert fam.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    fam.screenshot(path=str(artifacts / "services-family-page.png"), full_page=True)
    with httpx.Client(base_url=stack.base_url, timeout=10) as client:
        queue = client.get("/api/v1/service-requests",
                           headers={"Authorization": f"Bearer {token}"}).json()
    assert [(r["resident_id"], r["source"], r["note"]) for r in queue] == [
        (RESIDENT8, "family", "想订下周的助餐")]
    assert fam_errors == []
    fam_ctx.close()
