"""OAuth2 password flow and "who am I"."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm

from eldercare_cloud.api.deps import CurrentUser, ServicesDep, public, roles
from eldercare_cloud.auth.models import ALL_ROLES, Token, UserPublic

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token", response_model=Token, **public("this is how a token is obtained"))
async def token(services: ServicesDep,
                form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> Token:
    return await services.users.authenticate(form.username, form.password)


@router.get("/me", response_model=UserPublic, **roles(*ALL_ROLES))
async def me(services: ServicesDep, user: CurrentUser) -> UserPublic:
    return await services.users.get(user.user_id, user.tenant)
