"""Who is asking: roles, the principal a request acts as, and the user API models."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class Role(StrEnum):
    #: everything in their tenant, including users and the audit log
    ADMIN = "admin"
    #: monitoring-centre staff: alerts, residents and dispatch in their districts
    OPERATOR = "operator"
    #: a relative: only their own elder(s)
    FAMILY = "family"
    #: volunteers and community grid workers: only alerts offered to them
    VOLUNTEER = "volunteer"
    #: also service workers (助洁, 助餐 ...): only the service orders dispatched to them
    WORKER = "worker"
    #: a service provider's administrator: only their organisation's orders and workers
    PROVIDER = "provider"
    #: gateways and devices in their districts; no medical data
    INSTALLER = "installer"
    #: a district's administrator (civil-affairs side): statistics, history and the
    #: monthly report of their districts; reads no live queue and changes no alert
    DISTRICT_ADMIN = "district_admin"
    #: a monitoring-centre shift supervisor: everything an operator may do (``roles()``
    #: grants it wherever it grants operators), plus the escalation of an alert nobody
    #: acknowledged in time
    SUPERVISOR = "supervisor"


ALL_ROLES: tuple[Role, ...] = tuple(Role)
STAFF: tuple[Role, ...] = (Role.ADMIN, Role.OPERATOR, Role.SUPERVISOR)
#: monitoring-centre roles scoped to their districts
CENTRE: tuple[Role, ...] = (Role.OPERATOR, Role.SUPERVISOR)


@dataclass(frozen=True)
class Principal:
    """The caller, with the ids that bound what they may see (resolved once per request)."""

    user_id: str
    username: str
    role: Role
    tenant: str
    district_ids: frozenset[str] = field(default_factory=frozenset)
    resident_ids: frozenset[str] = field(default_factory=frozenset)
    contact_ids: frozenset[str] = field(default_factory=frozenset)

    @property
    def actor(self) -> str:
        return f"user:{self.user_id}"


Username = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.@-]{3,64}$")]
RefId = Annotated[str, Field(min_length=1, max_length=64)]
Phone = Annotated[str, Field(pattern=r"^\+?[0-9]{5,20}$")]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: Username
    password: str = Field(min_length=8, max_length=256)
    role: Role
    display_name: str = Field(default="", max_length=64)
    #: where an escalation reaches a supervisor by SMS (optional for every role)
    phone: Phone | None = None
    district_ids: list[RefId] = Field(default_factory=list, max_length=50)
    resident_ids: list[RefId] = Field(default_factory=list, max_length=50)
    #: contacts (volunteer, grid worker, relative) this account answers for
    contact_ids: list[RefId] = Field(default_factory=list, max_length=50)


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str | None = Field(default=None, min_length=8, max_length=256)
    display_name: str | None = Field(default=None, max_length=64)
    phone: Phone | None = None
    active: bool | None = None
    district_ids: list[RefId] | None = Field(default=None, max_length=50)
    resident_ids: list[RefId] | None = Field(default=None, max_length=50)
    contact_ids: list[RefId] | None = Field(default=None, max_length=50)


class UserPublic(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: str
    username: str
    role: Role
    tenant: str
    display_name: str
    phone: str | None = None
    totp_enabled: bool = False
    active: bool
    district_ids: list[str]
    resident_ids: list[str]
    contact_ids: list[str]
    created_at: datetime


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=8, max_length=256)


class TotpSetup(BaseModel):
    """Shown once: the secret for an authenticator app (also as an otpauth:// URI)."""

    secret: str
    otpauth_uri: str


class TotpCode(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=r"^[0-9]{6}$")


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    role: Role
