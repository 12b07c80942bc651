"""The service desk's vocabulary and API models (``*Create`` in, ``*Public`` out).

Our own formats forbid unknown fields and non-finite numbers, so a typo or a NaN is a
422 with the reason, never a silently stored value.
"""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

RefId = Annotated[str, Field(min_length=1, max_length=64)]
Code = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,31}$")]
Phone = Annotated[str, Field(pattern=r"^\+?[0-9]{3,20}$")]
Month = Annotated[str, Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")]
Note = Annotated[str, Field(max_length=500)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class RequestStatus(StrEnum):
    OPEN = "open"          # waiting for the operator's call-back
    CALL_AGAIN = "call_again"
    ORDERED = "ordered"    # turned into one or more orders
    CLOSED = "closed"      # nothing to do (pressed by mistake, asked for nothing)


class CallbackOutcome(StrEnum):
    ASKED = "asked"            # reached the elder, recorded what they asked for
    NO_ANSWER = "no_answer"
    CALL_AGAIN = "call_again"  # reached someone, call again later


class OrderStatus(StrEnum):
    CREATED = "created"
    UNASSIGNED = "unassigned"  # nobody could be found: the operator must act
    DISPATCHED = "dispatched"  # offered to a worker, waiting for accept
    ACCEPTED = "accepted"      # on the way
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


OPEN_ORDER = (OrderStatus.CREATED, OrderStatus.UNASSIGNED, OrderStatus.DISPATCHED,
              OrderStatus.ACCEPTED, OrderStatus.IN_PROGRESS)
#: an order that holds a worker's time (for the overlap check)
HOLDS_WORKER = (OrderStatus.DISPATCHED, OrderStatus.ACCEPTED, OrderStatus.IN_PROGRESS)


class OrderSource(StrEnum):
    BUTTON = "button"   # a green press, through the operator's call-back
    PHONE = "phone"     # a phone call to the centre
    FAMILY = "family"   # the family page
    PLAN = "plan"       # a recurring plan


class Payment(StrEnum):
    VOUCHER = "voucher"  # drawn from the resident's monthly 服务券 balance
    SELF = "self"        # paid by the resident


class Score(StrEnum):
    SATISFIED = "satisfied"        # 满意
    BASIC = "basic"                # 基本满意
    UNSATISFIED = "unsatisfied"    # 不满意


class RatingSource(StrEnum):
    CALLBACK = "callback"  # the centre's call-back to the elder
    FAMILY = "family"
    BUTTON = "button"      # the elder's press pattern


class ProviderKind(StrEnum):
    PROVIDER = "provider"
    KITCHEN = "kitchen"    # 助餐 meal kitchen / 老年食堂


# -- catalogue ----------------------------------------------------------------------------

class ServiceTypeCreate(_In):
    id: Code
    name_zh: str = Field(min_length=1, max_length=32)
    name_en: str = Field(min_length=1, max_length=64)
    duration_min: int = Field(ge=5, le=24 * 60)
    unit_price_cents: int = Field(ge=0, le=10_000_00)
    accept_within_s: int = Field(default=900, ge=30, le=86400)
    arrive_within_s: int = Field(default=1800, ge=60, le=86400)
    min_visit_min: int = Field(default=10, ge=0, le=24 * 60)


class ServiceTypePublic(_Out):
    id: str
    name_zh: str
    name_en: str
    duration_min: int
    unit_price_cents: int
    accept_within_s: int
    arrive_within_s: int
    min_visit_min: int
    active: bool


class ProviderCreate(_In):
    id: RefId | None = None
    district_id: RefId
    name: str = Field(min_length=1, max_length=64)
    kind: ProviderKind = ProviderKind.PROVIDER
    phone: Phone
    communities: list[RefId] = Field(min_length=1, max_length=50)
    service_types: list[Code] = Field(min_length=1, max_length=30)


class ProviderPublic(_Out):
    id: str
    district_id: str
    name: str
    kind: ProviderKind
    phone: str
    communities: list[str]
    service_types: list[str]
    active: bool


class WorkerCreate(_In):
    id: RefId | None = None
    name: str = Field(min_length=1, max_length=64)
    phone: Phone
    skills: list[Code] = Field(min_length=1, max_length=30)


class WorkerPublic(_Out):
    id: str
    provider_id: str
    name: str
    phone: str
    skills: list[str]
    active: bool


class AccountLink(_In):
    """Make a user account a provider's administrator (role provider) or one worker
    (role worker)."""

    user_id: RefId
    provider_id: RefId
    worker_id: RefId | None = None


class AccountPublic(_Out):
    """A user account linked to a provider (its administrator) or to one of its workers."""

    user_id: str
    username: str
    role: str
    provider_id: str
    worker_id: str | None


class Minimum(_In):
    service_type_id: Code
    times: int = Field(default=0, ge=0, le=100)
    minutes: int = Field(default=0, ge=0, le=100 * 60)


class EntitlementRuleCreate(_In):
    district_id: RefId
    #: a registry ResidentCategory value, or a derived one: age_80, age_90, living_alone
    category: Code
    label: str = Field(min_length=1, max_length=64)
    monthly_voucher_cents: int = Field(ge=0, le=100_000_00)
    service_types: list[Code] = Field(min_length=1, max_length=30)
    minimums: list[Minimum] = Field(default_factory=list, max_length=30)


class EntitlementRulePublic(_Out):
    id: str
    district_id: str
    category: str
    label: str
    monthly_voucher_cents: int
    service_types: list[str]
    minimums: list[dict[str, Any]]


class EntitlementPublic(_Out):
    """What one resident is entitled to in one month, and how much is left."""

    resident_id: str
    month: str
    categories: list[str]
    rules: list[str]
    service_types: list[str]
    allowance_cents: int
    used_cents: int
    reserved_cents: int
    balance_cents: int
    minimums: list[dict[str, Any]]


class ConfigUpdate(_In):
    #: the share of completed visits the centre calls back (0..1)
    callback_share: float = Field(ge=0.0, le=1.0)
    #: every visit of a worker with fewer completed visits than this is called back
    new_worker_visits: int = Field(default=3, ge=0, le=1000)


class ConfigPublic(_Out):
    district_id: str
    callback_share: float
    new_worker_visits: int


# -- requests and orders --------------------------------------------------------------------

class RequestCreate(_In):
    """A request taken by phone (operator) or from the family page."""

    resident_id: RefId
    note: Note = ""


class CallbackCreate(_In):
    outcome: CallbackOutcome
    note: Note = ""


class CloseRequest(_In):
    note: Note = Field(min_length=1)


class TimelinePublic(_Out):
    ts: datetime
    actor: str
    actor_name: str
    action: str
    detail: dict[str, Any]


class RequestPublic(_Out):
    id: str
    resident_id: str
    resident_name: str
    address: str
    household_id: str
    district_id: str
    source: str
    status: RequestStatus
    presses: int
    pressed_at: datetime | None
    opened_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    last_outcome: str | None
    note: str
    order_ids: list[str] = Field(default_factory=list)
    timeline: list[TimelinePublic] = Field(default_factory=list)


class OrderCreate(_In):
    resident_id: RefId
    service_type_id: Code
    window_start: datetime
    window_end: datetime
    request_id: RefId | None = None
    source: OrderSource = OrderSource.PHONE
    payment: Payment = Payment.VOUCHER
    note: Note = ""
    #: dispatch at once to the best suggestion
    dispatch: bool = True

    @model_validator(mode="after")
    def _window(self) -> OrderCreate:
        if self.window_start.tzinfo is None or self.window_end.tzinfo is None:
            raise ValueError("window_start and window_end need a time zone")
        if self.window_end <= self.window_start:
            raise ValueError("window_end must be after window_start")
        if (self.window_end - self.window_start).total_seconds() > 12 * 3600:
            raise ValueError("a service window is at most 12 hours")
        return self


class DispatchCreate(_In):
    worker_id: RefId | None = None


class DeclineCreate(_In):
    reason: Note = ""


class CheckInCreate(_In):
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)


class CheckOutCreate(_In):
    note: Note = ""


class CancelCreate(_In):
    reason: Note = Field(min_length=1)


class RatingCreate(_In):
    score: Score
    comment: Note = ""
    source: RatingSource = RatingSource.CALLBACK


class ReviewCreate(_In):
    accept: bool
    note: Note = ""


class FollowupClose(_In):
    resolution: Note = Field(min_length=1)


class Suggestion(_Out):
    provider_id: str
    provider_name: str
    worker_id: str
    worker_name: str
    load_today: int


class RatingPublic(_Out):
    source: str
    score: Score
    comment: str
    actor: str
    ts: datetime


class OrderPublic(_Out):
    id: str
    request_id: str | None
    plan_id: str | None
    resident_id: str
    resident_name: str
    address: str
    household_id: str
    community_id: str
    district_id: str
    service_type_id: str
    service_name_zh: str
    service_name_en: str
    source: str
    payment: str
    status: OrderStatus
    window_start: datetime
    window_end: datetime
    price_cents: int
    provider_id: str | None
    worker_id: str | None
    worker_name: str | None
    accept_due_at: datetime | None
    arrive_due_at: datetime | None
    dispatched_at: datetime | None
    accepted_at: datetime | None
    checked_in_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    attention: str | None
    callback_due: bool
    note: str
    created_at: datetime


class OrderDetail(OrderPublic):
    timeline: list[TimelinePublic]
    visit: dict[str, Any] | None
    ratings: list[RatingPublic]
    route_url: str


class FollowupPublic(_Out):
    id: str
    order_id: str
    provider_id: str | None
    district_id: str
    reason: str
    status: str
    opened_at: datetime
    closed_at: datetime | None
    resolution: str | None


class PlanCreate(_In):
    """A recurring order: every ``every_days`` days from ``first_date`` (1 = daily meal,
    14 = every other week on the first date's weekday)."""

    resident_id: RefId
    service_type_id: Code
    every_days: int = Field(ge=1, le=62)
    first_date: date
    start_time: time
    end_time: time

    @model_validator(mode="after")
    def _times(self) -> PlanCreate:
        if self.end_time <= self.start_time:
            raise ValueError("end_time must be after start_time")
        return self


class PlanPublic(_Out):
    id: str
    resident_id: str
    district_id: str
    service_type_id: str
    every_days: int
    first_date: date
    start_time: time
    end_time: time
    active: bool


# -- records ----------------------------------------------------------------------------------

class VoucherEntry(_Out):
    ts: datetime
    kind: str
    order_id: str | None
    amount_cents: int
    balance_cents: int


class VoucherStatement(_Out):
    resident_id: str
    month: str
    allowance_cents: int
    entries: list[VoucherEntry]
    used_cents: int
    balance_cents: int


class LevelLine(_Out):
    service_type_id: str
    required_times: int
    required_minutes: int
    times: int
    minutes: float
    met: bool


class ResidentLevel(_Out):
    resident_id: str
    resident_name: str
    categories: list[str]
    lines: list[LevelLine]
    met: bool


class ServiceLevels(_Out):
    district_id: str
    month: str
    residents: list[ResidentLevel]
    entitled: int
    met: int


class ProviderMonth(_Out):
    provider_id: str
    month: str
    orders: int
    completed: int
    verified: int
    flagged: int
    amount_cents: int
    ratings: dict[str, int]
    by_service: dict[str, int]


class ServiceGroup(_Out):
    """Orders of one service type or one provider in the report's months."""

    key: str
    label: str
    orders: int
    completed: int
    cancelled: int


class ServiceMonthFigures(_Out):
    """The service desk's monthly KPIs for the records domain's report (README, records)."""

    months: list[str]
    orders: int
    completed: int
    cancelled: int
    by_type: list[ServiceGroup]
    by_provider: list[ServiceGroup]
    arrived: int
    on_time: int
    on_time_pct: float | None
    visits_closed: int
    verified: int
    verified_pct: float | None
    evv_standard_pct: float
    meets_evv_standard: bool | None
    flagged: int
    flagged_open: int
    ratings: dict[str, int]
    complaints: int
    complaints_closed: int
    entitled_residents: int
    levels_met: int
    levels_met_pct: float | None
    voucher_debited_cents: int


class WorkerDay(_Out):
    worker_id: str
    day: date
    orders: list[OrderPublic]
    minutes: float


class WorkView(_Out):
    """What the worker's phone page shows for one order (signed link or account)."""

    order: OrderPublic
    visit: dict[str, Any] | None
    route_url: str
    resident_phone: str | None
