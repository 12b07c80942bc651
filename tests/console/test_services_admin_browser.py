"""The console's service set-up screens and live service queue, in headless Chromium
against the real cloud (Mosquitto, SQLite, the demo district):

- an administrator creates a provider, a worker and an entitlement rule through the
  服务设置 screens and sees them listed (and stored: the API answers the same); the forms
  refuse what the server would refuse before sending, and a refusal the server still
  sends shows in Chinese; the screen fits 1366 px;
- an operator sees the set-up read-only (no type, rule or settings forms) and a new
  green-button request appear in the 服务 queue without a reload, carried by the live
  stream (the view's fallback poll is 60 s, far beyond the test's wait).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from eldercare_cloud.services.models import (
    ConfigUpdate,
    EntitlementRuleCreate,
    Minimum,
    ProviderCreate,
    ServiceTypeCreate,
    WorkerCreate,
)
from eldercare_protocols.events import EventKind

from .conftest import ConsoleStack, page_errors, sign_in, wait_until

pytestmark = pytest.mark.integration

DESKTOP = {"width": 1366, "height": 768}
ADMIN, ADMIN_PASSWORD = "svc-admin", "svc-admin-test-pass-1"
ZH_TABLE = Path(__file__).resolve().parents[2] / "dashboards" / "shared" / "i18n" / "zh-CN.json"
CJK = re.compile(r"[\u4e00-\u9fff]")


def _api(stack: ConsoleStack, token: str, path: str) -> Any:
    with httpx.Client(base_url=stack.base_url, timeout=10) as client:
        resp = client.get(path, headers={"Authorization": f"Bearer {token}"})
        resp.raise_for_status()
        return resp.json()


def _refusal_errors(errors: list[str]) -> list[str]:
    """Page errors other than Chromium's own line for the 422 the test provoked."""
    return [e for e in errors if "status of 422" not in e]


def test_admin_creates_provider_worker_and_rule(stack: ConsoleStack, browser: Any,
                                                artifacts: Path) -> None:
    stack.add_user(ADMIN, ADMIN_PASSWORD, "admin")
    stack.add_user("liu-guilan", "worker-test-pass-1", "worker")
    ctx = browser.new_context(viewport=DESKTOP, locale="zh-CN", timezone_id="Asia/Shanghai")
    page = ctx.new_page()
    errors = page_errors(page)
    sign_in(page, stack, ADMIN, ADMIN_PASSWORD)
    page.click("#tab-services")
    page.click("#svc-sub-admin")
    page.wait_for_selector("#adm-types tr[data-id='cleaning']", timeout=15000)
    assert page.locator("#adm-rules tr[data-category='dibao']").count() == 1
    for form in ("type", "provider", "worker", "rule", "config"):
        assert page.locator(f"#adm-{form}-form").count() == 1, form
    # a type's row loads it into the form (the same code saves a change)
    page.click("#adm-types tr[data-id='meal']")
    assert page.locator("#adm-type-form [name=id]").input_value() == "meal"
    assert page.locator("#adm-type-form [name=name_zh]").input_value() == "助餐"

    # -- a provider: the form refuses a bad phone and no community before sending
    providers_before = _api(stack, stack.token(ADMIN, ADMIN_PASSWORD), "/api/v1/service-providers")
    form = page.locator("#adm-provider-form")
    form.locator("[name=name]").fill("西湖颐养居家服务中心")
    form.locator("[name=phone]").fill("0571-8888")
    page.click("#adm-provider-save")
    problems = form.locator(".adm-err").inner_text()
    assert "电话须为" in problems and "服务社区" in problems
    assert _api(stack, stack.token(ADMIN, ADMIN_PASSWORD),
                "/api/v1/service-providers") == providers_before
    form.locator("[name=phone]").fill("057188880000")
    form.locator("[name=communities][value='C-XH-GD']").check()
    form.locator("[name=service_types][value='cleaning']").check()
    form.locator("[name=service_types][value='company']").check()
    page.click("#adm-provider-save")
    row = page.locator("#adm-providers tr.picked", has_text="西湖颐养居家服务中心")
    row.wait_for(timeout=10000)
    assert "古荡" in row.inner_text() and "助洁" in row.inner_text()
    page.wait_for_selector("#adm-workers h3:has-text('西湖颐养居家服务中心')")

    # -- a worker of that provider (skills offered: the provider's own service types)
    wform = page.locator("#adm-worker-form")
    assert sorted(wform.locator("[name=skills]").evaluate_all(
        "els => els.map(e => e.value)")) == ["cleaning", "company"]
    wform.locator("[name=name]").fill("刘桂兰")
    wform.locator("[name=phone]").fill("13912345678")
    page.click("#adm-worker-save")
    assert "至少选择一项技能" in wform.locator(".adm-err").inner_text()
    wform.locator("[name=skills][value='company']").check()
    page.click("#adm-worker-save")
    page.locator("#adm-workers tr[data-id]", has_text="刘桂兰").wait_for(timeout=10000)

    # -- her account: she signs in as that worker (a worker's account needs its worker)
    aform = page.locator("#adm-account-form")
    user_value = aform.locator("[name=user_id] option",
                               has_text="liu-guilan").get_attribute("value")
    aform.locator("[name=user_id]").select_option(user_value)
    page.click("#adm-account-save")
    assert "须选择对应的服务人员" in aform.locator(".adm-err").inner_text()
    aform.locator("[name=worker_id]").select_option(label="刘桂兰")
    page.click("#adm-account-save")
    link = page.locator("#adm-accounts tr", has_text="liu-guilan")
    link.wait_for(timeout=10000)
    assert "刘桂兰" in link.inner_text() and "西湖颐养居家服务中心" in link.inner_text()

    # -- an entitlement rule: 空巢 now 150 元 a month with a minimum of 陪聊
    rform = page.locator("#adm-rule-form")
    rform.locator("[name=category]").select_option("empty_nest")
    # picking a category loads its rule as it stands: saving edits it
    assert rform.locator("[name=label]").input_value() == "空巢老人"
    assert rform.locator("[name=voucher]").input_value() == "100.00"
    assert rform.locator("[name=service_types]:checked").evaluate_all(
        "els => els.map(e => e.value).sort()") == ["company", "meal"]
    rform.locator("[name=label]").fill("空巢老人（新规）")
    rform.locator("[name=voucher]").fill("150")
    rform.locator("[name=service_types][value='company']").check()
    rform.locator("[name=service_types][value='meal']").check()
    rform.locator("[name=min_type]").select_option("company")
    rform.locator("[name=min_times]").fill("2")
    rform.locator("[name=min_hours]").fill("1.5")
    page.click("#adm-rule-save")
    rule = page.locator("#adm-rules tr[data-category='empty_nest']", has_text="空巢老人（新规）")
    rule.wait_for(timeout=10000)
    assert "¥150.00" in rule.inner_text() and "≥2次" in rule.inner_text()

    # -- the call-back settings: a NaN never leaves the page; then a real change
    cform = page.locator("#adm-config-form")
    cform.locator("[name=share]").evaluate("el => { el.type = 'text'; el.value = 'NaN'; }")
    page.click("#adm-config-save")
    assert "抽样回访比例" in cform.locator(".adm-err").inner_text()
    cform.locator("[name=share]").fill("25")
    page.click("#adm-config-save")
    page.wait_for_selector("#adm-config-now dd:has-text('25%')", timeout=10000)

    # what the screens showed is what the API keeps
    token = stack.token(ADMIN, ADMIN_PASSWORD)
    [made] = [p for p in _api(stack, token, "/api/v1/service-providers")
              if p["name"] == "西湖颐养居家服务中心"]
    assert (made["district_id"], made["phone"], made["communities"], made["service_types"]) == (
        "D-XH", "057188880000", ["C-XH-GD"], ["cleaning", "company"])
    workers = _api(stack, token, f"/api/v1/service-providers/{made['id']}/workers")
    assert [(w["name"], w["phone"], w["skills"]) for w in workers] == [
        ("刘桂兰", "13912345678", ["company"])]
    [stored] = [r for r in _api(stack, token, "/api/v1/districts/D-XH/entitlement-rules")
                if r["category"] == "empty_nest"]
    assert (stored["label"], stored["monthly_voucher_cents"], stored["service_types"],
            stored["minimums"]) == ("空巢老人（新规）", 15000, ["company", "meal"],
                                    [{"service_type_id": "company", "times": 2, "minutes": 90}])
    assert _api(stack, token, "/api/v1/districts/D-XH/service-config")["callback_share"] == 0.25

    # a refusal the server sends (a body the form would never build) reads in Chinese
    shown = page.evaluate("""async () => {
        const { desk } = await import('/ui/shared/services-api.js');
        const { reason } = await import('/ui/console/services-admin.js');
        try {
            await desk('/api/v1/districts/D-XH/service-config',
                       { method: 'PUT', body: { callback_share: 7, new_worker_visits: 3 } });
            return 'accepted';
        } catch (err) { return reason(err); }
    }""")
    assert shown == "提交的内容有误：抽样回访比例", shown
    assert _api(stack, token, "/api/v1/districts/D-XH/service-config")["callback_share"] == 0.25

    # 1366 px: nothing sticks out of the page or of a panel; the labels are Chinese
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= DESKTOP["width"], f"the console is {width}px wide"
    wider = page.evaluate("""() => [...document.querySelectorAll('#svc-admin .adm-panel')]
        .filter(p => p.scrollWidth > p.clientWidth + 1).map(p => p.id)""")
    assert wider == []
    headings = page.locator("#svc-admin h3").all_inner_texts()
    assert len(headings) == 6 and all(CJK.search(x) for x in headings), headings
    # English with the language button, at once; then back to Chinese
    page.click("#lang")
    page.wait_for_selector("#adm-types h3:has-text('Service types')", timeout=5000)
    assert "Add provider" in page.inner_text("#adm-provider-save")
    assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]
    page.screenshot(path=str(artifacts / "services-admin-1366-en.png"))
    page.click("#lang")
    page.wait_for_selector("#adm-types h3:has-text('服务项目')", timeout=5000)
    page.evaluate("document.getElementById('svc-main').scrollTop = 0")
    page.screenshot(path=str(artifacts / "services-admin-1366.png"))
    page.evaluate("document.getElementById('svc-main').scrollTop = 1e6")
    page.screenshot(path=str(artifacts / "services-admin-1366-end.png"))
    assert _refusal_errors(errors) == []
    ctx.close()


def test_operator_sees_setup_read_only_and_green_press_arrives_live(
        stack: ConsoleStack, browser: Any) -> None:
    ctx = browser.new_context(viewport=DESKTOP, locale="zh-CN", timezone_id="Asia/Shanghai")
    page = ctx.new_page()
    errors = page_errors(page)
    sign_in(page, stack)
    page.click("#tab-services")
    page.click("#svc-sub-admin")
    page.wait_for_selector("#adm-providers tr[data-id]", timeout=15000)
    # the centre adds providers and workers; types, rules and settings are the admin's
    assert page.locator("#adm-provider-form").count() == 1
    for form in ("type", "rule", "config", "account"):
        assert page.locator(f"#adm-{form}-form").count() == 0, form
    assert page.locator("#adm-accounts").count() == 0

    page.click("button[data-sub='queue']")
    page.wait_for_selector("#svc-phone-form")
    assert page.locator(".svc-request", has_text="陈德明").count() == 0
    stack.publish_event("GW-XH-002", "btn-xh002", EventKind.SERVICE_REQUEST, button="green",
                        press="single")
    # far sooner than the 60 s fallback poll: the stream brought it
    page.locator(".svc-request", has_text="陈德明").wait_for(timeout=10000)

    # the operator orders; the worker accepts on their phone: the open order's pane turns
    # to 已接单 by itself (no click, no reload)
    page.locator(".svc-request", has_text="陈德明").click()
    page.wait_for_selector("#svc-order")
    page.select_option("#svc-type", "cleaning")
    page.select_option("#svc-payment", "self")
    page.fill("#svc-date", "2030-03-05")
    page.fill("#svc-start", "09:00")
    page.fill("#svc-end", "11:30")
    page.click("#svc-order")
    page.wait_for_selector("#svc-order-status[data-status='dispatched']", timeout=10000)
    order_id = page.locator(".svc-col[data-status='dispatched'] .svc-card",
                            has_text="陈德明").get_attribute("data-id")
    assert order_id
    token = stack.operator_token()
    link = _api(stack, token, f"/api/v1/service-orders/{order_id}/work-link")["url"]
    work_token = link.split("token=", 1)[1]
    with httpx.Client(base_url=stack.base_url, timeout=10) as client:
        accepted = client.post(f"/api/v1/jobs/{order_id}/accept",
                               headers={"X-Work-Token": work_token})
        assert accepted.status_code == 200, accepted.text
    page.wait_for_selector("#svc-order-status[data-status='accepted']", timeout=10000)
    assert page.locator(".svc-col[data-status='accepted'] .svc-card",
                        has_text="陈德明").count() == 1

    # on another tab, the 服务 count still follows the stream
    before = int(page.inner_text("#svc-count"))
    page.click("#tab-queue")
    stack.publish_event("GW-XH-003", "btn-xh003", EventKind.SERVICE_REQUEST, button="green",
                        press="single")
    wait_until(lambda: int(page.inner_text("#svc-count")) > before, 10,
               "the service count to follow the stream")
    assert errors == []
    ctx.close()


@pytest.mark.parametrize("model", [ServiceTypeCreate, ProviderCreate, WorkerCreate,
                                   EntitlementRuleCreate, Minimum, ConfigUpdate])
def test_every_field_the_server_may_refuse_has_a_chinese_name(model: Any) -> None:
    """A 422 names its fields; the set-up screens show them by these names, never raw."""
    import json

    table = json.loads(ZH_TABLE.read_text(encoding="utf-8"))
    for name in model.model_fields:
        assert CJK.search(table.get(f"adm_field.{name}", "")), f"adm_field.{name}"
