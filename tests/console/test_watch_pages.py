"""A GPS wristband's SOS with a position, as the responder's phone (360 px wide) and the
operator's console show it in headless Chromium: the coordinates, how old the fix is and
a map link, in Chinese first. No map tiles are fetched (the pages link to a map app)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from eldercare_protocols.events import EventKind

from .conftest import ConsoleStack, page_errors, sign_in, wait_until

pytestmark = pytest.mark.integration

PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1366, "height": 768}
#: demo household H-XH-002: 陈德明's wristband behind GW-XH-002; his son 陈晓东 is asked first
GW, WRISTBAND, NAME, SON_PHONE = "GW-XH-002", "gps-xh002", "陈德明", "13900003011"
LAT, LON = 30.274312, 120.155071
AGE = r"（(刚刚|\d+ 分钟前)）"


def test_responder_phone_and_console_show_where_the_sos_came_from(
        stack: ConsoleStack, browser: Any, artifacts: Path) -> None:
    stack.publish_event(GW, WRISTBAND, EventKind.SOS, lat=LAT, lon=LON, position="fix")
    link = wait_until(lambda: stack.sms.link_for(SON_PHONE), 20, "the son's SMS")
    [text] = [m for m in stack.sms.to(SON_PHONE) if link in m]
    assert "紧急呼叫" in text and "位置 30.27431,120.15507（" in text
    assert "https://uri.amap.com/marker?position=120.15507,30.27431&coordinate=wgs84" in text

    # the son's phone, one hand, 360 px
    ctx = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True,
                              has_touch=True, locale="zh-CN", timezone_id="Asia/Shanghai")
    phone = ctx.new_page()
    errors = page_errors(phone)
    phone.goto(link)
    phone.wait_for_selector("body[data-ready='1']", timeout=15000)
    block = phone.locator("#position")
    block.wait_for(timeout=10000)
    assert "老人位置（手表定位）" in block.inner_text()
    line = phone.locator("#position-text").inner_text()
    assert re.fullmatch(r"位置 30\.27431,120\.15507" + AGE, line), line
    amap = phone.locator("#position-amap")
    assert amap.inner_text() == "在高德地图中打开"
    assert amap.get_attribute("href") == ("https://uri.amap.com/marker?position="
                                          "120.15507,30.27431&coordinate=wgs84&callnative=1")
    assert "mlat=30.27431&mlon=120.15507" in (phone.locator("#position-osm")
                                              .get_attribute("href") or "")
    # it fits: no sideways scroll, the block inside the screen, large enough to read
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    box = block.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    size = phone.evaluate(
        "parseFloat(getComputedStyle(document.getElementById('position-text')).fontSize)")
    assert size >= 18
    assert "⟦" not in phone.locator("body").inner_text()
    phone.screenshot(path=str(artifacts / "phone-watch-position.png"), full_page=True)
    # English second
    phone.click("#lang")
    phone.wait_for_function(
        "document.getElementById('position-text').textContent.startsWith('Position')")
    assert phone.locator("#position-text").inner_text().startswith(
        "Position 30.27431,120.15507 (")
    ctx.close()
    assert errors == []

    # the console's alert detail
    ctx = browser.new_context(viewport=DESKTOP, locale="zh-CN", timezone_id="Asia/Shanghai")
    page = ctx.new_page()
    console_errors = page_errors(page)
    sign_in(page, stack)
    item = page.locator(".qi", has_text=NAME).first
    item.wait_for(timeout=15000)
    item.click()
    page.wait_for_selector(f"#alert-title:has-text('{NAME}')")
    shown = page.locator("#alert-position-text")
    shown.wait_for(timeout=10000)
    assert re.fullmatch(r"位置 30\.27431,120\.15507" + AGE, shown.inner_text())
    assert "uri.amap.com" in (page.locator("#alert-position-amap").get_attribute("href") or "")
    page.screenshot(path=str(artifacts / "console-watch-position.png"))
    ctx.close()
    assert console_errors == []


def test_operator_sets_the_watch_profile_in_the_console(stack: ConsoleStack, browser: Any,
                                                         artifacts: Path) -> None:
    """The safe area and strap setting are edited on the resident's card: incomplete
    input is refused in Chinese and saves nothing; a valid one is saved and shown."""
    ctx = browser.new_context(viewport=DESKTOP, locale="zh-CN", timezone_id="Asia/Shanghai")
    page = ctx.new_page()
    errors = page_errors(page)
    sign_in(page, stack)
    item = page.locator(".qi", has_text=NAME).first
    item.wait_for(timeout=15000)
    item.click()
    page.locator("#watch-profile").wait_for(timeout=10000)
    assert "未设安全区域" in page.locator("#watch-fence").inner_text()
    assert page.locator("#watch-strap").inner_text() == "摘下手环时报警"
    page.click("#watch-edit")
    dialog = page.locator("#modal")
    dialog.wait_for(state="visible")
    # the household's coordinates are offered as the centre; a radius left empty is refused
    assert page.locator("#watch-lat").input_value() == "30.2874"
    page.fill("#watch-radius", "")
    page.click("#modal-ok")
    error = page.locator("#modal-error")
    error.wait_for(state="visible")
    assert "纬度、经度和半径需同时填写" in error.inner_text()
    token = stack.operator_token()
    with stack.http() as client:
        url = "/api/v1/residents/R-XH-002/watch-profile"
        auth = {"Authorization": f"Bearer {token}"}
        assert client.get(url, headers=auth).json()["home"] is None      # nothing saved
        page.fill("#watch-radius", "250")
        page.uncheck("#watch-strap_alert")
        page.click("#modal-ok")
        dialog.wait_for(state="hidden", timeout=10000)
        page.wait_for_selector("#watch-fence:has-text('半径 250 米')", timeout=10000)
        assert page.locator("#watch-strap").inner_text() == "摘下手环只记录，不报警"
        saved = client.get(url, headers=auth).json()
    assert (saved["home"], saved["radius_m"], saved["strap_alert"]) == (
        {"latitude": 30.2874, "longitude": 120.1241}, 250, False)
    page.screenshot(path=str(artifacts / "console-watch-profile.png"))
    ctx.close()
    assert errors == []


def test_the_care_map_plots_where_a_watch_wearer_was_last(stack: ConsoleStack, browser: Any,
                                                          artifacts: Path) -> None:
    """A resident's watch reports a position: the care map shows a diamond there, named and
    described in Chinese first, listed beside the map, and a click opens the resident."""
    lat, lon = 30.2885, 120.1255  # a short walk from home, inside any safe area set above
    stack.publish_reading(GW, WRISTBAND, EventKind.LOCATION, lat=lat, lon=lon, accuracy=15)
    token = stack.operator_token()

    def pin() -> dict[str, Any] | None:
        with stack.http() as client:
            body = client.get("/api/v1/console/map",
                              headers={"Authorization": f"Bearer {token}"}).json()
        return next((w for w in body["watches"] if w["device_id"] == WRISTBAND
                     and w["position"]["lat"] == lat), None)

    found = wait_until(pin, 15, "the watch on the map")
    assert (found["resident_name"], found["household_id"]) == (NAME, "H-XH-002")
    assert found["position"]["lon"] == lon and found["position"]["valid"] is True

    ctx = browser.new_context(viewport=DESKTOP, locale="zh-CN", timezone_id="Asia/Shanghai")
    page = ctx.new_page()
    errors = page_errors(page)
    sign_in(page, stack)
    page.keyboard.press("2")
    diamond = page.locator(f"path.watch[data-device='{WRISTBAND}']")
    diamond.wait_for(timeout=10000)
    label = diamond.get_attribute("aria-label") or ""
    assert re.fullmatch(f"{NAME} · 手表定位 · 位置 30\\.28850,120\\.12550" + AGE, label), label
    assert page.locator(".watch-label", has_text=f"{NAME}（手表）").count() == 1
    assert "手表位置" in page.locator(".legend").inner_text()
    side = page.locator("#map-side")
    assert "佩戴定位手表" in side.inner_text() and "位置 30.28850,120.12550" in side.inner_text()
    # drawn inside the map, not off its edge
    svg, box = page.locator("#care-map").bounding_box(), diamond.bounding_box()
    assert svg is not None and box is not None
    assert svg["x"] <= box["x"] and box["x"] + box["width"] <= svg["x"] + svg["width"]
    assert svg["y"] <= box["y"] and box["y"] + box["height"] <= svg["y"] + svg["height"]
    assert "⟦" not in page.locator("body").inner_text()
    page.screenshot(path=str(artifacts / "console-care-map-watch.png"))

    # another community: the watch is not drawn
    page.select_option("#map-filter", "C-XH-LY")
    assert diamond.count() == 0
    page.select_option("#map-filter", "")
    # English second
    page.click("#lang")
    page.wait_for_selector("html[lang='en']")
    assert (page.locator(f"path.watch[data-device='{WRISTBAND}']").get_attribute("aria-label")
            or "").startswith(f"{NAME} · GPS watch · Position 30.28850,120.12550 (")
    page.click("#lang")
    page.wait_for_selector("html[lang='zh-CN']")
    # a click opens the resident's card
    page.locator(f"path.watch[data-device='{WRISTBAND}']").click()
    page.locator("#resident-card").wait_for(timeout=10000)
    assert NAME in page.locator("#resident-card").inner_text()
    ctx.close()
    assert errors == []
