"""What the local rules must remember across a restart, as a small validated document.

A gateway that reboots at 09:00 must still know that nobody has moved since 21:00
yesterday, that the front door has been open since 08:40 and was already reported, and
which devices it had declared offline; otherwise it forgets an inactivity alert that is
due at ``wake_by``, or raises the same ``door_left_open`` twice. The snapshot holds the
minimum for that and nothing derived from the config (which has its own file).

It is stored as JSON in the outbox database's ``state`` table (see
:meth:`eldercare_edge.outbox.Outbox.put_many`), written in the same transaction as the
alerts and events that changed it, and otherwise every ``rules_state_save_s``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from eldercare_edge.errors import EdgeError

#: the key of the rules' snapshot in the outbox's state table
STATE_KEY = "rules"


class RuleStateError(EdgeError):
    """A stored rules snapshot cannot be read; the gateway starts from a blank state."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DeviceSnapshot(_Frozen):
    online: bool | None = None
    last_seen: AwareDatetime | None = None
    battery: float | None = None
    rssi: int | None = None


class RulesSnapshot(_Frozen):
    """Everything here is a fact the gateway observed; ``saved_at`` (rule clock) tells a
    restored gateway how long it was not listening."""

    v: Literal[1] = 1
    saved_at: AwareDatetime
    #: since when the home has been watched without a long interruption
    watched_since: AwareDatetime
    last_activity: AwareDatetime | None = None
    wake_checked: date | None = None
    inactive_raised_at: AwareDatetime | None = None
    #: (device, measurement) -> first abnormal reading of the excursion in progress
    abnormal_since: list[tuple[str, str, AwareDatetime]] = Field(default_factory=list)
    vitals_raised: list[tuple[str, str]] = Field(default_factory=list)
    door_open_since: dict[str, AwareDatetime] = Field(default_factory=dict)
    door_raised: list[str] = Field(default_factory=list)
    battery_raised: list[str] = Field(default_factory=list)
    devices: dict[str, DeviceSnapshot] = Field(default_factory=dict)


def encode(snapshot: RulesSnapshot) -> bytes:
    return snapshot.model_dump_json().encode()


def decode(raw: bytes) -> RulesSnapshot:
    try:
        return RulesSnapshot.model_validate_json(raw)
    except ValidationError as exc:
        preview = raw[:120].decode("utf-8", errors="replace")
        raise RuleStateError(f"stored rule state is unreadable: {exc.error_count()} errors,"
                             f" first: {exc.errors()[0]['msg']} | {preview}") from exc


def gap_s(snapshot: RulesSnapshot, now: datetime) -> float:
    """Seconds the gateway was not listening (never negative, even if the clock stepped)."""
    return max(0.0, (now - snapshot.saved_at).total_seconds())
