"""The service desk: green presses become requests, requests become orders, orders are
dispatched, visited, verified, rated and paid from the resident's vouchers.

Every change is one transaction: the order row, its timeline entry, the dispatch offer,
the visit, the voucher debit and the LED command to send commit together or not at all.
Scope is part of every query (a record outside the caller's scope answers 404, like one
that does not exist); every read of a resident's record goes through the registry,
which audits it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol
from urllib.parse import quote

from eldercare_cloud.audit import AuditLog
from eldercare_cloud.auth.models import Principal, Role
from eldercare_cloud.auth.signing import sign, verify
from eldercare_cloud.clock import Clock, iso, opt_parse, parse_iso
from eldercare_cloud.db import Connection, Database, Row
from eldercare_cloud.errors import AuthenticationError, PermissionDeniedError
from eldercare_cloud.registry import RegistryService
from eldercare_cloud.registry.models import ResidentPublic
from eldercare_cloud.services import catalogue as K
from eldercare_cloud.services.errors import DeskConflict, DeskInvalid, not_found
from eldercare_cloud.services.models import (
    HOLDS_WORKER,
    OPEN_ORDER,
    AccountLink,
    AccountPublic,
    CallbackCreate,
    CallbackOutcome,
    ConfigPublic,
    ConfigUpdate,
    EntitlementPublic,
    EntitlementRuleCreate,
    EntitlementRulePublic,
    FollowupPublic,
    OrderCreate,
    OrderDetail,
    OrderPublic,
    OrderSource,
    OrderStatus,
    Payment,
    PlanCreate,
    PlanPublic,
    ProviderCreate,
    ProviderPublic,
    RatingCreate,
    RatingPublic,
    RatingSource,
    RequestCreate,
    RequestPublic,
    RequestStatus,
    Score,
    ServiceTypeCreate,
    ServiceTypePublic,
    Suggestion,
    TimelinePublic,
    WorkerCreate,
    WorkerPublic,
    WorkView,
)
from eldercare_cloud.services.schema import MIGRATIONS
from eldercare_cloud.stream import StreamHub
from eldercare_cloud.visits import store as V
from eldercare_cloud.visits.schema import MIGRATIONS as VISIT_MIGRATIONS
from eldercare_cloud.visits.verify import Method

LINK_PURPOSE = "service-work"
DEFAULT_CALLBACK_SHARE = 0.1
DEFAULT_NEW_WORKER_VISITS = 3
#: how long after a check-out the elder's double press rates that visit
BUTTON_RATING_WINDOW = timedelta(hours=2)

ORDER_SELECT = (
    "SELECT o.*, t.name_zh, t.name_en, w.name AS worker_name FROM svc_orders o"
    " JOIN svc_types t ON t.id = o.service_type_id"
    " LEFT JOIN svc_workers w ON w.id = o.worker_id")


@dataclass(frozen=True)
class Actor:
    id: str
    name: str

    @staticmethod
    def of(p: Principal) -> Actor:
        return Actor(p.actor, p.username)


SYSTEM = Actor("system", "系统")


class VisitHook(Protocol):
    async def long_press(self, conn: Connection, household_id: str,
                         device_id: str, at: datetime) -> str | None: ...

    async def has_active(self, conn: Connection, household_id: str,
                         at: datetime) -> bool: ...


@dataclass(frozen=True)
class Account:
    provider_id: str | None
    worker_id: str | None


class ServiceDesk:
    def __init__(self, db: Database, clock: Clock, registry: RegistryService, audit: AuditLog,
                 *, secret_key: str, public_base_url: str, tenant: str,
                 wake: Callable[[], None] | None = None,
                 hub: StreamHub | None = None) -> None:
        self._db = db
        self._hub = hub
        self._clock = clock
        self._registry = registry
        self._audit = audit
        self._secret = secret_key
        self._base_url = public_base_url.rstrip("/")
        self._tenant = tenant
        self._wake = wake or (lambda: None)
        self._visit_hooks: list[VisitHook] = []

    def add_visit_hook(self, hook: VisitHook) -> None:
        """Another kind of visit at a home (care visits, issue 11) that a long press or a
        door/motion event may belong to when no service order does."""
        self._visit_hooks.append(hook)

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def db(self) -> Database:
        return self._db

    def set_wake(self, wake: Callable[[], None]) -> None:
        self._wake = wake

    async def migrate(self) -> None:
        await self._db.migrate("services", MIGRATIONS)
        await self._db.migrate("visits", VISIT_MIGRATIONS)

    # -- scope -------------------------------------------------------------------------------

    async def account(self, p: Principal) -> Account:
        row = await K.fetch_one(self._db.conn, "SELECT * FROM svc_accounts WHERE user_id = ?",
                                (p.user_id,))
        if row is None:
            return Account(None, None)
        return Account(row["provider_id"], row["worker_id"])

    async def districts_of(self, p: Principal) -> list[str]:
        if p.role is Role.ADMIN:
            return [d.id for d in await self._registry.list_districts(p)]
        if p.role is Role.OPERATOR:
            return sorted(p.district_ids)
        return []

    async def _order_scope(self, p: Principal, alias: str = "o") -> tuple[str, list[Any]]:
        if p.role in (Role.ADMIN, Role.OPERATOR):
            return K.in_list(f"{alias}.district_id", await self.districts_of(p))
        if p.role is Role.FAMILY:
            return K.in_list(f"{alias}.resident_id", p.resident_ids)
        acct = await self.account(p)
        if p.role is Role.PROVIDER and acct.provider_id is not None:
            return f"{alias}.provider_id = ?", [acct.provider_id]
        if p.role is Role.WORKER and acct.worker_id is not None:
            return f"{alias}.worker_id = ?", [acct.worker_id]
        return "1 = 0", []

    async def _staff_district(self, p: Principal, district_id: str) -> None:
        if district_id not in await self.districts_of(p):
            raise not_found("district", district_id)

    async def _resident(self, p: Principal, resident_id: str, reason: str) -> ResidentPublic:
        """The resident's record, read through the registry (scoped and audited)."""
        return await self._registry.get_resident(p, resident_id, reason)

    # -- catalogue ---------------------------------------------------------------------------

    async def list_types(self) -> list[ServiceTypePublic]:
        rows = await K.fetch_all(self._db.conn, "SELECT * FROM svc_types ORDER BY id")
        return [K.service_type(r) for r in rows]

    async def upsert_type(self, body: ServiceTypeCreate) -> ServiceTypePublic:
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO svc_types(id, name_zh, name_en, duration_min, unit_price_cents,"
                " accept_within_s, arrive_within_s, min_visit_min, active)"
                " VALUES (?,?,?,?,?,?,?,?,1) ON CONFLICT (id) DO UPDATE SET"
                " name_zh = excluded.name_zh, name_en = excluded.name_en,"
                " duration_min = excluded.duration_min,"
                " unit_price_cents = excluded.unit_price_cents,"
                " accept_within_s = excluded.accept_within_s,"
                " arrive_within_s = excluded.arrive_within_s,"
                " min_visit_min = excluded.min_visit_min",
                (body.id, body.name_zh, body.name_en, body.duration_min, body.unit_price_cents,
                 body.accept_within_s, body.arrive_within_s, body.min_visit_min))
            t = await K.get_type(conn, body.id)
        assert t is not None
        return t

    async def _provider_scope(self, p: Principal) -> tuple[str, list[Any]]:
        if p.role in (Role.ADMIN, Role.OPERATOR):
            return K.in_list("district_id", await self.districts_of(p))
        acct = await self.account(p)
        if p.role is Role.PROVIDER and acct.provider_id is not None:
            return "id = ?", [acct.provider_id]
        return "1 = 0", []

    async def list_providers(self, p: Principal) -> list[ProviderPublic]:
        clause, params = await self._provider_scope(p)
        rows = await K.fetch_all(self._db.conn,
                                 f"SELECT * FROM svc_providers WHERE {clause} ORDER BY id",
                                 params)
        return [K.provider(r) for r in rows]

    async def get_provider(self, p: Principal, provider_id: str) -> ProviderPublic:
        clause, params = await self._provider_scope(p)
        row = await K.fetch_one(self._db.conn,
                                f"SELECT * FROM svc_providers WHERE id = ? AND {clause}",
                                [provider_id, *params])
        if row is None:
            raise not_found("provider", provider_id)
        return K.provider(row)

    async def create_provider(self, p: Principal, body: ProviderCreate) -> ProviderPublic:
        await self._staff_district(p, body.district_id)
        known = {t.id for t in await self.list_types()}
        unknown = sorted(set(body.service_types) - known)
        if unknown:
            raise DeskInvalid("unknown_service_type", f"unknown service type {unknown[0]}",
                              f"未知的服务项目 {unknown[0]}")
        communities = {c.id for c in await self._registry.list_communities(
            p, district_id=body.district_id)}
        outside = sorted(set(body.communities) - communities)
        if outside:
            raise DeskInvalid("unknown_community", f"community {outside[0]} is not in"
                              f" district {body.district_id}",
                              f"社区 {outside[0]} 不在该区县")
        provider_id = body.id or f"P-{secrets.token_hex(4)}"
        async with self._db.transaction() as conn:
            if await K.fetch_one(conn, "SELECT 1 FROM svc_providers WHERE id = ?",
                                 (provider_id,)):
                raise DeskConflict("exists", f"provider {provider_id} exists",
                                   f"服务商 {provider_id} 已存在")
            await conn.execute(
                "INSERT INTO svc_providers(id, district_id, name, kind, phone, communities,"
                " service_types, active, created_at) VALUES (?,?,?,?,?,?,?,1,?)",
                (provider_id, body.district_id, body.name, body.kind.value, body.phone,
                 json.dumps(sorted(set(body.communities))),
                 json.dumps(sorted(set(body.service_types))), iso(self._clock.now())))
        return await self.get_provider(p, provider_id)

    async def list_workers(self, p: Principal, provider_id: str) -> list[WorkerPublic]:
        await self.get_provider(p, provider_id)
        rows = await K.fetch_all(self._db.conn, "SELECT * FROM svc_workers WHERE provider_id = ?"
                                 " ORDER BY id", (provider_id,))
        return [K.worker(r) for r in rows]

    async def create_worker(self, p: Principal, provider_id: str,
                            body: WorkerCreate) -> WorkerPublic:
        await self.get_provider(p, provider_id)
        worker_id = body.id or f"W-{secrets.token_hex(4)}"
        async with self._db.transaction() as conn:
            if await K.fetch_one(conn, "SELECT 1 FROM svc_workers WHERE id = ?", (worker_id,)):
                raise DeskConflict("exists", f"worker {worker_id} exists",
                                   f"服务人员 {worker_id} 已存在")
            await conn.execute(
                "INSERT INTO svc_workers(id, provider_id, name, phone, skills, active,"
                " created_at) VALUES (?,?,?,?,?,1,?)",
                (worker_id, provider_id, body.name, body.phone,
                 json.dumps(sorted(set(body.skills))), iso(self._clock.now())))
            row = await K.fetch_one(conn, "SELECT * FROM svc_workers WHERE id = ?",
                                    (worker_id,))
        assert row is not None
        return K.worker(row)

    async def link_account(self, p: Principal, body: AccountLink) -> dict[str, str | None]:
        await self.get_provider(p, body.provider_id)
        user = await self._user_role(body.user_id)
        if user is None:
            raise not_found("user", body.user_id)
        want = Role.WORKER if body.worker_id else Role.PROVIDER
        if user != want.value:
            raise DeskInvalid("wrong_role", f"user {body.user_id} has role {user}, not"
                              f" {want.value}", f"该账号的角色不是{want.value}")
        if body.worker_id is not None:
            row = await K.fetch_one(self._db.conn, "SELECT provider_id FROM svc_workers"
                                    " WHERE id = ?", (body.worker_id,))
            if row is None or row[0] != body.provider_id:
                raise not_found("worker", body.worker_id)
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO svc_accounts(user_id, provider_id, worker_id) VALUES (?,?,?)"
                " ON CONFLICT (user_id) DO UPDATE SET provider_id = excluded.provider_id,"
                " worker_id = excluded.worker_id",
                (body.user_id, body.provider_id, body.worker_id))
        return {"user_id": body.user_id, "provider_id": body.provider_id,
                "worker_id": body.worker_id}

    async def _users(self) -> dict[str, tuple[str, str]]:
        """The tenant's accounts, id → (username, role)."""
        from eldercare_cloud.auth.users import UserService  # the users module owns accounts

        users = UserService(self._db, self._clock, self._secret, self._tenant, 60)
        return {u.id: (u.username, u.role.value) for u in await users.list(self._tenant)}

    async def _user_role(self, user_id: str) -> str | None:
        user = (await self._users()).get(user_id)
        return user[1] if user else None

    async def list_accounts(self, p: Principal) -> list[AccountPublic]:
        """Accounts linked to the providers the caller may see (the console's set-up)."""
        clause, params = await self._provider_scope(p)
        rows = await K.fetch_all(
            self._db.conn, "SELECT a.user_id, a.provider_id, a.worker_id FROM svc_accounts a"
            f" JOIN svc_providers ON svc_providers.id = a.provider_id WHERE {clause}"
            " ORDER BY a.provider_id, a.user_id", params)
        users = await self._users()
        return [AccountPublic(user_id=r["user_id"], username=users[r["user_id"]][0],
                              role=users[r["user_id"]][1], provider_id=r["provider_id"],
                              worker_id=r["worker_id"])
                for r in rows if r["user_id"] in users]

    async def list_rules(self, p: Principal, district_id: str) -> list[EntitlementRulePublic]:
        await self._staff_district(p, district_id)
        rows = await K.fetch_all(self._db.conn, "SELECT * FROM svc_entitlement_rules"
                                 " WHERE district_id = ? ORDER BY category", (district_id,))
        return [K.rule(r) for r in rows]

    async def upsert_rule(self, p: Principal, body: EntitlementRuleCreate,
                          ) -> EntitlementRulePublic:
        await self._staff_district(p, body.district_id)
        known = {t.id for t in await self.list_types()}
        named = set(body.service_types) | {m.service_type_id for m in body.minimums}
        if named - known:
            bad = sorted(named - known)[0]
            raise DeskInvalid("unknown_service_type", f"unknown service type {bad}",
                              f"未知的服务项目 {bad}")
        rule_id = f"{body.district_id}:{body.category}"
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO svc_entitlement_rules(id, district_id, category,"
                " monthly_voucher_cents, service_types, minimums, label)"
                " VALUES (?,?,?,?,?,?,?) ON CONFLICT (district_id, category) DO UPDATE SET"
                " monthly_voucher_cents = excluded.monthly_voucher_cents,"
                " service_types = excluded.service_types, minimums = excluded.minimums,"
                " label = excluded.label",
                (rule_id, body.district_id, body.category, body.monthly_voucher_cents,
                 json.dumps(sorted(set(body.service_types))),
                 json.dumps([m.model_dump() for m in body.minimums]), body.label))
            row = await K.fetch_one(conn, "SELECT * FROM svc_entitlement_rules WHERE id = ?",
                                    (rule_id,))
        assert row is not None
        return K.rule(row)

    async def entitlement(self, p: Principal, resident_id: str,
                          month: str | None) -> EntitlementPublic:
        resident = await self._resident(p, resident_id, "service entitlement")
        return await K.entitlement(self._db.conn, resident,
                                   month or K.local_month(self._clock.now()))

    async def get_config(self, p: Principal, district_id: str) -> ConfigPublic:
        await self._staff_district(p, district_id)
        return await self._config(self._db.conn, district_id)

    async def _config(self, conn: Connection, district_id: str) -> ConfigPublic:
        row = await K.fetch_one(conn, "SELECT * FROM svc_config WHERE district_id = ?",
                                (district_id,))
        if row is None:
            return ConfigPublic(district_id=district_id, callback_share=DEFAULT_CALLBACK_SHARE,
                                new_worker_visits=DEFAULT_NEW_WORKER_VISITS)
        return ConfigPublic(district_id=district_id, callback_share=row["callback_share"],
                            new_worker_visits=row["new_worker_visits"])

    async def set_config(self, p: Principal, district_id: str,
                         body: ConfigUpdate) -> ConfigPublic:
        await self._staff_district(p, district_id)
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO svc_config(district_id, callback_share, new_worker_visits,"
                " updated_at) VALUES (?,?,?,?) ON CONFLICT (district_id) DO UPDATE SET"
                " callback_share = excluded.callback_share,"
                " new_worker_visits = excluded.new_worker_visits,"
                " updated_at = excluded.updated_at",
                (district_id, body.callback_share, body.new_worker_visits,
                 iso(self._clock.now())))
        return await self.get_config(p, district_id)

    # -- timeline ----------------------------------------------------------------------------

    async def _log(self, conn: Connection, subject: str, actor: Actor, action: str,
                   detail: dict[str, Any] | None = None) -> None:
        await conn.execute(
            "INSERT INTO svc_timeline(subject, ts, actor, actor_name, action, detail)"
            " VALUES (?,?,?,?,?,?)",
            (subject, iso(self._clock.now()), actor.id, actor.name, action,
             json.dumps(detail or {}, ensure_ascii=False, default=str)))
        await self._announce(conn, subject, action)

    async def _announce(self, conn: Connection, subject: str, action: str) -> None:
        """The console follows requests and orders on the live stream: one staff-only event
        per timeline entry of a request or an order, in the same transaction (so never
        for a change that rolled back; the commit wakes the stream's readers). Names and
        addresses stay out of it: the console reads the record through the scoped,
        audited API; the resident id is there so an erasure removes the events too."""
        kind, _, record_id = subject.partition(":")
        table = {"request": "svc_requests", "order": "svc_orders"}.get(kind)
        if self._hub is None or table is None:
            return
        row = await K.fetch_one(conn, f"SELECT district_id, resident_id FROM {table}"
                                " WHERE id = ?", (record_id,))
        if row is None:
            return
        news = {("request", "opened"): "opened", ("order", "created"): "created"}
        await self._hub.append(
            conn, f"service.{kind}.{news.get((kind, action), 'updated')}",
            {f"{kind}_id": record_id, "action": action},
            district_id=row["district_id"], resident_id=row["resident_id"], staff_only=True)

    async def _timeline(self, subject: str) -> list[TimelinePublic]:
        rows = await K.fetch_all(self._db.conn, "SELECT * FROM svc_timeline WHERE subject = ?"
                                 " ORDER BY id", (subject,))
        return [TimelinePublic(ts=parse_iso(r["ts"]), actor=r["actor"],
                               actor_name=r["actor_name"], action=r["action"],
                               detail=json.loads(r["detail"])) for r in rows]

    # -- requests (demand response) -----------------------------------------------------------

    async def press(self, conn: Connection, *, resident: ResidentPublic,
                    gateway_id: str, device_id: str, record_id: str,
                    pressed_at: datetime) -> tuple[str, bool]:
        """A green press (called by the engine inside its transaction): a new request, or
        one more press on the open one. Returns (request id, created)."""
        clause, params = K.in_list("status", [RequestStatus.OPEN.value,
                                              RequestStatus.CALL_AGAIN.value])
        row = await K.fetch_one(conn, f"SELECT id FROM svc_requests WHERE resident_id = ?"
                                f" AND {clause} ORDER BY opened_at LIMIT 1",
                                (resident.id, *params))
        device = Actor(f"device:{device_id}", "绿色按键")
        now = self._clock.now()
        if row is not None:
            await conn.execute("UPDATE svc_requests SET presses = presses + 1, updated_at = ?"
                               " WHERE id = ?", (iso(now), row[0]))
            await self._log(conn, f"request:{row[0]}", device, "pressed_again",
                            {"record_id": record_id, "pressed_at": iso(pressed_at)})
            return str(row[0]), False
        request_id = f"SR-{now:%y%m%d}-{secrets.token_hex(3)}"
        await conn.execute(
            "INSERT INTO svc_requests(id, resident_id, household_id, district_id, source,"
            " status, presses, gateway_id, device_id, first_record_id, pressed_at, opened_at,"
            " updated_at, note) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (request_id, resident.id, resident.household_id, resident.district_id,
             OrderSource.BUTTON.value, RequestStatus.OPEN.value, 1, gateway_id, device_id,
             record_id, iso(pressed_at), iso(now), iso(now), ""))
        await self._log(conn, f"request:{request_id}", device, "opened",
                        {"record_id": record_id, "pressed_at": iso(pressed_at)})
        await self._queue_led(conn, request_id, gateway_id, device_id, "received")
        return request_id, True

    async def _queue_led(self, conn: Connection, request_id: str, gateway_id: str,
                         device_id: str, state: str) -> None:
        """One LED command per request and state, ever (UNIQUE): a retry never repeats it."""
        await conn.execute(
            "INSERT INTO svc_led_outbox(request_id, gateway_id, device_id, state, status,"
            " created_at) VALUES (?,?,?,?,?,?) ON CONFLICT (request_id, state) DO NOTHING",
            (request_id, gateway_id, device_id, state, "pending", iso(self._clock.now())))

    async def create_request(self, p: Principal, body: RequestCreate) -> RequestPublic:
        resident = await self._resident(p, body.resident_id, "service request")
        now = self._clock.now()
        request_id = f"SR-{now:%y%m%d}-{secrets.token_hex(3)}"
        source = OrderSource.FAMILY if p.role is Role.FAMILY else OrderSource.PHONE
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO svc_requests(id, resident_id, household_id, district_id, source,"
                " status, presses, opened_at, updated_at, note)"
                " VALUES (?,?,?,?,?,?,?,?,?,?)",
                (request_id, resident.id, resident.household_id, resident.district_id,
                 source.value, RequestStatus.OPEN.value, 0, iso(now), iso(now), body.note))
            await self._log(conn, f"request:{request_id}", Actor.of(p), "opened",
                            {"source": source.value, "note": body.note})
        self._wake()
        return await self.get_request(p, request_id)

    async def _request_row(self, p: Principal, request_id: str) -> Row:
        if p.role in (Role.ADMIN, Role.OPERATOR):
            clause, params = K.in_list("district_id", await self.districts_of(p))
        elif p.role is Role.FAMILY:
            clause, params = K.in_list("resident_id", p.resident_ids)
        else:
            clause, params = "1 = 0", []
        row = await K.fetch_one(self._db.conn, f"SELECT * FROM svc_requests WHERE id = ?"
                                f" AND {clause}", [request_id, *params])
        if row is None:
            raise not_found("request", request_id)
        return row

    async def _request_public(self, r: Row, timeline: bool) -> RequestPublic:
        summary = await self._registry.resident_summary(r["resident_id"])
        orders = await K.fetch_all(self._db.conn, "SELECT id FROM svc_orders WHERE"
                                   " request_id = ? ORDER BY created_at", (r["id"],))
        return RequestPublic(
            id=r["id"], resident_id=r["resident_id"],
            resident_name=summary.name if summary else "", address=summary.address
            if summary else "", household_id=r["household_id"], district_id=r["district_id"],
            source=r["source"], status=r["status"], presses=r["presses"],
            pressed_at=opt_parse(r["pressed_at"]), opened_at=parse_iso(r["opened_at"]),
            updated_at=parse_iso(r["updated_at"]), closed_at=opt_parse(r["closed_at"]),
            last_outcome=r["last_outcome"], note=r["note"], order_ids=[o[0] for o in orders],
            timeline=await self._timeline(f"request:{r['id']}") if timeline else [])

    async def get_request(self, p: Principal, request_id: str) -> RequestPublic:
        row = await self._request_row(p, request_id)
        await self._registry.get_resident(p, row["resident_id"], f"service request {request_id}")
        return await self._request_public(row, True)

    async def list_requests(self, p: Principal, *, open_only: bool = True,
                            limit: int = 200) -> list[RequestPublic]:
        clause, params = K.in_list("district_id", await self.districts_of(p))
        sql = f"SELECT * FROM svc_requests WHERE {clause}"
        if open_only:
            s_clause, s_params = K.in_list("status", [RequestStatus.OPEN.value,
                                                      RequestStatus.CALL_AGAIN.value])
            sql += f" AND {s_clause}"
            params += s_params
        rows = await K.fetch_all(self._db.conn, sql + " ORDER BY opened_at LIMIT ?",
                                 [*params, limit])
        await self._audit.record(tenant=p.tenant, actor=p.actor, actor_name=p.username,
                                 role=p.role.value, action="list", record_type="service_request",
                                 record_id="*", reason=f"service queue ({len(rows)})")
        return [await self._request_public(r, False) for r in rows]

    async def callback(self, p: Principal, request_id: str,
                       body: CallbackCreate) -> RequestPublic:
        row = await self._request_row(p, request_id)
        if row["status"] in (RequestStatus.CLOSED.value,):
            raise DeskConflict("request_closed", f"request {request_id} is closed",
                               "该服务请求已关闭")
        status = {CallbackOutcome.CALL_AGAIN: RequestStatus.CALL_AGAIN,
                  CallbackOutcome.NO_ANSWER: RequestStatus.CALL_AGAIN,
                  CallbackOutcome.ASKED: RequestStatus(row["status"])
                  if row["status"] == RequestStatus.ORDERED.value
                  else RequestStatus.OPEN}[body.outcome]
        now = self._clock.now()
        async with self._db.transaction() as conn:
            await conn.execute("UPDATE svc_requests SET status = ?, last_outcome = ?,"
                               " note = ?, updated_at = ? WHERE id = ?",
                               (status.value, body.outcome.value, body.note or row["note"],
                                iso(now), request_id))
            await self._log(conn, f"request:{request_id}", Actor.of(p), "callback",
                            {"outcome": body.outcome.value, "note": body.note})
        return await self.get_request(p, request_id)

    async def close_request(self, p: Principal, request_id: str, note: str) -> RequestPublic:
        row = await self._request_row(p, request_id)
        if row["status"] == RequestStatus.CLOSED.value:
            raise DeskConflict("request_closed", f"request {request_id} is closed",
                               "该服务请求已关闭")
        now = self._clock.now()
        async with self._db.transaction() as conn:
            await conn.execute("UPDATE svc_requests SET status = ?, closed_at = ?,"
                               " updated_at = ? WHERE id = ?",
                               (RequestStatus.CLOSED.value, iso(now), iso(now), request_id))
            await self._log(conn, f"request:{request_id}", Actor.of(p), "closed",
                            {"note": note})
            if row["device_id"]:
                await self._queue_led(conn, request_id, row["gateway_id"], row["device_id"],
                                      "off")
        self._wake()
        return await self.get_request(p, request_id)

    # -- orders ------------------------------------------------------------------------------

    async def create_order(self, p: Principal, body: OrderCreate) -> OrderDetail:
        resident = await self._resident(p, body.resident_id, "service order")
        source = OrderSource.FAMILY if p.role is Role.FAMILY else body.source
        if p.role is Role.FAMILY and body.request_id is not None:
            raise DeskInvalid("request_not_allowed", "family orders cannot name a request",
                              "家属下单不能关联服务请求")
        order_id = await self._insert_order(
            resident=resident, type_id=body.service_type_id, start=body.window_start,
            end=body.window_end, source=source, payment=body.payment, note=body.note,
            request_id=body.request_id, plan_id=None, actor=Actor.of(p),
            dispatch=body.dispatch)
        self._wake()
        return await self.get_order(p, order_id)

    async def _insert_order(self, *, resident: ResidentPublic, type_id: str, start: datetime,
                            end: datetime, source: OrderSource, payment: Payment, note: str,
                            request_id: str | None, plan_id: str | None, actor: Actor,
                            dispatch: bool) -> str:
        now = self._clock.now()
        month = K.local_month(start)
        order_id = f"SO-{now:%y%m%d}-{secrets.token_hex(3)}"
        async with self._db.transaction() as conn:
            stype = await K.get_type(conn, type_id)
            if stype is None or not stype.active:
                raise DeskInvalid("unknown_service_type", f"unknown service type {type_id}",
                                  f"未知的服务项目 {type_id}")
            if request_id is not None:
                req = await K.fetch_one(conn, "SELECT * FROM svc_requests WHERE id = ?",
                                        (request_id,))
                if req is None or req["resident_id"] != resident.id:
                    raise DeskInvalid("request_mismatch", f"request {request_id} is not"
                                      f" {resident.id}'s", "服务请求与老人不符")
                if req["status"] == RequestStatus.CLOSED.value:
                    raise DeskConflict("request_closed", f"request {request_id} is closed",
                                       "该服务请求已关闭")
            if payment is Payment.VOUCHER:
                ent = await K.entitlement(conn, resident, month)
                if stype.id not in ent.service_types:
                    raise DeskInvalid(
                        "not_entitled", f"resident {resident.id} is not entitled to"
                        f" subsidised {stype.id} (categories: {', '.join(ent.categories)})",
                        f"该老人不享受{stype.name_zh}补贴")
                if ent.balance_cents < stype.unit_price_cents:
                    raise DeskInvalid(
                        "voucher_exhausted", f"voucher balance {ent.balance_cents} cents is"
                        f" less than the price {stype.unit_price_cents} cents",
                        f"本月服务券余额不足（余 {ent.balance_cents / 100:.2f} 元，需"
                        f" {stype.unit_price_cents / 100:.2f} 元）")
            await conn.execute(
                "INSERT INTO svc_orders(id, request_id, plan_id, resident_id, household_id,"
                " community_id, district_id, service_type_id, source, payment, status,"
                " window_start, window_end, month, price_cents, note, created_by, created_at,"
                " updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (order_id, request_id, plan_id, resident.id, resident.household_id,
                 resident.community_id, resident.district_id, stype.id, source.value,
                 payment.value, OrderStatus.CREATED.value, iso(start), iso(end), month,
                 stype.unit_price_cents, note, actor.id, iso(now), iso(now)))
            await self._log(conn, f"order:{order_id}", actor, "created",
                            {"service_type": stype.id, "window_start": iso(start),
                             "window_end": iso(end), "source": source.value,
                             "payment": payment.value, "request_id": request_id})
            if request_id is not None:
                await conn.execute("UPDATE svc_requests SET status = ?, updated_at = ?"
                                   " WHERE id = ?",
                                   (RequestStatus.ORDERED.value, iso(now), request_id))
                await self._log(conn, f"request:{request_id}", actor, "ordered",
                                {"order_id": order_id})
            if dispatch:
                row = await self._order_row_conn(conn, order_id)
                await self._dispatch(conn, row, actor, None)
        return order_id

    async def _order_row_conn(self, conn: Connection, order_id: str) -> Row:
        row = await K.fetch_one(conn, f"{ORDER_SELECT} WHERE o.id = ?", (order_id,))
        if row is None:
            raise not_found("order", order_id)
        return row

    async def _order_row(self, p: Principal, order_id: str) -> Row:
        clause, params = await self._order_scope(p)
        row = await K.fetch_one(self._db.conn, f"{ORDER_SELECT} WHERE o.id = ? AND {clause}",
                                [order_id, *params])
        if row is None:
            raise not_found("order", order_id)
        return row

    async def order_public(self, r: Row) -> OrderPublic:
        summary = await self._registry.resident_summary(r["resident_id"])
        return OrderPublic(
            id=r["id"], request_id=r["request_id"], plan_id=r["plan_id"],
            resident_id=r["resident_id"], resident_name=summary.name if summary else "",
            address=summary.address if summary else "", household_id=r["household_id"],
            community_id=r["community_id"], district_id=r["district_id"],
            service_type_id=r["service_type_id"], service_name_zh=r["name_zh"],
            service_name_en=r["name_en"], source=r["source"], payment=r["payment"],
            status=r["status"], window_start=parse_iso(r["window_start"]),
            window_end=parse_iso(r["window_end"]), price_cents=r["price_cents"],
            provider_id=r["provider_id"], worker_id=r["worker_id"],
            worker_name=r["worker_name"], accept_due_at=opt_parse(r["accept_due_at"]),
            arrive_due_at=opt_parse(r["arrive_due_at"]),
            dispatched_at=opt_parse(r["dispatched_at"]),
            accepted_at=opt_parse(r["accepted_at"]),
            checked_in_at=opt_parse(r["checked_in_at"]),
            completed_at=opt_parse(r["completed_at"]),
            cancelled_at=opt_parse(r["cancelled_at"]), attention=r["attention"],
            callback_due=bool(r["callback_due"]), note=r["note"],
            created_at=parse_iso(r["created_at"]))

    async def _ratings(self, order_id: str) -> list[RatingPublic]:
        rows = await K.fetch_all(self._db.conn, "SELECT * FROM svc_ratings WHERE order_id = ?"
                                 " ORDER BY id", (order_id,))
        return [RatingPublic(source=r["source"], score=r["score"], comment=r["comment"],
                             actor=r["actor"], ts=parse_iso(r["ts"])) for r in rows]

    def route_url(self, address: str) -> str:
        """A map search for the address (opened by the worker's phone; no coordinates sent)."""
        return f"https://uri.amap.com/search?keyword={quote(address)}"

    async def detail(self, row: Row) -> OrderDetail:
        base = await self.order_public(row)
        visit = await V.by_order(self._db.conn, row["id"])
        return OrderDetail(**base.model_dump(), timeline=await self._timeline(f"order:{row['id']}"),
                           visit=V.public_json(visit) if visit is not None else None,
                           ratings=await self._ratings(row["id"]),
                           route_url=self.route_url(base.address))

    async def get_order(self, p: Principal, order_id: str) -> OrderDetail:
        row = await self._order_row(p, order_id)
        await self._audit.record(tenant=p.tenant, actor=p.actor, actor_name=p.username,
                                 role=p.role.value, action="read", record_type="service_order",
                                 record_id=order_id, reason=f"resident {row['resident_id']}")
        return await self.detail(row)

    async def list_orders(self, p: Principal, *, status: OrderStatus | None = None,
                          day: date | None = None, resident_id: str | None = None,
                          limit: int = 500) -> list[OrderPublic]:
        clause, params = await self._order_scope(p)
        sql = f"{ORDER_SELECT} WHERE {clause}"
        if status is not None:
            sql += " AND o.status = ?"
            params.append(status.value)
        if resident_id is not None:
            sql += " AND o.resident_id = ?"
            params.append(resident_id)
        if day is not None:
            lo, hi = day_bounds(day)
            sql += " AND o.window_start >= ? AND o.window_start < ?"
            params += [lo, hi]
        rows = await K.fetch_all(self._db.conn, sql + " ORDER BY o.window_start LIMIT ?",
                                 [*params, limit])
        await self._audit.record(tenant=p.tenant, actor=p.actor, actor_name=p.username,
                                 role=p.role.value, action="list", record_type="service_order",
                                 record_id="*", reason=f"order board ({len(rows)})")
        return [await self.order_public(r) for r in rows]

    # -- dispatch ----------------------------------------------------------------------------

    async def _candidates(self, conn: Connection, order: Row,
                          ) -> list[Suggestion]:
        """Workers of providers that serve the order's community and type, with the skill,
        not already refused this order, free in the window; least loaded today first."""
        rows = await K.fetch_all(
            conn, "SELECT w.id, w.name, w.skills, p.id AS provider_id, p.name AS provider_name,"
            " p.communities, p.service_types FROM svc_workers w JOIN svc_providers p"
            " ON p.id = w.provider_id WHERE w.active = 1 AND p.active = 1 AND p.district_id = ?"
            " ORDER BY w.id", (order["district_id"],))
        refused = {r[0] for r in await K.fetch_all(
            conn, "SELECT worker_id FROM svc_dispatches WHERE order_id = ? AND status IN"
            " ('declined', 'expired')", (order["id"],))}
        start = parse_iso(order["window_start"])
        lo, hi = day_bounds(start.astimezone(K.LOCAL_TZ).date())
        out: list[Suggestion] = []
        for r in rows:
            if (order["community_id"] not in json.loads(r["communities"])
                    or order["service_type_id"] not in json.loads(r["service_types"])
                    or order["service_type_id"] not in json.loads(r["skills"])
                    or r["id"] in refused):
                continue
            if await K.overlapping(conn, r["id"], order["window_start"], order["window_end"],
                                   order["id"]):
                continue
            load = await K.fetch_one(conn, "SELECT COUNT(*) FROM svc_orders WHERE worker_id = ?"
                                     " AND window_start >= ? AND window_start < ? AND"
                                     " status <> ?", (r["id"], lo, hi,
                                                      OrderStatus.CANCELLED.value))
            out.append(Suggestion(provider_id=r["provider_id"], provider_name=r["provider_name"],
                                  worker_id=r["id"], worker_name=r["name"],
                                  load_today=int(load[0]) if load else 0))
        out.sort(key=lambda s: (s.load_today, s.worker_id))
        return out

    async def suggestions(self, p: Principal, order_id: str) -> list[Suggestion]:
        row = await self._order_row(p, order_id)
        return await self._candidates(self._db.conn, row)

    async def _dispatch(self, conn: Connection, order: Row, actor: Actor,
                        worker_id: str | None) -> str | None:
        """Offer the order to ``worker_id`` or the best candidate; unassigned when none."""
        now = self._clock.now()
        subject = f"order:{order['id']}"
        if worker_id is not None:
            clash = await K.overlapping(conn, worker_id, order["window_start"],
                                        order["window_end"], order["id"])
            if clash is not None:
                raise DeskConflict("worker_overlap", f"worker {worker_id} already has order"
                                   f" {clash} in this window",
                                   f"该服务人员在此时段已有工单 {clash}")
            pick = next((s for s in await self._candidates(conn, order)
                         if s.worker_id == worker_id), None)
            if pick is None:
                raise DeskInvalid("worker_unsuitable", f"worker {worker_id} cannot take this"
                                  " order (area, skill or already refused it)",
                                  "该服务人员不能接此单（服务区域、技能或已拒单）")
        else:
            cands = await self._candidates(conn, order)
            pick = cands[0] if cands else None
        if pick is None:
            await conn.execute(
                "UPDATE svc_orders SET status = ?, provider_id = NULL, worker_id = NULL,"
                " accept_due_at = NULL, attention = ?, updated_at = ? WHERE id = ?",
                (OrderStatus.UNASSIGNED.value, "no_worker", iso(now), order["id"]))
            await self._log(conn, subject, actor, "unassigned", {"why": "no worker available"})
            return None
        stype = await K.get_type(conn, order["service_type_id"])
        assert stype is not None
        due = now + timedelta(seconds=stype.accept_within_s)
        await conn.execute(
            "UPDATE svc_orders SET status = ?, provider_id = ?, worker_id = ?,"
            " dispatched_at = ?, accept_due_at = ?, updated_at = ? WHERE id = ?",
            (OrderStatus.DISPATCHED.value, pick.provider_id, pick.worker_id, iso(now), iso(due),
             iso(now), order["id"]))
        cur = await conn.execute(
            "INSERT INTO svc_dispatches(order_id, provider_id, worker_id, offered_at, status)"
            " VALUES (?,?,?,?,?) RETURNING id",
            (order["id"], pick.provider_id, pick.worker_id, iso(now), "offered"))
        offer = await cur.fetchone()
        assert offer is not None
        await self._queue_offer_sms(conn, int(offer[0]), order, stype, pick.worker_id)
        await self._log(conn, subject, actor, "dispatched",
                        {"provider_id": pick.provider_id, "worker_id": pick.worker_id,
                         "worker_name": pick.worker_name, "accept_due_at": iso(due)})
        return pick.worker_id

    async def _queue_offer_sms(self, conn: Connection, dispatch_id: int,
                               order: Row, stype: ServiceTypePublic,
                               worker_id: str) -> None:
        """The worker's SMS with the signed link to this order (one per offer, UNIQUE)."""
        wrow = await K.fetch_one(conn, "SELECT phone FROM svc_workers WHERE id = ?",
                                 (worker_id,))
        if wrow is None:
            return
        summary = await self._registry.resident_summary(order["resident_id"])
        start = parse_iso(order["window_start"]).astimezone(K.LOCAL_TZ)
        end = parse_iso(order["window_end"]).astimezone(K.LOCAL_TZ)
        expires = parse_iso(order["window_end"]) + timedelta(days=1)
        token = self.link_token(order["id"], worker_id, expires)
        link = f"{self._base_url}/job/{quote(order['id'])}?token={quote(token)}"
        body = (f"【安心守护】新工单：{stype.name_zh}，{summary.name if summary else ''}，"
                f"{summary.address if summary else ''}，{start:%m-%d %H:%M}-{end:%H:%M}。"
                f"请点击链接接单：{link}")
        await conn.execute(
            "INSERT INTO svc_messages(dispatch_id, order_id, worker_id, address, body, link,"
            " status, created_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (dispatch_id) DO NOTHING",
            (dispatch_id, order["id"], worker_id, wrow["phone"], body, link, "pending",
             iso(self._clock.now())))

    async def pending_messages(self, limit: int = 50) -> list[Row]:
        return await K.fetch_all(self._db.conn, "SELECT * FROM svc_messages WHERE"
                                 " status = 'pending' ORDER BY id LIMIT ?", (limit,))

    async def mark_message(self, message_id: int, status: str, error: str | None) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE svc_messages SET status = ?, last_error = ?, attempts = attempts + 1,"
                " sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE id = ?",
                (status, error, status, iso(self._clock.now()), message_id))

    async def dispatch(self, p: Principal, order_id: str, worker_id: str | None) -> OrderDetail:
        row = await self._order_row(p, order_id)
        if p.role is Role.PROVIDER and worker_id is not None:
            acct = await self.account(p)
            wrow = await K.fetch_one(self._db.conn, "SELECT provider_id FROM svc_workers"
                                     " WHERE id = ?", (worker_id,))
            if wrow is None or wrow[0] != acct.provider_id:
                raise not_found("worker", worker_id)
        if row["status"] not in (OrderStatus.CREATED.value, OrderStatus.UNASSIGNED.value,
                                 OrderStatus.DISPATCHED.value):
            raise DeskConflict("not_dispatchable", f"order {order_id} is {row['status']}",
                               "该工单当前状态不能派单")
        async with self._db.transaction() as conn:
            row = await self._order_row_conn(conn, order_id)
            if row["status"] == OrderStatus.DISPATCHED.value:
                await conn.execute("UPDATE svc_dispatches SET status = 'superseded',"
                                   " responded_at = ? WHERE order_id = ? AND status = 'offered'",
                                   (iso(self._clock.now()), order_id))
            await conn.execute("UPDATE svc_orders SET attention = NULL WHERE id = ?",
                               (order_id,))
            await self._dispatch(conn, row, Actor.of(p), worker_id)
        self._wake()
        return await self.get_order(p, order_id)

    async def _worker_of(self, p: Principal) -> str:
        acct = await self.account(p)
        if p.role is not Role.WORKER or acct.worker_id is None:
            raise PermissionDeniedError("only a service worker's account may do this")
        return acct.worker_id

    # the worker's actions: by account (``p``) or by signed link (``worker_id`` from the link)

    async def worker_act(self, order_id: str, worker_id: str, actor: Actor, action: str,
                         body: Any = None, at: datetime | None = None,
                         method: Method = Method.PHONE) -> None:
        async with self._db.transaction() as conn:
            row = await K.fetch_one(conn, f"{ORDER_SELECT} WHERE o.id = ?", (order_id,))
            if row is None or row["worker_id"] != worker_id:
                raise not_found("order", order_id)
            await self._worker_act(conn, row, actor, action, body, at, method)
        self._wake()

    async def _worker_act(self, conn: Connection, row: Row, actor: Actor,
                          action: str, body: Any, at: datetime | None,
                          method: Method) -> None:
        now = self._clock.now()
        order_id = row["id"]
        subject = f"order:{order_id}"
        status = OrderStatus(row["status"])
        stype = await K.get_type(conn, row["service_type_id"])
        assert stype is not None
        if action == "accept":
            if status is not OrderStatus.DISPATCHED:
                raise DeskConflict("not_offered", f"order {order_id} is {status.value}, not"
                                   " waiting for an accept", "该工单不在待接单状态")
            start = parse_iso(row["window_start"])
            arrive = max(start, now) + timedelta(seconds=stype.arrive_within_s)
            await conn.execute(
                "UPDATE svc_orders SET status = ?, accepted_at = ?, accept_due_at = NULL,"
                " arrive_due_at = ?, attention = NULL, updated_at = ? WHERE id = ?",
                (OrderStatus.ACCEPTED.value, iso(now), iso(arrive), iso(now), order_id))
            await conn.execute("UPDATE svc_dispatches SET status = 'accepted', responded_at = ?"
                               " WHERE order_id = ? AND worker_id = ? AND status = 'offered'",
                               (iso(now), order_id, row["worker_id"]))
            await self._log(conn, subject, actor, "accepted", {"arrive_due_at": iso(arrive)})
            if row["request_id"] is not None:
                req = await K.fetch_one(conn, "SELECT gateway_id, device_id FROM svc_requests"
                                        " WHERE id = ?", (row["request_id"],))
                if req is not None and req["device_id"]:
                    await self._queue_led(conn, row["request_id"], req["gateway_id"],
                                          req["device_id"], "help_coming")
        elif action == "decline":
            if status is not OrderStatus.DISPATCHED:
                raise DeskConflict("not_offered", f"order {order_id} is {status.value}, not"
                                   " waiting for an accept", "该工单不在待接单状态")
            reason = body.reason if body is not None else ""
            await conn.execute("UPDATE svc_dispatches SET status = 'declined', responded_at = ?,"
                               " reason = ? WHERE order_id = ? AND worker_id = ? AND"
                               " status = 'offered'", (iso(now), reason, order_id,
                                                       row["worker_id"]))
            await self._log(conn, subject, actor, "declined", {"reason": reason})
            await conn.execute("UPDATE svc_orders SET attention = ? WHERE id = ?",
                               ("declined", order_id))
            fresh = await self._order_row_conn(conn, order_id)
            await self._dispatch(conn, fresh, SYSTEM, None)
            await conn.execute("UPDATE svc_orders SET attention = COALESCE(attention, ?)"
                               " WHERE id = ?", ("declined", order_id))
        elif action == "check_in":
            if status is OrderStatus.IN_PROGRESS:
                raise DeskConflict("already_checked_in", f"order {order_id} is already"
                                   " checked in", "已签到")
            if status is not OrderStatus.ACCEPTED:
                raise DeskConflict("not_accepted", f"order {order_id} is {status.value};"
                                   " accept it before checking in", "请先接单再签到")
            when = at or now
            lat = body.latitude if body is not None else None
            lon = body.longitude if body is not None else None
            resident = await self._registry.resident_summary(row["resident_id"])
            await V.open_visit(
                conn, order_id=order_id, service_type_id=row["service_type_id"],
                resident_id=row["resident_id"], household_id=row["household_id"],
                district_id=row["district_id"], address=resident.address if resident else "",
                provider_id=row["provider_id"], worker_id=row["worker_id"],
                window_start=row["window_start"], window_end=row["window_end"],
                min_minutes=stype.min_visit_min, check_in_at=when, method=method, lat=lat,
                lon=lon, now=now)
            await conn.execute(
                "UPDATE svc_orders SET status = ?, checked_in_at = ?, arrive_due_at = NULL,"
                " attention = NULL, updated_at = ? WHERE id = ?",
                (OrderStatus.IN_PROGRESS.value, iso(when), iso(now), order_id))
            await self._log(conn, subject, actor, "checked_in",
                            {"method": method.value, "at": iso(when),
                             "position": lat is not None})
        elif action == "check_out":
            if status is OrderStatus.ACCEPTED or status is OrderStatus.DISPATCHED:
                raise DeskConflict("check_out_before_check_in", f"order {order_id} was never"
                                   " checked in", "尚未签到，不能签退")
            if status is not OrderStatus.IN_PROGRESS:
                raise DeskConflict("not_in_progress", f"order {order_id} is {status.value}",
                                   "该工单不在服务中")
            when = at or now
            visit = await V.by_order(conn, order_id)
            assert visit is not None
            if when < parse_iso(visit["check_in_at"]):
                raise DeskInvalid("check_out_before_check_in", "check-out is earlier than the"
                                  " check-in", "签退时间早于签到时间")
            note = body.note if body is not None else ""
            verdict = await V.close_visit(conn, visit, check_out_at=when, method=method,
                                          note=note, now=now)
            callback = await self._callback_due(conn, row)
            await conn.execute(
                "UPDATE svc_orders SET status = ?, completed_at = ?, callback_due = ?,"
                " attention = ?, updated_at = ? WHERE id = ?",
                (OrderStatus.COMPLETED.value, iso(when), int(callback),
                 None if verdict.verified else "visit_flagged", iso(now), order_id))
            if row["payment"] == Payment.VOUCHER.value:
                await conn.execute(
                    "INSERT INTO svc_vouchers(resident_id, month, order_id, amount_cents, kind,"
                    " ts) VALUES (?,?,?,?,?,?) ON CONFLICT (order_id, kind) DO NOTHING",
                    (row["resident_id"], row["month"], order_id, -row["price_cents"], "debit",
                     iso(now)))
            await self._log(conn, subject, actor, "checked_out",
                            {"method": method.value, "at": iso(when),
                             "duration_min": verdict.duration_min,
                             "flags": [f.value for f in verdict.flags],
                             "callback_due": callback})
            if row["request_id"] is not None:
                req = await K.fetch_one(conn, "SELECT gateway_id, device_id FROM svc_requests"
                                        " WHERE id = ?", (row["request_id"],))
                if req is not None and req["device_id"]:
                    await self._queue_led(conn, row["request_id"], req["gateway_id"],
                                          req["device_id"], "off")
        else:  # pragma: no cover - the routes name the actions
            raise ValueError(action)

    async def _callback_due(self, conn: Connection, row: Row) -> bool:
        """The centre calls back every visit of a new worker and a fixed share of the rest
        (chosen by a hash of the order id: the same order is always in or out)."""
        config = await self._config(conn, row["district_id"])
        done = await K.fetch_one(conn, "SELECT COUNT(*) FROM svc_orders WHERE worker_id = ? AND"
                                 " status = ?", (row["worker_id"], OrderStatus.COMPLETED.value))
        if done is not None and int(done[0]) < config.new_worker_visits:
            return True
        digest = hashlib.sha256(row["id"].encode()).digest()
        return int.from_bytes(digest[:4], "big") / 2**32 < config.callback_share

    async def act(self, p: Principal, order_id: str, action: str, body: Any = None,
                  ) -> OrderDetail:
        worker_id = await self._worker_of(p)
        await self.worker_act(order_id, worker_id, Actor.of(p), action, body)
        return await self.get_order(p, order_id)

    async def cancel(self, p: Principal, order_id: str, reason: str) -> OrderDetail:
        row = await self._order_row(p, order_id)
        if row["status"] in (OrderStatus.COMPLETED.value, OrderStatus.CANCELLED.value,
                             OrderStatus.IN_PROGRESS.value):
            raise DeskConflict("not_cancellable", f"order {order_id} is {row['status']}",
                               "该工单当前状态不能取消")
        now = self._clock.now()
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE svc_orders SET status = ?, cancelled_at = ?, accept_due_at = NULL,"
                " arrive_due_at = NULL, updated_at = ? WHERE id = ?",
                (OrderStatus.CANCELLED.value, iso(now), iso(now), order_id))
            await conn.execute("UPDATE svc_dispatches SET status = 'superseded' WHERE"
                               " order_id = ? AND status = 'offered'", (order_id,))
            await self._log(conn, f"order:{order_id}", Actor.of(p), "cancelled",
                            {"reason": reason})
        return await self.get_order(p, order_id)

    # -- the worker's signed link ---------------------------------------------------------------

    def link_token(self, order_id: str, worker_id: str, expires: datetime) -> str:
        return sign(self._secret, LINK_PURPOSE, {"o": order_id, "w": worker_id}, expires)

    def verify_link(self, token: str, order_id: str) -> str:
        claims = verify(self._secret, LINK_PURPOSE, token, self._clock.now())
        if claims.get("o") != order_id or not isinstance(claims.get("w"), str):
            raise DeskInvalid("link_other_order", "this link is for another order",
                              "此链接不属于该工单")
        return str(claims["w"])

    async def work_link(self, p: Principal, order_id: str) -> dict[str, str]:
        row = await self._order_row(p, order_id)
        if row["worker_id"] is None:
            raise DeskConflict("not_dispatched", f"order {order_id} has no worker",
                               "该工单尚未派给服务人员")
        expires = parse_iso(row["window_end"]) + timedelta(days=1)
        token = self.link_token(order_id, row["worker_id"], expires)
        return {"url": f"{self._base_url}/job/{quote(order_id)}?token={quote(token)}",
                "token": token, "worker_id": row["worker_id"]}

    async def work_view(self, order_id: str, token: str) -> WorkView:
        worker_id = self.verify_link(token, order_id)
        return await self._work_view(order_id, worker_id)

    async def _work_view(self, order_id: str, worker_id: str) -> WorkView:
        row = await K.fetch_one(self._db.conn, f"{ORDER_SELECT} WHERE o.id = ?", (order_id,))
        if row is None or row["worker_id"] != worker_id:
            # the link's worker no longer holds this order (declined, re-dispatched)
            raise not_found("order", order_id)
        order = await self.order_public(row)
        visit = await V.by_order(self._db.conn, order_id)
        resident = await self._registry.resident_unscoped(row["resident_id"])
        await self._audit.record(tenant=self._tenant, actor=f"worker:{worker_id}",
                                 actor_name=worker_id, role=Role.WORKER.value, action="read",
                                 record_type="resident", record_id=row["resident_id"],
                                 reason=f"service order {order_id} (worker link)")
        return WorkView(order=order, visit=V.public_json(visit) if visit else None,
                        route_url=self.route_url(order.address),
                        resident_phone=resident.phone if resident else None)

    async def link_act(self, order_id: str, token: str, action: str,
                       body: Any = None) -> WorkView:
        worker_id = self.verify_link(token, order_id)
        row = await K.fetch_one(self._db.conn, "SELECT name FROM svc_workers WHERE id = ?",
                                (worker_id,))
        name = str(row[0]) if row else worker_id
        await self.worker_act(order_id, worker_id, Actor(f"worker:{worker_id}", name), action,
                              body)
        return await self._work_view(order_id, worker_id)

    # -- evaluation ---------------------------------------------------------------------------

    async def rate(self, p: Principal, order_id: str, body: RatingCreate) -> OrderDetail:
        row = await self._order_row(p, order_id)
        if row["status"] != OrderStatus.COMPLETED.value:
            raise DeskConflict("not_completed", f"order {order_id} is {row['status']}; only a"
                               " completed visit can be rated", "服务完成后才能评价")
        source = RatingSource.FAMILY if p.role is Role.FAMILY else body.source
        if p.role is not Role.FAMILY and source is RatingSource.FAMILY:
            raise DeskInvalid("wrong_source", "staff record call-back or button ratings",
                              "工作人员只能录入回访评价")
        now = self._clock.now()
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO svc_ratings(order_id, source, score, comment, actor, ts)"
                " VALUES (?,?,?,?,?,?)",
                (order_id, source.value, body.score.value, body.comment, p.actor, iso(now)))
            if source is RatingSource.CALLBACK:
                await conn.execute("UPDATE svc_orders SET callback_due = 0 WHERE id = ?",
                                   (order_id,))
            await self._log(conn, f"order:{order_id}", Actor.of(p), "rated",
                            {"source": source.value, "score": body.score.value,
                             "comment": body.comment})
            if body.score is Score.UNSATISFIED:
                followup_id = f"FU-{now:%y%m%d}-{secrets.token_hex(3)}"
                await conn.execute(
                    "INSERT INTO svc_followups(id, order_id, provider_id, district_id, reason,"
                    " status, opened_at) VALUES (?,?,?,?,?,?,?)",
                    (followup_id, order_id, row["provider_id"], row["district_id"],
                     body.comment or "不满意", "open", iso(now)))
                await self._log(conn, f"order:{order_id}", SYSTEM, "followup_opened",
                                {"followup_id": followup_id})
        return await self.get_order(p, order_id)

    async def _followup_scope(self, p: Principal) -> tuple[str, list[Any]]:
        if p.role in (Role.ADMIN, Role.OPERATOR):
            return K.in_list("district_id", await self.districts_of(p))
        acct = await self.account(p)
        if p.role is Role.PROVIDER and acct.provider_id is not None:
            return "provider_id = ?", [acct.provider_id]
        return "1 = 0", []

    async def list_followups(self, p: Principal, open_only: bool = True) -> list[FollowupPublic]:
        clause, params = await self._followup_scope(p)
        sql = f"SELECT * FROM svc_followups WHERE {clause}"
        if open_only:
            sql += " AND status = 'open'"
        rows = await K.fetch_all(self._db.conn, sql + " ORDER BY opened_at", params)
        return [_followup(r) for r in rows]

    async def close_followup(self, p: Principal, followup_id: str,
                             resolution: str) -> FollowupPublic:
        clause, params = await self._followup_scope(p)
        row = await K.fetch_one(self._db.conn, f"SELECT * FROM svc_followups WHERE id = ? AND"
                                f" {clause}", [followup_id, *params])
        if row is None:
            raise not_found("followup", followup_id)
        if row["status"] != "open":
            raise DeskConflict("followup_closed", f"follow-up {followup_id} is closed",
                               "该整改单已关闭")
        now = self._clock.now()
        async with self._db.transaction() as conn:
            await conn.execute("UPDATE svc_followups SET status = 'closed', closed_at = ?,"
                               " resolution = ? WHERE id = ?", (iso(now), resolution,
                                                                followup_id))
            await self._log(conn, f"order:{row['order_id']}", Actor.of(p), "followup_closed",
                            {"followup_id": followup_id, "resolution": resolution})
            row = await K.fetch_one(conn, "SELECT * FROM svc_followups WHERE id = ?",
                                    (followup_id,))
        assert row is not None
        return _followup(row)

    async def review_visit(self, p: Principal, visit_id: str, accept: bool,
                           note: str) -> dict[str, Any]:
        row = await V.get(self._db.conn, visit_id, await self.districts_of(p))
        if row is None:
            raise not_found("visit", visit_id)
        if row["status"] != "flagged":
            raise DeskConflict("not_flagged", f"visit {visit_id} is {row['status']}",
                               "只有被标记的服务记录需要复核")
        now = self._clock.now()
        async with self._db.transaction() as conn:
            await V.review(conn, visit_id, accept, p.actor, now)
            await conn.execute("UPDATE svc_orders SET attention = NULL WHERE id = ?",
                               (row["order_id"],))
            await self._log(conn, f"order:{row['order_id']}", Actor.of(p), "visit_reviewed",
                            {"accepted": accept, "note": note})
            row = await V.by_order(conn, row["order_id"])
        assert row is not None
        return V.public_json(row)

    async def list_visits(self, p: Principal, flagged_only: bool) -> list[dict[str, Any]]:
        rows = await V.in_districts(self._db.conn, await self.districts_of(p), flagged_only)
        return [V.public_json(r) for r in rows]

    # -- recurring plans ----------------------------------------------------------------------

    async def create_plan(self, p: Principal, body: PlanCreate) -> PlanPublic:
        resident = await self._resident(p, body.resident_id, "service plan")
        stype = await K.get_type(self._db.conn, body.service_type_id)
        if stype is None:
            raise DeskInvalid("unknown_service_type", f"unknown service type"
                              f" {body.service_type_id}", f"未知的服务项目 {body.service_type_id}")
        ent = await K.entitlement(self._db.conn, resident, K.local_month(self._clock.now()))
        if stype.id not in ent.service_types:
            raise DeskInvalid("not_entitled", f"resident {resident.id} is not entitled to"
                              f" subsidised {stype.id}", f"该老人不享受{stype.name_zh}补贴")
        plan_id = f"PL-{secrets.token_hex(4)}"
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO svc_plans(id, resident_id, district_id, service_type_id,"
                " every_days, first_date, start_time, end_time, active, created_by, created_at)"
                " VALUES (?,?,?,?,?,?,?,?,1,?,?)",
                (plan_id, resident.id, resident.district_id, stype.id, body.every_days,
                 body.first_date.isoformat(), body.start_time.isoformat(timespec="minutes"),
                 body.end_time.isoformat(timespec="minutes"), p.actor,
                 iso(self._clock.now())))
            await self._log(conn, f"plan:{plan_id}", Actor.of(p), "created",
                            body.model_dump(mode="json"))
        self._wake()
        return await self._plan(plan_id)

    async def _plan(self, plan_id: str) -> PlanPublic:
        row = await K.fetch_one(self._db.conn, "SELECT * FROM svc_plans WHERE id = ?",
                                (plan_id,))
        if row is None:
            raise not_found("plan", plan_id)
        return _plan(row)

    async def list_plans(self, p: Principal) -> list[PlanPublic]:
        clause, params = K.in_list("district_id", await self.districts_of(p))
        rows = await K.fetch_all(self._db.conn, f"SELECT * FROM svc_plans WHERE {clause}"
                                 " ORDER BY created_at", params)
        return [_plan(r) for r in rows]

    async def stop_plan(self, p: Principal, plan_id: str) -> PlanPublic:
        clause, params = K.in_list("district_id", await self.districts_of(p))
        row = await K.fetch_one(self._db.conn, f"SELECT id FROM svc_plans WHERE id = ? AND"
                                f" {clause}", [plan_id, *params])
        if row is None:
            raise not_found("plan", plan_id)
        async with self._db.transaction() as conn:
            await conn.execute("UPDATE svc_plans SET active = 0 WHERE id = ?", (plan_id,))
            await self._log(conn, f"plan:{plan_id}", Actor.of(p), "stopped")
        return await self._plan(plan_id)

    async def generate_plans(self, horizon_days: int = 2) -> int:
        """Orders for every active plan's occurrences from today to ``horizon_days`` ahead;
        the UNIQUE (plan_id, window_start) key makes a second run (or a restart) a no-op."""
        now = self._clock.now()
        today = now.astimezone(K.LOCAL_TZ).date()
        rows = await K.fetch_all(self._db.conn, "SELECT * FROM svc_plans WHERE active = 1")
        made = 0
        for r in rows:
            plan = _plan(r)
            resident = await self._registry.resident_unscoped(plan.resident_id)
            if resident is None:
                continue
            for offset in range(horizon_days + 1):
                day = today + timedelta(days=offset)
                delta = (day - plan.first_date).days
                if delta < 0 or delta % plan.every_days:
                    continue
                start = datetime.combine(day, plan.start_time, K.LOCAL_TZ)
                end = datetime.combine(day, plan.end_time, K.LOCAL_TZ)
                if end <= now:
                    continue
                exists = await K.fetch_one(self._db.conn, "SELECT 1 FROM svc_orders WHERE"
                                           " plan_id = ? AND window_start = ?",
                                           (plan.id, iso(start)))
                if exists is not None:
                    continue
                try:
                    await self._insert_order(
                        resident=resident, type_id=plan.service_type_id, start=start, end=end,
                        source=OrderSource.PLAN, payment=Payment.VOUCHER, note="",
                        request_id=None, plan_id=plan.id, actor=SYSTEM, dispatch=True)
                    made += 1
                except DeskInvalid as exc:
                    async with self._db.transaction() as conn:
                        await self._log(conn, f"plan:{plan.id}", SYSTEM, "skipped",
                                        {"day": day.isoformat(), "code": exc.code,
                                         "reason": exc.zh})
        return made

    # -- deadlines (the engine calls these) ------------------------------------------------------

    async def next_due(self) -> datetime | None:
        row = await K.fetch_one(
            self._db.conn,
            "SELECT MIN(d) FROM (SELECT MIN(accept_due_at) AS d FROM svc_orders WHERE status = ?"
            " UNION ALL SELECT MIN(arrive_due_at) AS d FROM svc_orders WHERE status = ?) AS due",
            (OrderStatus.DISPATCHED.value, OrderStatus.ACCEPTED.value))
        return opt_parse(row[0]) if row is not None and row[0] is not None else None

    async def run_due(self) -> int:
        """Missed accept deadlines re-dispatch; missed arrivals tell the operator. Each order
        in its own transaction, re-checked inside it, so a restart or a second engine never
        acts on one twice."""
        now = iso(self._clock.now())
        moved = 0
        for (order_id,) in await K.fetch_all(
                self._db.conn, "SELECT id FROM svc_orders WHERE status = ? AND"
                " accept_due_at <= ? ORDER BY accept_due_at",
                (OrderStatus.DISPATCHED.value, now)):
            async with self._db.transaction() as conn:
                row = await self._order_row_conn(conn, order_id)
                if (row["status"] != OrderStatus.DISPATCHED.value
                        or row["accept_due_at"] is None or row["accept_due_at"] > now):
                    continue
                await conn.execute("UPDATE svc_dispatches SET status = 'expired',"
                                   " responded_at = ? WHERE order_id = ? AND status = 'offered'",
                                   (now, order_id))
                await self._log(conn, f"order:{order_id}", SYSTEM, "accept_expired",
                                {"worker_id": row["worker_id"]})
                fresh = await self._order_row_conn(conn, order_id)
                await self._dispatch(conn, fresh, SYSTEM, None)
                await conn.execute("UPDATE svc_orders SET attention = COALESCE(attention, ?)"
                                   " WHERE id = ?", ("accept_expired", order_id))
                moved += 1
        for (order_id,) in await K.fetch_all(
                self._db.conn, "SELECT id FROM svc_orders WHERE status = ? AND"
                " arrive_due_at <= ? ORDER BY arrive_due_at",
                (OrderStatus.ACCEPTED.value, now)):
            async with self._db.transaction() as conn:
                cur = await conn.execute(
                    "UPDATE svc_orders SET arrive_due_at = NULL, attention = ?, updated_at = ?"
                    " WHERE id = ? AND status = ? AND arrive_due_at <= ?",
                    ("arrival_overdue", now, order_id, OrderStatus.ACCEPTED.value, now))
                if cur.rowcount:
                    await self._log(conn, f"order:{order_id}", SYSTEM, "arrival_overdue")
                    moved += 1
        return moved

    async def pending_leds(self, limit: int = 50) -> list[Row]:
        return await K.fetch_all(self._db.conn, "SELECT * FROM svc_led_outbox WHERE"
                                 " status = 'pending' ORDER BY id LIMIT ?", (limit,))

    async def mark_led(self, led_id: int, sent: bool, error: str | None,
                       max_attempts: int = 5) -> None:
        async with self._db.transaction() as conn:
            if sent:
                await conn.execute("UPDATE svc_led_outbox SET status = 'sent', sent_at = ?,"
                                   " attempts = attempts + 1 WHERE id = ?",
                                   (iso(self._clock.now()), led_id))
            else:
                await conn.execute(
                    "UPDATE svc_led_outbox SET attempts = attempts + 1, last_error = ?,"
                    " status = CASE WHEN attempts + 1 >= ? THEN 'failed' ELSE status END"
                    " WHERE id = ?", (error, max_attempts, led_id))

    # -- the button's long press: check-in and check-out ---------------------------------------

    async def long_press(self, conn: Connection, household_id: str, device_id: str,
                         at: datetime) -> str | None:
        """A long press at a home with an accepted or running order checks the worker in or
        out; returns the order id, or None when no order is waiting (an ordinary press)."""
        clause, params = K.in_list("o.status", [OrderStatus.ACCEPTED.value,
                                                OrderStatus.IN_PROGRESS.value])
        rows = await K.fetch_all(conn, f"{ORDER_SELECT} WHERE o.household_id = ? AND {clause}"
                                 " ORDER BY o.status DESC, o.window_start",
                                 (household_id, *params))
        if not rows:
            for hook in self._visit_hooks:
                if (found := await hook.long_press(conn, household_id, device_id, at)):
                    return found
            return None
        row = rows[0]  # in_progress sorts before accepted: a running visit is closed first
        action = "check_out" if row["status"] == OrderStatus.IN_PROGRESS.value else "check_in"
        actor = Actor(f"device:{device_id}", "绿色按键长按")
        await self._worker_act(conn, row, actor, action, None, at, Method.BUTTON)
        return str(row["id"])

    async def button_rating(self, conn: Connection, household_id: str,
                            device_id: str, at: datetime) -> str | None:
        """A double press within ``BUTTON_RATING_WINDOW`` of a visit's check-out is the
        elder's "满意" for it (once); otherwise None, and the press is an ordinary one."""
        since = iso(at - BUTTON_RATING_WINDOW)
        row = await K.fetch_one(
            conn, "SELECT o.id FROM svc_orders o WHERE o.household_id = ? AND o.status = ? AND"
            " o.completed_at >= ? AND o.completed_at <= ? AND NOT EXISTS (SELECT 1 FROM"
            " svc_ratings r WHERE r.order_id = o.id AND r.source = ?)"
            " ORDER BY o.completed_at DESC LIMIT 1",
            (household_id, OrderStatus.COMPLETED.value, since, iso(at),
             RatingSource.BUTTON.value))
        if row is None:
            return None
        order_id = str(row[0])
        await conn.execute(
            "INSERT INTO svc_ratings(order_id, source, score, comment, actor, ts)"
            " VALUES (?,?,?,?,?,?)",
            (order_id, RatingSource.BUTTON.value, Score.SATISFIED.value, "",
             f"device:{device_id}", iso(self._clock.now())))
        await self._log(conn, f"order:{order_id}", Actor(f"device:{device_id}", "绿色按键双击"),
                        "rated", {"source": RatingSource.BUTTON.value,
                                  "score": Score.SATISFIED.value})
        return order_id

    async def has_active_order(self, conn: Connection, household_id: str,
                               at: datetime | None = None) -> bool:
        clause, params = K.in_list("status", [s.value for s in HOLDS_WORKER])
        row = await K.fetch_one(conn, f"SELECT 1 FROM svc_orders WHERE household_id = ? AND"
                                f" {clause} LIMIT 1", (household_id, *params))
        if row is not None:
            return True
        for hook in self._visit_hooks:
            if await hook.has_active(conn, household_id, at or self._clock.now()):
                return True
        return False


def day_bounds(day: date) -> tuple[str, str]:
    """A local calendar day as [start, end) in the stored UTC text form."""
    start = datetime.combine(day, time(0, 0), K.LOCAL_TZ)
    return iso(start), iso(start + timedelta(days=1))


def _followup(r: Row) -> FollowupPublic:
    return FollowupPublic(id=r["id"], order_id=r["order_id"], provider_id=r["provider_id"],
                          district_id=r["district_id"], reason=r["reason"], status=r["status"],
                          opened_at=parse_iso(r["opened_at"]),
                          closed_at=opt_parse(r["closed_at"]), resolution=r["resolution"])


def _plan(r: Row) -> PlanPublic:
    return PlanPublic(id=r["id"], resident_id=r["resident_id"], district_id=r["district_id"],
                      service_type_id=r["service_type_id"], every_days=r["every_days"],
                      first_date=date.fromisoformat(r["first_date"]),
                      start_time=time.fromisoformat(r["start_time"]),
                      end_time=time.fromisoformat(r["end_time"]), active=bool(r["active"]))


__all__ = ["OPEN_ORDER", "AuthenticationError", "ServiceDesk", "day_bounds"]
