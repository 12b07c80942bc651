"""The demo district's green half: the service catalogue, 西湖区's entitlement rules, two
providers with their workers and a community meal kitchen. Loaded through the service
desk (the same validation as real data), idempotently."""

from __future__ import annotations

from typing import Any

from eldercare_cloud.audit import AuditLog
from eldercare_cloud.auth.models import Principal, Role
from eldercare_cloud.clock import Clock
from eldercare_cloud.db import Database
from eldercare_cloud.registry import RegistryService
from eldercare_cloud.services.desk import ServiceDesk
from eldercare_cloud.services.models import (
    EntitlementRuleCreate,
    Minimum,
    ProviderCreate,
    ProviderKind,
    ServiceTypeCreate,
    WorkerCreate,
)

#: (id, 中文, English, typical minutes, price in fen, accept within s, arrive within s,
#:  minimum visit minutes)
SERVICE_TYPES: list[tuple[str, str, str, int, int, int, int, int]] = [
    ("meal", "助餐", "Meal delivery", 15, 1200, 1800, 3600, 3),
    ("cleaning", "助洁", "Home cleaning", 150, 9000, 900, 1800, 60),
    ("medical", "助医", "Medical escort", 120, 8000, 600, 1800, 30),
    ("bathing", "助浴", "Bathing help", 60, 6000, 900, 1800, 30),
    ("shopping", "代购", "Shopping errand", 60, 3000, 900, 3600, 10),
    ("repair", "维修", "Home repair", 60, 5000, 1800, 7200, 15),
    ("medicine", "送药上门", "Medicine delivery", 20, 2000, 900, 3600, 5),
    ("company", "陪聊", "Companionship", 60, 3000, 900, 1800, 45),
]

DISTRICT = "D-XH"
ALL_CARE = ["cleaning", "medical", "bathing", "shopping", "repair", "medicine", "company",
            "meal"]

#: (category, label, monthly voucher in fen, subsidised types, minimums)
RULES: list[tuple[str, str, int, list[str], list[Minimum]]] = [
    ("dibao", "低保老人", 40000, ALL_CARE,
     [Minimum(service_type_id="cleaning", times=2, minutes=300)]),
    ("tekun", "特困供养老人", 60000, ALL_CARE,
     [Minimum(service_type_id="cleaning", times=2, minutes=300),
      Minimum(service_type_id="meal", times=20)]),
    ("dibian", "低边老人", 30000, ALL_CARE,
     [Minimum(service_type_id="cleaning", times=2, minutes=300)]),
    ("disabled", "失能老人", 60000, ALL_CARE,
     [Minimum(service_type_id="bathing", times=4, minutes=120),
      Minimum(service_type_id="cleaning", times=2, minutes=300)]),
    ("semi_disabled", "半失能老人", 40000, ALL_CARE,
     [Minimum(service_type_id="cleaning", times=2, minutes=300)]),
    ("dementia", "失智老人", 40000, ALL_CARE,
     [Minimum(service_type_id="company", times=4, minutes=180)]),
    ("age_90", "90周岁以上高龄老人", 20000, ["meal", "cleaning", "company"], []),
    ("age_80", "80周岁以上高龄老人", 10000, ["meal"], []),
    ("living_alone", "独居老人", 10000, ["meal", "company", "repair"],
     [Minimum(service_type_id="company", times=2)]),
    ("empty_nest", "空巢老人", 10000, ["meal", "company"], []),
    ("family_planning_special", "计生特殊家庭老人", 30000, ALL_CARE, []),
]

PROVIDERS: list[dict[str, Any]] = [
    {"id": "P-XH-AK", "name": "西湖安康居家养老服务中心", "kind": ProviderKind.PROVIDER,
     "phone": "057188001001", "communities": ["C-XH-CY", "C-XH-GD"],
     "service_types": ["cleaning", "medical", "bathing", "shopping", "repair", "medicine",
                       "company"],
     "workers": [("W-XH-AK-01", "陈美华", "13900005001", ["cleaning", "bathing", "company"]),
                 ("W-XH-AK-02", "刘建军", "13900005002", ["repair", "shopping", "medicine"]),
                 ("W-XH-AK-03", "杨秀芳", "13900005003", ["cleaning", "medical", "company"])]},
    {"id": "P-XH-XY", "name": "夕阳红为老服务社", "kind": ProviderKind.PROVIDER,
     "phone": "057188001002", "communities": ["C-XH-GD", "C-XH-LY"],
     "service_types": ["cleaning", "bathing", "shopping", "medicine", "company"],
     "workers": [("W-XH-XY-01", "黄丽娟", "13900005011", ["cleaning", "bathing"]),
                 ("W-XH-XY-02", "周志强", "13900005012", ["shopping", "medicine", "company"])]},
    {"id": "P-XH-ST", "name": "翠苑社区老年食堂", "kind": ProviderKind.KITCHEN,
     "phone": "057188001003", "communities": ["C-XH-CY", "C-XH-GD", "C-XH-LY"],
     "service_types": ["meal"],
     "workers": [("W-XH-ST-01", "王师傅", "13900005021", ["meal"]),
                 ("W-XH-ST-02", "钱阿姨", "13900005022", ["meal"])]},
]


async def load_service_demo(db: Database, clock: Clock, audit: AuditLog,
                            registry: RegistryService, tenant: str) -> int:
    desk = ServiceDesk(db, clock, registry, audit, secret_key="demo-loader-issues-no-links",
                       public_base_url="http://127.0.0.1", tenant=tenant)
    await desk.migrate()
    system = Principal(user_id="demo-loader", username="demo-loader", role=Role.ADMIN,
                       tenant=tenant)
    added = 0
    known = {t.id for t in await desk.list_types()}
    for tid, zh, en, minutes, price, accept_s, arrive_s, min_visit in SERVICE_TYPES:
        if tid not in known:
            await desk.upsert_type(ServiceTypeCreate(
                id=tid, name_zh=zh, name_en=en, duration_min=minutes, unit_price_cents=price,
                accept_within_s=accept_s, arrive_within_s=arrive_s, min_visit_min=min_visit))
            added += 1
    rules = {r.category for r in await desk.list_rules(system, DISTRICT)}
    for category, label, voucher, types, minimums in RULES:
        if category not in rules:
            await desk.upsert_rule(system, EntitlementRuleCreate(
                district_id=DISTRICT, category=category, label=label,
                monthly_voucher_cents=voucher, service_types=types, minimums=minimums))
            added += 1
    providers = {p.id for p in await desk.list_providers(system)}
    for spec in PROVIDERS:
        if spec["id"] not in providers:
            await desk.create_provider(system, ProviderCreate(
                id=spec["id"], district_id=DISTRICT, name=spec["name"], kind=spec["kind"],
                phone=spec["phone"], communities=spec["communities"],
                service_types=spec["service_types"]))
            added += 1
        workers = {w.id for w in await desk.list_workers(system, spec["id"])}
        for wid, name, phone, skills in spec["workers"]:
            if wid not in workers:
                await desk.create_worker(system, spec["id"], WorkerCreate(
                    id=wid, name=name, phone=phone, skills=skills))
                added += 1
    return added
