"""What the records API answers: cases on the record, their condensed timeline, KPIs."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from eldercare_cloud.care.models import (
    AlertKind,
    AlertStatus,
    ClosureCode,
    NotificationPublic,
    OfferPublic,
    Severity,
)
from eldercare_cloud.records.kpi import Figures, Group
from eldercare_cloud.services.models import ServiceMonthFigures
from eldercare_cloud.visits.care_models import CareVisitFigures


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class ReviewState(StrEnum):
    #: resolved (by a responder or an operator), waiting for an operator's sign-off: 待复核
    PENDING_REVIEW = "pending_review"
    #: signed off: 已结案
    CLOSED = "closed"


class CaseSummary(_Out):
    id: str
    kind: AlertKind
    severity: Severity
    status: AlertStatus
    review_state: ReviewState
    resident_id: str | None
    resident_name: str | None
    address: str | None
    district_id: str | None
    community_id: str | None
    community_name: str | None
    opened_at: datetime
    acknowledged_at: datetime | None
    accepted_at: datetime | None
    on_scene_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    closure_code: ClosureCode | None
    #: seconds from opening, as the KPIs count them
    ack_s: float | None
    accept_s: float | None
    on_scene_s: float | None
    responder_name: str | None
    #: 1-based ladder step at which the responder accepted (None: nobody, or dispatched)
    accepted_step: int | None
    #: monitoring-centre staff who acted on the case, in the order they first did
    operators: list[str]


class CasePage(_Out):
    total: int
    items: list[CaseSummary]


class CaseLine(_Out):
    """One line of the condensed timeline: one per ladder step (with who was asked, and
    the channels that failed summarised), one per staff or responder action."""

    ts: datetime
    actor: str
    actor_name: str
    action: str
    from_status: AlertStatus | None
    to_status: AlertStatus | None
    detail: dict[str, Any]


class CaseRecord(_Out):
    case: CaseSummary
    timeline: list[CaseLine]
    offers: list[OfferPublic]
    notifications: list[NotificationPublic]
    notes: list[CaseLine]


class KpiReport(_Out):
    """KPIs of one period in the caller's districts, overall and by group."""

    period_start: datetime
    period_end: datetime
    from_month: str
    to_month: str
    district_id: str | None
    generated_at: datetime
    standard: dict[str, float]
    overall: Figures
    by_district: list[Group]
    by_community: list[Group]
    by_operator: list[Group]
    by_hour: list[Group]
    by_month: list[Group]
    #: the service desk's and the care visits' figures (None where that domain is absent)
    services: ServiceMonthFigures | None = None
    care_visits: CareVisitFigures | None = None


class FollowUp(StrEnum):
    #: resolved by a responder or operator, not signed off yet
    PENDING_REVIEW = "pending_review"
    #: still open and nobody at the centre has acknowledged it
    UNACKNOWLEDGED = "unacknowledged"
    #: went to the shift supervisor for want of an acknowledgement
    SUPERVISOR = "supervisor"
    #: the ladder ran out of people and nobody accepted
    LADDER_EXHAUSTED = "ladder_exhausted"
    #: messages that could not be delivered during the shift
    NOTIFICATION_FAILED = "notification_failed"
    #: someone accepted but has not reported arriving
    NOT_ON_SCENE = "not_on_scene"


class HandoverItem(_Out):
    case: CaseSummary
    #: what happened to it during the shift, in order (condensed: one word per action)
    changes: list[str]
    last_change_at: datetime | None
    follow_up: list[FollowUp]


class Handover(_Out):
    """What the outgoing shift hands over: what is open, what changed, what needs doing."""

    since: datetime
    generated_at: datetime
    open: list[HandoverItem]
    changed: list[HandoverItem]
    follow_up: list[HandoverItem]
