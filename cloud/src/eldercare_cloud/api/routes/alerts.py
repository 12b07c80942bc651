"""The alert queue and what the monitoring centre does with an alert."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from eldercare_cloud.api.deps import CurrentUser, ServicesDep, roles
from eldercare_cloud.auth.models import Role
from eldercare_cloud.care.models import (
    AlertDetail,
    AlertKind,
    AlertPublic,
    AlertStatus,
    NoteCreate,
    ProgressRequest,
    ResolveRequest,
    ReviewRequest,
    SeverityOverride,
    TakeoverRequest,
)

router = APIRouter(prefix="/alerts", tags=["alerts"])
READERS = (Role.ADMIN, Role.OPERATOR, Role.FAMILY, Role.VOLUNTEER, Role.WORKER)
STAFF = (Role.ADMIN, Role.OPERATOR)
Ref = Annotated[str | None, Query(max_length=64)]


@router.get("", response_model=list[AlertPublic], **roles(*READERS))
async def list_alerts(services: ServicesDep, user: CurrentUser,
                      status: AlertStatus | None = None, open_only: bool = False,
                      kind: AlertKind | None = None, district_id: Ref = None,
                      resident_id: Ref = None,
                      limit: Annotated[int, Query(ge=1, le=500)] = 100,
                      offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
                      ) -> list[AlertPublic]:
    return await services.care.list_alerts(user, status=status, open_only=open_only, kind=kind,
                                           district_id=district_id, resident_id=resident_id,
                                           limit=limit, offset=offset)


@router.get("/{alert_id}", response_model=AlertDetail, **roles(*READERS))
async def get_alert(services: ServicesDep, user: CurrentUser, alert_id: str) -> AlertDetail:
    return await services.care.get_alert(user, alert_id)


@router.post("/{alert_id}/acknowledge", response_model=AlertPublic, **roles(*STAFF))
async def acknowledge(services: ServicesDep, user: CurrentUser, alert_id: str) -> AlertPublic:
    return await services.care.acknowledge(user, alert_id)


@router.post("/{alert_id}/takeover", response_model=AlertPublic, **roles(*STAFF))
async def takeover(services: ServicesDep, user: CurrentUser, alert_id: str,
                   body: TakeoverRequest) -> AlertPublic:
    return await services.care.takeover(user, alert_id, body)


@router.post("/{alert_id}/notes", response_model=AlertPublic, **roles(*STAFF))
async def add_note(services: ServicesDep, user: CurrentUser, alert_id: str,
                   body: NoteCreate) -> AlertPublic:
    return await services.care.add_note(user, alert_id, body)


@router.post("/{alert_id}/severity", response_model=AlertPublic, **roles(*STAFF))
async def set_severity(services: ServicesDep, user: CurrentUser, alert_id: str,
                       body: SeverityOverride) -> AlertPublic:
    return await services.care.set_severity(user, alert_id, body)


@router.post("/{alert_id}/progress", response_model=AlertPublic, **roles(*STAFF))
async def progress(services: ServicesDep, user: CurrentUser, alert_id: str,
                   body: ProgressRequest) -> AlertPublic:
    return await services.care.progress(user, alert_id, body)


@router.post("/{alert_id}/resolve", response_model=AlertPublic, **roles(*STAFF))
async def resolve(services: ServicesDep, user: CurrentUser, alert_id: str,
                  body: ResolveRequest) -> AlertPublic:
    return await services.care.resolve(user, alert_id, body)


@router.post("/{alert_id}/close", response_model=AlertPublic, **roles(*STAFF))
async def close(services: ServicesDep, user: CurrentUser, alert_id: str) -> AlertPublic:
    return await services.care.close(user, alert_id)


@router.post("/{alert_id}/review", response_model=AlertPublic, **roles(*STAFF))
async def review(services: ServicesDep, user: CurrentUser, alert_id: str,
                 body: ReviewRequest) -> AlertPublic:
    """Sign off a resolved case (待复核 → 已结案)."""
    return await services.care.review(user, alert_id, body)
