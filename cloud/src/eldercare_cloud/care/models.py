"""Alerts, their life cycle and the escalation ladder, as data.

The transition table is the single source of what may follow what; every transition
is stamped with its actor and time in the alert's timeline.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from eldercare_cloud.registry.models import Relation
from eldercare_protocols.events import EventKind


class AlertKind(StrEnum):
    SOS = "sos"
    FALL = "fall"
    GAS_ALARM = "gas_alarm"
    SMOKE_ALARM = "smoke_alarm"
    VITALS_ALARM = "vitals_alarm"
    INACTIVITY = "inactivity"
    NIGHT_WANDERING = "night_wandering"
    DOOR_LEFT_OPEN = "door_left_open"
    GEOFENCE_EXIT = "geofence_exit"
    STRAP_REMOVED = "strap_removed"
    #: cloud rule: the gateway is online but the home has shown no activity for N hours
    WELFARE_CHECK = "welfare_check"
    BATTERY_LOW = "battery_low"
    TAMPER = "tamper"
    DEVICE_OFFLINE = "device_offline"
    #: cloud rule: Last Will, or no health report for N minutes
    GATEWAY_OFFLINE = "gateway_offline"
    #: cloud rule: the gateway's health counts client id conflicts (two gateways run with
    #: one gateway id and knock each other off the brokers): one alert per gateway
    GATEWAY_ID_CONFLICT = "gateway_id_conflict"
    #: alarms from a gateway during its commissioning window (an installer's walk test):
    #: one low entry per gateway for the console, never a ladder or a family SMS
    COMMISSIONING = "commissioning"


class AlertCategory(StrEnum):
    LIFE_SAFETY = "life_safety"
    CARE = "care"
    MAINTENANCE = "maintenance"


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    ASSIGNED = "assigned"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    CANCEL_REQUESTED = "cancel_requested"
    RESOLVED = "resolved"
    CLOSED = "closed"


class ClosureCode(StrEnum):
    FALSE_ALARM = "false_alarm"
    HELPED_AT_HOME = "helped_at_home"
    TAKEN_TO_HOSPITAL = "taken_to_hospital"
    AMBULANCE_CALLED = "ambulance_called"
    NO_ANSWER_FORCED_ENTRY = "no_answer_forced_entry"
    DEVICE_FAULT = "device_fault"
    OTHER = "other"


#: device / gateway-rule event kinds that raise an alert of the same name
EVENT_ALERTS: dict[EventKind, AlertKind] = {
    EventKind.SOS: AlertKind.SOS,
    EventKind.FALL: AlertKind.FALL,
    EventKind.GAS_ALARM: AlertKind.GAS_ALARM,
    EventKind.SMOKE_ALARM: AlertKind.SMOKE_ALARM,
    EventKind.VITALS_ALARM: AlertKind.VITALS_ALARM,
    EventKind.INACTIVITY: AlertKind.INACTIVITY,
    EventKind.NIGHT_WANDERING: AlertKind.NIGHT_WANDERING,
    EventKind.DOOR_LEFT_OPEN: AlertKind.DOOR_LEFT_OPEN,
    EventKind.GEOFENCE_EXIT: AlertKind.GEOFENCE_EXIT,
    EventKind.STRAP_REMOVED: AlertKind.STRAP_REMOVED,
    EventKind.BATTERY_LOW: AlertKind.BATTERY_LOW,
    EventKind.TAMPER: AlertKind.TAMPER,
    EventKind.DEVICE_OFFLINE: AlertKind.DEVICE_OFFLINE,
}

LIFE_SAFETY_ALERTS = frozenset({AlertKind.SOS, AlertKind.FALL, AlertKind.GAS_ALARM,
                                AlertKind.SMOKE_ALARM, AlertKind.VITALS_ALARM})
MAINTENANCE_ALERTS = frozenset({AlertKind.BATTERY_LOW, AlertKind.TAMPER,
                                AlertKind.DEVICE_OFFLINE, AlertKind.GATEWAY_OFFLINE,
                                AlertKind.GATEWAY_ID_CONFLICT, AlertKind.COMMISSIONING})
#: maintenance alerts are about one device or gateway, everything else about a person
DEVICE_SUBJECT_ALERTS = frozenset({AlertKind.BATTERY_LOW, AlertKind.TAMPER,
                                   AlertKind.DEVICE_OFFLINE})


def category_of(kind: AlertKind) -> AlertCategory:
    if kind in LIFE_SAFETY_ALERTS:
        return AlertCategory.LIFE_SAFETY
    if kind in MAINTENANCE_ALERTS:
        return AlertCategory.MAINTENANCE
    return AlertCategory.CARE


def default_severity(kind: AlertKind) -> Severity:
    """Life-safety critical; person-activity and wandering high; device problems low.

    ``vitals_alarm`` is critical: the protocol classes it life-safety (own lane, never
    evicted), and the alert follows the lane it travelled in.
    """
    if kind in LIFE_SAFETY_ALERTS:
        return Severity.CRITICAL
    if kind in MAINTENANCE_ALERTS:
        return (Severity.MEDIUM if kind in (AlertKind.GATEWAY_OFFLINE,
                                            AlertKind.GATEWAY_ID_CONFLICT) else Severity.LOW)
    if kind in (AlertKind.STRAP_REMOVED, AlertKind.DOOR_LEFT_OPEN):
        return Severity.MEDIUM
    return Severity.HIGH


def escalates(kind: AlertKind) -> bool:
    """Maintenance alerts go to the console and installers, not up a ladder of people."""
    return kind not in MAINTENANCE_ALERTS


OPEN_STATES = frozenset({AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED, AlertStatus.ASSIGNED,
                         AlertStatus.EN_ROUTE, AlertStatus.ON_SCENE,
                         AlertStatus.CANCEL_REQUESTED})
#: states in which nobody has accepted yet, so the ladder keeps looking for someone
UNASSIGNED_STATES = frozenset({AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED,
                               AlertStatus.CANCEL_REQUESTED})

TRANSITIONS: dict[AlertStatus, frozenset[AlertStatus]] = {
    AlertStatus.OPEN: frozenset({AlertStatus.ACKNOWLEDGED, AlertStatus.ASSIGNED,
                                 AlertStatus.EN_ROUTE, AlertStatus.ON_SCENE,
                                 AlertStatus.CANCEL_REQUESTED, AlertStatus.RESOLVED}),
    AlertStatus.ACKNOWLEDGED: frozenset({AlertStatus.ASSIGNED, AlertStatus.EN_ROUTE,
                                         AlertStatus.ON_SCENE, AlertStatus.CANCEL_REQUESTED,
                                         AlertStatus.RESOLVED}),
    AlertStatus.ASSIGNED: frozenset({AlertStatus.EN_ROUTE, AlertStatus.ON_SCENE,
                                     AlertStatus.CANCEL_REQUESTED, AlertStatus.RESOLVED}),
    AlertStatus.EN_ROUTE: frozenset({AlertStatus.ON_SCENE, AlertStatus.CANCEL_REQUESTED,
                                     AlertStatus.RESOLVED}),
    AlertStatus.ON_SCENE: frozenset({AlertStatus.CANCEL_REQUESTED, AlertStatus.RESOLVED}),
    AlertStatus.CANCEL_REQUESTED: frozenset({AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED,
                                             AlertStatus.ASSIGNED, AlertStatus.EN_ROUTE,
                                             AlertStatus.ON_SCENE, AlertStatus.RESOLVED}),
    AlertStatus.RESOLVED: frozenset({AlertStatus.CLOSED}),
    AlertStatus.CLOSED: frozenset(),
}

KIND_ZH: dict[AlertKind, str] = {
    AlertKind.SOS: "紧急呼叫",
    AlertKind.FALL: "疑似跌倒",
    AlertKind.GAS_ALARM: "燃气泄漏报警",
    AlertKind.SMOKE_ALARM: "烟雾报警",
    AlertKind.VITALS_ALARM: "生命体征异常",
    AlertKind.INACTIVITY: "长时间无活动",
    AlertKind.NIGHT_WANDERING: "夜间外出",
    AlertKind.DOOR_LEFT_OPEN: "门长时间未关",
    AlertKind.GEOFENCE_EXIT: "离开安全区域",
    AlertKind.STRAP_REMOVED: "手环被摘下",
    AlertKind.WELFARE_CHECK: "多时无活动，需上门探视",
    AlertKind.BATTERY_LOW: "设备电量低",
    AlertKind.TAMPER: "设备被拆动",
    AlertKind.DEVICE_OFFLINE: "设备离线",
    AlertKind.GATEWAY_OFFLINE: "网关离线",
    AlertKind.GATEWAY_ID_CONFLICT: "网关编号冲突",
    AlertKind.COMMISSIONING: "调试中报警",
}


# -- escalation ladder ---------------------------------------------------------------------

class StepKind(StrEnum):
    #: ask people from the resident's contacts
    CONTACTS = "contacts"
    #: put it in front of the monitoring centre as a task (they see critical alerts anyway)
    MONITORING_CENTRE = "monitoring_centre"
    #: a task for an operator to call 120 with the resident card ready
    EMERGENCY_SERVICES = "emergency_services"


class StepMode(StrEnum):
    IN_TURN = "in_turn"
    ALL_AT_ONCE = "all_at_once"


class StepChannel(StrEnum):
    PREFERRED = "preferred"
    SMS = "sms"
    WEBHOOK = "webhook"
    APP = "app"


class LadderStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: StepKind = StepKind.CONTACTS
    relations: list[Relation] = Field(default_factory=list, max_length=5)
    contact_ids: list[str] = Field(default_factory=list, max_length=20)
    mode: StepMode = StepMode.IN_TURN
    channel: StepChannel = StepChannel.PREFERRED
    #: None: 60 s for life-safety alerts, the longer default for the rest
    timeout_s: int | None = Field(default=None, ge=1, le=86400)

    @model_validator(mode="after")
    def _targets(self) -> LadderStep:
        if self.kind is StepKind.CONTACTS and not self.relations and not self.contact_ids:
            raise ValueError("a contacts step needs relations or contact_ids")
        return self


class Ladder(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    steps: list[LadderStep] = Field(min_length=1, max_length=12)


DEFAULT_LADDER = Ladder(steps=[
    LadderStep(relations=[Relation.FAMILY], mode=StepMode.IN_TURN),
    LadderStep(relations=[Relation.NEIGHBOUR, Relation.VOLUNTEER], mode=StepMode.ALL_AT_ONCE),
    LadderStep(relations=[Relation.GRID_WORKER], mode=StepMode.ALL_AT_ONCE),
    LadderStep(kind=StepKind.MONITORING_CENTRE),
    LadderStep(kind=StepKind.EMERGENCY_SERVICES),
])


class LadderPublic(BaseModel):
    model_config = ConfigDict(frozen=True)
    scope: str
    district_id: str | None
    resident_id: str | None
    steps: list[LadderStep]
    inherited: bool = False
    updated_at: datetime | None = None


# -- alert API models ----------------------------------------------------------------------

class TimelineEntry(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: int
    ts: datetime
    actor: str
    actor_name: str
    action: str
    from_status: AlertStatus | None
    to_status: AlertStatus | None
    detail: dict[str, Any]


class OfferPublic(BaseModel):
    model_config = ConfigDict(frozen=True)
    contact_id: str
    name: str
    relation: str
    step_index: int
    channel: str
    status: str
    offered_at: datetime
    responded_at: datetime | None


class NotificationPublic(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: str
    contact_id: str | None
    channel: str
    address: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


class LadderRunPublic(BaseModel):
    model_config = ConfigDict(frozen=True)
    status: str
    step_index: int
    position: int
    due_at: datetime | None
    stop_reason: str | None
    steps: list[LadderStep]


class PositionSource(StrEnum):
    #: the alarm frame's own GPS fix
    FIX = "fix"
    #: the watch had no fix: the last fix it (or the cloud) heard before
    LAST_KNOWN = "last_known"
    #: the watch had no fix and none was known: the coordinates it wrote anyway
    NO_FIX = "no_fix"


class AlertPosition(BaseModel):
    """Where the person was: a GPS fix (WGS-84) and when it was taken; ``valid`` False
    when the watch said it had no fix (a place to start looking, not to trust)."""

    model_config = ConfigDict(frozen=True)
    lat: float
    lon: float
    at: datetime | None
    valid: bool
    source: PositionSource

    @computed_field  # type: ignore[prop-decorator]
    @property
    def amap_url(self) -> str:
        """The spot in Amap (its URI API takes the watch's WGS-84 coordinates with
        ``coordinate=wgs84``, and opens the app on a phone that has it)."""
        return (f"https://uri.amap.com/marker?position={self.lon:.5f},{self.lat:.5f}"
                "&coordinate=wgs84&callnative=1")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def osm_url(self) -> str:
        lat, lon = f"{self.lat:.5f}", f"{self.lon:.5f}"
        return f"https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=17/{lat}/{lon}"


class AlertPublic(BaseModel):
    """An alert with every timestamp of invariant 5, and no medical detail."""

    model_config = ConfigDict(frozen=True)
    id: str
    kind: AlertKind
    category: AlertCategory
    severity: Severity
    severity_override: Severity | None
    status: AlertStatus
    resident_id: str | None
    resident_name: str | None
    household_id: str | None
    address: str | None
    district_id: str | None
    gateway_id: str | None
    device_id: str | None
    room: str | None
    source: str
    repeat_count: int
    raised_at: datetime | None = Field(description="raised on the device")
    received_at: datetime | None = Field(description="received by the gateway")
    committed_at: datetime | None = Field(description="committed in the cloud")
    opened_at: datetime
    first_notified_at: datetime | None
    acknowledged_at: datetime | None
    accepted_at: datetime | None
    en_route_at: datetime | None
    on_scene_at: datetime | None
    cancel_requested_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    closure_code: ClosureCode | None
    assigned_contact_id: str | None
    taken_over_by: str | None
    updated_at: datetime
    #: when the alert went to the shift supervisors for want of an acknowledgement
    supervisor_escalated_at: datetime | None = None
    #: the person's last position (a GPS watch's alarm), None for home devices
    position: AlertPosition | None = None


class AlertDetail(AlertPublic):
    timeline: list[TimelineEntry]
    offers: list[OfferPublic]
    notifications: list[NotificationPublic]
    ladder: LadderRunPublic | None


class NoteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=2000)


class SeverityOverride(BaseModel):
    model_config = ConfigDict(extra="forbid")
    severity: Severity
    reason: str = Field(default="", max_length=300)


class ResolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    closure_code: ClosureCode
    note: str = Field(default="", max_length=2000)


class ProgressRequest(BaseModel):
    """An operator recording what a responder reported by phone."""

    model_config = ConfigDict(extra="forbid")
    status: AlertStatus
    note: str = Field(default="", max_length=2000)


class TakeoverRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(default="", max_length=2000)


class ReviewRequest(BaseModel):
    """An operator's sign-off of a resolved case (待复核 → 已结案), optionally correcting
    the closure code the responder chose."""

    model_config = ConfigDict(extra="forbid")
    closure_code: ClosureCode | None = None
    note: str = Field(default="", max_length=2000)
