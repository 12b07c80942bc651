"""Storage of everything ingest receives: one transaction per batch, reads by cursor.

Writes go through the shared ``Database`` (its write lock and BEGIN IMMEDIATE), reads
through a separate read-only connection: in WAL mode that connection sees only
committed rows, so a reader can never act on a row of a batch that is still being
written (and might roll back).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Literal

from eldercare_cloud.db import Connection, Database, Row, Rows
from eldercare_cloud.ingest import schema
from eldercare_cloud.ingest.credentials import (
    MIN_SECRET_LENGTH,
    generate_secret,
    hash_secret,
    verify_secret,
)
from eldercare_cloud.ingest.errors import RegistrationError
from eldercare_cloud.ingest.models import (
    CommitInfo,
    GatewayLiveness,
    GatewayLogEntry,
    GatewayRecord,
    StoredEvent,
    StoredGap,
    StoredSmsReport,
    StoredTelemetry,
    StoredUnknownDevice,
    TelemetryPoint,
)
from eldercare_cloud.ingest.timefmt import from_db, from_db_opt, to_db, to_db_opt, utcnow
from eldercare_cloud.telemetry import sqlite as telemetry_sqlite
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import (
    GATEWAY_ID_RE,
    EventEnvelope,
    GapRecord,
    GatewayState,
    Lane,
    SmsReport,
    TelemetryBatch,
    UnknownDeviceSeen,
)

UplinkMessage = (EventEnvelope | GapRecord | SmsReport | UnknownDeviceSeen | TelemetryBatch
                 | GatewayState)

_EVENT_COLUMNS = ("rowid, id, gateway_id, seq, device_id, kind, test, lane, rule, source, data,"
                  " device_ts, device_seq, gateway_ts, received_at, committed_at")
_LOG_COLUMNS = "rowid, gateway_id, status, reason, ts, received_at"
_GATEWAY_COLUMNS = ("id, created_at, online, last_seen, last_birth_at, last_will_at,"
                    " last_health_at, last_health, version")
#: rows decoded between two turns of the event loop in a long read
_YIELD_EVERY = 100


@dataclass
class _FinalState:
    """A gateway's row after the states of one batch (None: column unchanged)."""

    online: bool = False
    birth_at: str | None = None
    will_at: str | None = None
    health_at: str | None = None
    health: GatewayState | None = None
    version: str | None = None


@dataclass(frozen=True)
class Received:
    """A decoded uplink message with the gateway of its topic and the cloud receive time."""

    gateway_id: str
    msg: UplinkMessage
    received_at: datetime


#: one encoder made once: json.dumps with any keyword argument builds one per call
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _json(obj: Any) -> str:
    return _ENCODER.encode(obj) if obj else "{}"


def _event(r: Row) -> StoredEvent:
    return StoredEvent(
        rowid=r[0], id=r[1], gateway_id=r[2], seq=r[3], device_id=r[4], kind=EventKind(r[5]),
        test=bool(r[6]), lane=Lane(r[7]), rule=r[8], source=r[9], data=json.loads(r[10]),
        device_ts=from_db_opt(r[11]), device_seq=r[12], gateway_ts=from_db(r[13]),
        received_at=from_db(r[14]), committed_at=from_db(r[15]))


def _log(r: Row) -> GatewayLogEntry:
    return GatewayLogEntry(rowid=r[0], gateway_id=r[1], status=r[2], reason=r[3],
                           ts=from_db_opt(r[4]), received_at=from_db(r[5]))


def _gateway(r: Row) -> GatewayRecord:
    return GatewayRecord(
        id=r[0], created_at=from_db(r[1]), online=bool(r[2]), last_seen=from_db_opt(r[3]),
        last_birth_at=from_db_opt(r[4]), last_will_at=from_db_opt(r[5]),
        last_health_at=from_db_opt(r[6]),
        last_health=GatewayState.model_validate_json(r[7]) if r[7] else None, version=r[8])


def _stored_events(envelopes: dict[str, Received], rows: Iterable[tuple[int, str]],
                   committed_at: datetime) -> list[StoredEvent]:
    """The rows this commit inserted, built from the envelopes already in memory (they
    were validated on the way in; reading the rows back in full costs a JSON parse and a
    model validation per row on the alarm path)."""
    out = []
    for rowid, record_id in rows:
        item = envelopes[record_id]
        env = item.msg
        assert isinstance(env, EventEnvelope)
        out.append(StoredEvent.model_construct(
            rowid=rowid, id=env.id, gateway_id=item.gateway_id, seq=env.seq,
            device_id=env.device_id, kind=env.kind, test=env.test, lane=env.lane,
            rule=env.rule, source=env.source, data=env.data,
            device_ts=_utc_opt(env.device_ts), device_seq=env.device_seq,
            gateway_ts=_utc(env.gateway_ts), received_at=_utc(item.received_at),
            committed_at=committed_at))
    return out


def _utc(ts: datetime) -> datetime:
    """As the row stores it (and events_after returns it): aware, UTC."""
    return from_db(to_db(ts))


def _utc_opt(ts: datetime | None) -> datetime | None:
    return None if ts is None else _utc(ts)


#: taken (Database.serialise) by the end of every ingest commit: see IngestStore.commit
_COMMIT_LOCK = "ingest-commit"
#: a gateway's row after one batch: its states (IngestStore._fold_states; None leaves a
#: column as it is) and the newest receive time (last_seen only moves forward). One
#: statement per gateway, the gateways in id order: every commit locks gateway rows in
#: the same order, so two never wait for each other in a cycle (a telemetry-only commit
#: updates them without the commit lock, see IngestStore.commit)
_GATEWAY_UPDATE = (
    "UPDATE gateways SET online = COALESCE(?, online),"
    " last_birth_at = COALESCE(?, last_birth_at), last_will_at = COALESCE(?, last_will_at),"
    " last_health_at = COALESCE(?, last_health_at), last_health = COALESCE(?, last_health),"
    " version = COALESCE(?, version),"
    " last_seen = CASE WHEN last_seen IS NULL OR last_seen < ? THEN ? ELSE last_seen END"
    " WHERE id = ?")
#: notified when the set of accepted gateways shrinks (a revoke)
GATEWAYS_CHANNEL = "eldercare_gateways"
#: notified by a commit that stored new events or gateway transitions, so a care engine
#: in another process (role "engine") wakes at once instead of at its next poll
COMMITS_CHANNEL = "eldercare_ingest"


class IngestStore:
    """The ingest tables: the registry of gateways, committed records, gateway log."""

    def __init__(self, db: Database, *, telemetry_sqlite: bool = True) -> None:
        self.db = db
        self.telemetry_sqlite = telemetry_sqlite

    async def __aenter__(self) -> IngestStore:
        await self.open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def open(self) -> None:
        """Migrate the ingest and telemetry components and open the read connection."""
        await self.db.migrate("ingest", schema.MIGRATIONS)
        await self.db.migrate("telemetry", telemetry_sqlite.MIGRATIONS)
        await self.db.open_reader()

    async def close(self) -> None:
        """The read connection is the database's: closed with it."""

    @property
    def reader(self) -> Connection:
        return self.db.reader

    # -- registry --------------------------------------------------------------------

    async def add_gateway(self, gateway_id: str, secret: str | None = None) -> str:
        """Register a gateway; return its secret (generated when None). Only the hash is
        stored, so the caller must hand the secret over now."""
        if not GATEWAY_ID_RE.match(gateway_id):
            raise RegistrationError(f"invalid gateway id {gateway_id!r}: letters, digits, "
                                    "'_' and '-', up to 64 characters")
        if secret is None:
            secret = generate_secret()
        elif len(secret) < MIN_SECRET_LENGTH:
            raise RegistrationError(f"a gateway secret needs at least {MIN_SECRET_LENGTH} "
                                    "characters")
        secret_hash = hash_secret(secret)
        async with self.db.transaction() as conn:
            cur = await conn.execute("SELECT 1 FROM gateways WHERE id = ?", (gateway_id,))
            if await cur.fetchone() is not None:
                raise RegistrationError(f"gateway {gateway_id!r} is already registered")
            await conn.execute(
                "INSERT INTO gateways(id, secret_hash, created_at) VALUES (?, ?, ?)",
                (gateway_id, secret_hash, to_db(utcnow())))
        return secret

    async def verify_gateway(self, gateway_id: str, secret: str) -> bool:
        cur = await self.reader.execute("SELECT secret_hash FROM gateways WHERE id = ?",
                                        (gateway_id,))
        row = await cur.fetchone()
        return row is not None and verify_secret(str(row[0]), secret)

    async def gateway_ids(self) -> set[str]:
        """The gateways whose uplink is accepted: registered and not revoked."""
        cur = await self.reader.execute("SELECT id FROM gateways WHERE revoked_at IS NULL")
        return {str(r[0]) for r in await cur.fetchall()}

    async def accepts(self, gateway_id: str) -> bool:
        cur = await self.reader.execute(
            "SELECT 1 FROM gateways WHERE id = ? AND revoked_at IS NULL", (gateway_id,))
        return await cur.fetchone() is not None

    async def revoke_gateway(self, gateway_id: str, at: datetime) -> bool:
        """Refuse the gateway's uplink from now on, in every ingest worker (each reloads
        its set of accepted gateways on GATEWAYS_CHANNEL); False if it is not registered.
        A revoke is final: the id cannot be registered again."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE gateways SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?",
                (to_db(at), gateway_id))
            if cur.rowcount == 0:
                return False
            await self.db.notify(conn, GATEWAYS_CHANNEL)
        return True

    async def gateway(self, gateway_id: str) -> GatewayRecord | None:
        cur = await self.reader.execute(
            f"SELECT {_GATEWAY_COLUMNS} FROM gateways WHERE id = ?", (gateway_id,))
        row = await cur.fetchone()
        return _gateway(row) if row is not None else None

    async def gateways(self) -> list[GatewayRecord]:
        cur = await self.reader.execute(f"SELECT {_GATEWAY_COLUMNS} FROM gateways ORDER BY id")
        return [_gateway(r) for r in await cur.fetchall()]

    async def online_gateways(self) -> list[GatewayLiveness]:
        """Gateways marked online, without their health report (the silence rule)."""
        cur = await self.reader.execute(
            "SELECT id, created_at, last_seen FROM gateways WHERE online = 1")
        return [GatewayLiveness(str(r[0]), from_db(r[1]), from_db_opt(r[2]))
                for r in await cur.fetchall()]

    async def gateways_reported_since(self, since: datetime | None, *,
                                      containing: str | None = None) -> list[GatewayRecord]:
        """Gateways whose last health report was received at or after ``since`` (all that
        have one when None) and, when given, whose report's JSON contains ``containing``
        (a key: a cheap filter in SQL before any decoding), health decoded. The decoding
        yields to the event loop every few rows: on a loop that also runs ingest, a long
        parse would stop the sockets being read (issue 14)."""
        clauses, params = ["last_health_at IS NOT NULL"], []
        if since is not None:
            clauses.append("last_health_at >= ?")
            params.append(to_db(since))
        if containing is not None:
            clauses.append("last_health LIKE ?")
            params.append(f"%{containing}%")
        cur = await self.reader.execute(
            f"SELECT {_GATEWAY_COLUMNS} FROM gateways WHERE {' AND '.join(clauses)}", params)
        out: list[GatewayRecord] = []
        for n, r in enumerate(await cur.fetchall()):
            if n and n % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
            out.append(_gateway(r))
        return out

    # -- reads by cursor -------------------------------------------------------------

    async def events_after(self, cursor: int, limit: int = 500) -> list[StoredEvent]:
        cur = await self.reader.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE rowid > ? ORDER BY rowid LIMIT ?",
            (cursor, limit))
        return [_event(r) for r in await cur.fetchall()]

    async def event(self, record_id: str) -> StoredEvent | None:
        cur = await self.reader.execute(f"SELECT {_EVENT_COLUMNS} FROM events WHERE id = ?",
                                        (record_id,))
        row = await cur.fetchone()
        return _event(row) if row is not None else None

    async def gateway_log_after(self, cursor: int, limit: int = 500) -> list[GatewayLogEntry]:
        cur = await self.reader.execute(
            f"SELECT {_LOG_COLUMNS} FROM gateway_log WHERE rowid > ? ORDER BY rowid LIMIT ?",
            (cursor, limit))
        return [_log(r) for r in await cur.fetchall()]

    async def gaps_after(self, cursor: int, limit: int = 500) -> list[StoredGap]:
        cur = await self.reader.execute(
            "SELECT rowid, id, gateway_id, seq, dropped, first_seq, last_seq, oldest_ts,"
            " newest_ts, reason, gateway_ts, received_at, committed_at FROM gaps"
            " WHERE rowid > ? ORDER BY rowid LIMIT ?", (cursor, limit))
        return [StoredGap(rowid=r[0], id=r[1], gateway_id=r[2], seq=r[3], dropped=r[4],
                          first_seq=r[5], last_seq=r[6], oldest_ts=from_db(r[7]),
                          newest_ts=from_db(r[8]), reason=r[9], gateway_ts=from_db(r[10]),
                          received_at=from_db(r[11]), committed_at=from_db(r[12]))
                for r in await cur.fetchall()]

    async def sms_reports_after(self, cursor: int, limit: int = 500) -> list[StoredSmsReport]:
        cur = await self.reader.execute(
            "SELECT rowid, id, gateway_id, seq, alarm_id, recipient, status, attempts, sent_at,"
            " error, gateway_ts, received_at, committed_at FROM sms_reports"
            " WHERE rowid > ? ORDER BY rowid LIMIT ?", (cursor, limit))
        return [StoredSmsReport(rowid=r[0], id=r[1], gateway_id=r[2], seq=r[3], alarm_id=r[4],
                                to=r[5], status=r[6], attempts=r[7], sent_at=from_db_opt(r[8]),
                                error=r[9], gateway_ts=from_db(r[10]),
                                received_at=from_db(r[11]), committed_at=from_db(r[12]))
                for r in await cur.fetchall()]

    async def unknown_devices_after(self, cursor: int,
                                    limit: int = 500) -> list[StoredUnknownDevice]:
        cur = await self.reader.execute(
            "SELECT rowid, id, gateway_id, seq, device_id, source, topic, device_type,"
            " gateway_ts, received_at, committed_at FROM unknown_devices"
            " WHERE rowid > ? ORDER BY rowid LIMIT ?", (cursor, limit))
        return [StoredUnknownDevice(rowid=r[0], id=r[1], gateway_id=r[2], seq=r[3],
                                    device_id=r[4], source=r[5], topic=r[6], device_type=r[7],
                                    gateway_ts=from_db(r[8]), received_at=from_db(r[9]),
                                    committed_at=from_db(r[10]))
                for r in await cur.fetchall()]

    async def telemetry(self, device_id: str, since: datetime | None = None,
                        limit: int = 1000) -> list[StoredTelemetry]:
        return await telemetry_sqlite.read(self.reader, device_id, since, limit)

    async def telemetry_batch_count(self) -> int:
        cur = await self.reader.execute("SELECT COUNT(*) FROM telemetry_batches")
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    # -- the write path --------------------------------------------------------------

    async def commit(self, items: Sequence[Received]) -> CommitInfo:
        """Store one batch in one fsync'd transaction; ids already stored are ignored.

        Returns what was new and, per gateway, every record id to ack (duplicates too: the
        gateway did not get our earlier ack, or it would not have resent).
        """
        now = utcnow()
        committed = to_db(now)
        events: list[tuple[Any, ...]] = []
        envelopes: dict[str, Received] = {}
        gaps: list[tuple[Any, ...]] = []
        sms: list[tuple[Any, ...]] = []
        unknown: list[tuple[Any, ...]] = []
        batches: list[tuple[TelemetryBatch, str]] = []
        states: list[tuple[str, GatewayState, str]] = []
        last_seen: dict[str, str] = {}
        acks: dict[str, list[str]] = {}
        records = 0
        for item in items:
            msg, gw = item.msg, item.gateway_id
            received = to_db(item.received_at)
            last_seen[gw] = max(received, last_seen.get(gw, ""))
            if isinstance(msg, GatewayState):
                states.append((gw, msg, received))
                continue
            records += 1
            acks.setdefault(gw, []).append(msg.id)
            if isinstance(msg, EventEnvelope):
                envelopes.setdefault(msg.id, item)
                events.append((
                    msg.id, gw, msg.seq, msg.device_id, msg.kind.value, int(msg.test),
                    msg.lane.value, msg.rule, msg.source, _json(msg.data),
                    to_db_opt(msg.device_ts), msg.device_seq, to_db(msg.gateway_ts), received,
                    committed))
            elif isinstance(msg, TelemetryBatch):
                batches.append((msg, received))
            elif isinstance(msg, GapRecord):
                gaps.append((msg.id, gw, msg.seq, msg.dropped, msg.first_seq, msg.last_seq,
                             to_db(msg.oldest_ts), to_db(msg.newest_ts), msg.reason,
                             to_db(msg.gateway_ts), received, committed))
            elif isinstance(msg, SmsReport):
                sms.append((msg.id, gw, msg.seq, msg.alarm_id, msg.to, msg.status,
                            msg.attempts, to_db_opt(msg.sent_at), msg.error,
                            to_db(msg.gateway_ts), received, committed))
            else:
                unknown.append((msg.id, gw, msg.seq, msg.device_id, msg.source, msg.topic,
                                msg.device_type, to_db(msg.gateway_ts), received, committed))

        # Issue 14: several ingest workers on PostgreSQL. Readers tail the tables below
        # by rowid (care engine, services, visits, installer, the *_after readers), so
        # rowids must become visible in rowid order: a reader that has seen rowid 12
        # never looks below 12 again, and a row 10 committed later would be skipped.
        # The ids are drawn when a row is inserted, so the inserts into tailed tables and
        # the COMMIT take turns across workers (Database.serialise, an advisory lock held
        # to COMMIT) -- and only they: everything else runs in parallel before the lock
        # (decoding, telemetry, which nothing tails), and the lock, the tailed inserts, the
        # gateway updates, the notify and the COMMIT go in one pipeline (one round trip on
        # PostgreSQL), so a worker holds the lock for the server's time on them only.
        # RETURNING gives exactly the rows this commit inserted (a duplicate id is not
        # inserted, ON CONFLICT DO NOTHING), without reading "rowid > before" back.
        # A sequence value burnt by a conflict or a rollback leaves a gap in the rowids
        # for good; readers use "rowid > cursor", never "the next rowid", so a gap is
        # harmless. On SQLite (one writer) the lock is a no-op and the batch is plain
        # statements on the writer connection.
        # On PostgreSQL the transaction does not queue behind this process's others
        # (``concurrent``): the alarm lane's commit runs beside the bulk lane's on a pooled
        # connection of its own. An alarm-only batch is then one round trip: BEGIN goes
        # with the last pipeline (PgConnection), nothing runs before it. Durability is
        # untouched: synchronous_commit stays on, every Ack follows its COMMIT.
        # each gateway's newest health report, encoded before the commit lock is taken
        health = {gw: st for gw, st, _ in states if st.status not in ("online", "offline")}
        health_json = {gw: st.model_dump_json(exclude_none=True) for gw, st in health.items()}
        async with self.db.transaction(concurrent=True) as conn:
            points, new_batches = await self._commit_telemetry(conn, batches, committed)
            # a telemetry-only commit inserts nothing tailed: it needs no turn (below)
            lock: str | None = _COMMIT_LOCK if events or gaps or sms or unknown else None
            finals: dict[str, tuple[Any, ...]] = {}
            log: list[tuple[Any, ...]] = []
            if states:
                # a transition depends on the flag the previous commit left: read it
                # under the lock (the lock and the read in one pipeline, BEGIN with them)
                gws = sorted({gw for gw, _, _ in states})
                [flags] = await self.db.execute_batch(conn, [(
                    f"SELECT id, online FROM gateways WHERE id IN ({','.join('?' * len(gws))})",
                    gws)], serialise=_COMMIT_LOCK)
                lock = None
                finals, log = self._fold_states(
                    states, {str(r[0]): bool(r[1]) for r in flags}, health_json)
            tailed = [
                Rows("INSERT INTO events(id, gateway_id, seq, device_id, kind, test, lane,"
                     " rule, source, data, device_ts, device_seq, gateway_ts, received_at,"
                     " committed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
                     " ON CONFLICT DO NOTHING RETURNING rowid, id", events),
                Rows("INSERT INTO gaps(id, gateway_id, seq, dropped, first_seq, last_seq,"
                     " oldest_ts, newest_ts, reason, gateway_ts, received_at, committed_at)"
                     " VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING RETURNING rowid",
                     gaps),
                Rows("INSERT INTO sms_reports(id, gateway_id, seq, alarm_id, recipient, status,"
                     " attempts, sent_at, error, gateway_ts, received_at, committed_at)"
                     " VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING RETURNING rowid",
                     sms),
                Rows("INSERT INTO unknown_devices(id, gateway_id, seq, device_id, source, topic,"
                     " device_type, gateway_ts, received_at, committed_at)"
                     " VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING RETURNING rowid",
                     unknown),
                Rows("INSERT INTO gateway_log(gateway_id, status, reason, ts, received_at)"
                     f" VALUES (?,?,?,?,?) RETURNING {_LOG_COLUMNS}", log),
            ]
            # gateway rows are updated under the lock when it is taken: two workers
            # updating the same gateways in parallel would wait on each other's row locks
            # until COMMIT. A telemetry-only commit (the bulk lane's) takes no lock: its
            # row locks last for its last pipeline only, and an alarm commit waits for
            # them only if it touches one of the same gateways, never for the other
            # worker's whole turn; the id order of _GATEWAY_UPDATE rules out a deadlock
            nothing: tuple[Any, ...] = (None,) * 6
            updates = [Rows(_GATEWAY_UPDATE, [
                (*finals.get(gw, nothing), ts, ts, gw) for gw, ts in sorted(last_seen.items())])]
            # wakes a care engine in another process; a batch of duplicates only wakes it
            # for nothing (the notify is decided before the inserts say what was new)
            results = await self.db.execute_batch(
                conn, [*tailed, *updates], serialise=lock,
                notify=(COMMITS_CHANNEL,) if events or log else (), commit=True)
        new_events, new_gaps, new_sms, new_unknown, new_log = results[:len(tailed)]
        new_rows = sorted((int(r[0]), str(r[1])) for r in new_events)
        changes = sorted((_log(r) for r in new_log), key=lambda e: e.rowid)
        tails = {name: sorted(int(r[0]) for r in rows) for name, rows in (
            ("gaps", new_gaps), ("sms_reports", new_sms), ("unknown_devices", new_unknown))}
        new_records = (len(new_rows) + sum(len(v) for v in tails.values()) + new_batches)
        return CommitInfo(
            committed_at=now, new_event_count=len(new_rows),
            new_events=lambda: tuple(_stored_events(envelopes, new_rows, now)),
            gateway_changes=tuple(changes),
            event_rowid=new_rows[-1][0] if new_rows else 0,
            gateway_log_rowid=changes[-1].rowid if changes else 0,
            gap_rowid=max(tails["gaps"], default=0),
            sms_rowid=max(tails["sms_reports"], default=0),
            unknown_rowid=max(tails["unknown_devices"], default=0), records=records,
            duplicates=records - new_records, telemetry=tuple(points), acks=acks)

    async def max_rowids(self) -> dict[str, int]:
        """The current cursor of every table (committed rows only)."""
        return await self._max_rowids(self.reader)

    @staticmethod
    async def _max_rowids(conn: Connection) -> dict[str, int]:
        tables = ("events", "gateway_log", "gaps", "sms_reports", "unknown_devices",
                  "telemetry_batches")
        [row] = await conn.execute_fetchall(
            "SELECT " + ", ".join(f"(SELECT COALESCE(MAX(rowid), 0) FROM {t})" for t in tables))
        return {t: int(v) for t, v in zip(tables, row, strict=True)}

    async def _commit_telemetry(self, conn: Connection,
                                batches: list[tuple[TelemetryBatch, str]],
                                committed: str) -> tuple[list[TelemetryPoint], int]:
        """Store the new batches and their readings; return the readings and how many
        batches were new. Runs outside the commit lock (nothing tails these tables): a
        batch id another worker is inserting at the same time waits for that worker's
        COMMIT, then counts as a duplicate; ids go in sorted order, so two workers with
        the same ids never wait for each other in a cycle."""
        if not batches:
            return [], 0
        first: dict[str, tuple[TelemetryBatch, str]] = {}
        for batch, received in batches:
            first.setdefault(batch.id, (batch, received))  # the same batch twice: once
        rows = [(b.id, b.gateway_id, b.seq, len(b.records), to_db(b.gateway_ts), received,
                 committed) for b, received in (first[i] for i in sorted(first))]
        [inserted] = await self.db.execute_batch(conn, [Rows(
            "INSERT INTO telemetry_batches(id, gateway_id, seq, records, gateway_ts,"
            " received_at, committed_at) VALUES (?,?,?,?,?,?,?)"
            " ON CONFLICT DO NOTHING RETURNING id", rows)])
        new_ids = {str(r[0]) for r in inserted}
        new_count = len(new_ids)
        points: list[tuple[str, TelemetryPoint]] = []
        for batch, _ in batches:
            if batch.id not in new_ids:
                continue
            new_ids.discard(batch.id)
            points.extend((batch.id, TelemetryPoint(
                gateway_id=batch.gateway_id, device_id=r.device_id, kind=r.kind.value, ts=r.ts,
                values=r.values, device_seq=r.device_seq)) for r in batch.records)
        if self.telemetry_sqlite:
            await telemetry_sqlite.insert(conn, points)
        return [p for _, p in points], new_count

    @staticmethod
    def _fold_states(states: list[tuple[str, GatewayState, str]], online: dict[str, bool],
                     health_json: dict[str, str]
                     ) -> tuple[dict[str, tuple[Any, ...]], list[tuple[Any, ...]]]:
        """Track online/offline; log transitions only (a retained birth seen again after an
        ingest restart is not news). ``online``: the flags the previous commit left, read
        under the commit lock; ``health_json``: each gateway's newest health report,
        encoded (before the lock). Returns the state columns of ``_GATEWAY_UPDATE`` per gateway
        and the gateway log rows, for the commit's last batch of statements.

        Coalesced per gateway (issue 14: health was half the write load, one awaited UPDATE
        with the full JSON each): the states of one batch are folded in arrival order into
        each gateway's final row, written by one statement per gateway, and only the
        newest health report per gateway is encoded."""
        final: dict[str, _FinalState] = {}
        log: list[tuple[Any, ...]] = []
        for gw, st, received in states:
            was = online.get(gw, False)
            f = final.setdefault(gw, _FinalState())
            if st.status == "online":
                f.birth_at = received
                now_online, reason = True, "birth"
            elif st.status == "offline":
                f.will_at = received
                now_online, reason = False, "will"
            else:
                f.health_at, f.health = received, st
                now_online, reason = True, "health"
            if st.status != "offline" and st.version is not None:
                f.version = st.version
            f.online = now_online
            online[gw] = now_online
            if now_online != was:
                status: Literal["online", "offline"] = "online" if now_online else "offline"
                log.append((gw, status, reason, to_db_opt(st.ts), received))
        updates = {gw: (int(f.online), f.birth_at, f.will_at, f.health_at,
                        health_json[gw] if f.health is not None else None, f.version)
                   for gw, f in final.items()}
        return updates, log

