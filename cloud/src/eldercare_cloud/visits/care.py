"""Care visits (探访关爱): plans by a visible risk tier, tasks with a missed-visit ladder,
the ledger (台账) recorded from the visitor's phone, concerns and the time bank.

A care visit in person *is* a visit of the shared ``visits`` table: opened and closed
through ``visits.store`` with the task id as its order reference, judged by
``visits.verify`` against the same home-device evidence (the visitor's long press of
the green button, the door contact and motion in the window). The service desk's engine
asks this module (``long_press``/``has_active``, registered with
``ServiceDesk.add_visit_hook``) whether a long press or a door event at a home belongs
to a care visit, so one engine, one cursor and one evidence table serve both.

Every read of a resident's record goes through the registry (which audits it) or, for
the visitor's signed link, is audited here; scope is part of each query (a record
outside the caller's scope answers 404 like one that does not exist). All SQL here is
on ``cv_*`` tables; other domains are read through their service functions.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote

from eldercare_cloud.audit import AuditLog
from eldercare_cloud.auth.models import Principal, Role
from eldercare_cloud.auth.signing import sign, verify
from eldercare_cloud.care.models import ClosureCode, ResolveRequest
from eldercare_cloud.care.service import CareService
from eldercare_cloud.clock import Clock, iso, opt_parse, parse_iso
from eldercare_cloud.db import Connection, Database, Row
from eldercare_cloud.errors import ConflictError, InvalidRequestError, NotFoundError
from eldercare_cloud.notify.base import Channel, Outbound
from eldercare_cloud.registry import RegistryService
from eldercare_cloud.registry.models import ContactPublic, Relation, ResidentPublic
from eldercare_cloud.services.catalogue import LOCAL_TZ, fetch_all, fetch_one, in_list
from eldercare_cloud.services.desk import ServiceDesk
from eldercare_cloud.services.errors import DeskConflict, DeskInvalid, DeskNotFound
from eldercare_cloud.services.models import OrderCreate, OrderSource, Payment
from eldercare_cloud.visits import routine as R
from eldercare_cloud.visits import store as V
from eldercare_cloud.visits.care_models import (
    ArriveCreate,
    CareVisitFigures,
    ConcernClose,
    ConcernCreate,
    ConcernPublic,
    Coverage,
    CoverageRow,
    EntryCreate,
    EntryPublic,
    Mode,
    PairingCreate,
    PlanPublic,
    RedeemCreate,
    RiskPublic,
    RoutinePublic,
    RulePublic,
    TaskPublic,
    TaskStatus,
    TierRulePublic,
    TierRuleUpdate,
    TimebankRow,
    TimebankStatement,
    VisitorView,
)
from eldercare_cloud.visits.care_schema import MIGRATIONS
from eldercare_cloud.visits.risk import (
    DEFAULT_FREQUENCY,
    RULE_BY_ID,
    TIER_ZH,
    Assessment,
    Frequency,
    Tier,
    assess,
    facts_of,
)
from eldercare_cloud.visits.verify import Method

log = logging.getLogger(__name__)

#: an ``Row`` or a dict with the same keys (a plan made up on the fly)
RowLike = Any

LINK_PURPOSE = "care-visitor"
LINK_TTL = timedelta(days=31)
#: a missed visit climbs one step per this long: visitor, backup, community worker
STEP_AFTER = timedelta(hours=24)
#: the shortest in-person care visit that is not flagged too short
CARE_MIN_MINUTES = 10
CARE_SERVICE_TYPE = "care_visit"
#: how far ahead tasks are planned
#: visitor order when nobody is paired: volunteers, neighbours, grid workers, family
VISITOR_ORDER = (Relation.VOLUNTEER, Relation.NEIGHBOUR, Relation.GRID_WORKER, Relation.FAMILY)
STEP_ZH = {1: "提醒探访人", 2: "转备用探访人", 3: "转社区工作人员"}


@dataclass(frozen=True)
class _Who:
    contact_id: str
    name: str


def local_day(ts: datetime) -> date:
    return ts.astimezone(LOCAL_TZ).date()


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), LOCAL_TZ)


def month_of(ts: datetime) -> str:
    return ts.astimezone(LOCAL_TZ).strftime("%Y-%m")


def month_bounds(month: str) -> tuple[date, date]:
    first = date(int(month[:4]), int(month[5:7]), 1)
    nxt = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return first, nxt


def _rule(rule_id: str) -> RulePublic:
    r = RULE_BY_ID[rule_id]
    return RulePublic(id=r.id, tier=r.tier.value, zh=r.zh, en=r.en)


class CareVisits:
    def __init__(self, db: Database, clock: Clock, registry: RegistryService, audit: AuditLog,
                 care: CareService, desk: ServiceDesk, channels: Mapping[str, Channel], *,
                 secret_key: str, public_base_url: str, tenant: str) -> None:
        self._db = db
        self._clock = clock
        self._registry = registry
        self._audit = audit
        self._care = care
        self._desk = desk
        self._channels = channels
        self._secret = secret_key
        self._base_url = public_base_url.rstrip("/")
        self._tenant = tenant
        #: reads done by the engine and links on the system's behalf (audited as such)
        self.system = Principal(user_id="care-visits", username="care-visits",
                                role=Role.ADMIN, tenant=tenant)

    @property
    def clock(self) -> Clock:
        return self._clock

    async def migrate(self) -> None:
        await self._db.migrate("care_visits", MIGRATIONS)

    # -- scope ------------------------------------------------------------

    async def _districts(self, p: Principal) -> list[str]:
        return await self._desk.districts_of(p)

    async def _staff_district(self, p: Principal, district_id: str) -> None:
        if district_id not in await self._districts(p):
            raise _not_found("district", district_id)

    async def _scope(self, p: Principal, alias: str) -> tuple[str, list[Any]]:
        """Rows the caller may see: staff by district, family by their own elder."""
        if p.role is Role.FAMILY:
            return in_list(f"{alias}.resident_id", p.resident_ids)
        return in_list(f"{alias}.district_id", await self._districts(p))

    async def _audit_list(self, p: Principal, what: str, n: int) -> None:
        await self._audit.record(tenant=p.tenant, actor=p.actor, actor_name=p.username,
                                 role=p.role.value, action="list", record_type="resident",
                                 record_id="*", reason=f"care visits: {what} ({n} rows)")

    # -- tiers and frequencies ------------------------------------------------------------

    async def _frequency(self, district_id: str, tier: Tier) -> Frequency:
        row = await fetch_one(self._db.conn, "SELECT visit_every_days, call_every_days FROM"
                              " cv_tier_rules WHERE district_id = ? AND tier = ?",
                              (district_id, tier.value))
        if row is None:
            return DEFAULT_FREQUENCY[tier]
        return Frequency(int(row[0]), int(row[1]))

    async def tier_rules(self, p: Principal, district_id: str) -> list[TierRulePublic]:
        await self._staff_district(p, district_id)
        rows = {r["tier"]: r for r in await fetch_all(
            self._db.conn, "SELECT * FROM cv_tier_rules WHERE district_id = ?", (district_id,))}
        out = []
        for tier in Tier:
            f = DEFAULT_FREQUENCY[tier]
            r = rows.get(tier.value)
            out.append(TierRulePublic(
                district_id=district_id, tier=tier.value,
                visit_every_days=int(r["visit_every_days"]) if r else f.visit_every_days,
                call_every_days=int(r["call_every_days"]) if r else f.call_every_days,
                default=r is None))
        return out

    async def set_tier_rule(self, p: Principal, district_id: str, tier: Tier,
                            body: TierRuleUpdate) -> list[TierRulePublic]:
        await self._staff_district(p, district_id)
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO cv_tier_rules(district_id, tier, visit_every_days, call_every_days,"
                " updated_at) VALUES (?,?,?,?,?) ON CONFLICT (district_id, tier) DO UPDATE SET"
                " visit_every_days = excluded.visit_every_days, call_every_days ="
                " excluded.call_every_days, updated_at = excluded.updated_at",
                (district_id, tier.value, body.visit_every_days, body.call_every_days,
                 iso(self._clock.now())))
        return await self.tier_rules(p, district_id)

    async def assess(self, resident: ResidentPublic) -> Assessment:
        now = self._clock.now()
        since = now - timedelta(days=30)
        alerts = await self._care.list_alerts(self.system, resident_id=resident.id, limit=100)
        recent = sum(1 for a in alerts if a.opened_at >= since)
        row = await fetch_one(self._db.conn, "SELECT COUNT(*) FROM cv_concerns WHERE"
                              " resident_id = ? AND status = 'open'", (resident.id,))
        concerns = int(row[0]) if row else 0
        return assess(facts_of(resident, local_day(now), alerts_30d=recent,
                               open_concerns=concerns))

    async def risk(self, p: Principal, resident_id: str) -> RiskPublic:
        resident = await self._registry.get_resident(p, resident_id, "care-visit risk tier")
        a = await self.assess(resident)
        freq = await self._frequency(resident.district_id, a.tier)
        facts = a.facts
        return RiskPublic(
            resident_id=resident.id, tier=a.tier.value, tier_zh=TIER_ZH[a.tier],
            rule=_rule(a.rule) if a.rule else None, matched=[_rule(m) for m in a.matched],
            facts={"age": facts.age, "living_alone": facts.alone, "disabled": facts.disabled,
                   "semi_disabled": facts.semi_disabled, "dementia": facts.dementia,
                   "alerts_30d": facts.alerts_30d, "open_concerns": facts.open_concerns,
                   "categories": sorted(facts.categories)},
            visit_every_days=freq.visit_every_days, call_every_days=freq.call_every_days)

    # -- pairings and plans ------------------------------------------------------------

    async def set_pairing(self, p: Principal, resident_id: str,
                          body: PairingCreate) -> PlanPublic:
        resident = await self._registry.get_resident(p, resident_id, "care-visit pairing")
        contacts = {c.id for c in await self._registry.contacts_of(resident_id)}
        for cid in (body.visitor_contact_id, body.backup_contact_id):
            if cid is not None and cid not in contacts:
                raise DeskInvalid("contact_not_of_resident", f"contact {cid} is not one of"
                                  f" {resident_id}'s contacts", f"联系人 {cid} 不属于该老人")
        if body.backup_contact_id == body.visitor_contact_id:
            raise DeskInvalid("backup_same_as_visitor", "the backup must be another person",
                              "备用探访人不能与探访人相同")
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO cv_pairings(resident_id, visitor_contact_id, backup_contact_id,"
                " since, created_by) VALUES (?,?,?,?,?) ON CONFLICT (resident_id) DO UPDATE"
                " SET visitor_contact_id = excluded.visitor_contact_id, backup_contact_id ="
                " excluded.backup_contact_id, since = excluded.since, created_by ="
                " excluded.created_by",
                (resident_id, body.visitor_contact_id, body.backup_contact_id,
                 iso(self._clock.now()), p.actor))
        await self._plan_one(resident)
        return await self._plan_public(resident_id)

    @staticmethod
    def choose_visitors(contacts: Sequence[ContactPublic], paired: tuple[str, str | None] | None,
                        ) -> tuple[str | None, str | None, str | None]:
        """(visitor, backup, community worker): the pairing when there is one, else the
        contacts in ``VISITOR_ORDER`` then priority; the worker is the first grid worker."""
        ranked = sorted(contacts, key=lambda c: (VISITOR_ORDER.index(c.relation)
                                                 if c.relation in VISITOR_ORDER else 9,
                                                 c.priority, c.id))
        worker = next((c.id for c in ranked if c.relation is Relation.GRID_WORKER), None)
        visitor: str | None
        backup: str | None
        if paired is not None:
            visitor, backup = paired
        else:
            visitor = ranked[0].id if ranked else None
            backup = None
        if backup is None:
            backup = next((c.id for c in ranked if c.id != visitor and c.id != worker),
                          None) or next((c.id for c in ranked if c.id != visitor), None)
        return visitor, backup, worker

    async def _plan_one(self, resident: ResidentPublic) -> Assessment:
        a = await self.assess(resident)
        freq = await self._frequency(resident.district_id, a.tier)
        pair = await fetch_one(self._db.conn, "SELECT visitor_contact_id, backup_contact_id"
                               " FROM cv_pairings WHERE resident_id = ?", (resident.id,))
        contacts = await self._registry.contacts_of(resident.id)
        visitor, backup, worker = self.choose_visitors(
            contacts, (pair[0], pair[1]) if pair else None)
        now = self._clock.now()
        active = a.tier is not Tier.NONE and visitor is not None
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO cv_plans(resident_id, household_id, community_id, district_id,"
                " tier, rule, matched, visit_every_days, call_every_days, visitor_contact_id,"
                " backup_contact_id, worker_contact_id, paired, start_date, active, updated_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (resident_id) DO UPDATE"
                " SET tier = excluded.tier, rule = excluded.rule, matched = excluded.matched,"
                " visit_every_days = excluded.visit_every_days, call_every_days ="
                " excluded.call_every_days, visitor_contact_id = excluded.visitor_contact_id,"
                " backup_contact_id = excluded.backup_contact_id, worker_contact_id ="
                " excluded.worker_contact_id, paired = excluded.paired, active ="
                " excluded.active, updated_at = excluded.updated_at",
                (resident.id, resident.household_id, resident.community_id,
                 resident.district_id, a.tier.value, a.rule, json.dumps(list(a.matched)),
                 freq.visit_every_days, freq.call_every_days, visitor, backup, worker,
                 int(pair is not None), local_day(now).isoformat(), int(active), iso(now)))
        return a

    async def generate_plans(self, p: Principal, district_id: str) -> list[PlanPublic]:
        """Each resident of the district gets (or updates) a plan from their tier now; the
        engine then schedules its visits and calls."""
        await self._staff_district(p, district_id)
        summaries = await self._registry.list_residents(p, district_id=district_id, limit=5000)
        for s in summaries:
            resident = await self._registry.get_resident(p, s.id, "care-visit plan")
            await self._plan_one(resident)
        await self.schedule()
        return await self.list_plans(p, district_id=district_id)

    async def replan(self) -> int:
        """Every existing plan re-assessed from the record as it is now (a new alert, an
        open concern or a birthday changes the tier); the read is audited as the
        system's. Pairings and visitors are kept; returns how many tiers changed."""
        rows = await fetch_all(self._db.conn, "SELECT resident_id, tier FROM cv_plans")
        changed = 0
        for r in rows:
            try:
                resident = await self._registry.get_resident(self.system, r["resident_id"],
                                                             "care-visit daily re-plan")
            except NotFoundError:
                continue  # the resident left the registry; the plan stays as it was
            a = await self._plan_one(resident)
            changed += a.tier.value != r["tier"]
        return changed

    async def _plan_public(self, resident_id: str) -> PlanPublic:
        row = await fetch_one(self._db.conn, "SELECT * FROM cv_plans WHERE resident_id = ?",
                              (resident_id,))
        if row is None:
            raise _not_found("plan", resident_id)
        return await self._plan_row(row)

    async def _plan_row(self, r: Row) -> PlanPublic:
        summary = await self._registry.resident_summary(r["resident_id"])

        async def name(cid: str | None) -> str | None:
            contact = await self._registry.contact(cid) if cid else None
            return contact.name if contact else None

        return PlanPublic(
            resident_id=r["resident_id"], resident_name=summary.name if summary else "",
            household_id=r["household_id"], community_id=r["community_id"],
            district_id=r["district_id"], tier=r["tier"], rule=r["rule"],
            matched=json.loads(r["matched"]), visit_every_days=r["visit_every_days"],
            call_every_days=r["call_every_days"], visitor_contact_id=r["visitor_contact_id"],
            backup_contact_id=r["backup_contact_id"],
            worker_contact_id=r["worker_contact_id"],
            visitor_name=await name(r["visitor_contact_id"]),
            backup_name=await name(r["backup_contact_id"]),
            worker_name=await name(r["worker_contact_id"]), paired=bool(r["paired"]),
            start_date=date.fromisoformat(r["start_date"]), active=bool(r["active"]))

    async def list_plans(self, p: Principal, *, district_id: str | None = None,
                         community_id: str | None = None) -> list[PlanPublic]:
        clause, params = await self._scope(p, "p")
        sql = f"SELECT * FROM cv_plans p WHERE {clause}"
        for col, value in (("district_id", district_id), ("community_id", community_id)):
            if value is not None:
                sql += f" AND p.{col} = ?"
                params.append(value)
        rows = await fetch_all(self._db.conn, sql + " ORDER BY p.district_id, p.resident_id",
                               params)
        await self._audit_list(p, "plans", len(rows))
        return [await self._plan_row(r) for r in rows]

    # -- scheduling ------------------------------------------------------------

    async def schedule(self) -> int:
        """For every active plan and mode, make sure the next task exists: due ``every``
        days after the last one done (a visit also counts as that day's call), the first
        one within the first period of the plan. Idempotent (UNIQUE per day)."""
        now = self._clock.now()
        made = 0
        for plan in await fetch_all(self._db.conn, "SELECT * FROM cv_plans WHERE active = 1"):
            for mode, every in ((Mode.IN_PERSON, plan["visit_every_days"]),
                                (Mode.PHONE, plan["call_every_days"])):
                if every <= 0:
                    continue
                open_row = await fetch_one(
                    self._db.conn, "SELECT 1 FROM cv_tasks WHERE resident_id = ? AND mode = ?"
                    " AND reason = 'plan' AND status = 'open'", (plan["resident_id"], mode.value))
                if open_row is not None:
                    continue
                modes = [Mode.IN_PERSON.value] if mode is Mode.IN_PERSON else [
                    Mode.IN_PERSON.value, Mode.PHONE.value]
                mclause, mparams = in_list("mode", modes)
                last = await fetch_one(
                    self._db.conn, f"SELECT MAX(done_at) FROM cv_tasks WHERE resident_id = ?"
                    f" AND status = 'done' AND {mclause}", (plan["resident_id"], *mparams))
                if last is not None and last[0] is not None:
                    anchor = local_day(parse_iso(last[0]))
                else:
                    anchor = date.fromisoformat(plan["start_date"]) - timedelta(days=1)
                due = max(anchor + timedelta(days=every), local_day(now))
                made += await self._insert_task(plan, mode, "plan", None, due)
        return made

    async def _insert_task(self, plan: RowLike, mode: Mode, reason: str,
                           concern_id: str | None, due: date,
                           assignee: str | None = None, alert_id: str | None = None) -> int:
        now = self._clock.now()
        due_at = day_start(due + timedelta(days=1))
        task_id = f"CV-{now:%y%m%d}-{secrets.token_hex(4)}"
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO cv_tasks(id, resident_id, household_id, community_id, district_id,"
                " mode, reason, concern_id, alert_id, due_date, due_at, visitor_contact_id,"
                " backup_contact_id, worker_contact_id, assignee_contact_id, status, step,"
                " next_step_at, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT (resident_id, mode, reason, due_date) DO NOTHING RETURNING id",
                (task_id, plan["resident_id"], plan["household_id"], plan["community_id"],
                 plan["district_id"], mode.value, reason, concern_id, alert_id, due.isoformat(),
                 iso(due_at), plan["visitor_contact_id"], plan["backup_contact_id"],
                 plan["worker_contact_id"], assignee or plan["visitor_contact_id"],
                 TaskStatus.OPEN.value, 0, iso(due_at), iso(now)))
            # RETURNING, not rowcount: one portable way to know whether the row was new
            return 1 if await cur.fetchone() is not None else 0

    # -- the missed-visit ladder ---------------------------------------------------------------

    async def next_due(self) -> datetime | None:
        row = await fetch_one(self._db.conn, "SELECT MIN(next_step_at) FROM cv_tasks WHERE"
                              " status = 'open' AND next_step_at IS NOT NULL")
        return opt_parse(row[0]) if row is not None else None

    async def run_due(self) -> int:
        """Each open task past its step time climbs one step (in its own transaction):
        1 remind the visitor, 2 hand it to the backup, 3 to the community worker. The
        timer is the row, so a restart resumes where it stopped."""
        now = self._clock.now()
        rows = await fetch_all(self._db.conn, "SELECT id FROM cv_tasks WHERE status = 'open'"
                               " AND next_step_at IS NOT NULL AND next_step_at <= ?"
                               " ORDER BY next_step_at LIMIT 500", (iso(now),))
        stepped = 0
        for r in rows:
            async with self._db.transaction() as conn:
                task = await fetch_one(conn, "SELECT * FROM cv_tasks WHERE id = ?", (r[0],))
                if (task is None or task["status"] != "open" or task["next_step_at"] is None
                        or task["next_step_at"] > iso(now)):
                    continue
                step = int(task["step"]) + 1
                target = {1: task["visitor_contact_id"], 2: task["backup_contact_id"],
                          3: task["worker_contact_id"]}.get(step)
                nxt = iso(now + STEP_AFTER) if step < 3 else None
                await conn.execute(
                    "UPDATE cv_tasks SET step = ?, next_step_at = ?, assignee_contact_id ="
                    " COALESCE(?, assignee_contact_id) WHERE id = ?",
                    (step, nxt, target, task["id"]))
                if target is not None:
                    contact = await self._registry.contact(target)
                    if contact is not None:
                        await conn.execute(
                            "INSERT INTO cv_reminders(task_id, step, contact_id, address, text,"
                            " status, created_at) VALUES (?,?,?,?,?,?,?) ON CONFLICT"
                            " (task_id, step) DO NOTHING",
                            (task["id"], step, target, contact.phone,
                             await self._reminder_text(task, step, target), "pending",
                             iso(now)))
                stepped += 1
        await self.send_reminders()
        return stepped

    async def _reminder_text(self, task: RowLike, step: int, contact_id: str) -> str:
        summary = await self._registry.resident_summary(task["resident_id"])
        name = summary.name if summary else task["resident_id"]
        mode = "上门探访" if task["mode"] == Mode.IN_PERSON.value else "电话问候"
        link = self.visitor_url(contact_id)
        return (f"【探访提醒·{STEP_ZH.get(step, '')}】{name}的{mode}应于{task['due_date']}"
                f"完成，尚未记录。请尽快探访并登记：{link}")

    async def send_reminders(self) -> int:
        """Each reminder is sent once through the SMS channel and marked sent or failed
        (a failed one is shown on the console; the ladder does not wait for it)."""
        channel = self._channels.get("sms")
        rows = await fetch_all(self._db.conn, "SELECT * FROM cv_reminders WHERE status ="
                               " 'pending' ORDER BY id LIMIT 100")
        sent = 0
        for r in rows:
            error: str | None
            if channel is None:
                status, error = "failed", "no sms channel"
            else:
                result = await channel.send(Outbound(
                    notification_id=f"cv-reminder-{r['id']}", alert_id=r["task_id"],
                    channel="sms", address=r["address"], text=r["text"], link=None))
                status = "sent" if result.status != "failed" else "failed"
                error = result.error
            async with self._db.transaction() as conn:
                await conn.execute("UPDATE cv_reminders SET status = ?, error = ?, sent_at = ?"
                                   " WHERE id = ?", (status, error, iso(self._clock.now()),
                                                     r["id"]))
            sent += status == "sent"
        return sent

    # -- tasks ------------------------------------------------------------

    async def _task_public(self, r: RowLike) -> TaskPublic:
        summary = await self._registry.resident_summary(r["resident_id"])
        visit = await V.by_order(self._db.conn, r["id"])
        due_at = parse_iso(r["due_at"])
        return TaskPublic(
            id=r["id"], resident_id=r["resident_id"],
            resident_name=summary.name if summary else "",
            address=summary.address if summary else "", community_id=r["community_id"],
            district_id=r["district_id"], mode=r["mode"], reason=r["reason"],
            concern_id=r["concern_id"], due_date=date.fromisoformat(r["due_date"]),
            due_at=due_at, visitor_contact_id=r["visitor_contact_id"],
            backup_contact_id=r["backup_contact_id"],
            worker_contact_id=r["worker_contact_id"],
            assignee_contact_id=r["assignee_contact_id"], status=r["status"], step=r["step"],
            overdue=r["status"] == "open" and self._clock.now() >= due_at,
            alert_id=r["alert_id"],
            next_step_at=opt_parse(r["next_step_at"]), done_at=opt_parse(r["done_at"]),
            entry_id=r["entry_id"], visit_status=visit["status"] if visit else None)

    async def list_tasks(self, p: Principal, *, district_id: str | None = None,
                         status: TaskStatus | None = None,
                         overdue_only: bool = False) -> list[TaskPublic]:
        clause, params = await self._scope(p, "t")
        sql = f"SELECT * FROM cv_tasks t WHERE {clause}"
        if district_id is not None:
            sql += " AND t.district_id = ?"
            params.append(district_id)
        if status is not None:
            sql += " AND t.status = ?"
            params.append(status.value)
        if overdue_only:
            sql += " AND t.status = 'open' AND t.due_at <= ?"
            params.append(iso(self._clock.now()))
        rows = await fetch_all(self._db.conn, sql + " ORDER BY t.due_date, t.id LIMIT 1000",
                               params)
        await self._audit_list(p, "tasks", len(rows))
        return [await self._task_public(r) for r in rows]

    # -- the visitor's signed link -------------------------------------------------------------

    def visitor_token(self, contact_id: str) -> str:
        return sign(self._secret, LINK_PURPOSE, {"c": contact_id},
                    self._clock.now() + LINK_TTL)

    def visitor_url(self, contact_id: str) -> str:
        return f"{self._base_url}/visit/?token={quote(self.visitor_token(contact_id))}"

    async def visitor_link(self, p: Principal, contact_id: str) -> dict[str, str]:
        """Staff hand a visitor their link (scoped to the contact, valid a month)."""
        contact = await self._registry.contact(contact_id)
        if contact is None:
            raise _not_found("contact", contact_id)
        summary = await self._registry.resident_summary(contact.resident_id)
        if summary is None or summary.district_id not in await self._districts(p):
            raise _not_found("contact", contact_id)
        token = self.visitor_token(contact_id)
        return {"url": f"{self._base_url}/visit/?token={quote(token)}", "token": token,
                "contact_id": contact_id}

    async def _visitor(self, token: str) -> _Who:
        claims = verify(self._secret, LINK_PURPOSE, token, self._clock.now())
        cid = claims.get("c")
        if not isinstance(cid, str):
            raise DeskInvalid("link_malformed", "the link names no visitor", "链接无效")
        contact = await self._registry.contact(cid)
        if contact is None:
            raise _not_found("contact", cid)
        return _Who(cid, contact.name)

    async def _visitor_audit(self, who: _Who, resident_id: str, reason: str) -> None:
        await self._audit.record(tenant=self._tenant, actor=f"visitor:{who.contact_id}",
                                 actor_name=who.name, role=Role.VOLUNTEER.value,
                                 action="read", record_type="resident", record_id=resident_id,
                                 reason=reason)

    async def _mine(self, who: _Who) -> list[Row]:
        return await fetch_all(
            self._db.conn, "SELECT * FROM cv_tasks WHERE (visitor_contact_id = ? OR"
            " assignee_contact_id = ?) AND (status = 'open' OR done_at >= ?)"
            " ORDER BY status DESC, due_date, id LIMIT 200",
            (who.contact_id, who.contact_id, iso(self._clock.now() - timedelta(days=7))))

    async def visitor_view(self, token: str) -> VisitorView:
        who = await self._visitor(token)
        rows = await self._mine(who)
        for rid in sorted({r["resident_id"] for r in rows}):
            await self._visitor_audit(who, rid, "care visits (visitor link)")
        return VisitorView(contact_id=who.contact_id, name=who.name,
                           tasks=[await self._task_public(r) for r in rows],
                           hours=await self._statement(who.contact_id, who.name),
                           service_types=[{"id": st.id, "name_zh": st.name_zh,
                                           "name_en": st.name_en}
                                          for st in await self._desk.list_types()
                                          if st.active])

    async def _task_for(self, who: _Who, task_id: str) -> Row:
        row = await fetch_one(self._db.conn, "SELECT * FROM cv_tasks WHERE id = ?", (task_id,))
        if row is None:
            raise _not_found("task", task_id)
        allowed = {row["visitor_contact_id"], row["assignee_contact_id"]}
        if row["step"] >= 2:
            allowed.add(row["backup_contact_id"])
        if row["step"] >= 3:
            allowed.add(row["worker_contact_id"])
        if who.contact_id not in allowed:
            raise DeskInvalid("task_other_visitor", f"task {task_id} is not assigned to"
                              f" {who.contact_id}", "该探访任务不属于您")
        return row

    async def arrive(self, token: str, task_id: str, body: ArriveCreate) -> TaskPublic:
        """The visitor's "到达" on the phone: the shared visit opens (method phone)."""
        who = await self._visitor(token)
        task = await self._task_for(who, task_id)
        if task["mode"] != Mode.IN_PERSON.value:
            raise DeskInvalid("not_in_person", "a phone call has no arrival", "电话问候无需签到")
        if task["status"] != TaskStatus.OPEN.value:
            raise DeskConflict("task_done", f"task {task_id} is already recorded", "该任务已登记")
        await self._visitor_audit(who, task["resident_id"], f"care visit {task_id} arrival")
        now = self._clock.now()
        async with self._db.transaction() as conn:
            if await V.by_order(conn, task_id) is not None:
                raise DeskConflict("already_checked_in", f"task {task_id} is already"
                                   " checked in", "已签到")
            await self._open_visit(conn, task, who.contact_id, now, Method.PHONE,
                                   body.latitude, body.longitude)
        return await self._task_public(await self._task_row(task_id))

    async def _task_row(self, task_id: str) -> Row:
        row = await fetch_one(self._db.conn, "SELECT * FROM cv_tasks WHERE id = ?", (task_id,))
        assert row is not None
        return row

    async def _open_visit(self, conn: Connection, task: RowLike,
                          visitor: str, at: datetime, method: Method, lat: float | None,
                          lon: float | None) -> str:
        summary = await self._registry.resident_summary(task["resident_id"])
        due = date.fromisoformat(task["due_date"])
        created = local_day(parse_iso(task["created_at"]))
        return await V.open_visit(
            conn, order_id=task["id"], service_type_id=CARE_SERVICE_TYPE,
            resident_id=task["resident_id"], household_id=task["household_id"],
            district_id=task["district_id"], address=summary.address if summary else "",
            provider_id=f"community:{task['community_id']}", worker_id=visitor,
            window_start=iso(day_start(min(created, due))), window_end=task["due_at"],
            min_minutes=CARE_MIN_MINUTES, check_in_at=at, method=method, lat=lat, lon=lon,
            now=self._clock.now())

    async def record(self, token: str, task_id: str, body: EntryCreate) -> EntryPublic:
        who = await self._visitor(token)
        task = await self._task_for(who, task_id)
        await self._visitor_audit(who, task["resident_id"], f"care visit {task_id} record")
        return await self._record(task, who, body)

    async def _record(self, task: Row, who: _Who, body: EntryCreate) -> EntryPublic:
        now = self._clock.now()
        task_id = task["id"]
        if task["status"] != TaskStatus.OPEN.value:
            raise DeskConflict("task_done", f"task {task_id} is already recorded", "该任务已登记")
        # a planned call answered by a visit in person is allowed (the better of the two)
        if body.mode is Mode.PHONE and task["mode"] == Mode.IN_PERSON.value:
            raise DeskInvalid("visit_needs_person", "a planned visit in person cannot be"
                              " recorded as a phone call", "上门探访任务不能以电话问候登记")
        visit = await V.by_order(self._db.conn, task_id)
        ended = body.ended_at or now
        started = body.started_at or (parse_iso(visit["check_in_at"]) if visit else None)
        if started is None:
            if body.mode is Mode.IN_PERSON:
                raise DeskInvalid("start_required", "an in-person visit without a check-in"
                                  " needs started_at", "未签到的上门探访请填写开始时间")
            started = ended
        for ts in (started, ended):
            if ts > now + timedelta(minutes=1):
                raise DeskInvalid("time_in_future", "a visit cannot be recorded in the future",
                                  "探访时间不能晚于当前时间")
        if ended < started:
            raise DeskInvalid("end_before_start", "the end is earlier than the start",
                              "结束时间早于开始时间")
        if ended - started > timedelta(hours=12):
            raise DeskInvalid("too_long", "a visit longer than 12 hours", "探访时长超过12小时")
        if (visit is not None and visit["check_out_at"] is None
                and ended < parse_iso(visit["check_in_at"])):
            raise DeskInvalid("end_before_start", "the end is earlier than the check-in",
                              "结束时间早于签到时间")
        order_id = None
        fu = body.followups
        if fu.service_order is not None:
            # through the service desk (a refusal there changes nothing here either)
            order = await self._desk.create_order(self.system, OrderCreate(
                resident_id=task["resident_id"], service_type_id=fu.service_order.service_type_id,
                window_start=fu.service_order.window_start,
                window_end=fu.service_order.window_end, source=OrderSource.PHONE,
                payment=Payment.VOUCHER,
                note=f"探访跟进 {task_id}（{who.name}）", dispatch=True))
            order_id = order.id
        summary = await self._registry.resident_summary(task["resident_id"])
        entry_id = f"CE-{now:%y%m%d}-{secrets.token_hex(4)}"
        concern_id = None
        credited = 0.0
        async with self._db.transaction() as conn:
            # re-read inside the transaction: two submissions of one visit record it once
            fresh = await fetch_one(conn, "SELECT status FROM cv_tasks WHERE id = ?", (task_id,))
            if fresh is None or fresh["status"] != TaskStatus.OPEN.value:
                raise DeskConflict("task_done", f"task {task_id} is already recorded",
                                   "该任务已登记")
            verification, flags = "phone", []
            visit_id = None
            if body.mode is Mode.IN_PERSON:
                if visit is None:
                    await self._open_visit(conn, task, who.contact_id, started, Method.PHONE,
                                           None, None)
                    visit = await V.by_order(conn, task_id)
                    assert visit is not None
                if visit["check_out_at"] is None:
                    await V.close_visit(conn, visit, check_out_at=ended, method=Method.PHONE,
                                        note=body.note, now=now)
                visit = await V.by_order(conn, task_id)
                assert visit is not None
                visit_id = visit["id"]
                verification = visit["status"]
                flags = json.loads(visit["flags"])
                started = parse_iso(visit["check_in_at"])
                ended = parse_iso(visit["check_out_at"])
            if fu.concern:
                concern_id = await self._insert_concern(
                    conn, task, R.ConcernKind.VISITOR, local_day(now), fu.concern,
                    {"entry_id": entry_id, "visitor": who.name}, f"visitor:{who.contact_id}")
            await conn.execute(
                "INSERT INTO cv_entries(id, task_id, resident_id, resident_name, community_id,"
                " district_id, month, visitor_contact_id, visitor_name, mode, started_at,"
                " ended_at, visit_id, verification, findings, note, record_note, order_id,"
                " concern_id, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (entry_id, task_id, task["resident_id"], summary.name if summary else "",
                 task["community_id"], task["district_id"], month_of(started),
                 who.contact_id, who.name, body.mode.value, iso(started), iso(ended),
                 visit_id, verification, json.dumps({**body.findings.model_dump(mode="json"),
                                                     "flags": flags}, ensure_ascii=False),
                 body.note, fu.record_note, order_id, concern_id, iso(now)))
            await conn.execute(
                "UPDATE cv_tasks SET status = ?, done_at = ?, entry_id = ?, next_step_at = NULL"
                " WHERE id = ?", (TaskStatus.DONE.value, iso(ended), entry_id, task_id))
            if task["concern_id"] is not None:
                await conn.execute(
                    "UPDATE cv_concerns SET status = 'closed', closed_at = ?, resolution = ?"
                    " WHERE id = ? AND status = 'open'",
                    (iso(now), f"{entry_id}: {body.note or verification}"[:1000],
                     task["concern_id"]))
            contact = await self._registry.contact(who.contact_id)
            if (verification == "verified" and contact is not None
                    and contact.relation is Relation.VOLUNTEER):
                credited = round((ended - started).total_seconds() / 60.0, 1)
                await conn.execute(
                    "INSERT INTO cv_timebank(contact_id, kind, minutes, entry_id, note, actor, ts)"
                    " VALUES (?,?,?,?,?,?,?) ON CONFLICT (entry_id) DO NOTHING",
                    (who.contact_id, "credit", credited, entry_id, f"探访 {task_id}",
                     "system", iso(now)))
        if task["alert_id"] is not None:
            await self._resolve_alert(task["alert_id"], entry_id, who, body)
        log.info("care visit %s recorded by %s (%s, %s, %.1f min credited)", task_id,
                 who.contact_id, body.mode.value, verification, credited)
        return await self._entry(entry_id)

    async def _resolve_alert(self, alert_id: str, entry_id: str, who: _Who,
                             body: EntryCreate) -> None:
        """The visit's outcome resolves the alert it answered (through the care core)."""
        note = f"探访 {entry_id}（{who.name}）：{body.note}"[:2000]
        try:
            await self._care.resolve(self.system, alert_id, ResolveRequest(
                closure_code=ClosureCode.HELPED_AT_HOME, note=note))
        except (ConflictError, InvalidRequestError, NotFoundError) as exc:
            # already resolved or closed by someone else meanwhile: the entry stands
            log.info("alert %s not resolved by visit %s: %s", alert_id, entry_id, exc)

    # -- the device hooks (asked by the service desk's engine, in its transaction) ----------

    async def _active_task(self, conn: Connection, household_id: str,
                           at: datetime) -> Row | None:
        """The open in-person task of a home that a press or a door event belongs to: one
        due today or overdue (a visit before its due day is early, still welcome)."""
        return await fetch_one(
            conn, "SELECT * FROM cv_tasks WHERE household_id = ? AND status = 'open' AND"
            " mode = ? AND due_date <= ? ORDER BY due_date, id LIMIT 1",
            (household_id, Mode.IN_PERSON.value,
             (local_day(at) + timedelta(days=7)).isoformat()))

    async def has_active(self, conn: Connection, household_id: str,
                         at: datetime) -> bool:
        return await self._active_task(conn, household_id, at) is not None

    async def long_press(self, conn: Connection, household_id: str, device_id: str,
                         at: datetime) -> str | None:
        """The visitor's long press: checks in (opens the shared visit) or, with the visit
        open, checks out; the ledger entry comes from the phone page afterwards."""
        task = await self._active_task(conn, household_id, at)
        if task is None:
            return None
        visit = await V.by_order(conn, task["id"])
        if visit is None:
            await self._open_visit(conn, task, task["assignee_contact_id"]
                                   or task["visitor_contact_id"], at, Method.BUTTON, None, None)
        elif visit["check_out_at"] is None:
            if at < parse_iso(visit["check_in_at"]):
                return None
            await V.close_visit(conn, visit, check_out_at=at, method=Method.BUTTON, note="",
                                now=self._clock.now())
        else:
            return None  # visit closed, waiting for the visitor's record: an ordinary press
        return str(task["id"])

    # -- the ledger ------------------------------------------------------------

    def _entry_public(self, r: RowLike) -> EntryPublic:
        findings = json.loads(r["findings"])
        flags = findings.pop("flags", [])
        return EntryPublic(
            id=r["id"], task_id=r["task_id"], resident_id=r["resident_id"],
            resident_name=r["resident_name"], community_id=r["community_id"],
            district_id=r["district_id"], month=r["month"],
            visitor_contact_id=r["visitor_contact_id"], visitor_name=r["visitor_name"],
            mode=r["mode"], started_at=parse_iso(r["started_at"]),
            ended_at=parse_iso(r["ended_at"]), visit_id=r["visit_id"],
            verification=r["verification"], flags=flags, findings=findings, note=r["note"],
            record_note=r["record_note"], order_id=r["order_id"], concern_id=r["concern_id"],
            created_at=parse_iso(r["created_at"]))

    async def _entry(self, entry_id: str) -> EntryPublic:
        row = await fetch_one(self._db.conn, "SELECT * FROM cv_entries WHERE id = ?",
                              (entry_id,))
        assert row is not None
        return self._entry_public(row)

    async def ledger(self, p: Principal, *, district_id: str | None = None,
                     community_id: str | None = None, month: str | None = None,
                     q: str | None = None, resident_id: str | None = None,
                     limit: int = 2000) -> list[EntryPublic]:
        clause, params = await self._scope(p, "e")
        sql = f"SELECT * FROM cv_entries e WHERE {clause}"
        for col, value in (("district_id", district_id), ("community_id", community_id),
                           ("month", month), ("resident_id", resident_id)):
            if value is not None:
                sql += f" AND e.{col} = ?"
                params.append(value)
        if q:
            needle = f"%{q.lower()}%"
            sql += (" AND (lower(e.resident_name) LIKE ? OR lower(e.visitor_name) LIKE ? OR"
                    " lower(e.note) LIKE ? OR lower(e.findings) LIKE ?)")
            params += [needle] * 4
        rows = await fetch_all(self._db.conn, sql + " ORDER BY e.started_at DESC LIMIT ?",
                               [*params, limit])
        await self._audit_list(p, "ledger", len(rows))
        return [self._entry_public(r) for r in rows]

    async def ledger_csv(self, p: Principal, *, district_id: str, community_id: str | None,
                         month: str) -> str:
        await self._staff_district(p, district_id)
        entries = await self.ledger(p, district_id=district_id, community_id=community_id,
                                    month=month)
        out = io.StringIO()
        w = csv.writer(out)
        heads = ("health", "mood", "food", "money", "home_safety", "needs")
        w.writerow(["编号", "社区", "老人", "探访人", "方式", "开始", "结束", "核验", "标记",
                    *[f"{h}" for h in heads], "备注", "服务工单", "关注事项"])
        for e in sorted(entries, key=lambda e: e.started_at):
            w.writerow([e.id, e.community_id, e.resident_name, e.visitor_name, e.mode,
                        e.started_at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M"),
                        e.ended_at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M"),
                        e.verification, ";".join(e.flags),
                        *[_finding(e.findings.get(h)) for h in heads], e.note,
                        e.order_id or "", e.concern_id or ""])
        return out.getvalue()

    async def coverage(self, p: Principal, district_id: str, month: str) -> Coverage:
        """Share of the month's planned tasks done by their due time, per community and per
        visitor (the one who recorded it; a missed task counts against its assignee)."""
        await self._staff_district(p, district_id)
        first, nxt = month_bounds(month)
        rows = await fetch_all(
            self._db.conn, "SELECT t.community_id, t.assignee_contact_id, t.status, t.done_at,"
            " t.due_at, e.visitor_contact_id FROM cv_tasks t LEFT JOIN cv_entries e ON"
            " e.id = t.entry_id WHERE t.district_id = ? AND t.due_date >= ? AND"
            " t.due_date < ? AND t.reason = 'plan'",
            (district_id, first.isoformat(), nxt.isoformat()))
        now = iso(self._clock.now())
        by_c: dict[str, list[str]] = {}
        by_v: dict[str, list[str]] = {}
        for r in rows:
            if r["status"] == "done":
                outcome = "on_time" if r["done_at"] < r["due_at"] else "late"
            elif r["due_at"] <= now:
                outcome = "missed"
            else:
                continue  # not due yet
            by_c.setdefault(r["community_id"], []).append(outcome)
            who = r["visitor_contact_id"] or r["assignee_contact_id"] or "-"
            by_v.setdefault(who, []).append(outcome)
        communities = {c.id: c.name for c in await self._registry.list_communities(
            p, district_id=district_id)}

        async def name_of(cid: str) -> str:
            contact = await self._registry.contact(cid)
            return contact.name if contact else cid

        return Coverage(district_id=district_id, month=month,
                        by_community=[_cov(k, communities.get(k, k), v)
                                      for k, v in sorted(by_c.items())],
                        by_visitor=[_cov(k, await name_of(k), v)
                                    for k, v in sorted(by_v.items())])

    async def month_figures(self, p: Principal, district_ids: list[str],
                            months: list[str]) -> CareVisitFigures:
        """Visit-plan coverage (``coverage`` summed over districts and months) and the
        concerns raised on a day of those months and since closed, for the records
        domain's report. READ-ONLY; ``district_ids`` is the scope the caller resolved."""
        rows: list[CoverageRow] = []
        for district_id in district_ids:
            for month in months:
                rows += (await self.coverage(p, district_id, month)).by_community
        due = sum(r.due for r in rows)
        on_time = sum(r.on_time for r in rows)
        raised = answered = 0
        if months:
            first = month_bounds(min(months))[0]
            nxt = month_bounds(max(months))[1]
            clause, params = in_list("district_id", district_ids)
            concerns = await fetch_all(
                self._db.conn, f"SELECT status FROM cv_concerns WHERE {clause} AND day >= ?"
                " AND day < ?", (*params, first.isoformat(), nxt.isoformat()))
            raised = len(concerns)
            answered = sum(1 for c in concerns if c["status"] == "closed")
        return CareVisitFigures(
            months=months, due=due, on_time=on_time, late=sum(r.late for r in rows),
            missed=sum(r.missed for r in rows),
            coverage_pct=round(100.0 * on_time / due, 2) if due else None,
            concerns_raised=raised, concerns_answered=answered,
            concerns_answered_pct=round(100.0 * answered / raised, 2) if raised else None)

    # -- concerns ------------------------------------------------------------

    async def _insert_concern(self, conn: Connection, where: RowLike,
                              kind: R.ConcernKind, day: date, rule: str,
                              evidence: dict[str, Any], raised_by: str) -> str | None:
        concern_id = f"CC-{self._clock.now():%y%m%d}-{secrets.token_hex(4)}"
        cur = await conn.execute(
            "INSERT INTO cv_concerns(id, resident_id, household_id, community_id, district_id,"
            " kind, day, rule, evidence, status, raised_by, opened_at) VALUES"
            " (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (resident_id, kind, day) DO NOTHING"
            " RETURNING id",
            (concern_id, where["resident_id"], where["household_id"], where["community_id"],
             where["district_id"], kind.value, day.isoformat(), rule,
             json.dumps(evidence, ensure_ascii=False), "open", raised_by,
             iso(self._clock.now())))
        return concern_id if await cur.fetchone() is not None else None

    async def raise_concern(self, resident_id: str, kind: R.ConcernKind, rule: str,
                            evidence: dict[str, Any], raised_by: str = "routine") -> str | None:
        """A concern and its task: a visit for no morning activity, else a welfare call,
        for the paired visitor (the community worker when there is no plan). Once per
        resident, kind and day, and not while the same kind is still open."""
        resident = await self._registry.resident_summary(resident_id)
        if resident is None:
            return None
        open_row = await fetch_one(self._db.conn, "SELECT 1 FROM cv_concerns WHERE"
                                   " resident_id = ? AND kind = ? AND status = 'open'",
                                   (resident_id, kind.value))
        if open_row is not None and kind is not R.ConcernKind.OPERATOR:
            return None
        cooldown = R.COOLDOWN_DAYS.get(kind.value, 0)
        if cooldown:
            since = (local_day(self._clock.now()) - timedelta(days=cooldown - 1)).isoformat()
            recent = await fetch_one(self._db.conn, "SELECT 1 FROM cv_concerns WHERE"
                                     " resident_id = ? AND kind = ? AND day >= ?",
                                     (resident_id, kind.value, since))
            if recent is not None:
                return None
        plan_d = await self._plan_or_default(resident_id)
        today = local_day(self._clock.now())
        async with self._db.transaction() as conn:
            concern_id = await self._insert_concern(conn, plan_d, kind, today, rule, evidence,
                                                    raised_by)
        if concern_id is None:
            return None
        mode = (Mode.IN_PERSON if kind in (R.ConcernKind.NO_MORNING_ACTIVITY,
                                           R.ConcernKind.VITAL_DRIFT) else Mode.PHONE)
        await self._insert_task(plan_d, mode, f"concern:{concern_id}", concern_id, today,
                                assignee=plan_d["visitor_contact_id"]
                                or plan_d["worker_contact_id"])
        task = await fetch_one(self._db.conn, "SELECT id FROM cv_tasks WHERE concern_id = ?",
                               (concern_id,))
        async with self._db.transaction() as conn:
            await conn.execute("UPDATE cv_concerns SET task_id = ? WHERE id = ?",
                               (task[0] if task else None, concern_id))
        log.info("concern %s (%s) for %s: %s", concern_id, kind.value, resident_id, rule)
        return concern_id

    async def _plan_or_default(self, resident_id: str) -> dict[str, Any]:
        """The resident's plan row, or (no plan) the visitors chosen from their contacts."""
        plan = await fetch_one(self._db.conn, "SELECT * FROM cv_plans WHERE resident_id = ?",
                               (resident_id,))
        if plan is not None:
            return dict(plan)
        resident = await self._registry.resident_summary(resident_id)
        if resident is None:
            raise _not_found("resident", resident_id)
        contacts = await self._registry.contacts_of(resident_id)
        visitor, backup, worker = self.choose_visitors(contacts, None)
        return {"resident_id": resident_id, "household_id": resident.household_id,
                "community_id": resident.community_id, "district_id": resident.district_id,
                "visitor_contact_id": visitor, "backup_contact_id": backup,
                "worker_contact_id": worker}

    async def visit_for_alert(self, p: Principal, alert_id: str) -> TaskPublic:
        """A welfare, inactivity or other care alert answered by a visit today: a task for
        the resident's visitor whose recorded outcome resolves the alert."""
        alert = await self._care.get_alert(p, alert_id)  # scoped, audited
        if alert.category.value != "care" or alert.resident_id is None:
            raise DeskInvalid("alert_not_for_visit", f"alert {alert_id} ({alert.kind.value})"
                              " is not a care alert of a resident", "该告警不适合以探访处置")
        if alert.status.value in ("resolved", "closed"):
            raise DeskConflict("alert_closed", f"alert {alert_id} is {alert.status.value}",
                               "该告警已处置")
        plan = await self._plan_or_default(alert.resident_id)
        if plan["visitor_contact_id"] is None and plan["worker_contact_id"] is None:
            raise DeskConflict("no_visitor", f"resident {alert.resident_id} has no visitor",
                               "该老人没有可派的探访人")
        today = local_day(self._clock.now())
        await self._insert_task(plan, Mode.IN_PERSON, f"alert:{alert_id}", None, today,
                                assignee=plan["visitor_contact_id"] or plan["worker_contact_id"],
                                alert_id=alert_id)
        row = await fetch_one(self._db.conn, "SELECT * FROM cv_tasks WHERE alert_id = ?"
                              " ORDER BY created_at DESC LIMIT 1", (alert_id,))
        assert row is not None
        return await self._task_public(row)

    async def create_concern(self, p: Principal, body: ConcernCreate) -> ConcernPublic:
        resident = await self._registry.get_resident(p, body.resident_id, "care concern")
        concern_id = await self.raise_concern(resident.id, R.ConcernKind.OPERATOR, body.note,
                                              {"by": p.username}, p.actor)
        if concern_id is None:
            raise DeskConflict("concern_exists", "a concern was already raised today",
                               "今天已登记过关注事项")
        return await self._concern(p, concern_id)

    async def _concern(self, p: Principal, concern_id: str) -> ConcernPublic:
        clause, params = await self._scope(p, "c")
        row = await fetch_one(self._db.conn, f"SELECT * FROM cv_concerns c WHERE c.id = ? AND"
                              f" {clause}", (concern_id, *params))
        if row is None:
            raise _not_found("concern", concern_id)
        return await self._concern_public(row)

    async def _concern_public(self, r: RowLike) -> ConcernPublic:
        summary = await self._registry.resident_summary(r["resident_id"])
        kind = R.ConcernKind(r["kind"])
        return ConcernPublic(
            id=r["id"], resident_id=r["resident_id"],
            resident_name=summary.name if summary else "", community_id=r["community_id"],
            district_id=r["district_id"], kind=kind.value, kind_zh=R.CONCERN_ZH[kind],
            day=date.fromisoformat(r["day"]), rule=r["rule"],
            evidence=json.loads(r["evidence"]), status=r["status"], task_id=r["task_id"],
            raised_by=r["raised_by"], opened_at=parse_iso(r["opened_at"]),
            closed_at=opt_parse(r["closed_at"]), resolution=r["resolution"])

    async def list_concerns(self, p: Principal, *, open_only: bool = True,
                            district_id: str | None = None) -> list[ConcernPublic]:
        clause, params = await self._scope(p, "c")
        sql = f"SELECT * FROM cv_concerns c WHERE {clause}"
        if open_only:
            sql += " AND c.status = 'open'"
        if district_id is not None:
            sql += " AND c.district_id = ?"
            params.append(district_id)
        rows = await fetch_all(self._db.conn, sql + " ORDER BY c.opened_at DESC LIMIT 500",
                               params)
        await self._audit_list(p, "concerns", len(rows))
        return [await self._concern_public(r) for r in rows]

    async def close_concern(self, p: Principal, concern_id: str,
                            body: ConcernClose) -> ConcernPublic:
        current = await self._concern(p, concern_id)
        if current.status != "open":
            raise DeskConflict("concern_closed", f"concern {concern_id} is closed", "该事项已关闭")
        async with self._db.transaction() as conn:
            await conn.execute("UPDATE cv_concerns SET status = 'closed', closed_at = ?,"
                               " resolution = ? WHERE id = ?",
                               (iso(self._clock.now()), body.resolution, concern_id))
        return await self._concern(p, concern_id)

    # -- the routine (counts per home and day, kept by the engine) ----------------------------

    async def add_activity(self, conn: Connection,
                           counts: Mapping[tuple[str, str], tuple[int, int, int | None]]) -> None:
        for (household_id, day), (events, night, first) in counts.items():
            await conn.execute(
                "INSERT INTO cv_activity_days(household_id, day, events, night_events,"
                " first_min) VALUES (?,?,?,?,?) ON CONFLICT (household_id, day) DO UPDATE SET"
                " events = cv_activity_days.events + excluded.events, night_events ="
                " cv_activity_days.night_events + excluded.night_events, first_min = CASE"
                " WHEN excluded.first_min IS NULL THEN cv_activity_days.first_min"
                " WHEN cv_activity_days.first_min IS NULL THEN excluded.first_min"
                " WHEN excluded.first_min < cv_activity_days.first_min THEN excluded.first_min"
                " ELSE cv_activity_days.first_min END",
                (household_id, day, events, night, first))

    async def history(self, household_id: str, today: date) -> list[R.Day]:
        since = today - timedelta(days=R.LEARN_MAX_DAYS + R.DECLINE_DAYS + 1)
        rows = await fetch_all(self._db.conn, "SELECT * FROM cv_activity_days WHERE"
                               " household_id = ? AND day >= ? ORDER BY day",
                               (household_id, since.isoformat()))
        return [R.Day(date.fromisoformat(r["day"]), r["events"], r["night_events"],
                      r["first_min"]) for r in rows]

    async def check_routines(self) -> int:
        """Today against each home's learned routine; a deviation raises a concern."""
        now = self._clock.now().astimezone(LOCAL_TZ)
        today = now.date()
        minute = now.hour * 60 + now.minute
        since = (today - timedelta(days=R.LEARN_MAX_DAYS)).isoformat()
        homes = await fetch_all(self._db.conn, "SELECT DISTINCT household_id FROM"
                                " cv_activity_days WHERE day >= ?", (since,))
        raised = 0
        for h in homes:
            deviations = R.check(await self.history(h[0], today), today, minute)
            if not deviations:
                continue
            residents = await self._registry.residents_of_household(h[0])
            if not residents:
                continue
            for d in deviations:
                if await self.raise_concern(residents[0], d.kind, d.rule,
                                            {"baseline": d.baseline, "today": d.today}):
                    raised += 1
        return raised

    async def add_vitals(self, conn: Connection,
                         sums: Mapping[tuple[str, str, str], tuple[int, float]]) -> None:
        for (household_id, day, metric), (n, total) in sums.items():
            await conn.execute(
                "INSERT INTO cv_vital_days(household_id, day, metric, n, total)"
                " VALUES (?,?,?,?,?) ON CONFLICT (household_id, day, metric) DO UPDATE SET"
                " n = cv_vital_days.n + excluded.n, total = cv_vital_days.total +"
                " excluded.total", (household_id, day, metric, n, total))

    async def vital_history(self, household_id: str, today: date) -> list[R.VitalDay]:
        since = today - timedelta(days=R.LEARN_MAX_DAYS + 1)
        rows = await fetch_all(self._db.conn, "SELECT * FROM cv_vital_days WHERE"
                               " household_id = ? AND day >= ? ORDER BY day, metric",
                               (household_id, since.isoformat()))
        return [R.VitalDay(date.fromisoformat(r["day"]), r["metric"], int(r["n"]),
                           float(r["total"])) for r in rows]

    async def check_vitals(self) -> int:
        today = local_day(self._clock.now())
        since = (today - timedelta(days=R.LEARN_MAX_DAYS)).isoformat()
        homes = await fetch_all(self._db.conn, "SELECT DISTINCT household_id FROM"
                                " cv_vital_days WHERE day >= ?", (since,))
        raised = 0
        for h in homes:
            deviations = R.check_vitals(await self.vital_history(h[0], today), today)
            residents = await self._registry.residents_of_household(h[0])
            for d in deviations:
                if residents and await self.raise_concern(
                        residents[0], d.kind, d.rule, {"baseline": d.baseline,
                                                       "today": d.today}):
                    raised += 1
        return raised

    async def routine(self, p: Principal, resident_id: str) -> RoutinePublic:
        resident = await self._registry.get_resident(p, resident_id, "care routine baseline")
        now = self._clock.now().astimezone(LOCAL_TZ)
        hist = await self.history(resident.household_id, now.date())
        base = R.learn(hist, now.date())
        today = next((d for d in hist if d.day == now.date()), None)
        return RoutinePublic(
            resident_id=resident.id, household_id=resident.household_id,
            learned=base is not None, baseline=base.as_json() if base else None,
            today={"events": today.events if today else 0,
                   "night_events": today.night_events if today else 0,
                   "first_min": today.first_min if today else None},
            days=[{"day": d.day.isoformat(), "events": d.events,
                   "night_events": d.night_events, "first_min": d.first_min}
                  for d in hist[-R.LEARN_MAX_DAYS:]],
            rules={"learn_min_days": R.LEARN_MIN_DAYS, "late_min": R.LATE_MIN,
                   "night_min_events": R.NIGHT_MIN_EVENTS, "night_factor": R.NIGHT_FACTOR,
                   "decline_share": R.DECLINE_SHARE, "day_start_h": R.DAY_START_H})

    # -- the time bank ------------------------------------------------------------

    async def _statement(self, contact_id: str, name: str) -> TimebankStatement:
        rows = await fetch_all(self._db.conn, "SELECT * FROM cv_timebank WHERE contact_id = ?"
                               " ORDER BY ts, id", (contact_id,))
        credited = sum(float(r["minutes"]) for r in rows if r["kind"] == "credit")
        redeemed = sum(float(r["minutes"]) for r in rows if r["kind"] == "redeem")
        return TimebankStatement(
            contact_id=contact_id, name=name, credited_min=round(credited, 1),
            redeemed_min=round(redeemed, 1), balance_min=round(credited - redeemed, 1),
            rows=[TimebankRow(kind=r["kind"], minutes=float(r["minutes"]),
                              entry_id=r["entry_id"], note=r["note"], ts=parse_iso(r["ts"]))
                  for r in rows])

    async def _staff_contact(self, p: Principal, contact_id: str) -> ContactPublic:
        contact = await self._registry.contact(contact_id)
        summary = (await self._registry.resident_summary(contact.resident_id)
                   if contact is not None else None)
        if (contact is None or summary is None
                or summary.district_id not in await self._districts(p)):
            raise _not_found("contact", contact_id)
        return contact

    async def statement(self, p: Principal, contact_id: str) -> TimebankStatement:
        contact = await self._staff_contact(p, contact_id)
        return await self._statement(contact.id, contact.name)

    async def redeem(self, p: Principal, contact_id: str,
                     body: RedeemCreate) -> TimebankStatement:
        contact = await self._staff_contact(p, contact_id)
        current = await self._statement(contact.id, contact.name)
        if body.minutes > current.balance_min:
            raise DeskConflict("hours_exhausted", f"balance {current.balance_min} min is less"
                               f" than {body.minutes} min", "时间银行余额不足")
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO cv_timebank(contact_id, kind, minutes, entry_id, note, actor, ts)"
                " VALUES (?,?,?,?,?,?,?)",
                (contact.id, "redeem", body.minutes, None, body.note, p.actor,
                 iso(self._clock.now())))
        return await self._statement(contact.id, contact.name)


def _finding(value: Any) -> str:
    if not isinstance(value, dict):
        return ""
    level = "正常" if value.get("level") == "ok" else "需关注"
    note = value.get("note") or ""
    return f"{level} {note}".strip()


def _cov(key: str, name: str, outcomes: Iterable[str]) -> CoverageRow:
    items = list(outcomes)
    on_time = items.count("on_time")
    return CoverageRow(key=key, name=name, due=len(items), on_time=on_time,
                       late=items.count("late"), missed=items.count("missed"),
                       share_on_time=round(on_time / len(items), 3) if items else None)


def _not_found(what: str, record_id: str) -> DeskNotFound:
    names = {"plan": "探访计划", "task": "探访任务", "concern": "关注事项", "contact": "联系人",
             "district": "区县", "entry": "探访记录"}
    return DeskNotFound(f"{what}_not_found", f"{what} {record_id} not found",
                        f"{names.get(what, what)} {record_id} 不存在")
