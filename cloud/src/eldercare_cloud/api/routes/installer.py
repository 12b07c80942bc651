"""The installer's API under /api/v1/installer: claim a gateway, pair devices, walk-test
lookups, commissioning records, maintenance tasks. Admins and installers only; an
installer sees gateways, devices, rooms and residents' names, never medical data.
Thin: every rule lives in ``eldercare_cloud.installer``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.responses import HTMLResponse

from eldercare_cloud.api.deps import CurrentUser, ServicesDep, roles
from eldercare_cloud.auth.models import Role
from eldercare_cloud.broker.errors import (
    BrokerSecurityError,
    BrokerUnavailableError,
    DynsecCommandError,
)
from eldercare_cloud.broker.settings import BrokerAdminSettings
from eldercare_cloud.errors import InvalidRequestError
from eldercare_cloud.installer.models import (
    BindRequest,
    BoundDevice,
    ClaimRequest,
    ClaimResponse,
    CommissioningRequest,
    CommissioningWindow,
    Cursor,
    InstallerHousehold,
    MaintenanceScan,
    MaintenanceTask,
    ReportStored,
    RevokeResponse,
    SeenDevice,
    WalkEvent,
    WalkRun,
    WalkRunStored,
)
from eldercare_cloud.installer.service import InstallerService
from eldercare_protocols.events import EventKind

A, I = Role.ADMIN, Role.INSTALLER  # noqa: E741
router = APIRouter(prefix="/installer", tags=["installer"])

DevicePattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def get_installer(request: Request, services: ServicesDep) -> InstallerService:
    """One service per app, with its broker settings built on first use (not at import)."""
    svc: InstallerService | None = getattr(request.app.state, "installer", None)
    if svc is None or svc.s is not services:
        svc = InstallerService(services, BrokerAdminSettings())
        request.app.state.installer = svc
    return svc


InstallerDep = Annotated[InstallerService, Depends(get_installer)]


@contextmanager
def broker_errors() -> Iterator[None]:
    """The broker is a dependency of its own: unreachable is 503, a refusal 502."""
    try:
        yield
    except BrokerUnavailableError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    except DynsecCommandError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, str(exc)) from exc
    except BrokerSecurityError as exc:
        raise InvalidRequestError(str(exc)) from exc


@router.post("/gateways/claim", response_model=ClaimResponse,
             status_code=status.HTTP_201_CREATED, **roles(A, I))
async def claim(svc: InstallerDep, user: CurrentUser, body: ClaimRequest) -> ClaimResponse:
    """Create a gateway for a household with its own random secret (shown once) and a
    broker account limited to its own topics."""
    with broker_errors():
        return await (await svc.ready()).claim(user, body)


@router.post("/gateways/{gateway_id}/revoke", response_model=RevokeResponse, **roles(A, I))
async def revoke(svc: InstallerDep, user: CurrentUser, gateway_id: str) -> RevokeResponse:
    """Delete the gateway's broker account; its live session is cut at once."""
    with broker_errors():
        return await (await svc.ready()).revoke(user, gateway_id)


@router.post("/gateways/{gateway_id}/commissioning", response_model=CommissioningWindow,
             **roles(A, I))
async def start_commissioning(svc: InstallerDep, user: CurrentUser, gateway_id: str,
                              body: CommissioningRequest) -> CommissioningWindow:
    """Alarms from this gateway are walk tests (no ladder, no family SMS; one low
    "commissioning" entry for the console) for ``minutes`` from now."""
    return await (await svc.ready()).start_commissioning(user, gateway_id, body.minutes)


@router.get("/gateways/{gateway_id}/commissioning", response_model=CommissioningWindow,
            **roles(A, I))
async def get_commissioning(svc: InstallerDep, user: CurrentUser,
                            gateway_id: str) -> CommissioningWindow:
    return await (await svc.ready()).commissioning(user, gateway_id)


@router.delete("/gateways/{gateway_id}/commissioning", response_model=CommissioningWindow,
               **roles(A, I))
async def end_commissioning(svc: InstallerDep, user: CurrentUser,
                            gateway_id: str) -> CommissioningWindow:
    """End the window now (``report`` does this too): every alarm is real again."""
    return await (await svc.ready()).end_commissioning(user, gateway_id)


@router.get("/households/{household_id}", response_model=InstallerHousehold, **roles(A, I))
async def household(svc: InstallerDep, user: CurrentUser,
                    household_id: str) -> InstallerHousehold:
    return await (await svc.ready()).household(user, household_id)


@router.get("/gateways/{gateway_id}/seen", response_model=list[SeenDevice], **roles(A, I))
async def seen(svc: InstallerDep, user: CurrentUser, gateway_id: str) -> list[SeenDevice]:
    """Devices the gateway reported as unknown (and those already bound), with their type."""
    return await (await svc.ready()).seen(user, gateway_id)


@router.get("/gateways/{gateway_id}/devices", response_model=list[BoundDevice], **roles(A, I))
async def devices(svc: InstallerDep, user: CurrentUser, gateway_id: str) -> list[BoundDevice]:
    return await (await svc.ready()).devices(user, gateway_id)


@router.put("/gateways/{gateway_id}/devices/{device_id}", response_model=BoundDevice,
            **roles(A, I))
async def bind(svc: InstallerDep, user: CurrentUser, gateway_id: str,
               device_id: Annotated[str, Path(pattern=DevicePattern)],
               body: BindRequest) -> BoundDevice:
    """Bind a device to the gateway, a room and a resident (the gateway's config follows)."""
    return await (await svc.ready()).bind(user, gateway_id, device_id, body)


@router.get("/gateways/{gateway_id}/cursor", response_model=Cursor, **roles(A, I))
async def cursor(svc: InstallerDep, user: CurrentUser, gateway_id: str) -> Cursor:
    return await (await svc.ready()).cursor(user, gateway_id)


@router.get("/gateways/{gateway_id}/walk-event", response_model=WalkEvent, **roles(A, I))
async def walk_event(svc: InstallerDep, user: CurrentUser, gateway_id: str,
                     device_id: Annotated[str, Query(pattern=DevicePattern)],
                     kind: EventKind,
                     after: Annotated[int, Query(ge=0)] = 0,
                     since: datetime | None = None,
                     wait_s: Annotated[float, Query(ge=0, le=30)] = 0) -> WalkEvent:
    """Has ``kind`` from ``device_id`` been committed since ``after`` (event rows) or
    ``since`` (readings)? Waits up to ``wait_s`` for it. Says when, never what."""
    return await (await svc.ready()).walk_event(user, gateway_id, device_id, kind, after,
                                                since, wait_s)


@router.post("/gateways/{gateway_id}/walk-tests", response_model=WalkRunStored,
             status_code=status.HTTP_201_CREATED, **roles(A, I))
async def store_walk(svc: InstallerDep, user: CurrentUser, gateway_id: str,
                     body: WalkRun) -> WalkRunStored:
    return await (await svc.ready()).store_walk(user, gateway_id, body)


@router.post("/gateways/{gateway_id}/report", response_model=ReportStored,
             status_code=status.HTTP_201_CREATED, **roles(A, I))
async def create_report(svc: InstallerDep, user: CurrentUser,
                        gateway_id: str) -> ReportStored:
    """Build and store the commissioning record (JSON and printable HTML)."""
    return await (await svc.ready()).build_report(user, gateway_id)


@router.get("/gateways/{gateway_id}/report", response_model=ReportStored, **roles(A, I))
async def latest_report(svc: InstallerDep, user: CurrentUser,
                        gateway_id: str) -> ReportStored:
    return await (await svc.ready()).latest_report(user, gateway_id)


@router.get("/gateways/{gateway_id}/report.html", response_class=HTMLResponse, **roles(A, I))
async def latest_report_html(svc: InstallerDep, user: CurrentUser,
                             gateway_id: str) -> HTMLResponse:
    return HTMLResponse((await (await svc.ready()).latest_report(user, gateway_id)).html)


@router.post("/maintenance/scan", response_model=MaintenanceScan, **roles(A, I))
async def scan_maintenance(svc: InstallerDep, user: CurrentUser,
                           gateway_id: Annotated[str | None, Query(max_length=64)] = None
                           ) -> MaintenanceScan:
    """Gas and smoke detectors whose last self-test is older than 30 days become tasks."""
    return await (await svc.ready()).scan_maintenance(user, gateway_id)


@router.get("/maintenance", response_model=list[MaintenanceTask], **roles(A, I))
async def maintenance(svc: InstallerDep, user: CurrentUser,
                      gateway_id: Annotated[str | None, Query(max_length=64)] = None,
                      status_: Annotated[str | None, Query(alias="status",
                                                           pattern="^(open|done)$")] = None
                      ) -> list[MaintenanceTask]:
    return await (await svc.ready()).maintenance(user, gateway_id, status_)
