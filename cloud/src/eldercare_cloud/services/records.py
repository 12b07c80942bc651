"""Records and statistics of the green half, computed from the stored rows (orders,
visits, vouchers, ratings), never from estimates. Reads of a resident's record go
through the registry, which audits them."""

from __future__ import annotations

from collections import Counter
from datetime import date

from eldercare_cloud.auth.models import Principal, Role
from eldercare_cloud.care.clock import parse_iso
from eldercare_cloud.db import Database
from eldercare_cloud.registry import RegistryService
from eldercare_cloud.services import catalogue as K
from eldercare_cloud.services.desk import ORDER_SELECT, ServiceDesk, day_bounds
from eldercare_cloud.services.errors import not_found
from eldercare_cloud.services.models import (
    LevelLine,
    OrderDetail,
    OrderStatus,
    ProviderMonth,
    ResidentLevel,
    ServiceLevels,
    VoucherEntry,
    VoucherStatement,
    WorkerDay,
)
from eldercare_cloud.visits import store as V

#: visits that count towards minimum service levels: verified by the home's devices, or
#: flagged and then accepted by a reviewer (a flagged visit is never silently counted)
COUNTED_VISITS = ("verified", "accepted")


class ServiceRecords:
    def __init__(self, db: Database, registry: RegistryService, desk: ServiceDesk) -> None:
        self._db = db
        self._registry = registry
        self._desk = desk

    async def resident_history(self, p: Principal, resident_id: str,
                               limit: int = 200) -> list[OrderDetail]:
        await self._registry.get_resident(p, resident_id, "service history")
        rows = await K.fetch_all(self._db.conn, f"{ORDER_SELECT} WHERE o.resident_id = ?"
                                 " ORDER BY o.window_start DESC LIMIT ?", (resident_id, limit))
        return [await self._desk.detail(r) for r in rows]

    async def voucher_statement(self, p: Principal, resident_id: str,
                                month: str) -> VoucherStatement:
        resident = await self._registry.get_resident(p, resident_id, "voucher statement")
        ent = await K.entitlement(self._db.conn, resident, month)
        rows = await K.fetch_all(self._db.conn, "SELECT * FROM svc_vouchers WHERE"
                                 " resident_id = ? AND month = ? ORDER BY ts, id",
                                 (resident_id, month))
        balance = ent.allowance_cents
        entries = []
        for r in rows:
            balance += int(r["amount_cents"])
            entries.append(VoucherEntry(ts=parse_iso(r["ts"]), kind=r["kind"],
                                        order_id=r["order_id"], amount_cents=r["amount_cents"],
                                        balance_cents=balance))
        return VoucherStatement(resident_id=resident_id, month=month,
                                allowance_cents=ent.allowance_cents, entries=entries,
                                used_cents=ent.allowance_cents - balance, balance_cents=balance)

    async def worker_day(self, p: Principal, worker_id: str, day: date) -> WorkerDay:
        row = await K.fetch_one(self._db.conn, "SELECT w.id, w.provider_id, p.district_id FROM"
                                " svc_workers w JOIN svc_providers p ON p.id = w.provider_id"
                                " WHERE w.id = ?", (worker_id,))
        if row is None or not await self._sees_worker(p, row["provider_id"], row["district_id"],
                                                      worker_id):
            raise not_found("worker", worker_id)
        lo, hi = day_bounds(day)
        rows = await K.fetch_all(self._db.conn, f"{ORDER_SELECT} WHERE o.worker_id = ? AND"
                                 " o.window_start >= ? AND o.window_start < ? AND o.status <> ?"
                                 " ORDER BY o.window_start",
                                 (worker_id, lo, hi, OrderStatus.CANCELLED.value))
        minutes = await V.worker_minutes(self._db.conn, worker_id, lo, hi)
        return WorkerDay(worker_id=worker_id, day=day,
                         orders=[await self._desk.order_public(r)
                                 for r in rows],
                         minutes=minutes)

    async def _sees_worker(self, p: Principal, provider_id: str, district_id: str,
                           worker_id: str) -> bool:
        if p.role in (Role.ADMIN, Role.OPERATOR):
            return district_id in await self._desk.districts_of(p)
        acct = await self._desk.account(p)
        if p.role is Role.PROVIDER:
            return acct.provider_id == provider_id
        if p.role is Role.WORKER:
            return acct.worker_id == worker_id
        return False

    async def provider_month(self, p: Principal, provider_id: str,
                             month: str) -> ProviderMonth:
        await self._desk.get_provider(p, provider_id)
        rows = await K.fetch_all(self._db.conn, "SELECT id, status, service_type_id,"
                                 " price_cents, payment FROM svc_orders WHERE provider_id = ?"
                                 " AND month = ?", (provider_id, month))
        visits = await V.of_orders(self._db.conn, [r["id"] for r in rows])
        ratings = await K.fetch_all(self._db.conn, "SELECT r.score FROM svc_ratings r JOIN"
                                    " svc_orders o ON o.id = r.order_id WHERE o.provider_id = ?"
                                    " AND o.month = ?", (provider_id, month))
        completed = [r for r in rows if r["status"] == OrderStatus.COMPLETED.value]
        vstatus = Counter(status for status, _ in visits.values())
        return ProviderMonth(
            provider_id=provider_id, month=month, orders=len(rows), completed=len(completed),
            verified=vstatus["verified"] + vstatus["accepted"], flagged=vstatus["flagged"],
            amount_cents=sum(int(r["price_cents"]) for r in completed),
            ratings=dict(Counter(r[0] for r in ratings)),
            by_service=dict(Counter(r["service_type_id"] for r in completed)))

    async def service_levels(self, p: Principal, district_id: str,
                             month: str) -> ServiceLevels:
        """Each entitled resident's minimum service levels for the month against the
        services they received (completed orders whose visit counts)."""
        if district_id not in await self._desk.districts_of(p):
            raise not_found("district", district_id)
        summaries = await self._registry.list_residents(p, district_id=district_id, limit=10000)
        out: list[ResidentLevel] = []
        for s in summaries:
            resident = await self._registry.resident_unscoped(s.id)
            if resident is None:
                continue
            ent = await K.entitlement(self._db.conn, resident, month)
            if not ent.minimums:
                continue
            orders = await K.fetch_all(
                self._db.conn, "SELECT id, service_type_id FROM svc_orders WHERE"
                " resident_id = ? AND month = ? AND status = ?",
                (resident.id, month, OrderStatus.COMPLETED.value))
            visits = await V.of_orders(self._db.conn, [o["id"] for o in orders])
            have: dict[str, list[float]] = {}
            for o in orders:
                status, minutes_done = visits.get(o["id"], ("", None))
                if status in COUNTED_VISITS:
                    have.setdefault(o["service_type_id"], []).append(minutes_done or 0.0)
            lines = []
            for m in ent.minimums:
                done = have.get(m["service_type_id"], [])
                times = len(done)
                minutes = float(sum(done))
                lines.append(LevelLine(
                    service_type_id=m["service_type_id"], required_times=m["times"],
                    required_minutes=m["minutes"], times=times, minutes=round(minutes, 1),
                    met=times >= m["times"] and minutes >= m["minutes"]))
            out.append(ResidentLevel(resident_id=resident.id, resident_name=resident.name,
                                     categories=ent.categories, lines=lines,
                                     met=all(line.met for line in lines)))
        return ServiceLevels(district_id=district_id, month=month, residents=out,
                             entitled=len(out), met=sum(1 for r in out if r.met))
