"""OAuth2 password flow, "who am I", sign-out and the user's own password change."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from eldercare_cloud.api.deps import CurrentUser, ServicesDep, oauth2_scheme, public, roles
from eldercare_cloud.auth.models import (
    ALL_ROLES,
    PasswordChange,
    Token,
    TotpCode,
    TotpSetup,
    UserPublic,
)
from eldercare_cloud.errors import AuthenticationError

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token", response_model=Token, **public("this is how a token is obtained"),
             responses={429: {"description": "throttled or locked after failed sign-ins"}})
async def token(services: ServicesDep, request: Request,
                form: Annotated[OAuth2PasswordRequestForm, Depends()],
                totp: Annotated[str | None, Form(max_length=12)] = None) -> Token:
    """Sign in. Failures are throttled per account and per address: growing delays, then
    a temporary lock (429 with Retry-After), each lock written to the audit log. An account
    with two-factor sign-in also sends ``totp`` (401 ``totp_required`` without it)."""
    address = request.client.host if request.client else None
    return await services.users.authenticate(form.username, form.password, address, totp)


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


@router.post("/totp/setup", response_model=TotpSetup, **roles(*ALL_ROLES))
async def totp_setup(services: ServicesDep, user: CurrentUser) -> TotpSetup:
    """Two-factor sign-in, step 1: a new secret for an authenticator app."""
    return await services.users.totp_setup(user)


@router.post("/totp/enable", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
             **roles(*ALL_ROLES))
async def totp_enable(services: ServicesDep, user: CurrentUser, body: TotpCode) -> None:
    """Step 2: a code from the app switches it on; from then on sign-in asks for one."""
    await services.users.totp_enable(user, body.code)
