"""Case history, KPIs and the monthly report (记录统计).

Operators and admins search the record; a district administrator sees the same record
and statistics for their districts and downloads the report for the civil-affairs
bureau. Every case read and every export is audited.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from eldercare_cloud.api.deps import CurrentUser, ServicesDep, roles
from eldercare_cloud.auth.models import Role
from eldercare_cloud.care.history import HistoryFilter
from eldercare_cloud.care.models import AlertKind, ClosureCode
from eldercare_cloud.records import export
from eldercare_cloud.records.kpi import LOCAL_TZ
from eldercare_cloud.records.models import CasePage, CaseRecord, Handover, KpiReport, ReviewState
from eldercare_cloud.records.privacy import EraseRequest, ErasureReport
from eldercare_cloud.records.sources import register

router = APIRouter(prefix="/records", tags=["records"])
READERS = (Role.ADMIN, Role.OPERATOR, Role.DISTRICT_ADMIN)
EXPORTERS = (Role.ADMIN, Role.DISTRICT_ADMIN)
Ref = Annotated[str | None, Query(max_length=64)]
MonthQ = Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
                              description="YYYY-MM, in the centre's time (Asia/Shanghai)")]
OptMonthQ = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _day(d: date | None, plus: int = 0) -> datetime | None:
    if d is None:
        return None
    return datetime.combine(d + timedelta(days=plus), time(), tzinfo=LOCAL_TZ)


@router.get("/history", response_model=CasePage, **roles(*READERS))
async def history(services: ServicesDep, user: CurrentUser,
                  q: Annotated[str | None, Query(max_length=64)] = None,
                  resident_id: Ref = None, kind: AlertKind | None = None,
                  district_id: Ref = None, community_id: Ref = None,
                  since: Annotated[date | None, Query(description="first day, local")] = None,
                  until: Annotated[date | None, Query(description="last day, local")] = None,
                  closure_code: ClosureCode | None = None, operator_id: Ref = None,
                  responder_id: Ref = None,
                  responder: Annotated[str | None, Query(max_length=64,
                                                         description="part of a name")] = None,
                  operator: Annotated[str | None, Query(max_length=64,
                                                        description="part of a name")] = None,
                  state: ReviewState | None = None,
                  limit: Annotated[int, Query(ge=1, le=200)] = 50,
                  offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> CasePage:
    """Resolved (待复核) and closed (已结案) cases, newest first."""
    status = {ReviewState.PENDING_REVIEW: "resolved", ReviewState.CLOSED: "closed"}
    f = HistoryFilter(q=q.strip() if q and q.strip() else None, resident_id=resident_id,
                      kind=kind.value if kind else None, district_id=district_id,
                      community_id=community_id, since=_day(since), until=_day(until, 1),
                      closure_code=closure_code.value if closure_code else None,
                      operator_id=operator_id, responder_id=responder_id,
                      responder_q=responder.strip() if responder and responder.strip() else None,
                      operator_q=operator.strip() if operator and operator.strip() else None,
                      status=status[state] if state else None)
    return await services.records.history(user, f, limit=limit, offset=offset)


@router.get("/cases/{alert_id}", response_model=CaseRecord, **roles(*READERS))
async def case(services: ServicesDep, user: CurrentUser, alert_id: str) -> CaseRecord:
    """One case with its condensed timeline (seconds and actors), notes and deliveries."""
    return await services.records.case(user, alert_id)


@router.get("/kpis", response_model=KpiReport, **roles(*READERS))
async def kpis(services: ServicesDep, user: CurrentUser, from_month: MonthQ,
               to_month: OptMonthQ = None, district_id: Ref = None) -> KpiReport:
    return await services.records.kpis(user, from_month, to_month, district_id)


async def _report(services: ServicesDep, user: CurrentUser, month: str,
                  district_id: str | None) -> tuple[KpiReport, str]:
    report = await services.records.kpis(user, month, None, district_id)
    reg = await register(services.db, user)
    if district_id is not None:
        name = reg.districts[district_id].name
    else:
        name = "、".join(d.name for d in reg.districts.values()) or "本辖区"
    return report, name


@router.get("/reports/monthly.xlsx", response_class=Response, **roles(*EXPORTERS),
            responses={200: {"content": {XLSX: {}}}})
async def monthly_xlsx(services: ServicesDep, user: CurrentUser, month: MonthQ,
                       district_id: Ref = None) -> Response:
    report, name = await _report(services, user, month, district_id)
    body = export.to_xlsx(report, name)
    await services.records.audit_export(user, "xlsx", report)
    return Response(body, media_type=XLSX, headers={
        "Content-Disposition": f'attachment; filename="report-{month}.xlsx"'})


@router.get("/reports/monthly.pdf", response_class=Response, **roles(*EXPORTERS),
            responses={200: {"content": {"application/pdf": {}}}})
async def monthly_pdf(services: ServicesDep, user: CurrentUser, month: MonthQ,
                      district_id: Ref = None) -> Response:
    report, name = await _report(services, user, month, district_id)
    body = export.to_pdf(report, name)
    await services.records.audit_export(user, "pdf", report)
    return Response(body, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="report-{month}.pdf"'})


@router.get("/handover", response_model=Handover,
            **roles(Role.ADMIN, Role.OPERATOR, Role.SUPERVISOR))
async def handover(services: ServicesDep, user: CurrentUser,
                   hours: Annotated[float, Query(gt=0, le=168,
                                                 description="the shift's length")] = 8.0,
                   ) -> Handover:
    """Shift handover: open alerts, what changed in the last ``hours``, what needs
    following up (unsigned resolutions, unanswered alerts, failed messages...)."""
    since = services.clock.now() - timedelta(hours=hours)
    return await services.records.handover(user, since)


@router.get("/residents/{resident_id}/export", **roles(Role.ADMIN),
            responses={200: {"content": {"application/json": {}}}})
async def export_resident(services: ServicesDep, user: CurrentUser,
                          resident_id: str) -> JSONResponse:
    """One resident's full record (registry, alerts with timelines, telemetry, audit), as a
    JSON file; the export itself is audited."""
    assert services.privacy is not None
    data = await services.privacy.export(user, resident_id)
    return JSONResponse(data, headers={
        "Content-Disposition": f'attachment; filename="resident-{resident_id}.json"'})


@router.post("/residents/{resident_id}/erase", response_model=ErasureReport,
             **roles(Role.ADMIN))
async def erase_resident(services: ServicesDep, user: CurrentUser, resident_id: str,
                         body: EraseRequest) -> ErasureReport:
    """Erase a resident on request: personal data and telemetry go; alerts stay as
    anonymous facts so statistics keep their counts. Cannot be undone; audited."""
    assert services.privacy is not None
    return await services.privacy.erase(user, resident_id, body)
