"""The audit log, readable by admins only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from eldercare_cloud.api.deps import CurrentUser, ServicesDep, roles
from eldercare_cloud.audit import AuditEntry
from eldercare_cloud.auth.models import Role

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=list[AuditEntry], **roles(Role.ADMIN))
async def list_audit(services: ServicesDep, user: CurrentUser,
                     record_type: Annotated[str | None, Query(max_length=32)] = None,
                     record_id: Annotated[str | None, Query(max_length=64)] = None,
                     actor: Annotated[str | None, Query(max_length=80)] = None,
                     before_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[AuditEntry]:
    return await services.audit.entries(user.tenant, record_type=record_type,
                                        record_id=record_id, actor=actor, limit=limit,
                                        before_id=before_id)
