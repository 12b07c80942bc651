"""Accounts: admins of the tenant only."""

from __future__ import annotations

from fastapi import APIRouter, status

from eldercare_cloud.api.deps import CurrentUser, ServicesDep, roles
from eldercare_cloud.auth.models import Role, UserCreate, UserPublic, UserUpdate

router = APIRouter(prefix="/users", tags=["users"])


@router.get("", response_model=list[UserPublic], **roles(Role.ADMIN))
async def list_users(services: ServicesDep, user: CurrentUser) -> list[UserPublic]:
    return await services.users.list(user.tenant)


@router.post("", response_model=UserPublic, status_code=status.HTTP_201_CREATED,
             **roles(Role.ADMIN))
async def create_user(services: ServicesDep, user: CurrentUser, body: UserCreate) -> UserPublic:
    return await services.users.create(body, user.tenant)


@router.get("/{user_id}", response_model=UserPublic, **roles(Role.ADMIN))
async def get_user(services: ServicesDep, user: CurrentUser, user_id: str) -> UserPublic:
    return await services.users.get(user_id, user.tenant)


@router.patch("/{user_id}", response_model=UserPublic, **roles(Role.ADMIN))
async def update_user(services: ServicesDep, user: CurrentUser, user_id: str,
                      body: UserUpdate) -> UserPublic:
    return await services.users.update(user_id, body, user.tenant)
