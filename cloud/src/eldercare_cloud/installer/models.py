"""The installer API's models: what an installer may send and see (never medical data)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from eldercare_protocols.events import EventKind

GatewayIdStr = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
DeviceIdStr = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
RefId = Annotated[str, Field(min_length=1, max_length=64)]
Text = Annotated[str, Field(max_length=200)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


# -- claim ---------------------------------------------------------------------------------

class ClaimRequest(_In):
    household_id: RefId
    #: a new gateway's id; the cloud makes one up when it is left out
    gateway_id: GatewayIdStr | None = None
    label: str = Field(default="", max_length=100)


class BrokerCredentials(_Out):
    url: str
    username: str
    password: str
    client_id: str


class ClaimResponse(_Out):
    """The gateway's credentials, shown once: only a hash stays in the cloud."""

    gateway_id: str
    household_id: str
    claimed_at: datetime
    broker: BrokerCredentials
    #: alarms from the new gateway are commissioning tests until then (see /commissioning)
    commissioning_until: datetime | None = None


class RevokeResponse(_Out):
    gateway_id: str
    revoked_at: datetime
    broker_account_existed: bool
    #: the gateway's retained ``up/state`` was cleared on the broker (False: it could not
    #: be, and a restarted ingest would see its last birth again; the cloud still shows
    #: it revoked)
    retained_state_cleared: bool = False


# -- commissioning window ----------------------------------------------------------------------

class CommissioningRequest(_In):
    """Alarms from the gateway are walk tests until ``now + minutes`` (or ``report``)."""

    minutes: int = Field(default=30, ge=1, le=240)


class CommissioningWindow(_Out):
    gateway_id: str
    active: bool
    started_at: datetime | None
    until: datetime | None
    ended_at: datetime | None = None


# -- household, pairing -----------------------------------------------------------------------

class ResidentRef(_Out):
    """Who a device is for: an id and a name, nothing from the resident's record."""

    id: str
    name: str


class InstallerHousehold(_Out):
    id: str
    address: str
    rooms: list[str]
    residents: list[ResidentRef]
    gateways: list[str]


class SeenDevice(_Out):
    device_id: str
    source: str
    device_type: str | None
    label_zh: str | None
    label_en: str | None
    topic: str | None
    first_seen: datetime | None
    bound: bool
    room: str | None = None
    resident_id: str | None = None


class BindRequest(_In):
    type: str | None = Field(default=None, max_length=32)
    room: str = Field(min_length=1, max_length=64)
    resident_id: RefId | None = None
    source: Literal["native", "z2m", "serial"] | None = None
    z2m_model: str | None = Field(default=None, max_length=64)
    z2m_name: str | None = Field(default=None, max_length=64)
    serial: str | None = Field(default=None, max_length=64)


class WalkStep(_Out):
    text_en: str
    text_zh: str
    kind: EventKind
    #: "event" (looked up in events) or "telemetry" (a reading)
    channel: Literal["event", "telemetry"]


class BoundDevice(_Out):
    device_id: str
    type: str
    label_zh: str
    label_en: str
    room: str | None
    resident_id: str | None
    source: str
    serial: str
    walk_tests: list[WalkStep]
    bound_at: datetime | None
    bound_by: str | None


# -- walk-test -------------------------------------------------------------------------------

class Cursor(_Out):
    """Where a walk-test step starts: the last committed event row and the cloud's time."""

    events: int
    at: datetime


class WalkEvent(_Out):
    """That an event arrived and when; no payload (a vitals reading is medical data)."""

    found: bool
    cursor: int
    event_id: str | None = None
    kind: EventKind | None = None
    test: bool | None = None
    device_ts: datetime | None = None
    gateway_ts: datetime | None = None
    committed_at: datetime | None = None


class WalkResult(_In):
    device_id: DeviceIdStr
    kind: EventKind
    step: Text
    result: Literal["passed", "failed", "skipped"]
    attempts: int = Field(ge=0, le=100)
    latency_ms: float | None = Field(default=None, ge=0, le=3_600_000)
    event_id: str | None = Field(default=None, max_length=80)
    device_ts: datetime | None = None
    committed_at: datetime | None = None
    tested_at: datetime


class WalkRun(_In):
    results: list[WalkResult] = Field(min_length=1, max_length=500)
    simulated: bool = False


class WalkRunStored(_Out):
    run_id: str
    gateway_id: str
    passed: int
    failed: int
    skipped: int


# -- commissioning record, maintenance --------------------------------------------------------

class ReportDevice(_Out):
    device_id: str
    serial: str
    type: str
    label_zh: str
    label_en: str
    room: str | None
    resident: str | None
    last_self_test: datetime | None


class ReportStep(_Out):
    device_id: str
    kind: EventKind
    step: str
    result: str
    attempts: int
    latency_ms: float | None
    tested_at: datetime
    committed_at: datetime | None


class CommissioningRecord(_Out):
    id: str
    gateway_id: str
    household_id: str | None
    address: str | None
    community: str | None
    residents: list[str]
    devices: list[ReportDevice]
    walk_test: list[ReportStep]
    walk_test_simulated: bool
    all_passed: bool
    installer: str
    installer_name: str
    created_at: datetime
    maintenance: list[str]


class ReportStored(_Out):
    record: CommissioningRecord
    html: str


class MaintenanceTask(_Out):
    id: str
    device_id: str
    device_type: str
    gateway_id: str | None
    household_id: str | None
    kind: str
    reason: str
    status: Literal["open", "done"]
    created_at: datetime
    last_self_test: datetime | None
    done_at: datetime | None = None


class MaintenanceScan(_Out):
    created: int
    open: list[MaintenanceTask]
