"""SMS fallback: when the cloud has not acknowledged a life-safety alarm in time, the
gateway texts the local contacts itself.

Once per alarm per contact: every outcome is written to a small ledger (SQLite,
fully synced) before the next contact is tried, so a restart does not text anyone
twice; then an :class:`SmsReport` goes into the outbox for the cloud. An alarm the
cloud acknowledges leaves the outbox, and with it any reason to text.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Protocol

import aiosqlite

from eldercare_edge.clock import Clock, aware_now
from eldercare_edge.counters import Counters
from eldercare_edge.errors import ModemError
from eldercare_edge.outbox import Draft, Outbox, OutboxItem
from eldercare_edge.records import sms_report_draft
from eldercare_edge.rules import zone
from eldercare_protocols.errors import DecodeError
from eldercare_protocols.events import EventKind
from eldercare_protocols.native import load_object, validate
from eldercare_protocols.uplink import EventEnvelope, GatewayConfig

log = logging.getLogger(__name__)

#: (title, what happened) per alarm kind; the text is read on a family member's phone
_WHAT: dict[EventKind, tuple[str, str]] = {
    EventKind.SOS: ("紧急求助", "按下紧急呼叫按钮"),
    EventKind.FALL: ("跌倒报警", "被检测到疑似跌倒"),
    EventKind.GAS_ALARM: ("燃气报警", "家中燃气报警器报警"),
    EventKind.SMOKE_ALARM: ("烟雾报警", "家中烟雾报警器报警"),
    EventKind.VITALS_ALARM: ("体征异常", "生命体征持续异常"),
}


def compose(env: EventEnvelope, config: GatewayConfig) -> str:
    """Chinese first: who, where, when, what, and that the cloud has not answered."""
    title, what = _WHAT.get(env.kind, ("紧急报警", f"触发报警（{env.kind.value}）"))
    tz = zone(config.routine.timezone)
    when = (env.device_ts or env.gateway_ts).astimezone(tz).strftime("%H:%M")
    if config.resident is not None:
        who = f"{config.resident.name}（{config.resident.address}）"
    else:
        who = f"网关 {config.gateway_id} 所在住户"
    return f"【{title}】{who}于 {when} {what}，云平台暂未响应，请立即联系或前往查看。"


class Modem(Protocol):
    async def send_sms(self, number: str, text: str) -> int: ...


@dataclass(frozen=True)
class SmsOutcome:
    status: str
    attempts: int
    sent_at: datetime | None
    error: str | None


_LEDGER = """
CREATE TABLE IF NOT EXISTS sms(
    alarm_id TEXT NOT NULL,
    phone TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    at REAL NOT NULL,
    error TEXT,
    PRIMARY KEY (alarm_id, phone)
);
"""


class SmsLedger:
    """Which contact was texted about which alarm, kept on disk across restarts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None

    async def __aenter__(self) -> SmsLedger:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(self.path, isolation_level=None)
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=FULL")
        await db.executescript(_LEDGER)
        self._db = db
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    @property
    def db(self) -> aiosqlite.Connection:
        assert self._db is not None, "ledger is not open"
        return self._db

    async def done(self, alarm_id: str) -> set[str]:
        cur = await self.db.execute("SELECT phone FROM sms WHERE alarm_id=?", (alarm_id,))
        return {str(r[0]) for r in await cur.fetchall()}

    async def record(self, alarm_id: str, phone: str, outcome: SmsOutcome) -> None:
        await self.db.execute(
            "INSERT OR REPLACE INTO sms(alarm_id, phone, status, attempts, at, error)"
            " VALUES (?,?,?,?,?,?)",
            (alarm_id, phone, outcome.status, outcome.attempts,
             (outcome.sent_at.timestamp() if outcome.sent_at else 0.0), outcome.error))

    async def all(self) -> list[tuple[str, str, str, int]]:
        cur = await self.db.execute("SELECT alarm_id, phone, status, attempts FROM sms")
        return [(str(a), str(p), str(s), int(n)) for a, p, s, n in await cur.fetchall()]


class SmsFallback:
    def __init__(self, *, gateway_id: str, outbox: Outbox, ledger: SmsLedger,
                 modem: Modem | None, config: Callable[[], GatewayConfig],
                 timeout_s: Callable[[], float], clock: Clock, counters: Counters,
                 put: Callable[[list[Draft]], Awaitable[object]], retries: int = 3,
                 retry_delay_s: float = 5.0) -> None:
        self.gateway_id = gateway_id
        self.outbox = outbox
        self.ledger = ledger
        self.modem = modem
        self._config = config
        self._timeout_s = timeout_s
        self.clock = clock
        self.counters = counters
        self._put = put
        self.retries = retries
        self.retry_delay_s = retry_delay_s

    async def run(self, every_s: float) -> None:
        while True:
            await self.check_once()
            await asyncio.sleep(every_s)

    async def check_once(self) -> int:
        """Text about every overdue alarm not yet texted; returns SMS attempted."""
        now = aware_now(self.clock)
        overdue = await self.outbox.alarms_older_than(now - timedelta(seconds=self._timeout_s()))
        sent = 0
        for item in overdue:
            sent += await self._alarm(item)
        return sent

    async def _alarm(self, item: OutboxItem) -> int:
        config = self._config()
        done = await self.ledger.done(item.id)
        todo = [c for c in config.sms_contacts if c.phone not in done]
        if not todo:
            return 0
        try:
            env = validate(EventEnvelope, load_object(item.payload), item.payload)
        except DecodeError as exc:
            log.error("alarm %s in the outbox does not decode: %s", item.id, exc)
            return 0
        text = compose(env, config)
        log.warning("alarm %s (%s from %s) not acknowledged by the cloud; texting %d contacts",
                    item.id, env.kind.value, env.device_id, len(todo))
        for contact in todo:
            outcome = await self._send(contact.phone, text)
            await self.ledger.record(item.id, contact.phone, outcome)
            self.counters.inc(f"sms_{outcome.status}")
            await self._put([sms_report_draft(
                self.gateway_id, alarm_id=item.id, to=contact.phone, status=outcome.status,
                attempts=outcome.attempts, sent_at=outcome.sent_at, error=outcome.error,
                received=aware_now(self.clock))])
        return len(todo)

    async def _send(self, phone: str, text: str) -> SmsOutcome:
        if self.modem is None:
            log.error("no GSM modem configured: cannot text %s", phone)
            return SmsOutcome("failed", 1, None, "no modem configured")
        attempts = 0
        error = ""
        while attempts < self.retries:
            attempts += 1
            try:
                await self.modem.send_sms(phone, text)
            except ModemError as exc:
                error = str(exc)
                log.warning("SMS to %s failed (attempt %d/%d): %s", phone, attempts,
                            self.retries, exc)
                if not exc.transient:
                    break
                if attempts < self.retries:
                    await asyncio.sleep(self.retry_delay_s)
                continue
            log.info("SMS sent to %s after %d attempt(s)", phone, attempts)
            return SmsOutcome("sent", attempts, aware_now(self.clock), None)
        return SmsOutcome("failed", attempts, None, error)
