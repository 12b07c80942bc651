"""The canonical event vocabulary used everywhere downstream: API, rules, reports."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from eldercare_protocols.bounds import JsonData, Seq, Timestamp


class EventCategory(StrEnum):
    LIFE_SAFETY = "life_safety"
    CARE = "care"
    DEVICE = "device"
    TELEMETRY = "telemetry"


class EventKind(StrEnum):
    # life-safety: own lane, fsync'd, never evicted, never expired
    SOS = "sos"
    FALL = "fall"
    GAS_ALARM = "gas_alarm"
    SMOKE_ALARM = "smoke_alarm"
    VITALS_ALARM = "vitals_alarm"
    # care
    SERVICE_REQUEST = "service_request"
    CANCEL = "cancel"
    DOOR_OPEN = "door_open"
    DOOR_CLOSE = "door_close"
    MOTION = "motion"
    BED_ENTER = "bed_enter"
    BED_EXIT = "bed_exit"
    GEOFENCE_EXIT = "geofence_exit"
    GEOFENCE_ENTER = "geofence_enter"
    STRAP_REMOVED = "strap_removed"
    #: a fall sensor's "maybe a fall" (Tuya ``maybe_fall``, Heiman ``fall_warning``): a
    #: concern someone should check, not a confirmed fall
    FALL_WARNING = "fall_warning"
    #: a water leak probe is wet (a tap left running, a burst pipe)
    WATER_LEAK = "water_leak"
    # care alerts raised by the gateway's local rules (not by a device)
    INACTIVITY = "inactivity"
    NIGHT_WANDERING = "night_wandering"
    DOOR_LEFT_OPEN = "door_left_open"
    # device
    GAS_CLEAR = "gas_clear"
    SMOKE_CLEAR = "smoke_clear"
    WATER_CLEAR = "water_clear"
    BATTERY_LOW = "battery_low"
    TAMPER = "tamper"
    DEVICE_ONLINE = "device_online"
    DEVICE_OFFLINE = "device_offline"
    SELF_TEST = "self_test"
    HEARTBEAT = "heartbeat"
    # telemetry
    VITALS = "vitals"
    GAS_LEVEL = "gas_level"
    LOCATION = "location"
    PRESENCE = "presence"


_CATEGORY: dict[EventKind, EventCategory] = {
    **{
        k: EventCategory.LIFE_SAFETY
        for k in (
            EventKind.SOS,
            EventKind.FALL,
            EventKind.GAS_ALARM,
            EventKind.SMOKE_ALARM,
            EventKind.VITALS_ALARM,
        )
    },
    **{
        k: EventCategory.CARE
        for k in (
            EventKind.SERVICE_REQUEST,
            EventKind.CANCEL,
            EventKind.DOOR_OPEN,
            EventKind.DOOR_CLOSE,
            EventKind.MOTION,
            EventKind.BED_ENTER,
            EventKind.BED_EXIT,
            EventKind.GEOFENCE_EXIT,
            EventKind.GEOFENCE_ENTER,
            EventKind.STRAP_REMOVED,
            EventKind.FALL_WARNING,
            EventKind.WATER_LEAK,
            EventKind.INACTIVITY,
            EventKind.NIGHT_WANDERING,
            EventKind.DOOR_LEFT_OPEN,
        )
    },
    **{
        k: EventCategory.DEVICE
        for k in (
            EventKind.GAS_CLEAR,
            EventKind.SMOKE_CLEAR,
            EventKind.WATER_CLEAR,
            EventKind.BATTERY_LOW,
            EventKind.TAMPER,
            EventKind.DEVICE_ONLINE,
            EventKind.DEVICE_OFFLINE,
            EventKind.SELF_TEST,
            EventKind.HEARTBEAT,
        )
    },
    **{
        k: EventCategory.TELEMETRY
        for k in (EventKind.VITALS, EventKind.GAS_LEVEL, EventKind.LOCATION, EventKind.PRESENCE)
    },
}

LIFE_SAFETY_KINDS: frozenset[EventKind] = frozenset(
    k for k, c in _CATEGORY.items() if c is EventCategory.LIFE_SAFETY
)

#: Kinds that show a person is up and about; used by inactivity rules. A device
#: heartbeat is deliberately absent: a device that is alive says nothing of the person.
ACTIVITY_KINDS: frozenset[EventKind] = frozenset(
    {
        EventKind.DOOR_OPEN,
        EventKind.DOOR_CLOSE,
        EventKind.MOTION,
        EventKind.BED_ENTER,
        EventKind.BED_EXIT,
        EventKind.SERVICE_REQUEST,
    }
)


def category_of(kind: EventKind) -> EventCategory:
    return _CATEGORY[kind]


def is_life_safety(kind: EventKind) -> bool:
    return kind in LIFE_SAFETY_KINDS


JsonScalar = str | int | float | bool | None


class CanonicalEvent(BaseModel):
    """One thing a device said, in the platform's own words, whatever the source format.

    `test` marks self-tests and test presses: they travel and are recorded, but a
    rule never turns them into a real alarm.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    device_id: Annotated[str, Field(min_length=1, max_length=64)]
    kind: EventKind
    ts: Timestamp | None = None
    seq: Seq | None = None
    test: bool = False
    data: JsonData = Field(default_factory=dict)
    source: Annotated[str, Field(pattern=r"^(native|z2m|serial|gateway|watch)$")] = "native"

    @property
    def category(self) -> EventCategory:
        return category_of(self.kind)

    @property
    def life_safety(self) -> bool:
        return is_life_safety(self.kind) and not self.test
