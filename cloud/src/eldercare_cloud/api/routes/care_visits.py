"""Care visits (探访关爱) API: risk tiers, plans, pairings, tasks, the ledger, coverage,
concerns, routines, the time bank, and the visitor's signed link. Thin: every rule lives
in ``eldercare_cloud.visits.care``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from eldercare_cloud.api.deps import CurrentUser, ServicesDep, link_token, public, roles
from eldercare_cloud.auth.models import Role
from eldercare_cloud.visits.care import month_of
from eldercare_cloud.visits.care_models import (
    ArriveCreate,
    ConcernClose,
    ConcernCreate,
    ConcernPublic,
    Coverage,
    EntryCreate,
    EntryPublic,
    Month,
    PairingCreate,
    PlanPublic,
    RedeemCreate,
    RiskPublic,
    RoutinePublic,
    TaskPublic,
    TaskStatus,
    TierRulePublic,
    TierRuleUpdate,
    TimebankStatement,
    VisitorView,
)
from eldercare_cloud.visits.risk import Tier

router = APIRouter(tags=["care-visits"])
A, OP, F = Role.ADMIN, Role.OPERATOR, Role.FAMILY
LINK = public("a signed, expiring visitor link scoped to one visitor's care-visit tasks")
Ref = Annotated[str | None, Query(max_length=64)]
MonthQ = Annotated[Month | None, Query()]
VisitToken = Annotated[str, Depends(link_token("X-Visit-Token", "visitor"))]


# -- tiers, plans, pairings --------------------------------------------------------------------

@router.get("/residents/{resident_id}/care-risk", response_model=RiskPublic, **roles(A, OP))
async def risk(services: ServicesDep, user: CurrentUser, resident_id: str) -> RiskPublic:
    return await services.care_visits.risk(user, resident_id)


@router.get("/districts/{district_id}/care-tiers", response_model=list[TierRulePublic],
            **roles(A, OP))
async def tier_rules(services: ServicesDep, user: CurrentUser,
                     district_id: str) -> list[TierRulePublic]:
    return await services.care_visits.tier_rules(user, district_id)


@router.put("/districts/{district_id}/care-tiers/{tier}", response_model=list[TierRulePublic],
            **roles(A))
async def set_tier_rule(services: ServicesDep, user: CurrentUser, district_id: str, tier: Tier,
                        body: TierRuleUpdate) -> list[TierRulePublic]:
    return await services.care_visits.set_tier_rule(user, district_id, tier, body)


@router.post("/districts/{district_id}/care-plans", response_model=list[PlanPublic],
             **roles(A, OP))
async def generate_plans(services: ServicesDep, user: CurrentUser,
                         district_id: str) -> list[PlanPublic]:
    return await services.care_visits.generate_plans(user, district_id)


@router.get("/care-plans", response_model=list[PlanPublic], **roles(A, OP, F))
async def list_plans(services: ServicesDep, user: CurrentUser, district_id: Ref = None,
                     community_id: Ref = None) -> list[PlanPublic]:
    return await services.care_visits.list_plans(user, district_id=district_id,
                                                  community_id=community_id)


@router.put("/residents/{resident_id}/care-pairing", response_model=PlanPublic,
            **roles(A, OP))
async def set_pairing(services: ServicesDep, user: CurrentUser, resident_id: str,
                      body: PairingCreate) -> PlanPublic:
    return await services.care_visits.set_pairing(user, resident_id, body)


# -- tasks, ledger, coverage ---------------------------------------------------------------------

@router.get("/care-tasks", response_model=list[TaskPublic], **roles(A, OP, F))
async def list_tasks(services: ServicesDep, user: CurrentUser, district_id: Ref = None,
                     status: TaskStatus | None = None,
                     overdue: bool = False) -> list[TaskPublic]:
    return await services.care_visits.list_tasks(user, district_id=district_id, status=status,
                                                 overdue_only=overdue)


@router.post("/alerts/{alert_id}/care-visit", response_model=TaskPublic, status_code=201,
             **roles(A, OP))
async def visit_for_alert(services: ServicesDep, user: CurrentUser,
                          alert_id: str) -> TaskPublic:
    return await services.care_visits.visit_for_alert(user, alert_id)


@router.get("/care-visitors/{contact_id}/link", **roles(A, OP))
async def visitor_link(services: ServicesDep, user: CurrentUser,
                       contact_id: str) -> dict[str, str]:
    return await services.care_visits.visitor_link(user, contact_id)


@router.get("/care-ledger", response_model=list[EntryPublic], **roles(A, OP, F))
async def ledger(services: ServicesDep, user: CurrentUser, district_id: Ref = None,
                 community_id: Ref = None, month: MonthQ = None, resident_id: Ref = None,
                 q: Annotated[str | None, Query(max_length=64)] = None) -> list[EntryPublic]:
    return await services.care_visits.ledger(user, district_id=district_id,
                                             community_id=community_id, month=month, q=q,
                                             resident_id=resident_id)


@router.get("/districts/{district_id}/care-ledger.csv", response_class=Response,
            **roles(A, OP))
async def ledger_csv(services: ServicesDep, user: CurrentUser, district_id: str,
                     community_id: Ref = None, month: MonthQ = None) -> Response:
    m = month or month_of(services.clock.now())
    text = await services.care_visits.ledger_csv(user, district_id=district_id,
                                                 community_id=community_id, month=m)
    name = f"care-ledger-{district_id}-{community_id or 'all'}-{m}.csv"
    # a BOM so that Excel opens the Chinese columns as UTF-8
    return Response("\ufeff" + text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/districts/{district_id}/care-coverage", response_model=Coverage,
            **roles(A, OP))
async def coverage(services: ServicesDep, user: CurrentUser, district_id: str,
                   month: MonthQ = None) -> Coverage:
    return await services.care_visits.coverage(user, district_id,
                                               month or month_of(services.clock.now()))


# -- concerns and routines ----------------------------------------------------------------------

@router.get("/care-concerns", response_model=list[ConcernPublic], **roles(A, OP, F))
async def list_concerns(services: ServicesDep, user: CurrentUser, district_id: Ref = None,
                        all: bool = False) -> list[ConcernPublic]:
    return await services.care_visits.list_concerns(user, open_only=not all,
                                                    district_id=district_id)


@router.post("/care-concerns", response_model=ConcernPublic, status_code=201,
             **roles(A, OP))
async def create_concern(services: ServicesDep, user: CurrentUser,
                         body: ConcernCreate) -> ConcernPublic:
    return await services.care_visits.create_concern(user, body)


@router.post("/care-concerns/{concern_id}/close", response_model=ConcernPublic,
             **roles(A, OP))
async def close_concern(services: ServicesDep, user: CurrentUser, concern_id: str,
                        body: ConcernClose) -> ConcernPublic:
    return await services.care_visits.close_concern(user, concern_id, body)


@router.get("/residents/{resident_id}/care-routine", response_model=RoutinePublic,
            **roles(A, OP))
async def routine(services: ServicesDep, user: CurrentUser,
                  resident_id: str) -> RoutinePublic:
    return await services.care_visits.routine(user, resident_id)


# -- the time bank -------------------------------------------------------------------------------

@router.get("/care-visitors/{contact_id}/hours", response_model=TimebankStatement,
            **roles(A, OP))
async def hours(services: ServicesDep, user: CurrentUser,
                contact_id: str) -> TimebankStatement:
    return await services.care_visits.statement(user, contact_id)


@router.post("/care-visitors/{contact_id}/redeem", response_model=TimebankStatement,
             **roles(A, OP))
async def redeem(services: ServicesDep, user: CurrentUser, contact_id: str,
                 body: RedeemCreate) -> TimebankStatement:
    return await services.care_visits.redeem(user, contact_id, body)


# -- the visitor's signed link (the phone page) -----------------------------------------------

@router.get("/visit", response_model=VisitorView, **LINK)
async def visitor_view(services: ServicesDep, token: VisitToken) -> VisitorView:
    return await services.care_visits.visitor_view(token)


@router.post("/visit/tasks/{task_id}/arrive", response_model=TaskPublic, **LINK)
async def visitor_arrive(services: ServicesDep, task_id: str, body: ArriveCreate,
                         token: VisitToken) -> TaskPublic:
    return await services.care_visits.arrive(token, task_id, body)


@router.post("/visit/tasks/{task_id}/record", response_model=EntryPublic, status_code=201,
             **LINK)
async def visitor_record(services: ServicesDep, task_id: str, body: EntryCreate,
                         token: VisitToken) -> EntryPublic:
    return await services.care_visits.record(token, task_id, body)
