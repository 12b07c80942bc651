"""The service desk's API: catalogue, requests, orders, dispatch, the worker's page,
evaluation and records. Thin: every rule lives in ``eldercare_cloud.services``."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from eldercare_cloud.api.deps import CurrentUser, ServicesDep, link_token, public, roles
from eldercare_cloud.auth.models import Role
from eldercare_cloud.services.models import (
    AccountLink,
    AccountPublic,
    CallbackCreate,
    CancelCreate,
    CheckInCreate,
    CheckOutCreate,
    CloseRequest,
    ConfigPublic,
    ConfigUpdate,
    DeclineCreate,
    DispatchCreate,
    EntitlementPublic,
    EntitlementRuleCreate,
    EntitlementRulePublic,
    FollowupClose,
    FollowupPublic,
    Month,
    OrderCreate,
    OrderDetail,
    OrderPublic,
    OrderStatus,
    PlanCreate,
    PlanPublic,
    ProviderCreate,
    ProviderMonth,
    ProviderPublic,
    RatingCreate,
    RequestCreate,
    RequestPublic,
    ReviewCreate,
    ServiceLevels,
    ServiceTypeCreate,
    ServiceTypePublic,
    Suggestion,
    VoucherStatement,
    WorkerCreate,
    WorkerDay,
    WorkerPublic,
    WorkView,
)

router = APIRouter(tags=["services"])
A, OP, F, P, W = Role.ADMIN, Role.OPERATOR, Role.FAMILY, Role.PROVIDER, Role.WORKER
STAFF = (A, OP)
LINK = public("a signed, expiring worker link scoped to one order and one worker")
MonthQ = Annotated[Month | None, Query()]
Ref = Annotated[str | None, Query(max_length=64)]


def _month(services: Any, month: str | None) -> str:
    from eldercare_cloud.services.catalogue import local_month

    return month or local_month(services.clock.now())


# -- catalogue --------------------------------------------------------------------------------

@router.get("/service-types", response_model=list[ServiceTypePublic],
            **roles(A, OP, F, P, W))
async def list_types(services: ServicesDep) -> list[ServiceTypePublic]:
    return await services.desk.list_types()


@router.post("/service-types", response_model=ServiceTypePublic, **roles(A))
async def upsert_type(services: ServicesDep, body: ServiceTypeCreate) -> ServiceTypePublic:
    return await services.desk.upsert_type(body)


@router.get("/service-providers", response_model=list[ProviderPublic], **roles(A, OP, P))
async def list_providers(services: ServicesDep, user: CurrentUser) -> list[ProviderPublic]:
    return await services.desk.list_providers(user)


@router.post("/service-providers", response_model=ProviderPublic, status_code=201,
             **roles(A, OP))
async def create_provider(services: ServicesDep, user: CurrentUser,
                          body: ProviderCreate) -> ProviderPublic:
    return await services.desk.create_provider(user, body)


@router.get("/service-providers/{provider_id}/workers", response_model=list[WorkerPublic],
            **roles(A, OP, P))
async def list_workers(services: ServicesDep, user: CurrentUser,
                       provider_id: str) -> list[WorkerPublic]:
    return await services.desk.list_workers(user, provider_id)


@router.post("/service-providers/{provider_id}/workers", response_model=WorkerPublic,
             status_code=201, **roles(A, OP, P))
async def create_worker(services: ServicesDep, user: CurrentUser, provider_id: str,
                        body: WorkerCreate) -> WorkerPublic:
    return await services.desk.create_worker(user, provider_id, body)


@router.get("/service-providers/{provider_id}/month", response_model=ProviderMonth,
            **roles(A, OP, P))
async def provider_month(services: ServicesDep, user: CurrentUser, provider_id: str,
                         month: MonthQ = None) -> ProviderMonth:
    return await services.service_records.provider_month(user, provider_id,
                                                         _month(services, month))


@router.get("/service-accounts", response_model=list[AccountPublic], **roles(A))
async def list_accounts(services: ServicesDep, user: CurrentUser) -> list[AccountPublic]:
    return await services.desk.list_accounts(user)


@router.post("/service-accounts", **roles(A))
async def link_account(services: ServicesDep, user: CurrentUser,
                       body: AccountLink) -> dict[str, str | None]:
    return await services.desk.link_account(user, body)


@router.get("/districts/{district_id}/entitlement-rules",
            response_model=list[EntitlementRulePublic], **roles(A, OP))
async def list_rules(services: ServicesDep, user: CurrentUser,
                     district_id: str) -> list[EntitlementRulePublic]:
    return await services.desk.list_rules(user, district_id)


@router.post("/entitlement-rules", response_model=EntitlementRulePublic, **roles(A))
async def upsert_rule(services: ServicesDep, user: CurrentUser,
                      body: EntitlementRuleCreate) -> EntitlementRulePublic:
    return await services.desk.upsert_rule(user, body)


@router.get("/districts/{district_id}/service-config", response_model=ConfigPublic,
            **roles(A, OP))
async def get_config(services: ServicesDep, user: CurrentUser,
                     district_id: str) -> ConfigPublic:
    return await services.desk.get_config(user, district_id)


@router.put("/districts/{district_id}/service-config", response_model=ConfigPublic,
            **roles(A))
async def set_config(services: ServicesDep, user: CurrentUser, district_id: str,
                     body: ConfigUpdate) -> ConfigPublic:
    return await services.desk.set_config(user, district_id, body)


@router.get("/districts/{district_id}/service-levels", response_model=ServiceLevels,
            **roles(A, OP))
async def service_levels(services: ServicesDep, user: CurrentUser, district_id: str,
                         month: MonthQ = None) -> ServiceLevels:
    return await services.service_records.service_levels(user, district_id,
                                                          _month(services, month))


# -- a resident's services -------------------------------------------------------------------

@router.get("/residents/{resident_id}/entitlement", response_model=EntitlementPublic,
            **roles(A, OP, F))
async def entitlement(services: ServicesDep, user: CurrentUser, resident_id: str,
                      month: MonthQ = None) -> EntitlementPublic:
    return await services.desk.entitlement(user, resident_id, month)


@router.get("/residents/{resident_id}/services", response_model=list[OrderDetail],
            **roles(A, OP, F))
async def resident_history(services: ServicesDep, user: CurrentUser,
                           resident_id: str) -> list[OrderDetail]:
    return await services.service_records.resident_history(user, resident_id)


@router.get("/residents/{resident_id}/vouchers", response_model=VoucherStatement,
            **roles(A, OP, F))
async def vouchers(services: ServicesDep, user: CurrentUser, resident_id: str,
                   month: MonthQ = None) -> VoucherStatement:
    return await services.service_records.voucher_statement(user, resident_id,
                                                            _month(services, month))


# -- requests ------------------------------------------------------------------------------------

@router.get("/service-requests", response_model=list[RequestPublic], **roles(*STAFF))
async def list_requests(services: ServicesDep, user: CurrentUser,
                        open_only: bool = True) -> list[RequestPublic]:
    return await services.desk.list_requests(user, open_only=open_only)


@router.post("/service-requests", response_model=RequestPublic, status_code=201,
             **roles(A, OP, F))
async def create_request(services: ServicesDep, user: CurrentUser,
                         body: RequestCreate) -> RequestPublic:
    return await services.desk.create_request(user, body)


@router.get("/service-requests/{request_id}", response_model=RequestPublic,
            **roles(A, OP, F))
async def get_request(services: ServicesDep, user: CurrentUser,
                      request_id: str) -> RequestPublic:
    return await services.desk.get_request(user, request_id)


@router.post("/service-requests/{request_id}/callback", response_model=RequestPublic,
             **roles(*STAFF))
async def callback(services: ServicesDep, user: CurrentUser, request_id: str,
                   body: CallbackCreate) -> RequestPublic:
    return await services.desk.callback(user, request_id, body)


@router.post("/service-requests/{request_id}/close", response_model=RequestPublic,
             **roles(*STAFF))
async def close_request(services: ServicesDep, user: CurrentUser, request_id: str,
                        body: CloseRequest) -> RequestPublic:
    return await services.desk.close_request(user, request_id, body.note)


# -- orders --------------------------------------------------------------------------------------

@router.get("/service-orders", response_model=list[OrderPublic], **roles(A, OP, F, P, W))
async def list_orders(services: ServicesDep, user: CurrentUser,
                      status: OrderStatus | None = None, day: date | None = None,
                      resident_id: Ref = None) -> list[OrderPublic]:
    return await services.desk.list_orders(user, status=status, day=day,
                                           resident_id=resident_id)


@router.post("/service-orders", response_model=OrderDetail, status_code=201,
             **roles(A, OP, F))
async def create_order(services: ServicesDep, user: CurrentUser,
                       body: OrderCreate) -> OrderDetail:
    return await services.desk.create_order(user, body)


@router.get("/service-orders/{order_id}", response_model=OrderDetail, **roles(A, OP, F, P, W))
async def get_order(services: ServicesDep, user: CurrentUser, order_id: str) -> OrderDetail:
    return await services.desk.get_order(user, order_id)


@router.get("/service-orders/{order_id}/suggestions", response_model=list[Suggestion],
            **roles(A, OP, P))
async def suggestions(services: ServicesDep, user: CurrentUser,
                      order_id: str) -> list[Suggestion]:
    return await services.desk.suggestions(user, order_id)


@router.post("/service-orders/{order_id}/dispatch", response_model=OrderDetail,
             **roles(A, OP, P))
async def dispatch(services: ServicesDep, user: CurrentUser, order_id: str,
                   body: DispatchCreate) -> OrderDetail:
    return await services.desk.dispatch(user, order_id, body.worker_id)


@router.get("/service-orders/{order_id}/work-link", **roles(A, OP, P))
async def work_link(services: ServicesDep, user: CurrentUser,
                    order_id: str) -> dict[str, str]:
    return await services.desk.work_link(user, order_id)


@router.post("/service-orders/{order_id}/cancel", response_model=OrderDetail, **roles(*STAFF))
async def cancel(services: ServicesDep, user: CurrentUser, order_id: str,
                 body: CancelCreate) -> OrderDetail:
    return await services.desk.cancel(user, order_id, body.reason)


@router.post("/service-orders/{order_id}/accept", response_model=OrderDetail, **roles(W))
async def accept(services: ServicesDep, user: CurrentUser, order_id: str) -> OrderDetail:
    return await services.desk.act(user, order_id, "accept")


@router.post("/service-orders/{order_id}/decline", response_model=OrderDetail, **roles(W))
async def decline(services: ServicesDep, user: CurrentUser, order_id: str,
                  body: DeclineCreate) -> OrderDetail:
    return await services.desk.act(user, order_id, "decline", body)


@router.post("/service-orders/{order_id}/check-in", response_model=OrderDetail, **roles(W))
async def check_in(services: ServicesDep, user: CurrentUser, order_id: str,
                   body: CheckInCreate) -> OrderDetail:
    return await services.desk.act(user, order_id, "check_in", body)


@router.post("/service-orders/{order_id}/check-out", response_model=OrderDetail, **roles(W))
async def check_out(services: ServicesDep, user: CurrentUser, order_id: str,
                    body: CheckOutCreate) -> OrderDetail:
    return await services.desk.act(user, order_id, "check_out", body)


@router.post("/service-orders/{order_id}/ratings", response_model=OrderDetail,
             **roles(A, OP, F))
async def rate(services: ServicesDep, user: CurrentUser, order_id: str,
               body: RatingCreate) -> OrderDetail:
    return await services.desk.rate(user, order_id, body)


# -- visits, follow-ups, plans, the worker's day ------------------------------------------------

@router.get("/service-visits", **roles(*STAFF))
async def list_visits(services: ServicesDep, user: CurrentUser,
                      flagged_only: bool = True) -> list[dict[str, Any]]:
    return await services.desk.list_visits(user, flagged_only)


@router.post("/service-visits/{visit_id}/review", **roles(*STAFF))
async def review_visit(services: ServicesDep, user: CurrentUser, visit_id: str,
                       body: ReviewCreate) -> dict[str, Any]:
    return await services.desk.review_visit(user, visit_id, body.accept, body.note)


@router.get("/service-followups", response_model=list[FollowupPublic], **roles(A, OP, P))
async def list_followups(services: ServicesDep, user: CurrentUser,
                         open_only: bool = True) -> list[FollowupPublic]:
    return await services.desk.list_followups(user, open_only)


@router.post("/service-followups/{followup_id}/close", response_model=FollowupPublic,
             **roles(A, OP, P))
async def close_followup(services: ServicesDep, user: CurrentUser, followup_id: str,
                         body: FollowupClose) -> FollowupPublic:
    return await services.desk.close_followup(user, followup_id, body.resolution)


@router.get("/service-plans", response_model=list[PlanPublic], **roles(*STAFF))
async def list_plans(services: ServicesDep, user: CurrentUser) -> list[PlanPublic]:
    return await services.desk.list_plans(user)


@router.post("/service-plans", response_model=PlanPublic, status_code=201, **roles(*STAFF))
async def create_plan(services: ServicesDep, user: CurrentUser, body: PlanCreate) -> PlanPublic:
    return await services.desk.create_plan(user, body)


@router.post("/service-plans/{plan_id}/stop", response_model=PlanPublic, **roles(*STAFF))
async def stop_plan(services: ServicesDep, user: CurrentUser, plan_id: str) -> PlanPublic:
    return await services.desk.stop_plan(user, plan_id)


@router.get("/service-workers/{worker_id}/day", response_model=WorkerDay,
            **roles(A, OP, P, W))
async def worker_day(services: ServicesDep, user: CurrentUser, worker_id: str,
                     day: date | None = None) -> WorkerDay:
    from eldercare_cloud.services.catalogue import LOCAL_TZ

    return await services.service_records.worker_day(
        user, worker_id, day or services.clock.now().astimezone(LOCAL_TZ).date())


# -- the worker's signed link (the phone page) ----------------------------------------------------

WorkToken = Annotated[str, Depends(link_token("X-Work-Token", "worker"))]


@router.get("/jobs/{order_id}", response_model=WorkView, **LINK)
async def work_view(services: ServicesDep, order_id: str, token: WorkToken) -> WorkView:
    return await services.desk.work_view(order_id, token)


@router.post("/jobs/{order_id}/accept", response_model=WorkView, **LINK)
async def work_accept(services: ServicesDep, order_id: str, token: WorkToken) -> WorkView:
    return await services.desk.link_act(order_id, token, "accept")


@router.post("/jobs/{order_id}/decline", response_model=WorkView, **LINK)
async def work_decline(services: ServicesDep, order_id: str, body: DeclineCreate,
                       token: WorkToken) -> WorkView:
    return await services.desk.link_act(order_id, token, "decline", body)


@router.post("/jobs/{order_id}/check-in", response_model=WorkView, **LINK)
async def work_check_in(services: ServicesDep, order_id: str, body: CheckInCreate,
                        token: WorkToken) -> WorkView:
    return await services.desk.link_act(order_id, token, "check_in", body)


@router.post("/jobs/{order_id}/check-out", response_model=WorkView, **LINK)
async def work_check_out(services: ServicesDep, order_id: str, body: CheckOutCreate,
                         token: WorkToken) -> WorkView:
    return await services.desk.link_act(order_id, token, "check_out", body)
