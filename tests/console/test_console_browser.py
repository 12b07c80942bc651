"""The console and the phone page in headless Chromium against the real cloud.

The main flow starts where the issue starts: a red press on a simulated call button,
through the real home gateway and Mosquitto into the cloud; it must appear in the
operator's queue, be acknowledged and dispatched, accepted on the volunteer's phone page
(opened from the link in the SMS the loopback SMS gateway received), shown as assigned
with the volunteer's name, and leave the queue when resolved with a closure code.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from clock_support import afternoon_clock
from eldercare_edge.gateway import Gateway
from eldercare_edge.settings import EdgeSettings
from eldercare_protocols.events import EventKind
from eldercare_sim.clock import SimClock
from eldercare_sim.home import SimHome

from .conftest import ConsoleStack, page_errors, sign_in, wait_until

pytestmark = pytest.mark.integration

DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 360, "height": 740}
#: demo household H-XH-001: 王秀英, alone, key safe 4721; the volunteer of her community
GW1, BUTTON1, NAME1, KEY1 = "GW-XH-001", "btn-xh001", "王秀英", "4721"
VOLUNTEER, VOLUNTEER_PHONE = "周晓燕", "13900002001"


@asynccontextmanager
async def home_with_gateway(stack: ConsoleStack, gateway_id: str, button: str
                            ) -> AsyncIterator[SimHome]:
    """The real edge gateway and a simulated call button on the stack's broker."""
    settings = EdgeSettings(
        gateway_id=gateway_id, data_dir=stack.tmp / f"edge-{gateway_id}",
        home_broker={"url": stack.broker.url, "reconnect_min_s": 0.2, "reconnect_max_s": 0.5},
        cloud={"url": stack.broker.url, "reconnect_min_s": 0.2, "reconnect_max_s": 0.5,
               "resend_after_s": 5.0},
        home={"devices": [{"device_id": button, "type": "call_button"}]},
        rules_tick_s=0.2, health_interval_s=1.0, sms_check_s=0.2)
    async with AsyncExitStack() as exits:
        gw = await exits.enter_async_context(Gateway(settings, clock=afternoon_clock()))
        assert await gw.wait_connected(10), "gateway did not connect"
        home = await exits.enter_async_context(
            SimHome(stack.broker.url, gateway_id.lower(), devices=[(button, "call_button")],
                    clock=SimClock()))
        yield home


async def close_home(exits: AsyncExitStack, gateway_id: str) -> None:
    """Stop the simulator and the gateway, re-cancelling gateway tasks that outlive their
    cancel: on Python 3.11 ``asyncio.wait_for`` can lose a cancellation that lands as its
    inner wait completes (gh-86296), and the gateway's forwarder loop waits that way."""
    closing = asyncio.ensure_future(exits.aclose())
    for _ in range(15):  # bounded: 30 s
        done, _pending = await asyncio.wait({closing}, timeout=2)
        if done:
            closing.result()
            return
        for task in asyncio.all_tasks():
            if task.get_name().startswith(f"{gateway_id}:"):
                task.cancel()
    raise AssertionError(f"gateway {gateway_id} did not stop")


def _queue_item(page: Any, name: str) -> Any:
    return page.locator(".qi", has_text=name)


def test_red_press_to_resolved_through_console_and_phone(stack: ConsoleStack, browser: Any,
                                                        artifacts: Path) -> None:
    console_ctx = browser.new_context(viewport=DESKTOP, locale="zh-CN",
                                      timezone_id="Asia/Shanghai")
    page = console_ctx.new_page()
    errors = page_errors(page)
    sign_in(page, stack)
    assert page.locator("#conn").get_attribute("data-state") == "live" or wait_until(
        lambda: page.locator("#conn").get_attribute("data-state") == "live", 10, "stream live")

    exits = AsyncExitStack()
    home = stack.loop.run(exits.enter_async_context(home_with_gateway(stack, GW1, BUTTON1)))
    try:
        assert stack.loop.run(home.press(BUTTON1, "red"))
        # 1. the press appears in the queue, live, as a critical emergency call
        item = _queue_item(page, NAME1)
        item.wait_for(timeout=20000)
        assert "紧急呼叫" in item.inner_text()
        assert item.get_attribute("data-severity") == "critical"
        assert item.get_attribute("data-status") == "open"
        banner = page.locator("#critical")
        banner.wait_for(state="visible", timeout=5000)
        assert NAME1 in banner.inner_text()
        alert_id = item.get_attribute("data-id")
        assert alert_id
        page.screenshot(path=str(artifacts / "console-new-alert.png"))

        # 2. acknowledge from the keyboard (select, A)
        item.click()
        page.wait_for_selector(f"#alert-title:has-text('{NAME1}')")
        page.locator("#resident-card").wait_for(timeout=10000)
        page.keyboard.press("a")
        page.wait_for_selector(f".qi[data-id='{alert_id}'][data-status='acknowledged']",
                               timeout=10000)
        banner.wait_for(state="hidden", timeout=5000)

        # 3. dispatch the community volunteer
        page.click("#act-dispatch")
        dialog = page.locator("#modal")
        dialog.wait_for(state="visible")
        dialog.locator("label.choice", has_text=VOLUNTEER).click()
        page.click("#modal-ok")
        dialog.wait_for(state="hidden", timeout=10000)
        page.wait_for_selector(f"#timeline li:has-text('{VOLUNTEER}')", timeout=10000)
        link = wait_until(lambda: stack.sms.link_for(VOLUNTEER_PHONE), 15,
                          "the volunteer's SMS with a link")
        assert link.startswith(f"{stack.base_url}/respond/{alert_id}?token=")

        # 4. the volunteer opens the link on a phone and accepts
        phone_ctx = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True,
                                        has_touch=True, locale="zh-CN",
                                        timezone_id="Asia/Shanghai")
        phone = phone_ctx.new_page()
        phone_errors = page_errors(phone)
        phone.goto(link)
        phone.wait_for_selector("body[data-ready='1']", timeout=15000)
        what = phone.locator("#what").inner_text()
        assert "紧急呼叫" in what and NAME1 in what
        assert "文二西路" in phone.locator("#where").inner_text()
        assert phone.locator("#key-safe").count() == 0, "key safe before accepting"
        assert phone.locator("#btn-accept").is_visible()
        assert phone.locator("#btn-decline").is_visible()
        _assert_phone_layout(phone)
        phone.screenshot(path=str(artifacts / "phone-offer.png"))
        phone.tap("#btn-accept")
        phone.wait_for_selector("#you", timeout=10000)
        assert KEY1 in phone.locator("#key-safe").inner_text()
        assert phone.locator("#medical").is_visible()
        assert phone.locator("#btn-on_scene").is_visible()
        _assert_phone_layout(phone)
        phone.screenshot(path=str(artifacts / "phone-accepted.png"))

        # 5. the console shows it assigned, with the volunteer's name, without a reload
        page.wait_for_selector(f".qi[data-id='{alert_id}'][data-status='assigned']",
                               timeout=10000)
        assert VOLUNTEER in _queue_item(page, NAME1).inner_text()
        page.wait_for_selector(f"#alert-assignee:has-text('{VOLUNTEER}')", timeout=5000)
        _assert_console_layout(page)
        page.screenshot(path=str(artifacts / "console-assigned.png"))

        # 6. resolve with a closure code (keyboard R); the alert leaves the queue
        page.locator(f".qi[data-id='{alert_id}']").click()
        page.keyboard.press("r")
        dialog.wait_for(state="visible")
        page.click("#modal-ok")  # no code chosen: refused, the dialog stays
        assert dialog.is_visible()
        dialog.locator("label.choice", has_text="上门协助").click()
        page.fill("#modal textarea[name=note]", "老人起身时头晕，已扶到床上，家属已到")
        page.click("#modal-ok")
        dialog.wait_for(state="hidden", timeout=10000)
        page.wait_for_selector(f".qi[data-id='{alert_id}']", state="detached", timeout=10000)
        page.screenshot(path=str(artifacts / "console-resolved.png"))

        # the phone page learns it is over
        phone.reload()
        phone.wait_for_selector("#done", timeout=10000)
        assert phone.locator("#bar").is_hidden()
        phone_ctx.close()
        assert phone_errors == []
    finally:
        stack.loop.run(close_home(exits, GW1), timeout=40)

    with stack.http() as client:
        detail = client.get(f"/api/v1/alerts/{alert_id}", headers={
            "Authorization": f"Bearer {stack.operator_token()}"}).json()
    assert detail["status"] == "resolved"
    assert detail["closure_code"] == "helped_at_home"
    assert detail["acknowledged_at"] and detail["accepted_at"] and detail["resolved_at"]
    actions = [e["action"] for e in detail["timeline"]]
    assert "dispatched" in actions and "accepted" in actions
    console_ctx.close()
    assert errors == []


def _assert_console_layout(page: Any) -> None:
    """Nothing scrolls sideways at 1366×768 and the actions are on screen."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= DESKTOP["width"], width
    for selector in ("#act-ack", "#act-dispatch", "#act-resolve", "#queue-list"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["x"] + box["width"] <= DESKTOP["width"], selector
        assert box["y"] < DESKTOP["height"], selector


def _assert_phone_layout(phone: Any) -> None:
    """One hand at 360 px: no sideways scroll, large type, thumb-sized buttons."""
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    size = phone.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    assert size >= 18
    for button in phone.locator("#bar button").all():
        box = button.bounding_box()
        assert box is not None and box["height"] >= 48 and box["x"] >= 0
        assert box["x"] + box["width"] <= PHONE["width"]


def test_language_switch_and_back(stack: ConsoleStack, browser: Any, artifacts: Path) -> None:
    ctx = browser.new_context(viewport=DESKTOP)
    page = ctx.new_page()
    errors = page_errors(page)
    sign_in(page, stack)
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("#tab-queue").inner_text().startswith("警情")
    page.keyboard.press("l")
    page.wait_for_selector("html[lang='en']")
    assert page.locator("#tab-queue").inner_text().startswith("Alerts")
    assert page.locator("#tab-map").inner_text().startswith("Care map")
    assert "⟦" not in page.locator("body").inner_text()
    page.screenshot(path=str(artifacts / "console-english.png"))
    # the choice survives a reload (the operator's PC remembers it)
    page.reload()
    page.wait_for_selector("body[data-ready='1']", timeout=15000)
    assert page.locator("html").get_attribute("lang") == "en"
    page.click("#lang")
    page.wait_for_selector("html[lang='zh-CN']")
    assert page.locator("#tab-queue").inner_text().startswith("警情")
    ctx.close()
    assert errors == []


def test_care_map_shows_the_household_in_alert_colour(stack: ConsoleStack, browser: Any,
                                                     artifacts: Path) -> None:
    # an alarm committed for H-XH-002 (gateway GW-XH-002), published as its gateway would
    token = stack.operator_token()
    stack.publish_event("GW-XH-002", "btn-xh002", EventKind.FALL)
    alert = wait_until(lambda: [a for a in stack.alerts(token) if a["household_id"] == "H-XH-002"],
                       15, "the fall alert")[0]
    ctx = browser.new_context(viewport=DESKTOP)
    page = ctx.new_page()
    errors = page_errors(page)
    sign_in(page, stack)
    page.keyboard.press("2")
    dot = page.locator("circle.hh[data-household='H-XH-002']")
    dot.wait_for(timeout=10000)
    assert dot.get_attribute("data-state") == "alert"
    assert dot.evaluate("e => getComputedStyle(e).fill") == "rgb(200, 30, 30)"
    quiet = page.locator("circle.hh[data-household='H-XH-010']")
    assert quiet.get_attribute("data-state") in ("ok", "device")
    assert quiet.evaluate("e => getComputedStyle(e).fill") != "rgb(200, 30, 30)"
    page.screenshot(path=str(artifacts / "console-care-map.png"))

    # filter by another community: the household is dimmed and not focusable
    page.select_option("#map-filter", "C-XH-LY")
    assert "dim" in (page.locator("circle.hh[data-household='H-XH-002']").get_attribute("class")
                     or "")
    page.select_option("#map-filter", "")
    # click through to the card
    page.locator("circle.hh[data-household='H-XH-002']").click()
    page.wait_for_selector("#view-queue:not([hidden])")
    page.wait_for_selector(f"#alert-title:has-text('{alert['resident_name']}')", timeout=10000)
    page.locator("#resident-card").wait_for(timeout=10000)
    ctx.close()
    assert errors == []
    with stack.http() as client:
        client.post(f"/api/v1/alerts/{alert['id']}/resolve", headers={
            "Authorization": f"Bearer {token}"}, json={"closure_code": "false_alarm"}
        ).raise_for_status()


def test_unanswered_critical_alert_turns_red_and_beeps(stack: ConsoleStack, browser: Any) -> None:
    ctx = browser.new_context(viewport=DESKTOP)
    page = ctx.new_page()
    errors = page_errors(page)
    page.clock.install()
    sign_in(page, stack)
    # the sign-in click unlocks audio (autoplay rules): the alarm is on from sign-in
    wait_until(lambda: page.locator("#sound").get_attribute("aria-pressed") == "true", 5,
               "sound on after sign-in")
    beeps_before = page.evaluate("window.__eldercareBeeps || 0")
    token = stack.operator_token()
    stack.publish_event("GW-XH-005", "btn-xh005", EventKind.SOS, button="red")
    alert = wait_until(lambda: [a for a in stack.alerts(token) if a["household_id"] == "H-XH-005"
                                and a["kind"] == "sos"], 15, "the SOS alert")[0]
    item = page.locator(f".qi[data-id='{alert['id']}']")
    item.wait_for(timeout=10000)
    timer = item.locator(".timer")
    assert "overdue" not in (timer.get_attribute("class") or "")
    assert page.evaluate("window.__eldercareBeeps || 0") > beeps_before
    page.clock.fast_forward("01:05")
    # the row may be re-rendered by a stream event meanwhile: class and colour together
    wait_until(lambda: timer.evaluate(
        "e => e.classList.contains('overdue') && getComputedStyle(e).color") == "rgb(200, 30, 30)",
        5, "red timer")
    # Enter (nothing focused) opens the alert the banner names; A acknowledges it
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#alert-title:has-text('{alert['resident_name']}')", timeout=5000)
    assert page.evaluate("document.activeElement.id") == "act-ack"
    page.keyboard.press("a")
    page.wait_for_selector(f".qi[data-id='{alert['id']}'][data-status='acknowledged']",
                           timeout=10000)
    # acknowledged: the timer is no longer overdue, the banner is gone
    assert page.locator("#critical").is_hidden()
    page.clock.fast_forward("00:02")
    wait_until(lambda: "overdue" not in (timer.get_attribute("class") or ""), 5, "timer calm")
    ctx.close()
    assert errors == []
    with stack.http() as client:
        client.post(f"/api/v1/alerts/{alert['id']}/resolve", headers={
            "Authorization": f"Bearer {token}"}, json={"closure_code": "false_alarm"}
        ).raise_for_status()


def test_a_forged_link_shows_a_clear_message(stack: ConsoleStack, browser: Any) -> None:
    ctx = browser.new_context(viewport=PHONE, is_mobile=True)
    page = ctx.new_page()
    page.goto(f"{stack.base_url}/respond/AL-nothing?token=forged.token")
    page.wait_for_selector("#error", timeout=10000)
    assert "链接已失效" in page.locator("#error").inner_text()
    assert page.locator("#bar").is_hidden()
    ctx.close()


def test_family_member_sees_their_elder(stack: ConsoleStack, browser: Any,
                                        artifacts: Path) -> None:
    stack.add_user("family-wang", "family-pass-123", "family", resident_ids=["R-XH-001"])
    # she opened her door a moment ago: "last activity" is news a daughter looks for first
    stack.publish_event(GW1, "door-xh001", EventKind.DOOR_OPEN)
    token = stack.token("family-wang", "family-pass-123")

    def activity_seen() -> bool:
        with stack.http() as client:
            status = client.get("/api/v1/console/residents/R-XH-001/status",
                                headers={"Authorization": f"Bearer {token}"}).json()
        return status["last_activity_at"] is not None
    wait_until(activity_seen, 15, "the door event counted as activity")
    ctx = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = ctx.new_page()
    errors = page_errors(page)
    page.goto(f"{stack.base_url}/family/")
    page.fill("#signin input[name=username]", "family-wang")
    page.fill("#signin input[name=password]", "family-pass-123")
    page.click("#signin button[type=submit]")
    page.wait_for_selector("body[data-ready='1']", timeout=15000)
    elder = page.locator(".elder[data-resident='R-XH-001']")
    text = elder.inner_text()
    assert NAME1 in text and "最近活动" in text and "设备" in text
    assert "刚刚" in text  # the door, just now
    assert page.locator(".elder").count() == 1  # only their own elder
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=str(artifacts / "family-page.png"), full_page=True)
    ctx.close()
    assert errors == []


def test_phone_page_i_cant_go_in_english(stack: ConsoleStack, browser: Any,
                                        artifacts: Path) -> None:
    token = stack.operator_token()
    stack.publish_event("GW-XH-008", "btn-xh008", EventKind.SOS, button="red")
    alert = wait_until(lambda: [a for a in stack.alerts(token) if a["household_id"] == "H-XH-008"
                                and a["kind"] == "sos"], 15, "the SOS alert")[0]
    with stack.http() as client:
        auth = {"Authorization": f"Bearer {token}"}
        contacts = client.get(f"/api/v1/residents/{alert['resident_id']}/contacts",
                              headers=auth).json()
        volunteer = next(c for c in contacts if c["relation"] == "volunteer")
        client.post(f"/api/v1/console/alerts/{alert['id']}/dispatch", headers=auth,
                    json={"contact_id": volunteer["id"]}).raise_for_status()
    link = wait_until(lambda: stack.sms.link_for(volunteer["phone"]), 15, "dispatch SMS")
    ctx = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    phone = ctx.new_page()
    errors = page_errors(phone)
    phone.goto(link)
    phone.wait_for_selector("body[data-ready='1']", timeout=15000)
    phone.click("#lang")
    phone.wait_for_selector("html[lang='en']")
    assert "Emergency call" in phone.locator("#what").inner_text()
    assert phone.locator("#btn-accept").inner_text() == "I'll go"
    phone.tap("#btn-decline")
    phone.wait_for_selector("#you", timeout=10000)
    assert "can't go" in phone.locator("#you").inner_text()
    # they may still change their mind: only "I'll go" is left
    assert phone.locator("#btn-accept").is_visible()
    assert phone.locator("#btn-decline").count() == 0
    _assert_phone_layout(phone)
    phone.screenshot(path=str(artifacts / "phone-declined-en.png"))
    with stack.http() as client:
        detail = client.get(f"/api/v1/alerts/{alert['id']}", headers=auth).json()
        offer = next(o for o in detail["offers"] if o["contact_id"] == volunteer["id"])
        assert offer["status"] == "declined"
        client.post(f"/api/v1/alerts/{alert['id']}/resolve", headers=auth,
                    json={"closure_code": "false_alarm"}).raise_for_status()
    ctx.close()
    assert errors == []
