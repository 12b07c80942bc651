"""The cloud's relational store: SQLite (embedded default) or PostgreSQL (production),
chosen by the database URL, with one call shape and per-component migrations.

    async with db.transaction() as conn:
        cur = await conn.execute("SELECT ... WHERE id = ?", (x,))
        row = await cur.fetchone()          # row[0], row["col"], dict(row)
    cur = await db.conn.execute(...)        # a read outside a transaction
    await db.migrate("component", MIGRATIONS)

Each component (ingest, registry, care, ...) owns its tables and calls ``migrate`` at
start-up; the applied version is kept per component, so components evolve without
editing one shared list. The SQL is the portable subset both engines run (README,
"Portable SQL"); ``db/sql.py`` maps the DDL types for PostgreSQL in one place.

Transactions are serialised within a process on both engines (SQLite has one writer
anyway), so a component's read-then-write runs as it always did; several processes on
PostgreSQL rely on constraints (the ingest dedup is a unique index) and row locks. A
writer already safe beside other processes may skip that turn on PostgreSQL
(``transaction(concurrent=True)``: the ingest commit, so an alarm never waits for its
worker's telemetry transaction).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

import aiosqlite
import psycopg

from eldercare_cloud.db.postgres import PgConnection, PostgresEngine, json_rows
from eldercare_cloud.db.sql import split_script, values_rows
from eldercare_cloud.db.types import Connection, Cursor, Row, Rows, Statement
from eldercare_cloud.errors import StorageError

__all__ = ["DATABASE_ERRORS", "INTEGRITY_ERRORS", "Connection", "Cursor", "Database", "Engine",
           "Leadership", "Row", "Rows", "Statement", "database_url", "lock_rows", "redact_url"]

Engine = Literal["sqlite", "postgresql"]

#: catch these (not an engine's own class) where a unique/foreign key violation is expected
INTEGRITY_ERRORS: tuple[type[Exception], ...] = (sqlite3.IntegrityError, psycopg.IntegrityError)
#: any error raised by either engine's driver
DATABASE_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, psycopg.Error)


def lock_rows(conn: Connection, *, skip_locked: bool = False) -> str:
    """The clause that ends a SELECT which claims its rows for this transaction:
    ``FOR UPDATE`` (wait for another worker's claim to commit, then see its result) or
    ``FOR UPDATE SKIP LOCKED`` (leave rows another worker holds to that worker). Empty on
    SQLite, where ``BEGIN IMMEDIATE`` already makes every transaction the only writer."""
    if isinstance(conn, PgConnection):
        return " FOR UPDATE SKIP LOCKED" if skip_locked else " FOR UPDATE"
    return ""


class Leadership(Protocol):
    async def held(self) -> bool: ...

    async def release(self) -> None: ...


class _AlwaysLeader:
    async def held(self) -> bool:
        return True

    async def release(self) -> None:
        return None


def _channel(name: str) -> str:
    if not name.replace("_", "").isalnum() or not name.isascii() or len(name) > 63:
        raise StorageError(f"invalid notification channel name {name!r}")
    return name


def database_url(target: str | Path) -> str:
    """``sqlite:///relative/path``, ``sqlite:////absolute/path`` or ``postgresql://...``;
    a bare path means SQLite."""
    if isinstance(target, Path):
        return f"sqlite:///{target}"
    if target.startswith(("postgresql://", "postgres://")):
        return "postgresql://" + target.split("://", 1)[1]
    if target.startswith("sqlite:///"):
        return target
    if "://" in target:
        raise StorageError(f"unsupported database URL {redact_url(target)!r}: use "
                           "sqlite:///PATH or postgresql://USER@HOST:PORT/DB")
    return f"sqlite:///{target}"


def redact_url(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class Database:
    """SQLite: one writer connection (WAL, synchronous=FULL) and a read-only connection
    for tailing readers. PostgreSQL: a connection pool. Either way a write lock keeps one
    component's multi-statement transaction from interleaving with another's."""

    def __init__(self, target: str | Path, *, pool_max: int = 10) -> None:
        self.url = database_url(target)
        self.engine: Engine = "postgresql" if self.url.startswith("postgresql://") else "sqlite"
        #: the SQLite file (None on PostgreSQL)
        self.path: Path | None = (Path(self.url.removeprefix("sqlite:///"))
                                  if self.engine == "sqlite" else None)
        self._pg = PostgresEngine(self.url, pool_max=pool_max) \
            if self.engine == "postgresql" else None
        self._conn: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._lock: asyncio.Lock | None = None
        #: SQLite: channels notified in the open transaction, and who listens in-process
        self._notify_pending: set[str] = set()
        self._listeners: dict[str, list[Callable[[], None]]] = {}
        self._leaders: dict[str, Leadership] = {}

    def __repr__(self) -> str:
        return f"Database({redact_url(self.url)!r})"

    async def __aenter__(self) -> Database:
        await self.open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def open(self) -> None:
        self._lock = asyncio.Lock()
        if self._pg is not None:
            await self._pg.open()
            return
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = await aiosqlite.connect(self.path, isolation_level=None)
        self._conn.row_factory = aiosqlite.Row
        await self._conn.execute("PRAGMA journal_mode=WAL")
        await self._conn.execute("PRAGMA synchronous=FULL")
        await self._conn.execute("PRAGMA foreign_keys=ON")
        await self._conn.execute("PRAGMA busy_timeout=5000")
        await self._conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
        )

    async def open_reader(self) -> None:
        """A second, read-only connection for readers that tail committed rows (SQLite);
        on PostgreSQL every read outside a transaction already takes its own connection."""
        if self.engine == "sqlite" and self._reader is None:
            assert self.path is not None
            self._reader = await aiosqlite.connect(self.path)
            await self._reader.execute("PRAGMA query_only=ON")
            await self._reader.execute("PRAGMA busy_timeout=5000")

    async def close(self) -> None:
        for lead in self._leaders.values():
            await lead.release()
        self._leaders.clear()
        if self._reader is not None:
            await self._reader.close()
            self._reader = None
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
        if self._pg is not None:
            await self._pg.close()

    @property
    def conn(self) -> Connection:
        """Reads outside a transaction (inside one, in the same task: its connection)."""
        if self._pg is not None:
            return self._pg.conn
        if self._conn is None:
            raise StorageError("database is not open")
        return self._conn

    @property
    def reader(self) -> Connection:
        """Committed rows only (see ``open_reader``)."""
        if self._pg is not None:
            return self._pg.reader
        if self._reader is None:
            raise StorageError("the read connection is not open (open_reader)")
        return self._reader

    def transaction(self, *, concurrent: bool = False) -> AbstractAsyncContextManager[Connection]:
        """BEGIN … COMMIT on one connection; rolls back on error. On SQLite BEGIN IMMEDIATE
        and an fsync'd commit (synchronous=FULL).

        ``concurrent``: on PostgreSQL, do not wait for this process's other transactions
        (each has a pooled connection of its own); for a writer whose transactions are
        already safe beside another process's (constraints, row or advisory locks), as
        the ingest commit is across workers: then the alarm lane's commit never queues
        behind the same worker's telemetry transaction (issue 14). On SQLite (one
        writer connection) every transaction still takes its turn."""
        if self._pg is not None:
            return self._pg_transaction(concurrent)
        return self._sqlite_transaction()

    @asynccontextmanager
    async def _sqlite_transaction(self) -> AsyncIterator[Connection]:
        assert self._lock is not None, "database is not open"
        async with self._lock:
            conn = self.conn
            try:
                # inside the try: BEGIN runs on aiosqlite's thread even when the await is
                # cancelled, and must then be rolled back like any other failure
                await conn.execute("BEGIN IMMEDIATE")
                yield conn
            except BaseException:
                with contextlib.suppress(sqlite3.Error):  # nothing begun: nothing to undo
                    await conn.execute("ROLLBACK")
                raise
            else:
                await conn.execute("COMMIT")
                self._deliver_notifications()
            finally:
                self._notify_pending.clear()

    def _deliver_notifications(self) -> None:
        for channel in sorted(self._notify_pending):
            for callback in list(self._listeners.get(channel, ())):
                callback()

    @asynccontextmanager
    async def _pg_transaction(self, concurrent: bool) -> AsyncIterator[Connection]:
        assert self._lock is not None and self._pg is not None, "database is not open"
        if concurrent:
            async with self._pg.transaction() as conn:
                yield conn
            return
        async with self._lock, self._pg.transaction() as conn:
            yield conn

    async def notify(self, conn: Connection, channel: str) -> None:
        """Tell every process listening on ``channel`` (``listen``) that this transaction
        committed something: PostgreSQL delivers a NOTIFY at COMMIT, and never when the
        transaction rolls back. A no-op on SQLite (one process)."""
        if isinstance(conn, PgConnection):
            await conn.execute("SELECT pg_notify(?, '')", (_channel(channel),))
        else:  # delivered by _sqlite_transaction after its COMMIT
            self._notify_pending.add(_channel(channel))

    async def serialise(self, conn: Connection, name: str) -> None:
        """Make transactions that call this with the same ``name`` commit one at a time
        across processes (a PostgreSQL advisory lock held to COMMIT), so ids they insert
        after it become visible in id order, which readers tailing by id rely on. SQLite's
        writer is alone already. Take it as late as possible: everything after it, the
        COMMIT included, runs one worker at a time (``execute_batch(serialise=...)``
        takes it together with the transaction's last statements)."""
        if isinstance(conn, PgConnection):
            await conn.execute("SELECT pg_advisory_xact_lock(?)",
                               (zlib.crc32(name.encode()),))

    async def execute_batch(self, conn: Connection, statements: Sequence[Statement], *,
                            serialise: str | None = None, notify: Sequence[str] = (),
                            commit: bool = False) -> list[list[Row]]:
        """Run ``statements`` in order inside the open transaction and return each one's
        rows (a ``Rows`` item: all its rows); with ``serialise``, first take that lock
        (see ``serialise``), and with ``notify``, notify those channels (see ``notify``).
        With ``commit`` the batch ends the transaction: PostgreSQL gets the COMMIT in the
        same pipeline (a lock taken here is then released without waiting for this
        process to send it), SQLite commits as the ``transaction()`` block ends, and
        nothing may run in the block after it.

        On PostgreSQL the lot (the lock included) goes in one pipeline: one round trip,
        however many statements, with every parameter prepared before anything is sent.
        Meant as a transaction's last step, so that a lock taken here is held for that
        round trip and the COMMIT only (issue 14: two ingest workers took turns for whole
        batches while the lock was taken first)."""
        if not isinstance(conn, PgConnection):
            out: list[list[Row]] = []
            for item in statements:
                if not isinstance(item, Rows):
                    out.append(list(await conn.execute_fetchall(*item)))
                elif "RETURNING" not in item.sql.upper():
                    # one hop to the database thread for all the rows (an UPDATE per row)
                    await conn.executemany(item.sql, item.rows)
                    out.append([])
                else:
                    out.append([r for sql, params in values_rows(item.sql, item.rows)
                                for r in await conn.execute_fetchall(sql, params)])
            for channel in notify:
                await self.notify(conn, channel)
            return out
        plan: list[tuple[str, Sequence[object]]] = []
        spans: list[tuple[int, int]] = []
        if serialise is not None:
            plan.append(("SELECT pg_advisory_xact_lock(?)", (zlib.crc32(serialise.encode()),)))
        for item in statements:
            first = len(plan)
            if isinstance(item, Rows):
                as_json = json_rows(item.sql, item.rows) if item.rows else None
                if as_json is not None:
                    plan.append((as_json[0], (as_json[1],)))
                else:  # multi-row VALUES, or the statement once per row (an UPDATE)
                    plan.extend(values_rows(item.sql, item.rows))
            else:
                plan.append(item)
            spans.append((first, len(plan)))
        plan.extend(("SELECT pg_notify(?, '')", (_channel(c),)) for c in notify)
        results: list[list[Row]] = [
            list(r) for r in await conn.execute_pipelined(plan, commit=commit)]
        return [[row for rows in results[lo:hi] for row in rows] for lo, hi in spans]

    @asynccontextmanager
    async def listen(self, channel: str, callback: Callable[[], None]) -> AsyncIterator[None]:
        """While inside: call ``callback`` on the event loop for every ``notify`` on
        ``channel`` committed by any process (PostgreSQL: LISTEN on a connection of its
        own, reconnected if it drops) or by this ``Database`` (SQLite, where no other
        process writes)."""
        if self._pg is None:
            callbacks = self._listeners.setdefault(_channel(channel), [])
            callbacks.append(callback)
            try:
                yield
            finally:
                callbacks.remove(callback)
            return
        task = asyncio.create_task(self._pg.listen(_channel(channel), callback),
                                   name=f"db-listen-{channel}")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def leadership(self, name: str) -> Leadership:
        """The right to run ``name`` (e.g. the care engine) while other processes on this
        database stand by: ``await lead.held()`` before each pass. On PostgreSQL a session
        advisory lock that PostgreSQL itself releases when the holder's connection ends
        (its process exits or dies), so a standby takes over on its next check. On SQLite
        (one process) always held."""
        lead = self._leaders.get(name)
        if lead is None:
            lead = self._pg.leadership(name) if self._pg is not None else _AlwaysLeader()
            self._leaders[name] = lead
        return lead

    async def migrate(self, component: str, migrations: Sequence[str]) -> int:
        """Apply the migrations of one component that are not applied yet; return its version."""
        async with self.transaction() as conn:
            if self._pg is not None:
                await conn.execute("SELECT pg_advisory_xact_lock(?)",
                                   (self._pg.migration_lock,))
            cur = await conn.execute(
                "SELECT version FROM schema_version WHERE component = ?", (component,))
            row = await cur.fetchone()
            current = int(row[0]) if row else 0
            if current > len(migrations):
                raise StorageError(f"{component} schema version {current} is newer than this "
                                   f"code ({len(migrations)})")
            for script in migrations[current:]:
                statements = (self._pg.statements(script) if self._pg is not None
                              else split_script(script))
                for statement in statements:
                    await conn.execute(statement)
            await conn.execute(
                "INSERT INTO schema_version(component, version) VALUES (?, ?) "
                "ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                (component, len(migrations)),
            )
        return len(migrations)
