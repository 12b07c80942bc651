"""OAuth2 password flow, "who am I", sign-out and the user's own password change."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from eldercare_cloud.api.deps import CurrentUser, ServicesDep, oauth2_scheme, public, roles
from eldercare_cloud.auth.models import ALL_ROLES, PasswordChange, Token, UserPublic
from eldercare_cloud.errors import AuthenticationError

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token", response_model=Token, **public("this is how a token is obtained"),
             responses={429: {"description": "throttled or locked after failed sign-ins"}})
async def token(services: ServicesDep, request: Request,
                form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> Token:
    """Sign in. Failures are throttled per account and per address: growing delays, then
    a temporary lock (429 with Retry-After), each lock written to the audit log."""
    address = request.client.host if request.client else None
    return await services.users.authenticate(form.username, form.password, address)


@router.get("/me", response_model=UserPublic, **roles(*ALL_ROLES))
async def me(services: ServicesDep, user: CurrentUser) -> UserPublic:
    return await services.users.get(user.user_id, user.tenant)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
             **roles(*ALL_ROLES))
async def logout(services: ServicesDep, user: CurrentUser,
                 bearer: Annotated[str | None, Depends(oauth2_scheme)]) -> None:
    """Revoke the token this request carries, at once."""
    if not bearer:
        raise AuthenticationError("not authenticated")
    await services.users.logout(bearer)


@router.post("/password", response_model=Token, **roles(*ALL_ROLES))
async def change_password(services: ServicesDep, user: CurrentUser,
                          body: PasswordChange) -> Token:
    """Change one's own password: every session is revoked; a fresh token comes back."""
    return await services.users.change_password(user, body)
