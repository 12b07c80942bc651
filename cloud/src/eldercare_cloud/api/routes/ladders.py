"""Escalation ladders: a district default (admins) and per-resident overrides (staff)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from eldercare_cloud.api.deps import CurrentUser, ServicesDep, roles
from eldercare_cloud.auth.models import Role
from eldercare_cloud.care.models import Ladder, LadderPublic

router = APIRouter(tags=["ladders"])


@router.get("/districts/{district_id}/ladder", response_model=LadderPublic,
            **roles(Role.ADMIN, Role.OPERATOR))
async def get_district_ladder(services: ServicesDep, user: CurrentUser,
                              district_id: str) -> LadderPublic:
    return await services.care.get_ladder(user, district_id=district_id)


@router.put("/districts/{district_id}/ladder", response_model=LadderPublic,
            **roles(Role.ADMIN))
async def put_district_ladder(services: ServicesDep, user: CurrentUser, district_id: str,
                              body: Ladder) -> LadderPublic:
    return await services.care.put_ladder(user, body, district_id=district_id)


@router.get("/residents/{resident_id}/ladder", response_model=LadderPublic,
            **roles(Role.ADMIN, Role.OPERATOR))
async def get_resident_ladder(services: ServicesDep, user: CurrentUser,
                              resident_id: str) -> LadderPublic:
    return await services.care.get_ladder(user, resident_id=resident_id)


@router.put("/residents/{resident_id}/ladder", response_model=LadderPublic,
            **roles(Role.ADMIN, Role.OPERATOR))
async def put_resident_ladder(services: ServicesDep, user: CurrentUser, resident_id: str,
                              body: Ladder) -> LadderPublic:
    return await services.care.put_ladder(user, body, resident_id=resident_id)


@router.delete("/residents/{resident_id}/ladder", status_code=status.HTTP_204_NO_CONTENT,
               response_class=Response, **roles(Role.ADMIN, Role.OPERATOR))
async def delete_resident_ladder(services: ServicesDep, user: CurrentUser,
                                 resident_id: str) -> None:
    await services.care.delete_ladder(user, resident_id=resident_id)
