"""Catalogue, providers, workers, entitlement rules and voucher balances: rows and the
queries over them, on a connection (inside or outside the caller's transaction)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from eldercare_cloud.db import Connection, Row
from eldercare_cloud.registry.models import LivingSituation, ResidentPublic
from eldercare_cloud.services.models import (
    HOLDS_WORKER,
    OPEN_ORDER,
    EntitlementPublic,
    EntitlementRulePublic,
    Payment,
    ProviderPublic,
    ServiceTypePublic,
    WorkerPublic,
)

#: the districts served are in China; months and days of service are local ones
LOCAL_TZ = ZoneInfo("Asia/Shanghai")


def local_month(ts: datetime) -> str:
    return ts.astimezone(LOCAL_TZ).strftime("%Y-%m")


def in_list(column: str, values: Iterable[str]) -> tuple[str, list[Any]]:
    """``column IN (...)``; an empty set matches nothing (portable: no bare ``0``)."""
    items = sorted(set(values))
    if not items:
        return "1 = 0", []
    return f"{column} IN ({','.join('?' for _ in items)})", list(items)


async def fetch_one(conn: Connection, sql: str,
                    params: Sequence[Any] = ()) -> Row | None:
    cur = await conn.execute(sql, tuple(params))
    row: Row | None = await cur.fetchone()
    return row


async def fetch_all(conn: Connection, sql: str,
                    params: Sequence[Any] = ()) -> list[Row]:
    cur = await conn.execute(sql, tuple(params))
    return list(await cur.fetchall())


# -- typed rows ---------------------------------------------------------------------------

def service_type(r: Row) -> ServiceTypePublic:
    return ServiceTypePublic(id=r["id"], name_zh=r["name_zh"], name_en=r["name_en"],
                             duration_min=r["duration_min"],
                             unit_price_cents=r["unit_price_cents"],
                             accept_within_s=r["accept_within_s"],
                             arrive_within_s=r["arrive_within_s"],
                             min_visit_min=r["min_visit_min"], active=bool(r["active"]))


def provider(r: Row) -> ProviderPublic:
    return ProviderPublic(id=r["id"], district_id=r["district_id"], name=r["name"],
                          kind=r["kind"], phone=r["phone"],
                          communities=json.loads(r["communities"]),
                          service_types=json.loads(r["service_types"]),
                          active=bool(r["active"]))


def worker(r: Row) -> WorkerPublic:
    return WorkerPublic(id=r["id"], provider_id=r["provider_id"], name=r["name"],
                        phone=r["phone"], skills=json.loads(r["skills"]),
                        active=bool(r["active"]))


def rule(r: Row) -> EntitlementRulePublic:
    return EntitlementRulePublic(id=r["id"], district_id=r["district_id"],
                                 category=r["category"], label=r["label"],
                                 monthly_voucher_cents=r["monthly_voucher_cents"],
                                 service_types=json.loads(r["service_types"]),
                                 minimums=json.loads(r["minimums"]))


async def get_type(conn: Connection, type_id: str) -> ServiceTypePublic | None:
    row = await fetch_one(conn, "SELECT * FROM svc_types WHERE id = ?", (type_id,))
    return None if row is None else service_type(row)


# -- entitlement ----------------------------------------------------------------------------

def age_on(birth: date | None, day: date) -> int | None:
    if birth is None:
        return None
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def categories_of(resident: ResidentPublic, day: date) -> list[str]:
    """The resident's assessed categories plus the ones derived from age and living."""
    cats = [c.value for c in resident.categories]
    age = age_on(resident.birth_date, day)
    if age is not None and age >= 80:
        cats.append("age_80")
    if age is not None and age >= 90:
        cats.append("age_90")
    if resident.living_situation is LivingSituation.ALONE:
        cats.append("living_alone")
    return cats


def month_first_day(month: str) -> date:
    return date(int(month[:4]), int(month[5:7]), 1)


async def entitlement(conn: Connection, resident: ResidentPublic,
                      month: str) -> EntitlementPublic:
    """Rules matching any of the resident's categories: the highest allowance applies,
    the subsidised services are their union, each minimum the strictest of them."""
    cats = categories_of(resident, month_first_day(month))
    clause, params = in_list("category", cats)
    rows = await fetch_all(conn, "SELECT * FROM svc_entitlement_rules WHERE district_id = ?"
                           f" AND {clause} ORDER BY id", [resident.district_id, *params])
    rules = [rule(r) for r in rows]
    allowance = max((r.monthly_voucher_cents for r in rules), default=0)
    types = sorted({t for r in rules for t in r.service_types})
    mins: dict[str, dict[str, Any]] = {}
    for r in rules:
        for m in r.minimums:
            cur = mins.setdefault(m["service_type_id"], {"service_type_id": m["service_type_id"],
                                                         "times": 0, "minutes": 0})
            cur["times"] = max(cur["times"], int(m.get("times", 0)))
            cur["minutes"] = max(cur["minutes"], int(m.get("minutes", 0)))
    used = await used_cents(conn, resident.id, month)
    reserved = await reserved_cents(conn, resident.id, month)
    return EntitlementPublic(resident_id=resident.id, month=month, categories=cats,
                             rules=[r.id for r in rules], service_types=types,
                             allowance_cents=allowance, used_cents=used,
                             reserved_cents=reserved,
                             balance_cents=allowance - used - reserved,
                             minimums=sorted(mins.values(), key=lambda m: m["service_type_id"]))


async def used_cents(conn: Connection, resident_id: str, month: str) -> int:
    row = await fetch_one(conn, "SELECT COALESCE(SUM(amount_cents), 0) FROM svc_vouchers"
                          " WHERE resident_id = ? AND month = ?", (resident_id, month))
    return -int(row[0]) if row else 0


async def reserved_cents(conn: Connection, resident_id: str, month: str) -> int:
    """Voucher orders still open this month hold their price until they complete."""
    clause, params = in_list("status", [s.value for s in OPEN_ORDER])
    row = await fetch_one(conn, "SELECT COALESCE(SUM(price_cents), 0) FROM svc_orders"
                          f" WHERE resident_id = ? AND month = ? AND payment = ? AND {clause}",
                          (resident_id, month, Payment.VOUCHER.value, *params))
    return int(row[0]) if row else 0


# -- dispatch candidates ---------------------------------------------------------------------

async def overlapping(conn: Connection, worker_id: str, start: str, end: str,
                      exclude_order: str) -> str | None:
    """The id of an order that already holds the worker's time in [start, end)."""
    clause, params = in_list("status", [s.value for s in HOLDS_WORKER])
    row = await fetch_one(conn, "SELECT id FROM svc_orders WHERE worker_id = ? AND"
                          f" {clause} AND window_start < ? AND window_end > ? AND id <> ?",
                          (worker_id, *params, end, start, exclude_order))
    return None if row is None else str(row[0])
