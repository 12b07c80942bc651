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
    """An admin's change; a password reset or a disable revokes every session of the user
    at once (their tokens carry the version these bump), and is audited."""
    updated = await services.users.update(user_id, body, user.tenant)
    what = [w for w, on in (("reset_password", body.password is not None),
                            ("disable_user", body.active is False),
                            ("enable_user", body.active is True)) if on]
    for action in what:
        await services.audit.record(tenant=user.tenant, actor=user.actor,
                                    actor_name=user.username, role=user.role.value,
                                    action=action, record_type="user", record_id=user_id,
                                    reason="admin; sessions revoked" if action != "enable_user"
                                    else "admin")
    return updated
