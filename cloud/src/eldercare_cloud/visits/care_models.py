"""API models of care visits, split by role as the rest of the API (Create / Public)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

RefId = Annotated[str, Field(min_length=1, max_length=64)]
Note = Annotated[str, Field(max_length=1000)]
Month = Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class Mode(StrEnum):
    IN_PERSON = "in_person"  # 上门探访
    PHONE = "phone"          # 电话问候


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"


class Level(StrEnum):
    OK = "ok"                # 正常
    ATTENTION = "attention"  # 需关注


class Finding(_In):
    level: Level = Level.OK
    note: Note = ""


class Findings(_In):
    """What the visitor found (the ledger's six headings)."""

    health: Finding = Field(default_factory=Finding)
    mood: Finding = Field(default_factory=Finding)
    food: Finding = Field(default_factory=Finding)
    money: Finding = Field(default_factory=Finding)
    home_safety: Finding = Field(default_factory=Finding)
    needs: Finding = Field(default_factory=Finding)


class ServiceFollowup(_In):
    """A service order for the resident, created through the service desk."""

    service_type_id: Annotated[str, Field(min_length=1, max_length=32)]
    window_start: datetime
    window_end: datetime


class Followups(_In):
    service_order: ServiceFollowup | None = None
    #: a concern for the community worker (text of what worries the visitor)
    concern: Annotated[str, Field(max_length=1000)] | None = None
    #: a note for the resident's care-visit record
    record_note: Note = ""


class EntryCreate(_In):
    mode: Mode
    #: when the visit or call began/ended; default: the check-in (if any) and now
    started_at: datetime | None = None
    ended_at: datetime | None = None
    findings: Findings = Field(default_factory=Findings)
    note: Note = ""
    followups: Followups = Field(default_factory=Followups)

    @model_validator(mode="after")
    def _aware(self) -> EntryCreate:
        for ts in (self.started_at, self.ended_at):
            if ts is not None and ts.tzinfo is None:
                raise ValueError("times need a UTC offset")
        return self


class ArriveCreate(_In):
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)


class TierRuleUpdate(_In):
    visit_every_days: int = Field(ge=0, le=365)
    call_every_days: int = Field(ge=0, le=365)


class TierRulePublic(_Out):
    district_id: str
    tier: str
    visit_every_days: int
    call_every_days: int
    default: bool


class RulePublic(_Out):
    id: str
    tier: str
    zh: str
    en: str


class RiskPublic(_Out):
    resident_id: str
    tier: str
    tier_zh: str
    rule: RulePublic | None
    matched: list[RulePublic]
    facts: dict[str, Any]
    visit_every_days: int
    call_every_days: int


class PairingCreate(_In):
    visitor_contact_id: RefId
    backup_contact_id: RefId | None = None


class PlanPublic(_Out):
    resident_id: str
    resident_name: str
    household_id: str
    community_id: str
    district_id: str
    tier: str
    rule: str | None
    matched: list[str]
    visit_every_days: int
    call_every_days: int
    visitor_contact_id: str | None
    backup_contact_id: str | None
    worker_contact_id: str | None
    #: the contacts' names (visitor, backup, community worker), for people to read
    visitor_name: str | None = None
    backup_name: str | None = None
    worker_name: str | None = None
    paired: bool
    start_date: date
    active: bool


class TaskPublic(_Out):
    id: str
    resident_id: str
    resident_name: str
    address: str
    community_id: str
    district_id: str
    mode: str
    reason: str
    concern_id: str | None
    alert_id: str | None = None
    due_date: date
    due_at: datetime
    visitor_contact_id: str | None
    backup_contact_id: str | None
    worker_contact_id: str | None
    assignee_contact_id: str | None
    status: str
    step: int
    overdue: bool
    next_step_at: datetime | None
    done_at: datetime | None
    entry_id: str | None
    #: the shared visit row (in person) while checked in
    visit_status: str | None = None


class EntryPublic(_Out):
    id: str
    task_id: str
    resident_id: str
    resident_name: str
    community_id: str
    district_id: str
    month: str
    visitor_contact_id: str
    visitor_name: str
    mode: str
    started_at: datetime
    ended_at: datetime
    visit_id: str | None
    #: verified / flagged (in person, from the shared visit) or phone
    verification: str
    flags: list[str]
    findings: dict[str, Any]
    note: str
    record_note: str
    order_id: str | None
    concern_id: str | None
    created_at: datetime


class ConcernCreate(_In):
    resident_id: RefId
    note: Annotated[str, Field(min_length=1, max_length=1000)]


class ConcernClose(_In):
    resolution: Annotated[str, Field(min_length=1, max_length=1000)]


class ConcernPublic(_Out):
    id: str
    resident_id: str
    resident_name: str
    community_id: str
    district_id: str
    kind: str
    kind_zh: str
    day: date
    rule: str
    evidence: dict[str, Any]
    status: str
    task_id: str | None
    raised_by: str
    opened_at: datetime
    closed_at: datetime | None
    resolution: str | None


class RoutinePublic(_Out):
    resident_id: str
    household_id: str
    learned: bool
    baseline: dict[str, Any] | None
    today: dict[str, Any]
    days: list[dict[str, Any]]
    rules: dict[str, Any]


class CoverageRow(_Out):
    key: str
    name: str
    due: int
    on_time: int
    late: int
    missed: int
    share_on_time: float | None


class Coverage(_Out):
    district_id: str
    month: str
    by_community: list[CoverageRow]
    by_visitor: list[CoverageRow]


class CareVisitFigures(_Out):
    """Care visits over whole months for the records domain's report (README, records)."""

    months: list[str]
    due: int
    on_time: int
    late: int
    missed: int
    coverage_pct: float | None
    concerns_raised: int
    concerns_answered: int
    concerns_answered_pct: float | None


class TimebankRow(_Out):
    kind: str
    minutes: float
    entry_id: str | None
    note: str
    ts: datetime


class TimebankStatement(_Out):
    contact_id: str
    name: str
    credited_min: float
    redeemed_min: float
    balance_min: float
    rows: list[TimebankRow]


class RedeemCreate(_In):
    minutes: float = Field(gt=0, le=100_000)
    note: Annotated[str, Field(min_length=1, max_length=500)]


class VisitorView(_Out):
    contact_id: str
    name: str
    tasks: list[TaskPublic]
    hours: TimebankStatement
    #: what a follow-up order may ask for (the service desk's catalogue: id, zh, en)
    service_types: list[dict[str, str]] = Field(default_factory=list)
