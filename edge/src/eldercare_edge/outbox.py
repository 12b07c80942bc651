"""The store-and-forward outbox: SQLite (WAL) through aiosqlite, three verbs.

``put`` a record, ``read_batch`` what should go next, ``ack`` the ids the cloud
committed. Nothing else deletes a record, except eviction of the oldest telemetry
under the disk cap, which queues a :class:`GapRecord` so the cloud knows.

Why the details are what they are:

* Lanes. Life-safety alarms have their own lane, read before any backlog, never
  evicted; a transaction that holds an alarm runs with ``PRAGMA synchronous=FULL``
  so the WAL is fsync'd before ``put`` returns and the device may be told
  "received". Other lanes commit with ``synchronous=NORMAL`` (durable against a
  process crash, cheaper on flash). The gateway puts alarms with ``defer_sync``: the
  commit is NORMAL (durable against a crash of the process), the forwarder may send the
  alarm at once, and :meth:`Outbox.sync` fsyncs the WAL beside that send, before the
  device is told "received". The fsync (4 ms median, 16 ms p99 on a busy shared disk)
  is then no longer in the alarm's way to the cloud.
* A seq is never handed out twice, even across a power cut. Commits without an fsync
  are lost by a power cut (not by a crash of the process), and with them the seqs they
  took, which the cloud may already have seen. So a write that would leave more than
  ``SYNC_EVERY_SEQS`` seqs unsynced is fully synced, and an outbox opened after an
  unclean shutdown (its ``open`` mark still set) jumps ``SEQ_JUMP_AFTER_CRASH`` ahead.
* ``seq`` is per gateway and monotonic across restarts: it lives in the ``meta``
  table and moves in the same transaction as the rows it numbers. The record id
  ``{gateway_id}-{seq}`` is fixed at ``put`` time, so a resend carries the same id
  and the cloud can drop the duplicate.
* Storage never sees a transport: it stores encoded bytes and a lane; the
  forwarder decides topics.
* A small ``state`` table (key → bytes) keeps what the local rules must remember
  across a restart. It is not a lane and nothing reads it but :meth:`Outbox.load_state`;
  it lives here so a rules snapshot can be written in the same transaction as the
  alerts it explains (a restart then neither repeats nor forgets them).
* Once-keys (a device message's identity, an unknown device's first sighting) are kept
  for ``once_retention_s`` (7 days by default), then pruned: one row per device event
  would otherwise grow the file for the gateway's whole life. A device's resends come
  within minutes (a firmware retry) or when the home broker redelivers at the gateway's
  next connection; so the age counts from the newest key stored, not from now, and a
  gateway switched off for longer than the retention still recognises what its broker
  redelivers when it comes back. An unknown device still around after the retention is
  reported once more.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import aiosqlite

from eldercare_edge.clock import Clock, SystemClock, aware_now
from eldercare_edge.errors import OutboxError
from eldercare_protocols.uplink import GapRecord, Lane, encode

T = TypeVar("T")


async def _to_the_end(write: Coroutine[Any, Any, T]) -> T:
    """Run a write transaction to its end even if the caller is cancelled meanwhile (a
    stopping gateway cancels its tasks). Its statements run on aiosqlite's thread whatever
    happens to the awaiting task, so a cancel half-way would leave a COMMIT done behind
    in-memory counters that were rolled back, or a BEGIN never ended; the caller's
    cancellation is raised once the transaction is over."""
    task = asyncio.ensure_future(write)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if not task.done():
            await asyncio.wait([task])
        if not task.cancelled():
            task.exception()    # retrieved: the cancellation is what the caller gets
        raise

log = logging.getLogger(__name__)

#: lanes in the order a batch is read: alarms always before any backlog
LANE_ORDER: tuple[Lane, ...] = (Lane.ALARM, Lane.EVENT, Lane.TELEMETRY)

Builder = Callable[[int, str], bytes]
"""Builds the encoded record once the outbox has given it its ``seq`` and ``id``."""

#: at most this many seqs (plus one write's worth) are handed out between two fsyncs...
SYNC_EVERY_SEQS = 10_000
#: ...so an outbox opened after an unclean shutdown starts this far ahead
SEQ_JUMP_AFTER_CRASH = 100_000
#: how long a once-key is kept (see the module docstring); ``outbox.once_retention_s``
ONCE_RETENTION_S = 7 * 86_400.0
#: expired once-keys are deleted at most this often (and at open)
ONCE_PRUNE_EVERY_S = 3_600.0


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox(
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    lane TEXT NOT NULL,
    device_id TEXT,
    created REAL NOT NULL,
    size INTEGER NOT NULL,
    items INTEGER NOT NULL DEFAULT 1,
    first_ts REAL,
    last_ts REAL,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_lane_seq ON outbox(lane, seq);
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS once_keys(key TEXT PRIMARY KEY, record_id TEXT NOT NULL,
                                     stored REAL);
CREATE TABLE IF NOT EXISTS state(key TEXT PRIMARY KEY, value BLOB NOT NULL, saved REAL NOT NULL);
"""

#: ``IN`` over a JSON array bound as one parameter: one prepared statement whatever the
#: count. With ``IN (?,?,…)`` each count was a statement of its own, and the statement
#: cache (128 per connection) filled with up to 1,000-parameter statements, ~10 MB of
#: SQLite memory that crept up with the variety of batch sizes a long outage sees.
_IN_JSON = "(SELECT value FROM json_each(?))"

_PUT_STATE = ("INSERT INTO state(key, value, saved) VALUES (?, ?, ?)"
              " ON CONFLICT(key) DO UPDATE SET value=excluded.value, saved=excluded.saved")


@dataclass(frozen=True)
class Draft:
    """A record waiting for its seq and id.

    ``once_key``: a draft with a key already stored (within the outbox's once-key
    retention, across restarts too) is dropped, e.g. a device's resend, or one "unknown
    device seen" per device. ``items``, ``first_ts`` and
    ``last_ts`` describe telemetry batches for the gap record if they are evicted.
    """

    lane: Lane
    build: Builder
    device_id: str | None = None
    once_key: str | None = None
    items: int = 1
    first_ts: datetime | None = None
    last_ts: datetime | None = None


@dataclass(frozen=True)
class Stored:
    seq: int
    id: str
    lane: Lane
    device_id: str | None


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A stored record as read back; ``payload`` is the encoded record, sent as is."""

    seq: int
    id: str
    lane: Lane
    device_id: str | None
    created_ts: float
    payload: bytes

    @property
    def created(self) -> datetime:
        return _dt(self.created_ts)


def record_id(gateway_id: str, seq: int) -> str:
    """Stable idempotency id; zero-padded so even short gateway ids meet the 8-char minimum."""
    return f"{gateway_id}-{seq:06d}"


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


class Outbox:
    """One SQLite file per gateway; one connection, one writer at a time."""

    def __init__(self, path: Path, gateway_id: str, *, max_bytes: int = 50_000_000,
                 clock: Clock | None = None,
                 once_retention_s: float = ONCE_RETENTION_S) -> None:
        self.path = path
        self.gateway_id = gateway_id
        self.max_bytes = max_bytes
        self.once_retention_s = once_retention_s
        self._once_pruned_at: float | None = None
        self.pruned_once_keys = 0
        self._clock = clock or SystemClock()
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._next_seq = 1
        self._bytes = 0
        self._sync_mode = ""
        #: seqs below this are on disk for sure (fsync'd)
        self._synced_next = 1
        self.evicted_records = 0
        self.evicted_items = 0
        self.over_cap_puts = 0

    # ---------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> Outbox:
        await self.open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connecting = aiosqlite.connect(self.path, isolation_level=None)
        try:
            db = await connecting
        except (sqlite3.Error, OSError) as exc:
            # aiosqlite (0.22) stops its worker thread after a failed connect but leaves
            # the stop to finish on its own; wait for it, so the thread never reports to a
            # loop that has closed meanwhile (a gateway exiting on this very error)
            worker = getattr(connecting, "_thread", None)
            if worker is not None:
                await asyncio.to_thread(worker.join, 5.0)
            raise OutboxError(f"cannot open outbox {self.path}: {exc}") from exc
        self._db = db
        mode = await (await db.execute("PRAGMA journal_mode=WAL")).fetchone()
        if mode is None or str(mode[0]).lower() != "wal":
            raise OutboxError(f"outbox {self.path} refused WAL mode (got {mode})")
        await self._set_sync("FULL")
        await db.executescript(_SCHEMA)
        await self._upgrade_once_keys()
        row = await (await db.execute("SELECT value FROM meta WHERE key='next_seq'")).fetchone()
        top = await (await db.execute("SELECT MAX(seq) FROM outbox")).fetchone()
        stored_next = int(row[0]) if row else 1
        highest = int(top[0]) if top and top[0] is not None else 0
        # never hand out a seq twice, even if meta were somehow behind the rows
        self._next_seq = max(stored_next, highest + 1)
        mark = await (await db.execute("SELECT value FROM meta WHERE key='open'")).fetchone()
        if mark is not None and int(mark[0]):
            # the last run ended without close(): a power cut may have taken seqs the cloud
            # has seen (see the module docstring)
            log.warning("outbox %s was not closed cleanly: seq jumps from %d by %d",
                        self.path, self._next_seq, SEQ_JUMP_AFTER_CRASH)
            self._next_seq += SEQ_JUMP_AFTER_CRASH
        await db.execute("INSERT INTO meta(key, value) VALUES('next_seq', ?), ('open', 1)"
                         " ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                         (self._next_seq,))   # synchronous=FULL (set above)
        self._synced_next = self._next_seq
        size = await (await db.execute("SELECT COALESCE(SUM(size), 0) FROM outbox")).fetchone()
        self._bytes = int(size[0]) if size else 0
        await self._prune_once_keys()

    async def _upgrade_once_keys(self) -> None:
        """An outbox written before once-keys expired has no ``stored`` column: its keys
        count as stored now, so they are kept one full retention from the upgrade."""
        db = self.db
        columns = {str(r[1]) for r in await (await db.execute("PRAGMA table_info(once_keys)")
                                             ).fetchall()}
        if "stored" not in columns:
            await db.execute("ALTER TABLE once_keys ADD COLUMN stored REAL")
        await db.execute("UPDATE once_keys SET stored=? WHERE stored IS NULL",
                         (aware_now(self._clock).timestamp(),))
        await db.execute("CREATE INDEX IF NOT EXISTS once_keys_stored ON once_keys(stored)")

    async def _prune_once_keys(self) -> None:
        """Delete once-keys older than the retention, counted back from the newest key (or
        from now, if the clock is behind it). Runs inside the caller's transaction, if any."""
        now = aware_now(self._clock).timestamp()
        self._once_pruned_at = now
        row = await (await self.db.execute("SELECT MAX(stored) FROM once_keys")).fetchone()
        if row is None or row[0] is None:
            return
        cutoff = min(now, float(row[0])) - self.once_retention_s
        cur = await self.db.execute("DELETE FROM once_keys WHERE stored < ?", (cutoff,))
        if cur.rowcount > 0:
            self.pruned_once_keys += cur.rowcount
            log.info("outbox %s: pruned %d once-keys older than %.0f s", self.path,
                     cur.rowcount, self.once_retention_s)

    def _once_prune_due(self) -> bool:
        now = aware_now(self._clock).timestamp()
        every = min(ONCE_PRUNE_EVERY_S, self.once_retention_s / 10)
        # a clock set back (or far ahead) counts as due: the cutoff is computed afresh
        return self._once_pruned_at is None or abs(now - self._once_pruned_at) >= every

    async def close(self) -> None:
        if self._db is not None:
            try:
                await self._set_sync("FULL")
                await self._db.execute("UPDATE meta SET value=0 WHERE key='open'")
            except sqlite3.Error as exc:   # closing anyway; the next open then jumps seq
                log.warning("outbox %s: clean-close mark not written: %s", self.path, exc)
            db, self._db = self._db, None
            await db.close()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise OutboxError("outbox is not open")
        return self._db

    @property
    def is_open(self) -> bool:
        return self._db is not None

    @property
    def next_seq(self) -> int:
        return self._next_seq

    @property
    def size_bytes(self) -> int:
        return self._bytes

    async def _set_sync(self, mode: str) -> None:
        if self._sync_mode != mode:
            await self.db.execute(f"PRAGMA synchronous={mode}")
            self._sync_mode = mode

    # ---------------------------------------------------------------- put

    async def put(self, draft: Draft) -> Stored | None:
        """Store one record; returns None only for a ``once_key`` already stored."""
        stored = await self.put_many([draft])
        return stored[0] if stored else None

    async def put_many(self, drafts: Sequence[Draft],
                       state: Mapping[str, bytes] | None = None, *,
                       defer_sync: bool = False) -> list[Stored]:
        """Store drafts in one transaction; alarms make it a fully fsync'd one, unless
        ``defer_sync``: then the caller must ``await sync()`` before it tells a device its
        alarm was received. ``state`` rows (see :meth:`save_state`) are written in the
        same transaction."""
        return await _to_the_end(self._put_many(drafts, state, defer_sync))

    async def sync(self) -> None:
        """fsync the WAL: every write committed so far is on disk. Runs on a thread of its
        own, so the forwarder reads and sends meanwhile."""
        upto = self._next_seq
        wal = self.path.with_name(self.path.name + "-wal")
        try:
            await asyncio.to_thread(_fsync, wal if wal.exists() else self.path)
        except OSError as exc:
            raise OutboxError(f"outbox sync failed: {exc}") from exc
        self._synced_next = max(self._synced_next, upto)

    async def _put_many(self, drafts: Sequence[Draft],
                        state: Mapping[str, bytes] | None, defer_sync: bool) -> list[Stored]:
        if not drafts:
            if state:
                await self.save_state(state)
            return []
        async with self._lock:
            db = self.db
            has_alarm = any(d.lane is Lane.ALARM for d in drafts)
            full = ((has_alarm and not defer_sync)
                    or self._next_seq + len(drafts) - self._synced_next > SYNC_EVERY_SEQS)
            await self._set_sync("FULL" if full else "NORMAL")
            seq0 = self._next_seq
            bytes0 = self._bytes
            try:
                # BEGIN inside the try: a task cancelled while it waits for BEGIN (which
                # still runs on aiosqlite's thread) must roll back, or the connection is
                # left inside a transaction and every later write fails
                await db.execute("BEGIN IMMEDIATE")
                # not in an alarm's write: the next other write with a once-key does it
                if not has_alarm and self._once_prune_due() and any(d.once_key
                                                                    for d in drafts):
                    await self._prune_once_keys()
                stored, rows, once = await self._number(drafts)
                await db.executemany(
                    "INSERT INTO outbox(seq, id, lane, device_id, created, size, items,"
                    " first_ts, last_ts, payload) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
                if once:
                    await db.executemany(
                        "INSERT INTO once_keys(key, record_id, stored) VALUES (?, ?, ?)",
                        once)
                if state:
                    await self._write_state(state)
                if self._bytes > self.max_bytes:
                    await self._evict(has_alarm)
                await db.execute(
                    "INSERT INTO meta(key, value) VALUES('next_seq', ?)"
                    " ON CONFLICT(key) DO UPDATE SET value=excluded.value", (self._next_seq,))
                await db.execute("COMMIT")
                if full:
                    self._synced_next = self._next_seq
            except BaseException as exc:
                self._next_seq, self._bytes = seq0, bytes0
                await self._rollback()
                if isinstance(exc, sqlite3.Error):
                    raise OutboxError(f"outbox write failed: {exc}") from exc
                raise
            return stored

    async def save_state(self, state: Mapping[str, bytes]) -> None:
        """Replace state rows in their own transaction (``synchronous=NORMAL``: durable
        against a crash of the process, which is what a restart needs)."""
        await _to_the_end(self._save_state(state))

    async def _save_state(self, state: Mapping[str, bytes]) -> None:
        if not state:
            return
        async with self._lock:
            await self._set_sync("NORMAL")
            try:
                await self.db.execute("BEGIN IMMEDIATE")   # (inside the try: see put_many)
                await self._write_state(state)
                await self.db.execute("COMMIT")
            except BaseException as exc:
                await self._rollback()
                if isinstance(exc, sqlite3.Error):
                    raise OutboxError(f"outbox state write failed: {exc}") from exc
                raise

    async def _write_state(self, state: Mapping[str, bytes]) -> None:
        now = aware_now(self._clock).timestamp()
        await self.db.executemany(_PUT_STATE, [(k, v, now) for k, v in state.items()])

    async def load_state(self, key: str) -> bytes | None:
        row = await (await self.db.execute("SELECT value FROM state WHERE key=?", (key,))
                     ).fetchone()
        return None if row is None else bytes(row[0])

    async def _number(self, drafts: Sequence[Draft]
                      ) -> tuple[list[Stored], list[tuple[Any, ...]], list[tuple[str, str, float]]]:
        now = aware_now(self._clock).timestamp()
        stored: list[Stored] = []
        rows: list[tuple[Any, ...]] = []
        once: list[tuple[str, str, float]] = []
        keys = [d.once_key for d in drafts if d.once_key]
        known: set[str] = set()
        if keys:
            # one statement whatever the count (see _IN_JSON)
            cur = await self.db.execute(
                f"SELECT key FROM once_keys WHERE key IN {_IN_JSON}", (json.dumps(keys),))
            known = {str(r[0]) for r in await cur.fetchall()}
        for d in drafts:
            if d.once_key is not None:
                if d.once_key in known:
                    continue
                known.add(d.once_key)
            seq = self._next_seq
            rid = record_id(self.gateway_id, seq)
            payload = d.build(seq, rid)
            self._next_seq += 1
            self._bytes += len(payload)
            rows.append((seq, rid, d.lane.value, d.device_id, now, len(payload), d.items,
                         _ts(d.first_ts), _ts(d.last_ts), payload))
            if d.once_key is not None:
                once.append((d.once_key, rid, now))
            stored.append(Stored(seq, rid, d.lane, d.device_id))
        return stored, rows, once

    async def _rollback(self) -> None:
        try:
            await self.db.execute("ROLLBACK")
        except sqlite3.Error as exc:  # nothing more to undo; the first error is the one raised
            log.debug("rollback after a failed write: %s", exc)

    async def _evict(self, has_alarm: bool) -> None:
        """Drop the oldest telemetry until under the cap; queue one gap record for them."""
        db = self.db
        need = self._bytes - self.max_bytes + 512  # room for the gap record itself
        cur = await db.execute(
            "SELECT seq, size, items, first_ts, last_ts, created FROM outbox"
            " WHERE lane='telemetry' ORDER BY seq")
        victims: list[tuple[int, int, int, float, float]] = []
        freed = 0
        async for seq, size, items, first_ts, last_ts, created in cur:
            if freed >= need:
                break
            victims.append((int(seq), int(size), int(items), float(first_ts or created),
                            float(last_ts or created)))
            freed += int(size)
        await cur.close()
        if not victims:
            self.over_cap_puts += 1
            log.warning("outbox over its cap (%d > %d bytes) with no telemetry left to evict;"
                        " keeping alarms and events", self._bytes, self.max_bytes)
            return
        await db.executemany("DELETE FROM outbox WHERE seq=?", [(v[0],) for v in victims])
        self._bytes -= freed
        dropped = sum(v[2] for v in victims)
        self.evicted_records += len(victims)
        self.evicted_items += dropped
        seq = self._next_seq
        rid = record_id(self.gateway_id, seq)
        gap = GapRecord(id=rid, seq=seq, gateway_id=self.gateway_id,
                        gateway_ts=aware_now(self._clock), dropped=dropped,
                        first_seq=victims[0][0], last_seq=victims[-1][0],
                        oldest_ts=_dt(min(v[3] for v in victims)),
                        newest_ts=_dt(max(v[4] for v in victims)))
        payload = encode(gap)
        self._next_seq += 1
        self._bytes += len(payload)
        await db.execute(
            "INSERT INTO outbox(seq, id, lane, device_id, created, size, items, payload)"
            " VALUES (?,?,?,?,?,?,1,?)",
            (seq, rid, Lane.EVENT.value, None, aware_now(self._clock).timestamp(), len(payload),
             payload))
        log.warning("outbox cap of %d bytes reached: evicted %d telemetry records (%d readings),"
                    " queued gap record %s", self.max_bytes, len(victims), dropped, rid)

    # ---------------------------------------------------------------- read / ack

    async def read_batch(self, limit: int, after: Mapping[Lane, int] | None = None,
                         lanes: Sequence[Lane] = LANE_ORDER,
                         max_bytes: int | None = None,
                         first_may_exceed: bool = True) -> list[OutboxItem]:
        """Up to ``limit`` records, alarms first, then events, then telemetry, each in seq
        order; ``after`` skips what the caller already has in flight per lane.

        ``max_bytes`` bounds the payload bytes read: a telemetry batch is ~100 times the
        size of an event, so a count alone does not bound the memory a read takes. A first
        record larger than that is read alone when ``first_may_exceed`` (nothing would
        ever move otherwise). The sizes are looked up first (no payload read), then only
        the records that fit are fetched."""
        out: list[OutboxItem] = []
        after = after or {}
        budget = max_bytes
        for lane in (lane for lane in LANE_ORDER if lane in lanes):
            room = limit - len(out)
            if room <= 0 or (budget is not None and budget <= 0 and out):
                break
            start = after.get(lane, 0)
            if budget is None:
                cur = await self.db.execute(
                    "SELECT seq, id, device_id, created, payload FROM outbox"
                    " WHERE lane=? AND seq>? ORDER BY seq LIMIT ?", (lane.value, start, room))
            else:
                sizes = await (await self.db.execute(
                    "SELECT seq, size FROM outbox WHERE lane=? AND seq>? ORDER BY seq LIMIT ?",
                    (lane.value, start, room))).fetchall()
                last, taken = start, 0
                for seq, size in sizes:
                    if taken and taken + int(size) > budget:
                        break
                    if not taken and int(size) > budget and (out or not first_may_exceed):
                        break   # nothing of this lane fits beside what was read before
                    taken += int(size)
                    last = int(seq)
                if last == start:
                    continue
                budget -= taken
                cur = await self.db.execute(
                    "SELECT seq, id, device_id, created, payload FROM outbox"
                    " WHERE lane=? AND seq>? AND seq<=? ORDER BY seq",
                    (lane.value, start, last))
            out.extend([OutboxItem(seq, rid, lane, device_id, created, payload)
                        for seq, rid, device_id, created, payload in await cur.fetchall()])
        return out

    async def ack(self, ids: Iterable[str]) -> list[Stored]:
        """Delete what the cloud committed; returns the records that were still here."""
        return await _to_the_end(self._ack(ids))

    async def _ack(self, ids: Iterable[str]) -> list[Stored]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        gone: list[Stored] = []
        async with self._lock:
            await self._set_sync("NORMAL")
            db = self.db
            try:
                await db.execute("BEGIN IMMEDIATE")   # (inside the try: see put_many)
                for i in range(0, len(wanted), 500):
                    chunk = wanted[i:i + 500]
                    cur = await db.execute(
                        f"DELETE FROM outbox WHERE id IN {_IN_JSON}"
                        " RETURNING seq, id, lane, device_id, size", (json.dumps(chunk),))
                    for seq, rid, lane, device_id, size in await cur.fetchall():
                        gone.append(Stored(int(seq), str(rid), Lane(lane), device_id))
                        self._bytes -= int(size)
                await db.execute("COMMIT")
            except BaseException:
                await self._rollback()
                raise
        gone.sort(key=lambda s: s.seq)
        return gone

    # ---------------------------------------------------------------- inspection

    async def depth(self) -> dict[Lane, int]:
        cur = await self.db.execute("SELECT lane, COUNT(*) FROM outbox GROUP BY lane")
        counts = {Lane(lane): int(n) for lane, n in await cur.fetchall()}
        return {lane: counts.get(lane, 0) for lane in LANE_ORDER}

    async def oldest_created(self) -> datetime | None:
        row = await (await self.db.execute("SELECT MIN(created) FROM outbox")).fetchone()
        return None if row is None or row[0] is None else _dt(float(row[0]))

    async def alarms_older_than(self, when: datetime, limit: int = 100) -> list[OutboxItem]:
        """Alarms still waiting for the cloud since before ``when`` (for the SMS fallback)."""
        cur = await self.db.execute(
            "SELECT seq, id, device_id, created, payload FROM outbox"
            " WHERE lane='alarm' AND created<=? ORDER BY seq LIMIT ?",
            (when.timestamp(), limit))
        return [OutboxItem(int(s), str(i), Lane.ALARM, d, float(c), bytes(p))
                for s, i, d, c, p in await cur.fetchall()]

    async def contains(self, record_id_: str) -> bool:
        cur = await self.db.execute("SELECT 1 FROM outbox WHERE id=?", (record_id_,))
        return await cur.fetchone() is not None
