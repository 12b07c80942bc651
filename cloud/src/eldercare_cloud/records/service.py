"""The monitoring centre's record: case history, condensed timelines, KPIs, reports.

Reads only: cases come from the care core's history queries (``care.history``), the
register's denominators from ``records.sources``; the one write of this domain is the
audit record of every case read and every export.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from eldercare_cloud.audit import AuditLog
from eldercare_cloud.auth.models import Principal, Role
from eldercare_cloud.care import alerts as A
from eldercare_cloud.care import history as H
from eldercare_cloud.care.models import AlertStatus
from eldercare_cloud.clock import Clock, opt_parse, parse_iso
from eldercare_cloud.db import Database, Row
from eldercare_cloud.errors import InvalidRequestError, NotFoundError
from eldercare_cloud.records import kpi as K
from eldercare_cloud.records.models import (
    CaseLine,
    CasePage,
    CaseRecord,
    CaseSummary,
    FollowUp,
    Handover,
    HandoverItem,
    KpiReport,
    ReviewState,
)
from eldercare_cloud.records.sources import register

if TYPE_CHECKING:
    from eldercare_cloud.services.records import ServiceRecords
    from eldercare_cloud.visits.care import CareVisits

#: notification states that reached the far side (or its provider)
_DELIVERED = frozenset({"sent", "delivered"})


def month_range(from_month: str, to_month: str | None) -> tuple[datetime, datetime]:
    """[first instant of from_month, first instant after to_month) in the centre's time."""
    try:
        start = datetime.strptime(from_month, "%Y-%m").replace(tzinfo=K.LOCAL_TZ)
        last = datetime.strptime(to_month or from_month, "%Y-%m").replace(tzinfo=K.LOCAL_TZ)
    except ValueError as exc:
        raise InvalidRequestError("months are written YYYY-MM") from exc
    if last < start:
        raise InvalidRequestError("to_month is before from_month")
    months = (last.year - start.year) * 12 + last.month - start.month
    if months >= 24:
        raise InvalidRequestError("a report covers at most 24 months")
    end = (last.replace(year=last.year + 1, month=1) if last.month == 12
           else last.replace(month=last.month + 1))
    return start, end


def _secs(start: str, end: str | None) -> float | None:
    stamp = opt_parse(end)
    return None if stamp is None else (stamp - parse_iso(start)).total_seconds()


def summary(r: Row, operators: list[tuple[str, str]],
            accepted: tuple[str, int] | None) -> CaseSummary:
    status = AlertStatus(r["status"])
    step = accepted[1] if accepted is not None else None
    return CaseSummary(
        id=r["id"], kind=r["kind"], severity=r["severity_override"] or r["severity"],
        status=status,
        review_state=(ReviewState.CLOSED if status is AlertStatus.CLOSED
                      else ReviewState.PENDING_REVIEW),
        resident_id=r["resident_id"], resident_name=r["resident_name"], address=r["address"],
        district_id=r["district_id"], community_id=r["community_id"],
        community_name=r["community_name"], opened_at=parse_iso(r["opened_at"]),
        acknowledged_at=opt_parse(r["acknowledged_at"]),
        accepted_at=opt_parse(r["accepted_at"]), on_scene_at=opt_parse(r["on_scene_at"]),
        resolved_at=opt_parse(r["resolved_at"]), closed_at=opt_parse(r["closed_at"]),
        closure_code=r["closure_code"], ack_s=_secs(r["opened_at"], r["acknowledged_at"]),
        accept_s=_secs(r["opened_at"], r["accepted_at"]),
        on_scene_s=_secs(r["opened_at"], r["on_scene_at"]),
        responder_name=accepted[0] if accepted is not None else None,
        # dispatches by the centre carry a step index past the ladder's (no ladder step)
        accepted_step=step + 1 if step is not None and 0 <= step < 100 else None,
        operators=[name for _, name in operators])


def condense(timeline: list[Any]) -> list[CaseLine]:
    """One line per ladder step (who was asked, deliveries counted, failed channels
    summarised), one per person's action; per-contact offers and per-message delivery
    lines fold into their step."""
    steps = {int(t.detail.get("step_index", -1)) for t in timeline
             if t.action == "ladder_step"}
    asked: dict[int, list[str]] = {}
    contact_step: dict[str, int] = {}
    for t in timeline:
        if t.action == "offered" and int(t.detail.get("step_index", -1)) in steps:
            index = int(t.detail["step_index"])
            asked.setdefault(index, []).append(str(t.detail.get("name")
                                                   or t.detail.get("contact_id")))
            contact_step[str(t.detail.get("contact_id"))] = index
    lines: list[dict[str, Any]] = []
    step_line: dict[int, int] = {}
    contact_line: dict[str, int] = {}
    loose_failures: int | None = None
    for t in timeline:
        d = dict(t.detail)
        base = {"ts": t.ts, "actor": t.actor, "actor_name": t.actor_name, "action": t.action,
                "from_status": t.from_status, "to_status": t.to_status, "detail": d}
        if t.action == "ladder_step":
            index = int(d.get("step_index", -1))
            if index in step_line:  # the same step again (an in-turn step's next person)
                lines[step_line[index]]["detail"]["repeats"] = (
                    lines[step_line[index]]["detail"].get("repeats", 0) + 1)
                continue
            d.update(offered=asked.get(index, []), delivered=0, failed={})
            step_line[index] = len(lines)
            lines.append(base)
        elif t.action == "offered" and int(d.get("step_index", -1)) in steps:
            continue
        elif t.action == "notification":
            contact = str(d.get("contact_id"))
            idx_or_none = contact_line.get(contact)
            if idx_or_none is None and contact in contact_step:
                idx_or_none = step_line.get(contact_step[contact])
            if idx_or_none is None:
                if d.get("status") in _DELIVERED:
                    continue
                if loose_failures is None:
                    loose_failures = len(lines)
                    lines.append({**base, "action": "notifications_failed",
                                  "detail": {"failed": {}}})
                idx_or_none = loose_failures
            target = lines[idx_or_none]["detail"]
            if d.get("status") in _DELIVERED:
                target["delivered"] = target.get("delivered", 0) + 1
            else:
                failed = target.setdefault("failed", {})
                failed[d.get("channel", "?")] = failed.get(d.get("channel", "?"), 0) + 1
        else:
            if t.action == "dispatched":
                d.update(delivered=0, failed={})
                contact_line[str(d.get("contact_id"))] = len(lines)
            lines.append(base)
    return [CaseLine(**line) for line in lines]


class RecordsService:
    def __init__(self, db: Database, clock: Clock, audit: AuditLog,
                 service_records: ServiceRecords | None = None,
                 care_visits: CareVisits | None = None) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._service_records = service_records
        self._care_visits = care_visits

    async def history(self, p: Principal, f: H.HistoryFilter, *, limit: int = 50,
                      offset: int = 0) -> CasePage:
        conn = self._db.conn
        rows, total = await H.search(conn, p, f, limit=limit, offset=offset)
        ids = [r["id"] for r in rows]
        actors = await H.staff_actors(conn, ids)
        accepted = await H.accepted_offers(conn, ids)
        return CasePage(total=total, items=[summary(r, actors.get(r["id"], []),
                                                    accepted.get(r["id"])) for r in rows])

    async def case(self, p: Principal, alert_id: str) -> CaseRecord:
        conn = self._db.conn
        row = await H.one(conn, p, alert_id)
        if row is None:
            raise NotFoundError(f"alert {alert_id} not found")
        full = await A.load(conn, alert_id)
        assert full is not None
        detail = await A.detail(conn, full)
        actors = await H.staff_actors(conn, [alert_id])
        accepted = await H.accepted_offers(conn, [alert_id])
        if row["resident_id"]:
            await self._audit.record(tenant=p.tenant, actor=p.actor, actor_name=p.username,
                                     role=p.role.value, action="read_case",
                                     record_type="resident", record_id=row["resident_id"],
                                     reason=f"case history {alert_id}")
        lines = condense(detail.timeline)
        return CaseRecord(case=summary(row, actors.get(alert_id, []), accepted.get(alert_id)),
                          timeline=lines, offers=detail.offers,
                          notifications=detail.notifications,
                          notes=[ln for ln in lines if ln.action in ("note", "reviewed")])

    async def kpis(self, p: Principal, from_month: str, to_month: str | None = None,
                   district_id: str | None = None) -> KpiReport:
        start, end = month_range(from_month, to_month)
        reg = await register(self._db, p)
        if district_id is not None and district_id not in reg.districts:
            raise NotFoundError(f"district {district_id} not found")
        facts = await H.facts(self._db.conn, p, start, end, district_id)
        communities = {k: c for k, c in reg.communities.items()
                       if district_id is None or c.district_id == district_id}
        districts = {k: d for k, d in reg.districts.items()
                     if district_id is None or k == district_id}
        names = {f.operator: f.operator_name or f.operator for f in facts if f.operator}
        by = {
            "district": K.Grouping(
                key=lambda f: f.district_id,
                label=lambda k: districts[k].name if k in districts else k,
                residents=lambda k: districts[k].residents if k in districts else None),
            "community": K.Grouping(
                key=lambda f: f.community_id,
                label=lambda k: communities[k].name if k in communities else k,
                residents=lambda k: communities[k].residents if k in communities else None),
            "operator": K.Grouping(key=lambda f: f.operator,
                                   label=lambda k: names.get(k, k)),
            "hour": K.Grouping(key=K.local_hour, label=lambda k: f"{k}:00"),
            "month": K.Grouping(key=K.local_month, label=lambda k: k),
        }
        months = []
        cursor = start
        while cursor < end:
            months.append(f"{cursor:%Y-%m}")
            cursor = (cursor.replace(year=cursor.year + 1, month=1) if cursor.month == 12
                      else cursor.replace(month=cursor.month + 1))
        residents = sum(d.residents for d in districts.values())
        # the green half's figures come from their own domains, over the districts this
        # caller's statistics cover: a district administrator sees counts, never residents,
        # so the domains read the register as an operator of exactly those districts (the
        # registry audits that read under the caller's id, marked as statistics)
        stats = Principal(user_id=p.user_id, username=f"{p.username} [statistics]",
                          role=Role.OPERATOR,
                          tenant=p.tenant, district_ids=frozenset(districts))
        scope = sorted(districts)
        services = (None if self._service_records is None
                    else await self._service_records.month_figures(stats, scope, months))
        care_visits = (None if self._care_visits is None
                       else await self._care_visits.month_figures(stats, scope, months))
        return KpiReport(
            period_start=start, period_end=end, from_month=from_month,
            to_month=to_month or from_month, district_id=district_id,
            generated_at=self._clock.now(),
            standard={"ack_within_60s_pct": K.STANDARD_60S_PCT,
                      "ack_within_180s_pct": K.STANDARD_180S_PCT},
            overall=K.figures(facts, start, end, residents),
            by_district=K.grouped(facts, by["district"], start, end, districts),
            by_community=K.grouped(facts, by["community"], start, end, communities),
            by_operator=K.grouped(facts, by["operator"], start, end),
            by_hour=K.grouped(facts, by["hour"], start, end,
                              [f"{h:02d}" for h in range(24)]),
            by_month=K.grouped(facts, by["month"], start, end, months),
            services=services, care_visits=care_visits)

    async def handover(self, p: Principal, since: datetime) -> Handover:
        """The shift handover: every open alert, every alert that changed since the shift
        began (with what changed), and the ones that need someone to follow up."""
        conn = self._db.conn
        now = self._clock.now()
        if since > now:
            raise InvalidRequestError("since is in the future")
        if now - since > timedelta(days=7):
            raise InvalidRequestError("a handover covers at most 7 days")
        open_rows = await H.open_cases(conn, p)
        changed_rows, entries = await H.changed_since(conn, p, since)
        rows = {r["id"]: r for r in [*open_rows, *changed_rows]}
        ids = list(rows)
        actors = await H.staff_actors(conn, ids)
        accepted = await H.accepted_offers(conn, ids)
        exhausted = await H.exhausted_ladders(conn, ids)
        failed = await H.failed_notifications(conn, p, since)
        changes: dict[str, list[str]] = {}
        last: dict[str, datetime] = {}
        for e in entries:
            if e["action"] in ("offered", "notification"):
                continue  # folded into the ladder step, as in the case timeline
            changes.setdefault(e["alert_id"], []).append(e["action"])
            last[e["alert_id"]] = parse_iso(e["ts"])

        def item(r: Row) -> HandoverItem:
            case = summary(r, actors.get(r["id"], []), accepted.get(r["id"]))
            todo: list[FollowUp] = []
            status = AlertStatus(r["status"])
            if status is AlertStatus.RESOLVED:
                todo.append(FollowUp.PENDING_REVIEW)
            if status is AlertStatus.OPEN and r["acknowledged_at"] is None:
                todo.append(FollowUp.UNACKNOWLEDGED)
                if r["supervisor_escalated_at"] is not None:
                    todo.append(FollowUp.SUPERVISOR)
            if r["id"] in exhausted and status not in (AlertStatus.RESOLVED,
                                                       AlertStatus.CLOSED):
                todo.append(FollowUp.LADDER_EXHAUSTED)
            if status is AlertStatus.ASSIGNED or status is AlertStatus.EN_ROUTE:
                todo.append(FollowUp.NOT_ON_SCENE)
            if failed.get(r["id"]):
                todo.append(FollowUp.NOTIFICATION_FAILED)
            return HandoverItem(case=case, changes=changes.get(r["id"], []),
                                last_change_at=last.get(r["id"]), follow_up=todo)

        items = {k: item(r) for k, r in rows.items()}
        # pending reviews from before the shift are follow-ups too
        pending, _total = await H.search(conn, p, H.HistoryFilter(status="resolved"),
                                         limit=200, offset=0)
        for r in pending:
            if r["id"] not in items:
                items[r["id"]] = item(r)
        return Handover(
            since=since, generated_at=now,
            open=[items[r["id"]] for r in open_rows],
            changed=sorted((items[r["id"]] for r in changed_rows),
                           key=lambda i: i.last_change_at or i.case.opened_at, reverse=True),
            follow_up=[i for i in items.values() if i.follow_up])

    async def audit_export(self, p: Principal, what: str, report: KpiReport) -> None:
        await self._audit.record(
            tenant=p.tenant, actor=p.actor, actor_name=p.username, role=p.role.value,
            action=f"export_{what}", record_type="report",
            record_id=f"{report.from_month}..{report.to_month}",
            reason=f"monthly report, district {report.district_id or 'all of scope'}")
