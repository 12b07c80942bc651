"""The gateway: wires connectors, ingest, rules, outbox, forwarder and SMS together.

Lifecycle is an async context manager with named background tasks:

``ingest``    inbound messages → codecs → rules → outbox (alarms fsync'd, then LED "received")
``forwarder`` outbox → cloud, delete on Ack (then LED "help coming")
``downlink``  acks, retained config, commands for devices
``rules``     time-driven rules (inactivity, door left open, missed heartbeats)
``rule_state`` saves what the rules know every ``rules_state_save_s`` (restored at start)
``sms``       SMS fallback for alarms the cloud has not acknowledged in time
``health``    periodic health on ``up/state``
``dongle``    the serial RF dongle, when configured

Shutdown stops the inputs first, stores what was already received, then says
"offline" to the cloud and closes the databases: nothing a device was told
"received" and nothing the cloud has not acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Literal

from pydantic import ValidationError

from eldercare_edge import __version__, rule_state
from eldercare_edge.clock import Clock, SystemClock, aware_now
from eldercare_edge.config_store import ConfigStore
from eldercare_edge.connectors.dongle import SerialDongle
from eldercare_edge.connectors.modem import GsmModem
from eldercare_edge.connectors.mqtt import MqttLink, Outgoing
from eldercare_edge.counters import Counters
from eldercare_edge.devices import Registry
from eldercare_edge.errors import OutboxError
from eldercare_edge.forwarder import Forwarder
from eldercare_edge.ingest import Inbound, Ingest, IngestResult
from eldercare_edge.outbox import Draft, Outbox, Stored
from eldercare_edge.records import TelemetryBatcher
from eldercare_edge.rules import Rules
from eldercare_edge.settings import EdgeSettings
from eldercare_edge.sms import Modem, SmsFallback, SmsLedger
from eldercare_protocols import native, z2m
from eldercare_protocols.errors import DecodeError
from eldercare_protocols.lograte import RateLimitedLog
from eldercare_protocols.uplink import (
    Ack,
    Down,
    DownCommand,
    GatewayConfig,
    GatewayState,
    Lane,
    Up,
    encode,
    gateway_subscriptions,
    parse_down_topic,
    up_topic,
)

log = logging.getLogger(__name__)

INGEST_CHUNK = 1000


def _may_be_alarm(msg: Inbound) -> bool:
    """Native events, Zigbee2MQTT states and serial frames can carry an alarm; telemetry,
    device state and command acks cannot."""
    return msg.source != "native" or msg.topic.endswith("/event")


def is_auth_refusal(reason: str) -> bool:
    """paho's CONNACK reasons for a wrong user name, password or missing permission."""
    text = reason.lower()
    return "authori" in text or "password" in text


#: the Zigbee2MQTT adapter's memory in the outbox's state table (beside the rules')
Z2M_STATE_KEY = "z2m"


class Gateway:
    def __init__(self, settings: EdgeSettings, *, clock: Clock | None = None,
                 modem: Modem | None = None,
                 on_status: Callable[[str, str], None] | None = None) -> None:
        """``on_status(link, what)``: the cloud link's changes as they happen (``up``,
        ``down``, ``refused: <reason>``), for a console that shows them."""
        self._on_status = on_status
        self.settings = settings
        self.gateway_id = settings.gateway_id
        self.clock: Clock = clock or SystemClock()
        self.counters = Counters()
        self._modem_override = modem
        self._tasks: dict[str, asyncio.Task[None]] = {}
        #: set when a long-lived task died: the gateway is deaf or mute and must be restarted
        self.dead = asyncio.Event()
        self.died: BaseException | None = None
        self._inbox: deque[Inbound] = deque()
        self._inbox_bytes = 0
        self._inbox_ready = asyncio.Event()
        self.warn = RateLimitedLog(log)
        self._down: deque[tuple[str, bytes]] = deque()
        self._down_ready = asyncio.Event()
        self._started_mono = time.monotonic()
        #: nothing is saved before the previous run's state was read: it would overwrite it
        self._rules_restored = False
        self._store = ConfigStore(settings.data_dir / "config.json")
        self.config: GatewayConfig = self._store.load() or settings.bootstrap_config()
        self.registry = Registry(self.config)
        self.rules = Rules(self.config, self.registry, self.clock)
        self.outbox = Outbox(settings.data_dir / "outbox.sqlite", self.gateway_id,
                             max_bytes=settings.outbox.max_bytes, clock=self.clock,
                             once_retention_s=settings.outbox.once_retention_s)
        self.ledger = SmsLedger(settings.data_dir / "sms.sqlite")
        self.batcher = TelemetryBatcher(self.gateway_id, settings.outbox.telemetry_batch_max,
                                        settings.outbox.telemetry_flush_s)
        self.ingest = Ingest(self.gateway_id, self.registry, self.rules, self.counters,
                             self.clock, self.batcher)
        self._state_topic = up_topic(self.gateway_id, Up.STATE)
        cloud = settings.cloud
        self.cloud = MqttLink(
            "cloud", cloud, cloud.client_id or f"gw-{self.gateway_id}",
            subscriptions=gateway_subscriptions(self.gateway_id),
            on_messages=self._on_down,
            will=Outgoing(self._state_topic, self._state("offline"), 1, True),
            birth=lambda: Outgoing(self._state_topic, self._state("online"), 1, True),
            on_connect=self._on_cloud_connect, on_disconnect=self._on_cloud_disconnect,
            max_inflight=cloud.mqtt_inflight, on_refused=self._on_cloud_refused,
            on_conflict=lambda: self._conflict("cloud"))
        self.forwarder = Forwarder(
            self.gateway_id, self.outbox, self.cloud, window=cloud.inflight_window,
            resend_after_s=cloud.resend_after_s, read_batch=cloud.read_batch, clock=self.clock,
            counters=self.counters, on_committed=self._on_committed,
            max_inflight_bytes=cloud.inflight_max_bytes)
        subs = native.SUBSCRIPTIONS + (z2m.SUBSCRIPTIONS if settings.z2m.enabled else ())
        home = settings.home_broker
        self.home = MqttLink("home", home, home.client_id or f"gw-{self.gateway_id}-home",
                             subscriptions=subs, on_messages=self._on_home,
                             persistent=home.persistent_session,
                             on_conflict=lambda: self._conflict("home"), manual_ack=True)
        #: home messages handed to the inbox so far (each one's token, see Inbound)
        self._home_delivered = 0
        modem = modem or (GsmModem(settings.modem) if settings.modem else None)
        self.sms = SmsFallback(
            gateway_id=self.gateway_id, outbox=self.outbox, ledger=self.ledger, modem=modem,
            config=lambda: self.config, timeout_s=self._sms_timeout, clock=self.clock,
            counters=self.counters, put=self.store,
            retries=settings.modem.retries if settings.modem else 3,
            retry_delay_s=settings.modem.retry_delay_s if settings.modem else 5.0,
            retry_after_s=settings.sms_retry_after_s, max_rounds=settings.sms_max_rounds)
        self.dongle = (SerialDongle(settings.serial, self._on_serial_line, self.counters,
                                    self.warn) if settings.serial else None)

    # ---------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> Gateway:
        try:
            await self.start()
        except BaseException:
            await self.stop()   # whatever did start is cancelled and closed
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        await self.outbox.open()
        await self._restore_rules()
        await self.ledger.__aenter__()
        self._spawn("ingest", self._ingest_loop())
        self._spawn("downlink", self._downlink_loop())
        self._spawn("forwarder", self.forwarder.run())
        self._spawn("rules", self._rules_loop())
        self._spawn("rule_state", self._rule_state_loop())
        self._spawn("sms", self.sms.run(self.settings.sms_check_s))
        self._spawn("health", self._health_loop())
        if self.dongle is not None:
            self._spawn("dongle", self.dongle.run())
        await self.cloud.start()
        await self.home.start()
        log.info("gateway %s started (config version %d, %d devices)", self.gateway_id,
                 self.config.version, len(self.registry.all()))

    async def stop(self) -> None:
        await self.home.stop()
        await self._cancel("dongle", "rules", "rule_state", "sms", "health")
        if self.outbox.is_open:
            await self._drain_inbox(self.settings.stop_drain_s)
            flushed = self.batcher.flush(aware_now(self.clock))
            if flushed is not None:
                await self.store([flushed])
            await self._process_down()
        await self._cancel("ingest", "downlink", "forwarder")
        if self.outbox.is_open and self._rules_restored:
            await self.save_rules_state()
        await self.cloud.stop(final=[Outgoing(self._state_topic, self._state("offline"), 1,
                                              True)])
        await self.ledger.__aexit__(None, None, None)
        await self.outbox.close()
        self.warn.flush()
        self.ingest.warn.flush()
        log.info("gateway %s stopped", self.gateway_id)

    def _spawn(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro, name=f"{self.gateway_id}:{name}")
        task.add_done_callback(self._task_done)
        self._tasks[name] = task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """A long-lived task that ends (other than by cancel) leaves the gateway deaf or
        mute: say so and set ``dead``, so the process exits non-zero and its supervisor
        restarts it (the outbox makes a restart lossless)."""
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.critical("gateway task %s died: %r", task.get_name(), exc, exc_info=exc)
        else:
            log.critical("gateway task %s ended", task.get_name())
        if self.died is None:
            self.died = exc or RuntimeError(f"task {task.get_name()} ended")
        self.dead.set()

    async def _cancel(self, *names: str) -> None:
        tasks = [self._tasks.pop(n) for n in names if n in self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def wait_connected(self, within_s: float = 10.0) -> bool:
        return (await self.cloud.wait_connected(within_s)
                and await self.home.wait_connected(within_s))

    # ---------------------------------------------------------------- inputs

    def _on_home(self, batch: list[tuple[str, bytes]]) -> None:
        prefix = z2m.BASE_TOPIC + "/"
        for topic, payload in batch:
            self._home_delivered += 1
            self._admit(Inbound("z2m" if topic.startswith(prefix) else "native", topic,
                                payload, self._home_delivered))
        self._inbox_ready.set()

    def _on_serial_line(self, line: bytes) -> None:
        assert self.dongle is not None
        self._admit(Inbound("serial", self.dongle.topic, line))
        self._inbox_ready.set()

    def feed(self, msg: Inbound) -> None:
        """Inject one inbound message as if a connector had received it."""
        self._admit(msg)
        self._inbox_ready.set()

    def _admit(self, msg: Inbound) -> None:
        """Queue a message unless the inbox is full (``inbox_max`` messages or
        ``inbox_max_bytes`` of payload): memory stays bounded whatever a flood does.
        Event-channel messages (where alarms travel) get twice the room."""
        depth, size = len(self._inbox), self._inbox_bytes
        limit, limit_bytes = self.settings.inbox_max, self.settings.inbox_max_bytes
        if (depth >= limit or size >= limit_bytes) and (
                depth >= 2 * limit or size >= 2 * limit_bytes or not _may_be_alarm(msg)):
            self.counters.inc("inbox_dropped")
            self.warn.warning("inbox_full", "inbox full (%d unread, %d bytes): %s message on %s"
                              " dropped", depth, size, msg.source, msg.topic)
            return
        self._inbox.append(msg)
        self._inbox_bytes += len(msg.payload)

    async def _ingest_loop(self) -> None:
        while True:
            timeout = self.batcher.flush_s if len(self.batcher) else None
            with contextlib.suppress(TimeoutError):   # (not wait_for: see Forwarder.run)
                async with asyncio.timeout(timeout):
                    await self._inbox_ready.wait()
            self._inbox_ready.clear()
            await self._drain_inbox()

    async def _drain_inbox(self, within_s: float | None = None) -> None:
        deadline = None if within_s is None else time.monotonic() + within_s
        while True:
            if deadline is not None and time.monotonic() >= deadline and self._inbox:
                self.counters.inc("inbox_abandoned", len(self._inbox))
                log.warning("stopping: %d unread device messages not handled within %.1f s",
                            len(self._inbox), within_s)
                self._inbox.clear()
                self._inbox_bytes = 0
            result = IngestResult()
            n = 0
            token = 0
            while self._inbox and n < INGEST_CHUNK:
                # Ingest.handle isolates each message: one that breaks is counted, not raised
                msg = self._inbox.popleft()
                self._inbox_bytes -= len(msg.payload)
                self.ingest.handle(msg, result)
                token = max(token, msg.token)
                n += 1
            if self.batcher.due():
                flushed = self.batcher.flush(aware_now(self.clock))
                if flushed is not None:
                    result.drafts.append(flushed)
            if result.drafts or self.rules.urgent:
                await self.store(result.drafts)
            if token:
                # stored (readings waiting in the telemetry batch aside): the home broker
                # may forget them now; until here a crash gets them delivered again
                self.home.ack_through(token)
            if not self._inbox:
                return

    async def store(self, drafts: list[Draft]) -> list[Stored]:
        """Put drafts in the outbox; once alarms are on disk, tell their buttons.

        When the rules changed something a restart must not forget (an alert raised, a
        door opened, a device declared offline), their snapshot is written in the same
        transaction as these records."""
        state: dict[str, bytes] | None = None
        if self.rules.urgent and self._rules_restored:
            state = {rule_state.STATE_KEY: rule_state.encode(self.rules.snapshot())}
        z2m_dirty = self.ingest.z2m.dirty and self._rules_restored
        if z2m_dirty:
            # the Zigbee levels these records were decoded against go with them
            state = (state or {}) | {Z2M_STATE_KEY: self.ingest.z2m.snapshot()}
            self.ingest.z2m.dirty = False
        try:
            # alarms commit without waiting for the fsync, which runs below while the
            # forwarder already sends them (durable against a crash of the process; the
            # device hears "received" only after the fsync)
            stored = await self.outbox.put_many(drafts, state=state, defer_sync=True)
        except BaseException as exc:
            if state is not None and rule_state.STATE_KEY in state:
                self.rules.mark_unsaved()
            if z2m_dirty:
                self.ingest.z2m.dirty = True
            if not isinstance(exc, Exception):
                raise
            stored = await self._store_each(drafts, exc)
        if stored:
            self.forwarder.wake()
        alarms = [(s.device_id, s.id) for s in stored
                  if s.lane is Lane.ALARM and s.device_id is not None]
        if alarms:
            await self.outbox.sync()
        for device_id, rid in alarms:
            self.counters.inc("alarms_stored")
            self._led(device_id, "received", [rid])
        return stored

    async def _store_each(self, drafts: list[Draft], first: Exception) -> list[Stored]:
        """A batch that failed is stored record by record, so one record that cannot be
        stored costs that record, not the alarms beside it. When every record fails on
        the outbox itself (a broken disk), that is no single record's fault: it is raised
        and the gateway fails loudly."""
        stored: list[Stored] = []
        storage_failures = 0
        for draft in drafts:
            try:
                stored.extend(await self.outbox.put_many([draft]))
            except Exception as exc:  # noqa: BLE001 - isolation: this record, not the batch
                storage_failures += isinstance(exc, OutboxError)
                self.counters.inc("records_rejected")
                self.warn.error("record_rejected", "%s record for %s not stored: %s: %s",
                                draft.lane.value, draft.device_id or "-", type(exc).__name__,
                                str(exc)[:200], exc_info=exc)
        if drafts and storage_failures == len(drafts) and isinstance(first, OutboxError):
            raise first
        return stored

    def _led(self, device_id: str, state: str, alarms: list[str]) -> None:
        """Tell a button what happened to its call, naming the alarm records it confirms
        (``alarm`` the newest, ``alarms`` all of them: one ack may commit several presses)."""
        info = self.registry.get(device_id)
        if info is None or not info.accepts("led") or info.binding.source != "native":
            return
        self._command(device_id, "led", {"state": state, "alarm": alarms[-1],
                                         "alarms": alarms},
                      f"led-{uuid.uuid4().hex[:16]}")

    def _command(self, device_id: str, command: str, args: dict[str, Any], cmd_id: str) -> bool:
        msg = native.DeviceCommand(id=cmd_id[:64], command=command, args=args,
                                   ts=aware_now(self.clock))
        ok = self.home.publish(Outgoing(native.topic(device_id, native.Channel.CMD),
                                        native.encode(msg), qos=1))
        self.counters.inc("commands_sent" if ok else "commands_unsent")
        if not ok:
            self.warn.warning("command_unsent", "home broker down: %s for %s not delivered",
                              command, device_id)
        return ok

    # ---------------------------------------------------------------- cloud side

    def _state(self, status: Literal["online", "offline"]) -> bytes:
        return encode(GatewayState(gateway_id=self.gateway_id, status=status,
                                   ts=aware_now(self.clock), version=__version__))

    def _on_cloud_connect(self) -> None:
        self.forwarder.reset()
        self._status("cloud", "up")

    def _on_cloud_disconnect(self) -> None:
        self.forwarder.reset()
        self._status("cloud", "down")

    def _on_cloud_refused(self, reason: str) -> None:
        self.counters.inc("cloud_refused")
        if is_auth_refusal(reason):
            log.error("the cloud refuses this gateway's credentials (%s): check cloud.username"
                      " and cloud.password", reason)
        self._status("cloud", f"refused: {reason}")

    def _conflict(self, link: str) -> None:
        """Another client uses this gateway's client id on a broker (two gateways with one
        gateway_id): counted, so the health report the cloud reads says so."""
        self.counters.inc(f"client_id_conflict_{link}")
        self._status(link, "client id conflict")

    def _status(self, link: str, what: str) -> None:
        if self._on_status is not None:
            self._on_status(link, what)

    def _on_committed(self, gone: list[Stored]) -> None:
        # one "help coming" per button however many of its alarms this ack committed
        buttons: dict[str, list[str]] = {}
        for s in gone:
            if s.lane is Lane.ALARM and s.device_id is not None:
                buttons.setdefault(s.device_id, []).append(s.id)
        for device_id, alarms in buttons.items():
            self._led(device_id, "help_coming", alarms)

    def _on_down(self, batch: list[tuple[str, bytes]]) -> None:
        room = self.settings.inbox_max - len(self._down)
        if len(batch) > room:
            # bounded like the inbox; a dropped Ack only means a resend, a config is retained
            dropped = len(batch) - max(room, 0)
            self.counters.inc("down_dropped", dropped)
            self.warn.warning("down_full", "downlink queue full: %d messages dropped", dropped)
            batch = batch[:max(room, 0)]
        self._down.extend(batch)
        self._down_ready.set()

    async def _downlink_loop(self) -> None:
        while True:
            await self._down_ready.wait()
            self._down_ready.clear()
            await self._process_down()

    async def _process_down(self) -> None:
        """Handle downlink messages in arrival order; a run of consecutive Acks is applied in
        one outbox transaction (the cloud acks in many small messages during a drain)."""
        acks: list[Ack] = []
        while self._down:
            topic, payload = self._down.popleft()
            try:
                msg = self._decode_down(topic, payload)
            except DecodeError as exc:
                self.counters.inc("malformed_down")
                preview = exc.preview() if exc.payload else payload[:120].decode(
                    "utf-8", errors="replace")
                self.warn.warning("malformed_down", "malformed downlink on %s: %s | payload:"
                                  " %s", topic, exc.reason, preview)
                continue
            if isinstance(msg, Ack):
                acks.append(msg)
                continue
            if acks:
                await self.forwarder.on_acks(acks)
                acks = []
            try:
                if isinstance(msg, GatewayConfig):
                    await self.apply_config(msg)
                else:
                    self.relay(msg)
            except (OSError, ValueError) as exc:
                # a config that cannot be saved or a command that cannot be relayed costs
                # that message; the acks around it and the next config still apply
                self.counters.inc("down_failed")
                self.warn.error("down_failed", "downlink on %s not applied: %s: %s", topic,
                                type(exc).__name__, exc)
        if acks:
            await self.forwarder.on_acks(acks)

    def _decode_down(self, topic: str, payload: bytes) -> Ack | GatewayConfig | DownCommand:
        gateway_id, channel = parse_down_topic(topic)
        if gateway_id != self.gateway_id:
            raise DecodeError(f"downlink for gateway {gateway_id!r}", topic=topic,
                              payload=payload)
        obj = native.load_object(payload, topic)
        if channel is Down.ACK:
            return native.validate(Ack, obj, payload, topic)
        if channel is Down.CONFIG:
            return native.validate(GatewayConfig, obj, payload, topic)
        return native.validate(DownCommand, obj, payload, topic)

    async def apply_config(self, config: GatewayConfig) -> bool:
        if config.gateway_id != self.gateway_id:
            self.counters.inc("config_rejected")
            log.warning("config for gateway %s ignored", config.gateway_id)
            return False
        if config.version < self.config.version:
            self.counters.inc("config_stale")
            log.info("config version %d older than %d; kept the newer", config.version,
                     self.config.version)
            return False
        await asyncio.to_thread(self._store.save, config)
        self.config = config
        self.registry.apply(config)
        self.rules.apply_config(config)
        self.counters.inc("config_applied")
        log.info("applied config version %d (%d devices, %d SMS contacts)", config.version,
                 len(config.devices), len(config.sms_contacts))
        return True

    def relay(self, cmd: DownCommand) -> bool:
        """Pass a cloud command to a device, only if its type accepts that command."""
        info = self.registry.get(cmd.device_id)
        reason = None
        if info is None:
            reason = "device not bound to this gateway"
        elif not info.accepts(cmd.command):
            reason = f"a {info.dtype.name} does not accept {cmd.command!r}"
        elif info.binding.source != "native":
            reason = f"commands to {info.binding.source} devices are not supported"
        if reason is not None:
            self.counters.inc("commands_rejected")
            self.warn.warning("command_refused", "command %s (%s) for %s refused: %s", cmd.id,
                              cmd.command, cmd.device_id, reason)
            return False
        try:
            return self._command(cmd.device_id, cmd.command, cmd.args, cmd.id)
        except ValidationError as exc:
            self.counters.inc("commands_rejected")
            log.warning("command %s cannot be relayed: %s", cmd.id, exc)
            return False

    def _sms_timeout(self) -> float:
        return self.settings.sms_timeout_s or float(self.config.sms_timeout_s)

    # ---------------------------------------------------------------- periodic

    async def _rules_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.rules_tick_s)
            await self.run_rules()

    async def run_rules(self) -> list[Stored]:
        drafts = self.ingest.tick()
        return await self.store(drafts) if drafts or self.rules.urgent else []

    # ---------------------------------------------------------------- rule state

    async def _restore_rules(self) -> None:
        await self._restore_z2m()
        raw = await self.outbox.load_state(rule_state.STATE_KEY)
        self._rules_restored = True
        if raw is None:
            log.info("no saved rule state: watching the home from now")
            return
        try:
            snap = rule_state.decode(raw)
        except rule_state.RuleStateError as exc:
            self.counters.inc("rule_state_unreadable")
            log.error("%s; watching the home from now", exc)
            return
        gap = self.rules.restore(snap, self.settings.rules_max_gap_s)
        log.info("rule state restored (saved %s, %.0f s ago): last activity %s, %d open"
                 " doors", snap.saved_at.isoformat(), gap,
                 snap.last_activity.isoformat() if snap.last_activity else "none",
                 len(snap.door_open_since))

    async def _restore_z2m(self) -> None:
        """The Zigbee2MQTT adapter's levels and learned devices: without them a battery
        report repeating an open door after a restart would read as the door opening."""
        raw = await self.outbox.load_state(Z2M_STATE_KEY)
        if raw is None:
            return
        try:
            self.ingest.z2m.restore(raw)
        except DecodeError as exc:
            self.counters.inc("z2m_state_unreadable")
            log.error("%s; Zigbee2MQTT levels start from nothing", exc)
            return
        log.info("Zigbee2MQTT state restored: %d devices described by the bridge",
                 len(self.ingest.z2m.devices))

    async def save_rules_state(self) -> None:
        """Write the rules' snapshot now (its ``saved_at`` also says the gateway was alive),
        and the Zigbee2MQTT adapter's memory when it changed."""
        snap = self.rules.snapshot()
        state = {rule_state.STATE_KEY: rule_state.encode(snap)}
        z2m_dirty = self.ingest.z2m.dirty
        if z2m_dirty:
            state[Z2M_STATE_KEY] = self.ingest.z2m.snapshot()
            self.ingest.z2m.dirty = False
        try:
            await self.outbox.save_state(state)
        except BaseException:
            self.rules.mark_unsaved()
            if z2m_dirty:
                self.ingest.z2m.dirty = True
            raise

    async def _rule_state_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.rules_state_save_s)
            try:
                await self.save_rules_state()
            except OutboxError as exc:
                self.counters.inc("rule_state_unsaved")
                log.error("rule state not saved: %s", exc)

    async def health(self) -> GatewayState:
        oldest = await self.outbox.oldest_created()
        now = aware_now(self.clock)
        return GatewayState(
            gateway_id=self.gateway_id, status="health", ts=now, version=__version__,
            uptime_s=time.monotonic() - self._started_mono, outbox=await self.outbox.depth(),
            oldest_unacked_s=max(0.0, (now - oldest).total_seconds()) if oldest else None,
            last_cloud_ack=self.forwarder.last_cloud_ack, devices=self.registry.statuses(),
            counters=self.counters.snapshot())

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.health_interval_s)
            if self.cloud.connected:
                state = await self.health()
                self.cloud.publish(Outgoing(self._state_topic, encode(state), 1, True))
