"""Who lives where, who to call, and which device is in which room.

API models are split by role: ``*Create`` (what a client may send to create),
``*Update`` (every field optional, ``None`` = unchanged), ``*Public`` (what is
returned). Our own formats forbid unknown fields, so a typo is a 422, not a
silently ignored change.
"""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from eldercare_protocols.catalogue import CATALOGUE
from eldercare_protocols.uplink import Routine, Threshold

Phone = Annotated[str, Field(pattern=r"^\+?[0-9]{3,20}$", examples=["13800000000"])]
Name = Annotated[str, Field(min_length=1, max_length=64)]
Text = Annotated[str, Field(max_length=500)]
ShortList = Annotated[list[Annotated[str, Field(min_length=1, max_length=100)]],
                      Field(max_length=30)]
DeviceIdStr = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
GatewayIdStr = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
RefId = Annotated[str, Field(min_length=1, max_length=64)]
Url = Annotated[str, Field(pattern=r"^https?://[^\s]{1,500}$")]


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple | set):
        return any(_has_nul(v) for v in value)
    return False


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # a NUL character is never meant in a name or a note, and PostgreSQL's text
        # cannot hold one: refuse it here (422) rather than fail at the INSERT (500)
        if _has_nul(value):
            raise ValueError("text must not contain NUL (\\u0000) characters")
        return value


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"


class LivingSituation(StrEnum):
    ALONE = "alone"
    WITH_SPOUSE = "with_spouse"
    WITH_FAMILY = "with_family"
    WITH_CARER = "with_carer"


class Mobility(StrEnum):
    INDEPENDENT = "independent"
    WALKING_AID = "walking_aid"
    WHEELCHAIR = "wheelchair"
    BEDRIDDEN = "bedridden"


class CognitiveImpairment(StrEnum):
    NONE = "none"
    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"


class ResidentCategory(StrEnum):
    """Categories that entitle a resident to subsidised services (set by the civil-affairs
    assessment). Age (高龄 80+/90+) and living alone (独居) are derived from the birth date
    and the living situation, never stored twice."""

    DIBAO = "dibao"                  # 低保 minimum-living-allowance household
    DIBIAN = "dibian"                # 低边 marginal low-income household
    TEKUN = "tekun"                  # 特困 extreme-poverty support
    DISABLED = "disabled"            # 失能
    SEMI_DISABLED = "semi_disabled"  # 半失能
    DEMENTIA = "dementia"            # 失智
    EMPTY_NEST = "empty_nest"        # 空巢
    FAMILY_PLANNING = "family_planning_special"  # 计生特殊家庭


class Relation(StrEnum):
    FAMILY = "family"
    NEIGHBOUR = "neighbour"
    VOLUNTEER = "volunteer"
    GRID_WORKER = "grid_worker"
    DOCTOR = "doctor"


class ContactChannel(StrEnum):
    SMS = "sms"
    WEBHOOK = "webhook"
    #: a contact with an account (volunteer, worker, family) who watches the app's stream
    APP = "app"


class KeySafe(_In):
    """How to get in without breaking the door: only the responder who accepted sees it."""

    code: str = Field(min_length=1, max_length=32)
    location: str = Field(default="", max_length=200)
    notes: str = Field(default="", max_length=300)


class Coordinates(_In):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class Consent(_In):
    """The resident's (or guardian's) consent to monitoring and to sharing with contacts."""

    monitoring: bool = False
    share_with_contacts: bool = False
    signed_on: date | None = None
    signed_by: str | None = Field(default=None, max_length=64)


class AvailabilityWindow(_In):
    """When a contact can be asked; ISO weekdays 1 (Mon) … 7 (Sun), local time."""

    days: list[Annotated[int, Field(ge=1, le=7)]] = Field(default=[1, 2, 3, 4, 5, 6, 7],
                                                          min_length=1, max_length=7)
    start: time = time(0, 0)
    end: time = time(23, 59, 59)


# -- districts and communities -------------------------------------------------------------

class DistrictCreate(_In):
    id: RefId | None = None
    name: Name
    province: str = Field(default="浙江省", max_length=32)
    city: str = Field(default="", max_length=32)
    code: str | None = Field(default=None, max_length=16)


class DistrictPublic(_Out):
    id: str
    tenant: str
    name: str
    province: str
    city: str
    code: str | None


class CommunityCreate(_In):
    id: RefId | None = None
    district_id: RefId
    name: Name
    address: str = Field(default="", max_length=200)
    phone: Phone | None = None


class CommunityPublic(_Out):
    id: str
    district_id: str
    name: str
    address: str
    phone: str | None


# -- households ----------------------------------------------------------------------------

class HouseholdCreate(_In):
    id: RefId | None = None
    community_id: RefId
    address: str = Field(min_length=1, max_length=200)
    coordinates: Coordinates | None = None
    rooms: ShortList = Field(default_factory=list)
    key_safe: KeySafe | None = None
    notes: Text = ""


class HouseholdUpdate(_In):
    address: str | None = Field(default=None, min_length=1, max_length=200)
    coordinates: Coordinates | None = None
    rooms: ShortList | None = None
    key_safe: KeySafe | None = None
    notes: Text | None = None


class HouseholdPublic(_Out):
    """Never carries the key-safe code: that has its own audited read."""

    id: str
    community_id: str
    district_id: str
    address: str
    coordinates: Coordinates | None
    rooms: list[str]
    has_key_safe: bool
    notes: str


# -- residents -----------------------------------------------------------------------------

class ResidentCreate(_In):
    id: RefId | None = None
    household_id: RefId
    name: Name
    birth_date: date | None = None
    sex: Sex | None = None
    phone: Phone | None = None
    living_situation: LivingSituation = LivingSituation.ALONE
    conditions: ShortList = Field(default_factory=list)
    medications: ShortList = Field(default_factory=list)
    allergies: ShortList = Field(default_factory=list)
    mobility: Mobility = Mobility.INDEPENDENT
    cognitive_impairment: CognitiveImpairment = CognitiveImpairment.NONE
    care_level: int = Field(default=1, ge=1, le=5, description="1 = least care needed")
    language: str = Field(default="zh-CN", max_length=32, description="language or dialect")
    consent: Consent = Field(default_factory=Consent)
    wandering_risk: bool = False
    thresholds: dict[Annotated[str, Field(min_length=1, max_length=32)], Threshold] = Field(
        default_factory=dict, max_length=20)
    routine: Routine = Field(default_factory=Routine)
    notes: Text = ""
    categories: list[ResidentCategory] = Field(default_factory=list, max_length=10)


class ResidentUpdate(_In):
    name: Name | None = None
    birth_date: date | None = None
    sex: Sex | None = None
    phone: Phone | None = None
    living_situation: LivingSituation | None = None
    conditions: ShortList | None = None
    medications: ShortList | None = None
    allergies: ShortList | None = None
    mobility: Mobility | None = None
    cognitive_impairment: CognitiveImpairment | None = None
    care_level: int | None = Field(default=None, ge=1, le=5)
    language: str | None = Field(default=None, max_length=32)
    consent: Consent | None = None
    wandering_risk: bool | None = None
    thresholds: dict[Annotated[str, Field(min_length=1, max_length=32)], Threshold] | None = (
        Field(default=None, max_length=20))
    routine: Routine | None = None
    notes: Text | None = None
    categories: list[ResidentCategory] | None = Field(default=None, max_length=10)


class ResidentSummary(_Out):
    """What lists and scoped views show: no medical detail."""

    id: str
    household_id: str
    community_id: str
    district_id: str
    name: str
    address: str


class ResidentPublic(_Out):
    id: str
    household_id: str
    community_id: str
    district_id: str
    name: str
    address: str
    birth_date: date | None
    sex: Sex | None
    phone: str | None
    living_situation: LivingSituation
    conditions: list[str]
    medications: list[str]
    allergies: list[str]
    mobility: Mobility
    cognitive_impairment: CognitiveImpairment
    care_level: int
    language: str
    consent: Consent
    wandering_risk: bool
    thresholds: dict[str, Threshold]
    routine: Routine
    notes: str
    categories: list[ResidentCategory] = Field(default_factory=list)
    updated_at: datetime


# -- contacts ------------------------------------------------------------------------------

class ContactCreate(_In):
    id: RefId | None = None
    name: Name
    relation: Relation
    phone: Phone
    preferred_channel: ContactChannel = ContactChannel.SMS
    webhook_url: Url | None = None
    availability: list[AvailabilityWindow] = Field(default_factory=list, max_length=14)
    priority: int = Field(default=100, ge=0, le=10000, description="lower is asked first")
    user_id: RefId | None = None
    notes: Text = ""


class ContactUpdate(_In):
    name: Name | None = None
    relation: Relation | None = None
    phone: Phone | None = None
    preferred_channel: ContactChannel | None = None
    webhook_url: Url | None = None
    availability: list[AvailabilityWindow] | None = Field(default=None, max_length=14)
    priority: int | None = Field(default=None, ge=0, le=10000)
    user_id: RefId | None = None
    notes: Text | None = None


class ContactPublic(_Out):
    id: str
    resident_id: str
    name: str
    relation: Relation
    phone: str
    preferred_channel: ContactChannel
    webhook_url: str | None
    availability: list[AvailabilityWindow]
    priority: int
    user_id: str | None
    notes: str


# -- gateways and devices ------------------------------------------------------------------

class GatewayCreate(_In):
    id: GatewayIdStr
    household_id: RefId | None = None
    label: str = Field(default="", max_length=100)


class GatewayUpdate(_In):
    household_id: RefId | None = None
    label: str | None = Field(default=None, max_length=100)


class GatewayPublic(_Out):
    id: str
    household_id: str | None
    district_id: str | None
    label: str
    config_version: int
    published_version: int


class DeviceCreate(_In):
    id: DeviceIdStr
    type: str = Field(min_length=1, max_length=32)
    gateway_id: GatewayIdStr | None = None
    household_id: RefId | None = None
    resident_id: RefId | None = None
    room: str | None = Field(default=None, max_length=64)
    #: ``watch``: a GPS watch that talks to the cloud itself (eldercare_cloud.watch), never
    #: to a home gateway
    source: str = Field(default="native", pattern=r"^(native|z2m|serial|watch)$")
    z2m_model: str | None = Field(default=None, max_length=64)
    z2m_name: str | None = Field(default=None, max_length=64)

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in CATALOGUE:
            raise ValueError(f"unknown device type {value!r}; known: {sorted(CATALOGUE)}")
        return value


class DeviceUpdate(_In):
    gateway_id: GatewayIdStr | None = None
    household_id: RefId | None = None
    resident_id: RefId | None = None
    room: str | None = Field(default=None, max_length=64)
    z2m_model: str | None = Field(default=None, max_length=64)
    z2m_name: str | None = Field(default=None, max_length=64)


class DevicePublic(_Out):
    id: str
    type: str
    gateway_id: str | None
    household_id: str | None
    resident_id: str | None
    room: str | None
    source: str
    z2m_model: str | None
    z2m_name: str | None


class WatchProfile(_In):
    """How a resident's GPS watch is read: a safe area around home (a circle: its centre
    and radius in metres; none: no fence), whether taking the strap off raises an alert
    (otherwise it is recorded only), and whether the resident is high risk (a person with
    dementia who wanders: fence exits and strap removal are then high, not medium)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    home: Coordinates | None = None
    radius_m: float | None = Field(default=None, gt=0, le=50_000)
    strap_alert: bool = True
    high_risk: bool = False

    @model_validator(mode="after")
    def _fence_whole(self) -> WatchProfile:
        if (self.home is None) != (self.radius_m is None):
            raise ValueError("a geofence needs both home and radius_m (or neither)")
        return self


class WatchProfilePublic(WatchProfile):
    resident_id: str
    #: high_risk, or the resident's record says wandering risk or moderate/severe
    #: cognitive impairment
    effective_high_risk: bool
    updated_at: datetime | None = None
    updated_by: str | None = None
