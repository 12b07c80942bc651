"""The forwarder: moves records from the outbox to the cloud and deletes them only on an Ack.

* A bounded window of records awaits the cloud's application ack; alarms may
  always go out, even when telemetry fills the window, so a new alarm never
  waits behind a backlog. The window is bounded in bytes too
  (``max_inflight_bytes``): the records in flight are held in memory for a resend,
  and a telemetry batch is ~100 times an event, so a count alone let a drain that
  reached the telemetry lane hold ``window`` × 26 KB. Memory is bounded by these
  constants, never by the backlog.
* A broker PUBACK means nothing here: a record leaves the outbox only when an
  ``Ack`` on ``down/ack`` names its id.
* A record not acked within ``resend_after_s`` is sent again with the same id.
* On every (re)connect the in-flight set is forgotten and sending starts again
  from the head of each lane in seq order: per-device order is kept (it is the
  seq order within a lane) and anything lost with the old connection goes again.
  The cloud drops the duplicates by id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from eldercare_edge.clock import Clock, aware_now
from eldercare_edge.connectors.mqtt import Outgoing
from eldercare_edge.counters import Counters
from eldercare_edge.outbox import Outbox, OutboxItem, Stored
from eldercare_protocols.uplink import Ack, Lane, Up, up_topic

log = logging.getLogger(__name__)

_RANK = {Lane.ALARM: 0, Lane.EVENT: 1, Lane.TELEMETRY: 2}


class Link(Protocol):
    """What the forwarder needs from a transport (MqttLink fits)."""

    @property
    def connected(self) -> bool: ...

    def publish(self, msg: Outgoing) -> bool: ...

    def publish_many(self, topic: str, payloads: Sequence[bytes], qos: int = 1) -> int: ...


@dataclass(slots=True)
class _Flight:
    item: OutboxItem
    sent_at: float


class Forwarder:
    def __init__(self, gateway_id: str, outbox: Outbox, link: Link, *, window: int,
                 resend_after_s: float, read_batch: int, clock: Clock, counters: Counters,
                 on_committed: Callable[[list[Stored]], None] | None = None,
                 max_inflight_bytes: int = 8_000_000) -> None:
        self.gateway_id = gateway_id
        self.outbox = outbox
        self.link = link
        self.window = window
        self.resend_after_s = resend_after_s
        self.read_batch = read_batch
        self.max_inflight_bytes = max_inflight_bytes
        self._inflight_bytes = 0
        self.clock = clock
        self.counters = counters
        self._on_committed = on_committed
        self._inflight: OrderedDict[str, _Flight] = OrderedDict()
        self._cursor: dict[Lane, int] = {}
        self._wake = asyncio.Event()
        self.last_cloud_ack: datetime | None = None
        self._topics = {Lane.ALARM: up_topic(gateway_id, Up.EVENTS),
                        Lane.EVENT: up_topic(gateway_id, Up.EVENTS),
                        Lane.TELEMETRY: up_topic(gateway_id, Up.TELEMETRY)}

    # ---------------------------------------------------------------- signals

    def wake(self) -> None:
        self._wake.set()

    def reset(self) -> None:
        """Forget what is in flight: after a (re)connect everything unacked goes again."""
        self._inflight.clear()
        self._inflight_bytes = 0
        self._cursor.clear()
        self._wake.set()

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    @property
    def inflight_bytes(self) -> int:
        return self._inflight_bytes

    async def on_ack(self, ack: Ack) -> list[Stored]:
        return await self.on_acks([ack])

    async def on_acks(self, acks: Sequence[Ack]) -> list[Stored]:
        """Delete what the cloud committed: the ids of several Acks in one transaction."""
        ids = [rid for ack in acks for rid in ack.ids]
        gone = await self.outbox.ack(ids)
        inflight = self._inflight
        freed = 0
        for rid in ids:
            flight = inflight.pop(rid, None)
            if flight is not None:
                freed += len(flight.item.payload)
        self._inflight_bytes -= freed
        self.last_cloud_ack = aware_now(self.clock)
        self.counters.inc("acked", len(gone))
        if len(gone) < len(ids):
            self.counters.inc("acks_for_unknown_ids", len(ids) - len(gone))
        if gone and self._on_committed is not None:
            self._on_committed(gone)
        self._wake.set()
        return gone

    # ---------------------------------------------------------------- loop

    async def run(self) -> None:
        while True:
            self._wake.clear()
            if self.link.connected:
                self._resend_expired()
                await self._fill()
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel
            # that arrives as the event fires, and the gateway's stop then waits forever
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._next_deadline()):
                    await self._wake.wait()

    def _next_deadline(self) -> float:
        if not self._inflight:
            return 1.0
        oldest = next(iter(self._inflight.values())).sent_at
        return max(0.01, min(1.0, oldest + self.resend_after_s - time.monotonic()))

    def _send(self, item: OutboxItem) -> bool:
        return self.link.publish(Outgoing(self._topics[item.lane], item.payload, qos=1))

    def _resend_expired(self) -> None:
        now = time.monotonic()
        expired: list[_Flight] = []
        # _inflight is in send order (a resend moves to the end): stop at the first fresh one
        for flight in self._inflight.values():
            if now - flight.sent_at < self.resend_after_s:
                break
            expired.append(flight)
        # alarms first here too, then seq order within each lane
        for flight in sorted(expired, key=lambda f: (_RANK[f.item.lane], f.item.seq)):
            if not self._send(flight.item):
                return
            flight.sent_at = now
            self._inflight.move_to_end(flight.item.id)
            self.counters.inc("resent")

    async def _fill(self) -> None:
        # alarms first and outside the window: they are few and must never wait; the whole
        # alarm lane goes before the first event or telemetry record
        while await self._pump((Lane.ALARM,), self.read_batch) >= self.read_batch:
            pass
        while self.link.connected:
            room = self.window - len(self._inflight)
            room_bytes = self.max_inflight_bytes - self._inflight_bytes
            if room <= 0 or room_bytes <= 0:
                return
            sent = await self._pump((Lane.EVENT, Lane.TELEMETRY), min(room, self.read_batch),
                                    room_bytes)
            if sent == 0:
                return
            # an alarm stored while the batch was read goes before the next batch
            while await self._pump((Lane.ALARM,), self.read_batch) >= self.read_batch:
                pass

    async def _pump(self, lanes: tuple[Lane, ...], limit: int,
                    max_bytes: int | None = None) -> int:
        """Read up to ``limit`` records (and ``max_bytes``) after the cursors and hand them
        to the link in one tight loop per lane (no await between publishes)."""
        # a record larger than the whole budget goes alone, when nothing else is in flight
        items = await self.outbox.read_batch(limit, after=self._cursor, lanes=lanes,
                                             max_bytes=max_bytes,
                                             first_may_exceed=not self._inflight)
        if not items:
            return 0
        now = time.monotonic()
        inflight = self._inflight
        cursor = self._cursor
        sent = 0
        start = 0
        # read_batch returns one lane after the other: publish each lane's run in one call
        while start < len(items):
            lane = items[start].lane
            end = start
            while end < len(items) and items[end].lane is lane:
                end += 1
            run = [item for item in items[start:end] if item.id not in inflight]
            n = self.link.publish_many(self._topics[lane], [item.payload for item in run])
            for item in run[:n]:
                inflight[item.id] = _Flight(item, now)
                self._inflight_bytes += len(item.payload)
            sent += n
            if n < len(run):
                if n:
                    cursor[lane] = max(cursor.get(lane, 0), run[n - 1].seq)
                break
            cursor[lane] = max(cursor.get(lane, 0), items[end - 1].seq)
            start = end
        self.counters.inc("sent", sent)
        return sent

    def oldest_unacked_s(self) -> float | None:
        if not self._inflight:
            return None
        now = aware_now(self.clock)
        oldest = min(f.item.created for f in self._inflight.values())
        return max(0.0, (now - oldest).total_seconds())
