"""Converters from canonical events and rule alerts to outbox drafts (uplink records).

Records are validated here, before they reach the outbox, so a bad one is refused
with a clear error and never poisons a storage transaction; the outbox only fills
in ``seq`` and ``id``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from eldercare_edge.outbox import Builder, Draft
from eldercare_edge.rules import Alert
from eldercare_protocols.events import CanonicalEvent, EventKind
from eldercare_protocols.uplink import (
    EventEnvelope,
    Lane,
    SmsReport,
    TelemetryBatch,
    TelemetryRecord,
    UnknownDeviceSeen,
    encode,
)

_PENDING_ID = "pending-0"


def _builder(model: BaseModel) -> Builder:
    def build(seq: int, rid: str) -> bytes:
        return encode(model.model_copy(update={"seq": seq, "id": rid}))
    return build


def _stamp(gateway_id: str, received: datetime) -> dict[str, Any]:
    return {"id": _PENDING_ID, "seq": 0, "gateway_id": gateway_id, "gateway_ts": received}


def device_msg_key(ev: CanonicalEvent) -> str | None:
    """What makes a device's message the same message when it arrives twice (a broker
    redelivery, a firmware retry): the device, its sequence number and its timestamp (a
    device that rebooted and restarted its count sends another timestamp)."""
    if ev.seq is None or ev.ts is None or ev.source not in ("native", "serial"):
        return None
    return f"dev:{ev.device_id}:{ev.seq}:{ev.ts.isoformat()}"


def event_draft(gateway_id: str, ev: CanonicalEvent, received: datetime,
                rule: str | None = None) -> Draft:
    env = EventEnvelope(**_stamp(gateway_id, received), device_id=ev.device_id, kind=ev.kind,
                        test=ev.test, device_ts=ev.ts, device_seq=ev.seq, source=ev.source,
                        rule=rule, data=ev.data)
    # a device message stored once is never stored again, across restarts too
    return Draft(env.lane, _builder(env), device_id=ev.device_id,
                 once_key=device_msg_key(ev) if rule is None else None)


def alert_draft(gateway_id: str, alert: Alert, received: datetime) -> Draft:
    ev = CanonicalEvent(device_id=alert.device_id, kind=alert.kind, ts=received,
                        source="gateway", data=alert.data)
    return event_draft(gateway_id, ev, received, rule=alert.rule)


def unknown_draft(gateway_id: str, *, device_id: str, source: str, topic: str,
                  device_type: str | None, received: datetime) -> Draft:
    rec = UnknownDeviceSeen.model_validate({
        **_stamp(gateway_id, received), "device_id": device_id[:128], "source": source,
        "topic": topic[:256], "device_type": device_type[:32] if device_type else None})
    # once per device; a type learned later (Zigbee2MQTT's device list) is worth one more
    once = f"unknown:{source}:{device_id}" + (f":{device_type}" if source == "z2m"
                                              and device_type else "")
    return Draft(Lane.EVENT, _builder(rec), once_key=once)


def sms_report_draft(gateway_id: str, *, alarm_id: str, to: str, status: str, attempts: int,
                     sent_at: datetime | None, error: str | None, received: datetime) -> Draft:
    rec = SmsReport.model_validate({
        **_stamp(gateway_id, received), "alarm_id": alarm_id, "to": to, "status": status,
        "attempts": attempts, "sent_at": sent_at,
        "error": error[:200] if error else None})
    return Draft(Lane.EVENT, _builder(rec))


def telemetry_record(ev: CanonicalEvent, received: datetime) -> TelemetryRecord | None:
    """Numeric readings only; a reading without numbers is not telemetry."""
    values = {k: float(v) for k, v in ev.data.items()
              if isinstance(v, int | float) and not isinstance(v, bool)}
    if not values:
        return None
    return TelemetryRecord(device_id=ev.device_id, kind=ev.kind, ts=ev.ts or received,
                           device_seq=ev.seq, values=values)


@dataclass
class TelemetryBatcher:
    """Groups readings into TelemetryBatch records: one id per batch, fixed at put time,
    so a resend is the same record. Readings wait here at most ``flush_s``."""

    gateway_id: str
    max_records: int = 200
    flush_s: float = 1.0

    def __post_init__(self) -> None:
        self._records: list[TelemetryRecord] = []
        self._since: float | None = None

    def __len__(self) -> int:
        return len(self._records)

    def add(self, record: TelemetryRecord, received: datetime) -> Draft | None:
        if not self._records:
            self._since = time.monotonic()
        self._records.append(record)
        if len(self._records) >= self.max_records:
            return self.flush(received)
        return None

    def due(self) -> bool:
        return self._since is not None and time.monotonic() - self._since >= self.flush_s

    def flush(self, received: datetime) -> Draft | None:
        if not self._records:
            return None
        records, self._records, self._since = self._records, [], None
        batch = TelemetryBatch(**_stamp(self.gateway_id, received), records=records)
        first = min(r.ts for r in records)
        last = max(r.ts for r in records)
        return Draft(Lane.TELEMETRY, _builder(batch), device_id=None, items=len(records),
                     first_ts=first, last_ts=last)


def is_heartbeat(kind: EventKind) -> bool:
    return kind is EventKind.HEARTBEAT
