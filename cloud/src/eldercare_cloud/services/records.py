"""Records and statistics of the green half, computed from the stored rows (orders,
visits, vouchers, ratings), never from estimates. Reads of a resident's record go
through the registry, which audits them."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Any

from eldercare_cloud.auth.models import Principal, Role
from eldercare_cloud.clock import parse_iso
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
    Score,
    ServiceGroup,
    ServiceLevels,
    ServiceMonthFigures,
    VoucherEntry,
    VoucherStatement,
    WorkerDay,
)
from eldercare_cloud.visits import store as V

#: visits that count towards minimum service levels: verified by the home's devices, or
#: flagged and then accepted by a reviewer (a flagged visit is never silently counted)
COUNTED_VISITS = ("verified", "accepted")
#: the US federal home-care rule (21st Century Cures Act, EVV): at least 90 % of visits
#: verified electronically
EVV_STANDARD_PCT = 90.0
#: visit states after check-out; all but ``verified`` went through the flagged state
CLOSED_VISITS = ("verified", "flagged", "accepted", "rejected")


def _pct(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(100.0 * part / whole, 2)


def _groups(rows: list[Any], column: str, labels: dict[str, str]) -> list[ServiceGroup]:
    keys = sorted({r[column] or "-" for r in rows})
    out = []
    for k in keys:
        mine = [r for r in rows if (r[column] or "-") == k]
        out.append(ServiceGroup(
            key=k, label=labels.get(k, "未派单" if k == "-" else k), orders=len(mine),
            completed=sum(1 for r in mine if r["status"] == OrderStatus.COMPLETED.value),
            cancelled=sum(1 for r in mine if r["status"] == OrderStatus.CANCELLED.value)))
    return out


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
        return await self._levels(p, district_id, month)

    async def _levels(self, p: Principal, district_id: str, month: str) -> ServiceLevels:
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

    async def month_figures(self, p: Principal, district_ids: list[str],
                            months: list[str]) -> ServiceMonthFigures:
        """The desk's KPIs over whole months (``svc_orders.month``, the centre's local
        month of the window) in the given districts, for the records domain's report.

        READ-ONLY. ``district_ids`` is the caller's scope as the records domain resolved
        it; ``p`` scopes the register reads behind the service levels."""
        conn = self._db.conn
        dclause, dparams = K.in_list("o.district_id", district_ids)
        mclause, mparams = K.in_list("o.month", months)
        where = f"{dclause} AND {mclause}"
        params = [*dparams, *mparams]
        rows = await K.fetch_all(conn, "SELECT o.id, o.status, o.service_type_id,"
                                 " o.provider_id, o.window_start, o.accepted_at,"
                                 " o.checked_in_at, t.arrive_within_s FROM svc_orders o"
                                 f" JOIN svc_types t ON t.id = o.service_type_id WHERE {where}",
                                 params)
        types = {r["id"]: r["name_zh"] for r in await K.fetch_all(
            conn, "SELECT id, name_zh FROM svc_types", ())}
        providers = {r["id"]: r["name"] for r in await K.fetch_all(
            conn, "SELECT id, name FROM svc_providers", ())}
        # the arrive deadline the desk set on acceptance (check-in clears the column):
        # the later of the window's start and the acceptance, plus the type's arrive time
        arrived = [r for r in rows if r["checked_in_at"] is not None]
        on_time = sum(1 for r in arrived if parse_iso(r["checked_in_at"]) <= max(
            parse_iso(r["window_start"]), parse_iso(r["accepted_at"] or r["window_start"]))
            + timedelta(seconds=int(r["arrive_within_s"])))
        visits = await V.of_orders(conn, [r["id"] for r in rows])
        closed = [status for status, _ in visits.values() if status in CLOSED_VISITS]
        verified = closed.count("verified")
        verified_pct = _pct(verified, len(closed))
        ratings = await K.fetch_all(conn, "SELECT r.score, COUNT(*) AS n FROM svc_ratings r"
                                    f" JOIN svc_orders o ON o.id = r.order_id WHERE {where}"
                                    " GROUP BY r.score", params)
        scores = {s.value: 0 for s in Score}
        for r in ratings:
            scores[r["score"]] = int(r["n"])
        complaints = await K.fetch_all(conn, "SELECT f.status FROM svc_followups f JOIN"
                                       f" svc_orders o ON o.id = f.order_id WHERE {where}",
                                       params)
        debited = await K.fetch_one(conn, "SELECT COALESCE(SUM(v.amount_cents), 0) FROM"
                                    " svc_vouchers v JOIN svc_orders o ON o.id = v.order_id"
                                    f" WHERE v.kind = 'debit' AND {where}", params)
        entitled = met = 0
        for district_id in district_ids:
            for month in months:
                levels = await self._levels(p, district_id, month)
                entitled += levels.entitled
                met += levels.met
        return ServiceMonthFigures(
            months=months, orders=len(rows),
            completed=sum(1 for r in rows if r["status"] == OrderStatus.COMPLETED.value),
            cancelled=sum(1 for r in rows if r["status"] == OrderStatus.CANCELLED.value),
            by_type=_groups(rows, "service_type_id", types),
            by_provider=_groups(rows, "provider_id", providers),
            arrived=len(arrived), on_time=on_time, on_time_pct=_pct(on_time, len(arrived)),
            visits_closed=len(closed), verified=verified, verified_pct=verified_pct,
            evv_standard_pct=EVV_STANDARD_PCT,
            meets_evv_standard=(None if verified_pct is None
                                else verified_pct >= EVV_STANDARD_PCT),
            flagged=len(closed) - verified, flagged_open=closed.count("flagged"),
            ratings=scores, complaints=len(complaints),
            complaints_closed=sum(1 for c in complaints if c["status"] == "closed"),
            entitled_residents=entitled, levels_met=met, levels_met_pct=_pct(met, entitled),
            voucher_debited_cents=-int(debited[0]) if debited else 0)
