"""Dependencies as Annotated aliases, and the one way a route declares who may call it.

``roles(...)`` both enforces the roles (a dependency that runs before the body is
validated) and writes them into the OpenAPI document as ``x-roles``; the role matrix
test reads them back from /openapi.json, so an endpoint without a declaration fails
the test suite, and one whose declaration is not enforced fails it too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request
from fastapi.security import OAuth2PasswordBearer

from eldercare_cloud.audit import AuditLog
from eldercare_cloud.auth.models import Principal, Role
from eldercare_cloud.auth.users import UserService
from eldercare_cloud.care.engine import CareEngine
from eldercare_cloud.care.responder import ResponderService
from eldercare_cloud.care.service import CareService
from eldercare_cloud.clock import Clock
from eldercare_cloud.db import Database
from eldercare_cloud.errors import AuthenticationError, PermissionDeniedError
from eldercare_cloud.notify.dispatcher import Dispatcher
from eldercare_cloud.notify.sms_outbox import SmsOutbox
from eldercare_cloud.records import RecordsService
from eldercare_cloud.records.privacy import PrivacyService
from eldercare_cloud.registry import RegistryService
from eldercare_cloud.services import ServiceDesk, ServiceEngine, ServiceRecords
from eldercare_cloud.settings import CloudSettings
from eldercare_cloud.stream import StreamHub
from eldercare_cloud.visits.care import CareVisits
from eldercare_cloud.visits.care_engine import CareVisitEngine


@dataclass
class Services:
    settings: CloudSettings
    db: Database
    clock: Clock
    audit: AuditLog
    users: UserService
    registry: RegistryService
    hub: StreamHub
    care: CareService
    responder: ResponderService
    dispatcher: Dispatcher
    engine: CareEngine
    desk: ServiceDesk
    service_records: ServiceRecords
    service_engine: ServiceEngine
    records: RecordsService
    care_visits: CareVisits
    care_visit_engine: CareVisitEngine
    #: the demo run's loopback SMS channel (sms.provider=outbox), else None
    sms_outbox: SmsOutbox | None = None
    privacy: PrivacyService | None = None


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


async def current_principal(services: ServicesDep,
                            token: Annotated[str | None, Depends(oauth2_scheme)]) -> Principal:
    if not token:
        raise AuthenticationError("not authenticated")
    return await services.users.principal(token)


CurrentUser = Annotated[Principal, Depends(current_principal)]


class RoleGuard:
    def __init__(self, allowed: tuple[Role, ...]) -> None:
        self.allowed = allowed

    async def __call__(self, principal: CurrentUser) -> Principal:
        if principal.role not in self.allowed:
            raise PermissionDeniedError(f"role {principal.role.value} may not do this")
        return principal


def roles(*allowed: Role) -> dict[str, Any]:
    """Route keyword arguments: enforce ``allowed`` and publish them as ``x-roles``.

    A shift supervisor may do whatever an operator may: granting operators grants them."""
    if Role.OPERATOR in allowed and Role.SUPERVISOR not in allowed:
        allowed = (*allowed, Role.SUPERVISOR)
    return {"dependencies": [Depends(RoleGuard(allowed))],
            "openapi_extra": {"x-roles": [r.value for r in allowed]}}


def public(why: str) -> dict[str, Any]:
    """Route keyword arguments for endpoints without a bearer token (say why)."""
    return {"openapi_extra": {"x-public": why}}


#: a signed link's token is a JWT of a few hundred characters; anything longer is refused
LINK_TOKEN_MAX = 2048


def link_token(header: str, holder: str) -> Callable[..., Awaitable[str]]:
    """The credential of a signed link's page (responder, worker, visitor): the token in
    ``header`` (what the pages send) or in the ``token`` query parameter (the link as
    texted); 401 when neither is there. Use as ``Annotated[str, Depends(link_token(...))]``.
    A dependency, so a missing token is refused before the body is validated, as a missing
    bearer token is."""

    # defaults, not Annotated: the header's name is this call's argument, and string
    # annotations (``from __future__ import annotations``) cannot see a closure's locals
    async def token(query: str | None = Query(None, alias="token",
                                              max_length=LINK_TOKEN_MAX),
                    x_token: str | None = Header(None, alias=header,
                                                 max_length=LINK_TOKEN_MAX)) -> str:
        found = x_token or query
        if not found:
            raise AuthenticationError(f"a {holder} link token is required")
        return found

    return token
