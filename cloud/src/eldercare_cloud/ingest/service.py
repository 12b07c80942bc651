"""The ingest service: receive uplink records, commit them in batches, then ack.

The order that makes the alarm path lossless (DESIGN.md, invariant 1):

1. a message arrives from the broker (QoS 1) and waits in memory;
2. the committer decodes a batch (bad payloads and unregistered gateways are counted,
   logged once with their topic and dropped: nothing is acked for them);
3. the batch is stored in one fsync'd SQLite transaction (ids already stored are
   ignored);
4. only then is an ``Ack`` naming every id of the batch (duplicates included) published
   to each gateway, which deletes those records from its outbox.

A crash anywhere before 4 means no ack: the gateway resends and step 3 ignores what it
already has. Telemetry for InfluxDB leaves after the commit on its own queue, so a
time-series outage never delays an alarm.

Two lanes (issue 14): alarms never queue behind telemetry, neither in the broker nor
here. The alarm lane is an MQTT session of its own subscribed to ``up/events`` and
``up/state`` (alarms, gaps, SMS reports, births, Last Wills, health), with its own queue
and committer that never waits for a batch to fill; the bulk lane takes ``up/telemetry``
on another session. The bulk lane decodes in chunks (the event loop reads the alarm
socket in between) and commits only while the alarm lane has nothing pending, so an SOS
waits at most for one telemetry transaction already under way; an alarm lane that stays
busy lets one telemetry batch through after every ``ingest.bulk_every`` alarm batches
(telemetry is never starved, an SOS waits for at most that one batch). ``ingest_lanes``
lets a deployment run a pool of alarm-only workers beside bulk-only ones.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, suppress
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Literal

from eldercare_cloud.db import Database
from eldercare_cloud.ingest.models import CommitInfo, IngestCounters
from eldercare_cloud.ingest.mqtt import MessageHandler, MqttConnection, MqttOptions
from eldercare_cloud.ingest.store import GATEWAYS_CHANNEL, IngestStore, Received
from eldercare_cloud.settings import CloudSettings, reveal

if TYPE_CHECKING:
    from eldercare_cloud.telemetry.influx import InfluxWriter
from eldercare_protocols.errors import DecodeError
from eldercare_protocols.events import LIFE_SAFETY_KINDS
from eldercare_protocols.lograte import RateLimitedLog
from eldercare_protocols.uplink import (
    CLOUD_SUBSCRIPTION,
    ROOT,
    Ack,
    Down,
    DownCommand,
    GatewayConfig,
    Up,
    decode_uplink,
    down_topic,
    encode,
    parse_up_topic,
)

#: a failed commit: nothing is acked, the gateways resend

log = logging.getLogger(__name__)

CommitListener = Callable[[CommitInfo], Awaitable[None] | None]
#: runs after a commit, before its acks are published: crash drills (a test entry point
#: that kills the process in exactly that window) inject one; production passes none
BeforeAck = Callable[[CommitInfo], None]

#: the protocol allows at most this many ids in one Ack
ACK_MAX_IDS = 5000
#: how often an unknown gateway id is looked up again (the CLI registers from elsewhere)
_REGISTRY_RECHECK_S = 1.0
_UNREGISTERED_WARN_EVERY_S = 60.0


def subscription(settings: CloudSettings) -> str:
    """``$share/{group}/ec/v1/+/up/#`` lets several ingest workers split the load."""
    if settings.mqtt.shared_group:
        return f"$share/{settings.mqtt.shared_group}/{CLOUD_SUBSCRIPTION}"
    return CLOUD_SUBSCRIPTION


LaneName = Literal["alarm", "bulk"]
#: the uplink channels of each lane
LANE_CHANNELS: dict[LaneName, tuple[Up, ...]] = {
    "alarm": (Up.EVENTS, Up.STATE),
    "bulk": (Up.TELEMETRY,),
}
#: the alarm lane's MQTT session: the worker's client id with this suffix
ALARM_CLIENT_SUFFIX = "-alarm"


def lane_subscriptions(settings: CloudSettings, lane: LaneName) -> list[tuple[str, int]]:
    """The lane's topic filters, ``$share/{group}/``-prefixed for several workers."""
    prefix = f"$share/{settings.mqtt.shared_group}/" if settings.mqtt.shared_group else ""
    return [(f"{prefix}{ROOT}/+/up/{channel.value}", 1) for channel in LANE_CHANNELS[lane]]


def lanes_taken(settings: CloudSettings) -> tuple[LaneName, ...]:
    if settings.ingest.lanes == "both":
        return ("alarm", "bulk")
    return (settings.ingest.lanes,)


def mqtt_options(settings: CloudSettings, lane: LaneName = "bulk") -> MqttOptions:
    host, port = settings.mqtt.host_port
    client_id = settings.mqtt.client_id + (ALARM_CLIENT_SUFFIX if lane == "alarm" else "")
    return MqttOptions(
        host=host, port=port, client_id=client_id,
        username=settings.mqtt.username, password=reveal(settings.mqtt.password),
        tls=settings.mqtt.url.startswith("mqtts://"), tls_ca=settings.mqtt.tls_ca,
        keepalive_s=settings.mqtt.keepalive_s, reconnect_max_s=settings.mqtt.reconnect_max_s,
        # on a shared subscription a kept session that is offline (a dead worker) still
        # gets its share queued by the broker until it comes back; a clean session hands
        # that share to the living workers at once (what was in flight at the dead one is
        # resent by its gateways, which keep every record until our ack)
        clean_session=bool(settings.mqtt.shared_group))


Raw = tuple[str, bytes, datetime, float]

#: a life-safety kind as our encoder writes it (``encode``: compact JSON); on the alarm
#: lane those go before gateway states and door, motion and other events that share its
#: topic (under overload an SOS must not wait behind them). A hint for the order only:
#: a payload written otherwise just queues with the other events, and every payload is
#: decoded and validated all the same
_LIFE_SAFETY_HINT = re.compile(
    rb'"kind":\s*"(?:' + b"|".join(re.escape(k.value.encode())
                                    for k in sorted(LIFE_SAFETY_KINDS)) + rb')"')


class _Lane:
    """One path through the cloud: an MQTT session, a queue, a committer task."""

    def __init__(self, name: LaneName) -> None:
        self.name = name
        self.mqtt: MqttConnection | None = None
        self.pending: deque[Raw] = deque()
        #: the alarm lane's queues before ``pending``: life-safety events, then gateway
        #: states (births, Last Wills, health: kept in their order, which decides
        #: online/offline)
        self.urgent: deque[Raw] = deque()
        self.states: deque[Raw] = deque()
        self.wake = asyncio.Event()
        #: set whenever the committer has nothing left to do
        self.idle = asyncio.Event()
        #: set while nothing is pending or being committed (the bulk lane waits for it)
        self.drained = asyncio.Event()
        self.drained.set()
        #: batches this lane has processed; ``progress`` is set after each (the bulk
        #: lane counts the alarm lane's to take its turn)
        self.batches = 0
        self.progress = asyncio.Event()
        self.busy = False
        self.task: asyncio.Task[None] | None = None

    @property
    def queued(self) -> int:
        return len(self.urgent) + len(self.states) + len(self.pending)


class IngestService:
    """Subscribes to every gateway's uplink, commits, acks; publishes configs and commands."""

    def __init__(self, settings: CloudSettings, db: Database, *,
                 store: IngestStore | None = None, subscribe: bool = True,
                 before_ack: BeforeAck | None = None) -> None:
        """``subscribe=False``: a publisher only (configs, commands) for a process of the
        api or engine role, which must not take a share of the uplink."""
        self.settings = settings
        self._before_ack = before_ack
        self.db = db
        self._own_store = store is None
        self.store = store or IngestStore(
            db, telemetry_sqlite=settings.telemetry.sqlite or not settings.influx.url)
        self.counters = IngestCounters()
        #: notified after every commit; ``last_event_rowid`` is then up to date
        self.committed = asyncio.Condition()
        self.last_event_rowid = 0
        self.influx: InfluxWriter | None = None
        self._listeners: list[CommitListener] = []
        self._known: set[str] = set()
        #: a revoke committed somewhere: reload _known before the next check
        self._known_stale = False
        self._checked: dict[str, float] = {}
        self._warned: dict[str, float] = {}
        self.warn = RateLimitedLog(log)
        self._stack = AsyncExitStack()
        self._stopping = False
        #: set when the committer or the MQTT connection task died: ingest is deaf, the
        #: process must exit non-zero (``run_until_signalled``) and be restarted
        self.dead = asyncio.Event()
        self.died: BaseException | None = None
        taken = lanes_taken(settings) if subscribe else ()
        self.lanes: dict[LaneName, _Lane] = {name: _Lane(name) for name in taken}
        #: the main session: the bulk lane's subscription (when taken), configs, commands
        bulk = self.lanes.get("bulk")
        self.mqtt = MqttConnection(
            mqtt_options(settings), lane_subscriptions(settings, "bulk") if bulk else [],
            self._receiver(bulk), name="ingest")
        if bulk is not None:
            bulk.mqtt = self.mqtt
        #: the alarm lane's own session (None when this process does not take alarms)
        self.alarm_mqtt: MqttConnection | None = None
        alarm = self.lanes.get("alarm")
        if alarm is not None:
            self.alarm_mqtt = alarm.mqtt = MqttConnection(
                mqtt_options(settings, "alarm"), lane_subscriptions(settings, "alarm"),
                self._receiver(alarm), name="ingest-alarm")

    def _receiver(self, lane: _Lane | None) -> MessageHandler:
        if lane is None:
            return self._unexpected
        return lambda topic, payload, retain: self._on_message(lane, topic, payload)

    def _unexpected(self, topic: str, payload: bytes, retain: bool) -> None:
        self.warn.warning("unexpected", "message on %s without a subscription; ignored", topic)

    @property
    def connections(self) -> list[MqttConnection]:
        return [self.mqtt] + ([self.alarm_mqtt] if self.alarm_mqtt is not None else [])

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> IngestService:
        try:
            if self._own_store:
                await self._stack.enter_async_context(self.store)
            self.last_event_rowid = (await self.store.max_rowids())["events"]
            await self._stack.enter_async_context(
                self.store.db.listen(GATEWAYS_CHANNEL, self._gateways_changed))
            self._known = await self.store.gateway_ids()
            self._known_stale = False
            if self.settings.influx.url:
                # imported only when used: influxdb-client takes ~0.6 s to import
                from eldercare_cloud.telemetry.influx import InfluxWriter

                self.influx = await self._stack.enter_async_context(InfluxWriter(self.settings))
            for lane in self.lanes.values():
                lane.task = asyncio.create_task(self._commit_loop(lane),
                                                name=f"ingest-commit-{lane.name}")
                lane.task.add_done_callback(self._task_done)
            for connection in self.connections:
                await connection.start()
                if connection.runner is not None:
                    connection.runner.add_done_callback(self._task_done)
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        """Stop reading, commit and ack what was received, then disconnect."""
        self._stopping = True
        for connection in self.connections:
            connection.pause_reading()
        for lane in self.lanes.values():
            if lane.task is None:
                continue
            if lane.queued or lane.busy:
                lane.idle.clear()
                lane.wake.set()
                with suppress(TimeoutError):
                    await asyncio.wait_for(lane.idle.wait(), 10)
            lane.task.cancel()
            await asyncio.gather(lane.task, return_exceptions=True)
        for connection in self.connections:
            await connection.stop()
        await self._stack.aclose()
        self.warn.flush()

    async def wait_connected(self, timeout_s: float = 10.0) -> bool:
        """Every session of this process connected (both lanes, or the publisher)."""
        results = await asyncio.gather(*(c.wait_connected(timeout_s)
                                         for c in self.connections))
        return all(results)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._stopping or self.mqtt.stopping:
            return
        exc = task.exception()
        log.critical("ingest task %s died: %r", task.get_name(), exc, exc_info=exc)
        if self.died is None:
            self.died = exc or RuntimeError(f"task {task.get_name()} ended")
        self.dead.set()

    # -- for the care core -------------------------------------------------------------

    def add_commit_listener(self, listener: CommitListener) -> Callable[[], None]:
        """``listener(info)`` runs after each commit (after its acks were handed to the MQTT
        client), in commit order; it may be async. Keep it short: the next batch waits."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)
        return remove

    async def wait_for_event_rowid(self, after: int, timeout_s: float) -> int:
        """Return the max committed event rowid once it exceeds ``after`` (or at timeout)."""
        async with self.committed:
            with suppress(TimeoutError):
                await asyncio.wait_for(
                    self.committed.wait_for(lambda: self.last_event_rowid > after), timeout_s)
        return self.last_event_rowid

    async def publish_config(self, gateway_id: str, config: GatewayConfig) -> None:
        """Retained, QoS 1: a gateway that connects later still gets it."""
        if config.gateway_id != gateway_id:
            raise ValueError(f"config names gateway {config.gateway_id!r}, not {gateway_id!r}")
        await self.mqtt.publish_confirmed(
            down_topic(gateway_id, Down.CONFIG), encode(config), qos=1, retain=True,
            timeout_s=self.settings.mqtt.publish_timeout_s)

    async def publish_command(self, gateway_id: str, command: DownCommand) -> None:
        await self.mqtt.publish_confirmed(
            down_topic(gateway_id, Down.CMD), encode(command), qos=1,
            timeout_s=self.settings.mqtt.publish_timeout_s)

    def note_gateway_registered(self, gateway_id: str) -> None:
        """Registration in this process: accept the gateway without waiting for a lookup."""
        self._known.add(gateway_id)

    @property
    def committers(self) -> list[asyncio.Task[None]]:
        """One committer task per lane this process takes (for supervision and tests)."""
        return [lane.task for lane in self.lanes.values() if lane.task is not None]

    @property
    def pending(self) -> int:
        return sum(lane.queued for lane in self.lanes.values())

    # -- receive -----------------------------------------------------------------------

    def _on_message(self, lane: _Lane, topic: str, payload: bytes) -> None:
        item = (topic, payload, datetime.now(UTC), time.monotonic())
        if lane.name != "alarm":
            lane.pending.append(item)
        elif topic.endswith("/up/state"):
            lane.states.append(item)
        elif _LIFE_SAFETY_HINT.search(payload) is not None:
            lane.urgent.append(item)
        else:
            lane.pending.append(item)
        lane.drained.clear()
        lane.wake.set()
        if (lane.queued >= self.settings.ingest.queue_max
                and lane.mqtt is not None):
            # the broker keeps queueing for our session; the gateways keep their outboxes
            lane.mqtt.pause_reading()

    async def _commit_loop(self, lane: _Lane) -> None:
        batch_max = self.settings.ingest.batch_max
        # alarms never wait for a batch to fill; telemetry waits a moment for company
        wait_s = self.settings.ingest.batch_wait_ms / 1000 if lane.name == "bulk" else 0.0
        while True:
            if not lane.queued:
                lane.drained.set()
                lane.progress.set()
            lane.idle.set()
            await lane.wake.wait()
            lane.wake.clear()
            while lane.queued:
                if wait_s and len(lane.pending) < batch_max:
                    remaining = lane.pending[0][3] + wait_s - time.monotonic()
                    if remaining > 0:
                        await asyncio.sleep(remaining)
                # life-safety events, then gateway states, then the rest (each queue's
                # own order kept). Life-safety events commit in a batch of their own: a
                # batch with states reads the gateways' online flags under the commit
                # lock first (one more round trip on PostgreSQL, issue 14), and an SOS
                # need not wait for that
                raw: list[Raw] = []
                queues = (lane.urgent,) if lane.urgent else (lane.states, lane.pending)
                for queue in queues:
                    raw += [queue.popleft()
                            for _ in range(min(batch_max - len(raw), len(queue)))]
                if lane.mqtt is not None and not lane.mqtt.reading and (
                        lane.queued <= self.settings.ingest.queue_max // 2):
                    lane.mqtt.resume_reading()
                lane.busy = True
                try:
                    await self._process_group(lane, raw)
                finally:
                    lane.busy = False
                    lane.batches += 1
                    lane.progress.set()
            lane.drained.set()
            lane.progress.set()

    async def _alarms_first(self) -> None:
        """The bulk lane commits only while the alarm lane has nothing to do: the database
        writer (one per process) then goes to the alarm at once. But not forever: after
        ``bulk_every`` alarm batches in a row it is the bulk lane's turn (one batch)."""
        alarm = self.lanes.get("alarm")
        if alarm is None:
            return
        start, every = alarm.batches, self.settings.ingest.bulk_every
        while not alarm.drained.is_set() and alarm.batches - start < every:
            alarm.progress.clear()
            await alarm.progress.wait()

    async def _process_group(self, lane: _Lane, raw: list[Raw]) -> None:
        items: list[tuple[Received, bytes]] = []
        chunk = self.settings.ingest.decode_chunk if lane.name == "bulk" else 0
        for n, (topic, payload, received_at, _) in enumerate(raw):
            if chunk and n and n % chunk == 0:
                # let the loop read the alarm lane's socket and commit what it got
                await asyncio.sleep(0)
            self.counters.received += 1
            if not payload and topic.endswith("/up/state"):
                # an empty retained message deletes the retained state: a revoke does this
                self.counters.states_cleared += 1
                continue
            try:
                gateway_id, _channel = parse_up_topic(topic)
                # the common case without a coroutine per record
                if not ((gateway_id in self._known and not self._known_stale)
                        or await self._registered(gateway_id)):
                    self._reject_unregistered(gateway_id, topic, payload)
                    continue
                _, msg = decode_uplink(topic, payload)
            except DecodeError as exc:
                self.counters.rejected_bad_payload += 1
                self.warn.warning("bad_payload", "rejected uplink on %s: %s; payload: %s",
                                  topic, exc.reason,
                                  exc.preview() or _preview(payload))
                continue
            except Exception as exc:  # noqa: BLE001 - isolation: a decoder bug costs one record
                self.counters.rejected_bad_payload += 1
                self.warn.error("decode_failed", "uplink on %s rejected: %s: %s; payload: %s",
                                topic, type(exc).__name__, str(exc)[:200], _preview(payload),
                                exc_info=exc)
                continue
            items.append((Received(gateway_id, msg, received_at), payload))
        if not items:
            return
        if lane.name == "bulk":
            await self._alarms_first()
        try:
            info = await self.store.commit([r for r, _ in items])
        except Exception as exc:  # noqa: BLE001 - isolation: one record, not the batch
            # a database error (db.DATABASE_ERRORS, StorageError) or a value the driver refuses:
            # nothing of this batch is acked, so the gateways resend whatever is not
            # committed one by one below
            if len(items) == 1:
                self._commit_failed(items[0], exc)
            else:
                await self._commit_each(lane, items, exc)
            return
        await self._committed(info, len(items), lane)

    async def commit_local(self, items: list[Received]) -> bool:
        """Commit records that did not come through a gateway (a GPS watch's alarm heard by
        the cloud's own watch listener) on the same path as gateway uplink: one commit,
        the same counters, the care core told by the same listeners. False if not stored."""
        try:
            info = await self.store.commit(items)
        except Exception as exc:  # noqa: BLE001 - isolation: these records, not the listener
            self.counters.commit_failures += 1
            self.warn.error("commit_failed", "%d local records not committed: %s: %s",
                            len(items), type(exc).__name__, str(exc)[:200])
            return False
        return await self._committed(info, len(items), None)

    async def _commit_each(self, lane: _Lane, items: list[tuple[Received, bytes]],
                           first: Exception) -> None:
        """The batch failed: commit its records one by one, so a record the database will
        not take costs that record (counted, logged, not acked) and the rest commit."""
        log.info("commit of %d uplink messages failed (%s: %s); committing them one by one",
                 len(items), type(first).__name__, str(first)[:200])
        for item in items:
            try:
                info = await self.store.commit([item[0]])
            except Exception as exc:  # noqa: BLE001 - isolation: this record only
                self._commit_failed(item, exc)
                continue
            await self._committed(info, 1, lane)

    def _commit_failed(self, item: tuple[Received, bytes], exc: Exception) -> None:
        received, payload = item
        self.counters.commit_failures += 1
        msg = received.msg
        self.warn.error("commit_failed", "uplink record %s from %s not committed, not acked:"
                        " %s: %s; payload: %s", getattr(msg, "id", type(msg).__name__),
                        received.gateway_id, type(exc).__name__, str(exc)[:200],
                        _preview(payload))

    async def _committed(self, info: CommitInfo, n_items: int, lane: _Lane | None) -> bool:
        """``lane`` None: local records, nothing to ack."""
        if self._before_ack is not None:
            self._before_ack(info)
        if lane is not None:
            # on the session the records came by: an alarm's ack never queues behind
            # telemetry acks in the client or the broker
            self._publish_acks(lane.mqtt or self.mqtt, info)
        c = self.counters
        c.batches += 1
        c.committed += info.records - info.duplicates
        c.duplicates += info.duplicates
        c.telemetry_points += len(info.telemetry)
        c.gateway_states += n_items - info.records
        if self.influx is not None and info.telemetry:
            self.influx.submit(info.telemetry)
        self.last_event_rowid = max(self.last_event_rowid, info.event_rowid)
        async with self.committed:
            self.committed.notify_all()
        for listener in list(self._listeners):
            try:
                result = listener(info)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                # a care-core bug must not stop the alarm path; it resumes from its cursor
                log.exception("commit listener %r failed", listener)
        return True

    def _publish_acks(self, mqtt: MqttConnection, info: CommitInfo) -> None:
        for gateway_id, ids in info.acks.items():
            topic = down_topic(gateway_id, Down.ACK)
            for i in range(0, len(ids), ACK_MAX_IDS):
                ack = Ack(ids=ids[i:i + ACK_MAX_IDS], committed_at=info.committed_at)
                if mqtt.publish(topic, encode(ack), qos=1):
                    self.counters.acks_published += 1
                else:
                    self.warn.warning("ack_dropped", "ack to %s dropped (client queue full);"
                                      " the gateway resends", gateway_id)

    def _gateways_changed(self) -> None:
        self.counters.gateway_set_changes += 1
        self._known_stale = True

    async def _registered(self, gateway_id: str) -> bool:
        if self._known_stale:
            self._known_stale = False
            self._known = await self.store.gateway_ids()
            self._checked.clear()
        if gateway_id in self._known:
            return True
        now = time.monotonic()
        if now - self._checked.get(gateway_id, -_REGISTRY_RECHECK_S) < _REGISTRY_RECHECK_S:
            return False
        self._checked[gateway_id] = now
        if await self.store.accepts(gateway_id):
            self._known.add(gateway_id)
            self._checked.pop(gateway_id, None)
            return True
        return False

    def _reject_unregistered(self, gateway_id: str, topic: str, payload: bytes) -> None:
        self.counters.rejected_unregistered += 1
        now = time.monotonic()
        if now - self._warned.get(gateway_id, -_UNREGISTERED_WARN_EVERY_S) >= \
                _UNREGISTERED_WARN_EVERY_S:
            self._warned[gateway_id] = now
            log.warning("rejected uplink from unregistered gateway %r on %s (%d rejected so "
                        "far, this warning repeats at most once a minute); payload: %s",
                        gateway_id, topic, self.counters.rejected_unregistered,
                        payload[:120].decode("utf-8", "replace"))


def _preview(payload: bytes, limit: int = 120) -> str:
    return DecodeError("", payload=payload).preview(limit)
