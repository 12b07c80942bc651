"""SMS fallback: when the cloud has not acknowledged a life-safety alarm in time, the
gateway texts the local contacts itself.

Once per alarm per contact: every outcome is written to a small ledger (SQLite,
fully synced) before the next contact is tried, so a restart does not text anyone
twice; then an :class:`SmsReport` goes into the outbox for the cloud. An alarm the
cloud acknowledges leaves the outbox, and with it any reason to text.

A contact whose SMS failed (no SIM, no network registration, a +CMS ERROR that retrying
on the spot did not cure) is tried again every ``retry_after_s`` while the alarm is
still unacknowledged, for at most ``max_rounds`` rounds in all: someone may insert the
SIM or the network may come back while the person still needs help. A contact texted
successfully is never texted again about the same alarm.
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


@dataclass(frozen=True)
class LedgerEntry:
    """The latest outcome for one alarm and one contact; ``attempts`` counts every modem
    attempt in all rounds, ``tried_at`` is when the last round ended (rule clock)."""

    status: str
    attempts: int
    rounds: int
    tried_at: float


_LEDGER = """
CREATE TABLE IF NOT EXISTS sms(
    alarm_id TEXT NOT NULL,
    phone TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    at REAL NOT NULL,
    error TEXT,
    rounds INTEGER NOT NULL DEFAULT 1,
    tried_at REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (alarm_id, phone)
);
"""
#: columns added after the first release: a ledger written by it gets them on open
_ADDED = {"rounds": "INTEGER NOT NULL DEFAULT 1", "tried_at": "REAL NOT NULL DEFAULT 0"}


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
        have = {str(r[1]) for r in await (await db.execute("PRAGMA table_info(sms)")).fetchall()}
        for column, decl in _ADDED.items():
            if column not in have:
                await db.execute(f"ALTER TABLE sms ADD COLUMN {column} {decl}")
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

    async def entries(self, alarm_id: str) -> dict[str, LedgerEntry]:
        cur = await self.db.execute(
            "SELECT phone, status, attempts, rounds, tried_at FROM sms WHERE alarm_id=?",
            (alarm_id,))
        return {str(p): LedgerEntry(str(s), int(a), int(r), float(t))
                for p, s, a, r, t in await cur.fetchall()}

    async def record(self, alarm_id: str, phone: str, outcome: SmsOutcome, *,
                     rounds: int = 1, tried_at: datetime | None = None) -> None:
        await self.db.execute(
            "INSERT OR REPLACE INTO sms(alarm_id, phone, status, attempts, at, error, rounds,"
            " tried_at) VALUES (?,?,?,?,?,?,?,?)",
            (alarm_id, phone, outcome.status, outcome.attempts,
             (outcome.sent_at.timestamp() if outcome.sent_at else 0.0), outcome.error,
             rounds, tried_at.timestamp() if tried_at else 0.0))

    async def all(self) -> list[tuple[str, str, str, int]]:
        cur = await self.db.execute("SELECT alarm_id, phone, status, attempts FROM sms")
        return [(str(a), str(p), str(s), int(n)) for a, p, s, n in await cur.fetchall()]


class SmsFallback:
    def __init__(self, *, gateway_id: str, outbox: Outbox, ledger: SmsLedger,
                 modem: Modem | None, config: Callable[[], GatewayConfig],
                 timeout_s: Callable[[], float], clock: Clock, counters: Counters,
                 put: Callable[[list[Draft]], Awaitable[object]], retries: int = 3,
                 retry_delay_s: float = 5.0, retry_after_s: float = 300.0,
                 max_rounds: int = 12) -> None:
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
        self.retry_after_s = retry_after_s
        self.max_rounds = max_rounds
        #: one check at a time: two overlapping checks would both see a contact as due
        self._checking = asyncio.Lock()

    async def run(self, every_s: float) -> None:
        while True:
            await self.check_once()
            await asyncio.sleep(every_s)

    async def check_once(self) -> int:
        """Text about every overdue alarm whose contacts are due; returns SMS attempted."""
        async with self._checking:
            now = aware_now(self.clock)
            overdue = await self.outbox.alarms_older_than(
                now - timedelta(seconds=self._timeout_s()))
            sent = 0
            for item in overdue:
                sent += await self._alarm(item)
            return sent

    def _due(self, config: GatewayConfig, entries: dict[str, LedgerEntry], now: datetime
             ) -> list[tuple[str, LedgerEntry | None]]:
        """Contacts to text now: never tried, or failed, rounds left and the pause over."""
        due: list[tuple[str, LedgerEntry | None]] = []
        for phone in dict.fromkeys(c.phone for c in config.sms_contacts):
            entry = entries.get(phone)
            if entry is None:
                due.append((phone, None))
            elif (entry.status != "sent" and entry.rounds < self.max_rounds
                  and now.timestamp() - entry.tried_at >= self.retry_after_s):
                due.append((phone, entry))
        return due

    async def _alarm(self, item: OutboxItem) -> int:
        config = self._config()
        now = aware_now(self.clock)
        todo = self._due(config, await self.ledger.entries(item.id), now)
        if not todo:
            return 0
        try:
            env = validate(EventEnvelope, load_object(item.payload), item.payload)
        except DecodeError as exc:
            log.error("alarm %s in the outbox does not decode: %s", item.id, exc)
            return 0
        text = compose(env, config)
        retrying = sum(1 for _, entry in todo if entry is not None)
        log.warning("alarm %s (%s from %s) not acknowledged by the cloud; texting %d contacts"
                    " (%d of them again)", item.id, env.kind.value, env.device_id, len(todo),
                    retrying)
        for phone, entry in todo:
            outcome = await self._send(phone, text)
            rounds = (entry.rounds if entry else 0) + 1
            if entry is not None:
                outcome = SmsOutcome(outcome.status, entry.attempts + outcome.attempts,
                                     outcome.sent_at, outcome.error)
                self.counters.inc("sms_retried")
            await self.ledger.record(item.id, phone, outcome, rounds=rounds,
                                     tried_at=aware_now(self.clock))
            self.counters.inc(f"sms_{outcome.status}")
            if outcome.status != "sent":
                if rounds >= self.max_rounds:
                    self.counters.inc("sms_gave_up")
                    log.error("SMS to %s about alarm %s failed %d times in %d rounds; giving up:"
                              " %s", phone, item.id, outcome.attempts, rounds, outcome.error)
                else:
                    log.warning("SMS to %s about alarm %s failed (round %d of %d); trying again"
                                " in %.0f s while the alarm is unacknowledged", phone, item.id,
                                rounds, self.max_rounds, self.retry_after_s)
            await self._put([sms_report_draft(
                self.gateway_id, alarm_id=item.id, to=phone, status=outcome.status,
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
