"""Ingest: raw input from any connector → protocols codecs → rules → outbox drafts.

The connectors hand over bytes and where they came from (an :class:`Inbound`);
everything after :meth:`Ingest.handle` speaks canonical events. A payload that does
not decode is one warning naming the topic and a preview of the payload, one counter,
and nothing else: the loop keeps running.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pydantic import ValidationError

from eldercare_edge.clock import Clock, aware_now
from eldercare_edge.counters import Counters
from eldercare_edge.devices import DeviceInfo, Registry
from eldercare_edge.outbox import Draft
from eldercare_edge.records import (
    TelemetryBatcher,
    alert_draft,
    device_msg_key,
    event_draft,
    telemetry_record,
    unknown_draft,
)
from eldercare_edge.rules import Rules, is_telemetry
from eldercare_protocols import native, serial_frame, z2m
from eldercare_protocols.errors import DecodeError
from eldercare_protocols.events import CanonicalEvent, EventKind
from eldercare_protocols.lograte import RateLimitedLog
from eldercare_protocols.z2m_codecs import FieldProblem

log = logging.getLogger(__name__)

Source = Literal["native", "z2m", "serial"]
#: device messages remembered in memory to drop a second delivery before the rules see it
RECENT_KEYS = 4096
#: kinds any device may report about itself whatever its type
_LIFECYCLE = frozenset({EventKind.HEARTBEAT, EventKind.DEVICE_ONLINE, EventKind.DEVICE_OFFLINE})


@dataclass(frozen=True)
class Inbound:
    """One message as a connector received it; ``topic`` names the serial port for frames."""

    source: Source
    topic: str
    payload: bytes
    #: its place in the home link's deliveries (0: not from a link that acks late): the
    #: gateway has the broker's PUBACK sent only once the message is handled and stored
    token: int = 0


@dataclass
class IngestResult:
    drafts: list[Draft] = field(default_factory=list)
    events: list[CanonicalEvent] = field(default_factory=list)


class Ingest:
    def __init__(self, gateway_id: str, registry: Registry, rules: Rules, counters: Counters,
                 clock: Clock, batcher: TelemetryBatcher) -> None:
        self.gateway_id = gateway_id
        self.registry = registry
        self.rules = rules
        self.counters = counters
        self.clock = clock
        self.batcher = batcher
        self.z2m = z2m.Z2MAdapter()
        self.warn = RateLimitedLog(log)
        self.z2m = z2m.Z2MAdapter(on_problem=self._z2m_problem)
        self._recent: OrderedDict[str, None] = OrderedDict()

    def handle(self, msg: Inbound, out: IngestResult | None = None) -> IngestResult:
        """Handle one message. Nothing it raises escapes: one message that breaks any stage
        (a codec, a rule, an envelope) is rejected, counted and logged, and the next one
        is handled as if it had never come (what it already produced is kept)."""
        out = out or IngestResult()
        self.counters.inc(f"in_{msg.source}")
        now = aware_now(self.clock)
        try:
            found = self._decode(msg, now, out)
            if found is None:
                return out
            info, events = found
            for ev in events:
                self._event(ev, info, now, out)
        except DecodeError as exc:
            self._malformed(msg, exc)
        except Exception as exc:  # noqa: BLE001 - isolation: one message, never the loop
            self.counters.inc(f"failed_{msg.source}")
            self.warn.error(f"failed:{msg.source}",
                            "%s message on %s rejected: %s: %s | payload: %s", msg.source,
                            msg.topic, type(exc).__name__, str(exc)[:200],
                            _preview(msg.payload), exc_info=exc)
        return out

    def _malformed(self, msg: Inbound, exc: DecodeError) -> None:
        self.counters.inc(f"malformed_{msg.source}")
        preview = exc.preview() if exc.payload is not None else _preview(msg.payload)
        self.warn.warning(f"malformed:{msg.source}", "malformed %s payload on %s: %s | payload:"
                          " %s", msg.source, msg.topic, exc.reason, preview)

    def _unknown(self, msg: Inbound, device_id: str, device_type: str | None, now: datetime,
                 out: IngestResult) -> None:
        self.counters.inc("unknown_device_msgs")
        try:
            out.drafts.append(unknown_draft(self.gateway_id, device_id=device_id,
                                            source=msg.source, topic=msg.topic,
                                            device_type=device_type, received=now))
        except ValidationError as exc:
            self.warn.warning("unknown_unreported", "cannot report unknown device %r from %s: %s",
                              device_id, msg.topic, exc)

    # ---------------------------------------------------------------- decoding

    def _decode(self, msg: Inbound, now: datetime, out: IngestResult
                ) -> tuple[DeviceInfo, list[CanonicalEvent]] | None:
        if msg.source == "native":
            return self._native(msg, now, out)
        if msg.source == "z2m":
            return self._z2m(msg, now, out)
        return self._serial(msg, now, out)

    def _native(self, msg: Inbound, now: datetime, out: IngestResult
                ) -> tuple[DeviceInfo, list[CanonicalEvent]] | None:
        device_id, decoded = native.decode(msg.topic, msg.payload)
        info = self.registry.get(device_id)
        if info is None:
            self._unknown(msg, device_id, getattr(decoded, "type", None), now, out)
            return None
        if isinstance(decoded, native.DeviceCommandAck):
            self.counters.inc("cmd_acks")
            log.info("device %s answered command %s: ok=%s %s", device_id, decoded.id,
                     decoded.ok, decoded.error or "")
            return None
        type_name = getattr(decoded, "type", None)
        if type_name is not None and type_name != info.dtype.name:
            raise DecodeError(f"device {device_id} is bound as {info.dtype.name}, payload says"
                              f" {type_name}", topic=msg.topic, payload=msg.payload)
        return info, native.to_canonical(device_id, decoded)

    def _z2m(self, msg: Inbound, now: datetime, out: IngestResult
             ) -> tuple[DeviceInfo, list[CanonicalEvent]] | None:
        if msg.topic == z2m.BRIDGE_DEVICES:
            self._z2m_devices(msg, now, out)
            return None
        if msg.topic == z2m.BRIDGE_STATE:
            online = self.z2m.bridge_state(msg.payload, msg.topic)
            log.info("Zigbee2MQTT bridge is %s", "online" if online else "offline")
            return None
        parts = msg.topic.split("/")
        if len(parts) >= 2 and parts[1] == "bridge":
            self.counters.inc("z2m_bridge")
            return None
        friendly, _ = z2m.parse_topic(msg.topic)
        info = self.registry.by_z2m_name(friendly)
        if info is None:
            learned = self.z2m.device(friendly)
            dtype = learned.device_type if learned is not None else None
            self._unknown(msg, friendly, dtype.name if dtype else None, now, out)
            return None
        return info, self.z2m.decode(msg.topic, msg.payload, info.z2m_model,
                                     device_id=info.device_id, dtype=info.dtype)

    def _z2m_devices(self, msg: Inbound, now: datetime, out: IngestResult) -> None:
        """The bridge's device list: each device not bound yet is reported once, with the
        catalogue type its model or exposes say, so the installer binds it to a room and a
        resident without typing a model."""
        devices = self.z2m.learn(msg.payload, msg.topic)
        self.counters.inc("z2m_device_lists")
        for d in devices:
            info = self.registry.by_z2m_name(d.friendly_name)
            dtype = d.device_type
            if info is None:
                self._unknown(msg, d.friendly_name, dtype.name if dtype else None, now, out)
            elif dtype is not None and dtype.name != info.dtype.name:
                log.warning("Zigbee2MQTT device %r (%s %s) is bound as %s but exposes a %s",
                            d.friendly_name, d.vendor, d.model, info.dtype.name, dtype.name)

    def _z2m_problem(self, topic: str, problem: FieldProblem) -> None:
        self.counters.inc("malformed_z2m_field")
        log.warning("Zigbee2MQTT field of the wrong type on %s: %s", topic, problem)

    def _serial(self, msg: Inbound, now: datetime, out: IngestResult
                ) -> tuple[DeviceInfo, list[CanonicalEvent]] | None:
        try:
            frame = serial_frame.decode(msg.payload)
        except DecodeError as exc:
            raise DecodeError(exc.reason, topic=msg.topic, payload=msg.payload) from exc
        info = self.registry.get(frame.device_id)
        if info is None:
            self._unknown(msg, frame.device_id, frame.get("type"), now, out)
            return None
        try:
            events = serial_frame.to_canonical(frame, None, line=msg.payload)
        except DecodeError as exc:
            raise DecodeError(exc.reason, topic=msg.topic, payload=msg.payload) from exc
        dtype = info.dtype
        for ev in events:
            allowed = dtype.events | dtype.telemetry_kinds | _LIFECYCLE
            if ev.kind not in allowed:
                raise DecodeError(f"a {dtype.name} does not report {ev.kind.value!r}",
                                  topic=msg.topic, payload=msg.payload)
            if ev.kind in dtype.telemetry_kinds:
                for name, value in ev.data.items():
                    m = dtype.measurements.get(name)
                    if m is None or not isinstance(value, float) or not m.is_valid(value):
                        raise DecodeError(f"{name}={value!r} is not a valid {dtype.name}"
                                          " reading", topic=msg.topic, payload=msg.payload)
        return info, events

    # ---------------------------------------------------------------- events

    def _duplicate(self, ev: CanonicalEvent) -> bool:
        """A device event seen moments ago (kept in memory; the outbox's once-keys catch it
        after a restart, after the rules saw it once more)."""
        if is_telemetry(ev.kind) or ev.kind is EventKind.HEARTBEAT:
            return False
        key = device_msg_key(ev)
        if key is None:
            return False
        if key in self._recent:
            self._recent.move_to_end(key)
            return True
        self._recent[key] = None
        if len(self._recent) > RECENT_KEYS:
            self._recent.popitem(last=False)
        return False

    def _event(self, ev: CanonicalEvent, info: DeviceInfo, now: datetime,
               out: IngestResult) -> None:
        if self._duplicate(ev):
            self.counters.inc("duplicate_device_msgs")
            log.info("%s sent %s seq %s again: one event", ev.device_id, ev.kind.value, ev.seq)
            return
        out.events.append(ev)
        alerts = self.rules.on_event(ev, info)
        if is_telemetry(ev.kind):
            rec = telemetry_record(ev, now)
            if rec is not None:
                draft = self.batcher.add(rec, now)
                if draft is not None:
                    out.drafts.append(draft)
        elif ev.kind is not EventKind.HEARTBEAT:
            try:
                out.drafts.append(event_draft(self.gateway_id, ev, now))
            except ValidationError as exc:
                self.counters.inc("invalid_records")
                self.warn.warning("invalid_record", "event from %s cannot be enveloped: %s",
                                  ev.device_id, exc)
        for alert in alerts:
            self.counters.inc(f"alert_{alert.kind.value}")
            out.drafts.append(alert_draft(self.gateway_id, alert, now))

    def tick(self) -> list[Draft]:
        now = aware_now(self.clock)
        drafts = []
        for alert in self.rules.tick():
            self.counters.inc(f"alert_{alert.kind.value}")
            log.info("rule %s raised %s for %s", alert.rule, alert.kind.value, alert.device_id)
            drafts.append(alert_draft(self.gateway_id, alert, now))
        return drafts


def _preview(payload: bytes, limit: int = 120) -> str:
    return DecodeError("", payload=payload).preview(limit)
