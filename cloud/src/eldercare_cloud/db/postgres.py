"""PostgreSQL through psycopg 3 (async) and a psycopg_pool connection pool.

Domains keep SQLite's call shape (``?`` placeholders, cursors with fetchone/fetchall,
rows indexed by position and by name). Here:

- a transaction is a real one, on one pooled connection held until COMMIT/ROLLBACK;
  reads through ``db.conn`` made inside it (same task) go to that same connection, so
  they see its uncommitted writes as they do on SQLite's single connection;
- ``db.conn`` outside a transaction takes any pooled connection in autocommit mode,
  runs the statement, buffers the result and gives the connection back at once (no
  cursor ever holds a connection);
- results come back as :class:`PgRow`; booleans are sent as 0/1 (the schema's booleans
  are INTEGER) and NUMERIC results (SUM/AVG of integers) as int or float, as SQLite does.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import zlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.abc import Buffer
from psycopg.adapt import Dumper, Loader
from psycopg.rows import RowMaker
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from eldercare_cloud.db.sql import (
    insert_rows,
    json_insert,
    postgres_ddl,
    postgres_params,
    split_script,
)
from eldercare_cloud.errors import StorageError

log = logging.getLogger(__name__)

#: rows per multi-row INSERT that executemany sends
_ROWS_PER_INSERT = 500

#: every worker migrates under this advisory lock, so two starting at once do not race
_MIGRATION_LOCK = zlib.crc32(b"eldercare-cloud-migrations")


class PgRow:
    """A row like ``sqlite3.Row``: by index, by (case-insensitive) name, ``dict(row)``."""

    __slots__ = ("_index", "_names", "_values")

    def __init__(self, values: tuple[Any, ...], names: tuple[str, ...],
                 index: dict[str, int]) -> None:
        self._values = values
        self._names = names
        self._index = index

    def __getitem__(self, key: int | str, /) -> Any:
        if isinstance(key, str):
            try:
                return self._values[self._index[key.lower()]]
            except KeyError:
                raise IndexError(f"no column named {key!r}") from None
        return self._values[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> list[str]:
        return list(self._names)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PgRow):
            return self._names == other._names and self._values == other._values
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-looking, as sqlite3.Row compares

    def __repr__(self) -> str:
        return f"PgRow({dict(zip(self._names, self._values, strict=True))!r})"


def _row_factory(cursor: psycopg.AsyncCursor[Any]) -> RowMaker[PgRow]:
    desc = cursor.description
    names = tuple(d.name for d in desc) if desc else ()
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        index.setdefault(name.lower(), i)

    def make(values: Sequence[Any]) -> PgRow:
        return PgRow(tuple(values), names, index)

    return make


class _BoolAsInteger(Dumper):
    """Booleans are INTEGER 0/1 in the portable schema."""

    oid = psycopg.adapters.types["int8"].oid

    def dump(self, obj: Any) -> Buffer:
        return b"1" if obj else b"0"


class _NumericAsNumber(Loader):
    """SUM/AVG over BIGINT are NUMERIC: give int or float (as SQLite), never Decimal."""

    def load(self, data: Buffer) -> Any:
        text = bytes(data).decode()
        if text in ("NaN", "Infinity", "-Infinity"):
            return float(text)
        return float(text) if "." in text or "e" in text.lower() else int(text)


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    conn.adapters.register_dumper(bool, _BoolAsInteger)
    conn.adapters.register_loader("numeric", _NumericAsNumber)


class PgCursor:
    """A finished statement's result, buffered: reading it needs no connection."""

    __slots__ = ("_pos", "_rowcount", "_rows")

    def __init__(self, rows: list[PgRow], rowcount: int) -> None:
        self._rows = rows
        self._pos = 0
        self._rowcount = rowcount

    @property
    def rowcount(self) -> int:
        return self._rowcount

    async def fetchone(self) -> PgRow | None:
        if self._pos >= len(self._rows):
            return None
        self._pos += 1
        return self._rows[self._pos - 1]

    async def fetchall(self) -> list[PgRow]:
        rows = self._rows[self._pos:]
        self._pos = len(self._rows)
        return rows


def json_rows(sql: str, rows: Sequence[Sequence[Any]]) -> tuple[str, str] | None:
    """(statement, JSON parameter) inserting ``rows`` in one go (see ``sql.json_insert``),
    or None if the statement or a value does not fit (a float that is not finite, a
    value JSON has no type for): then the rows go as bound parameters."""
    shape = json_insert(sql)
    if shape is None:
        return None
    statement, cols = shape
    try:
        payload = json.dumps(
            [dict(zip(cols, [int(v) if isinstance(v, bool) else v for v in row],
                      strict=True)) for row in rows],
            allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return None
    return statement, payload


def _params(parameters: Iterable[Any] | None) -> tuple[Any, ...]:
    # always a sequence (never None): psycopg then unescapes the %% of postgres_params
    return () if parameters is None else tuple(parameters)


async def _run(conn: psycopg.AsyncConnection[PgRow], sql: str,
               parameters: Iterable[Any] | None) -> PgCursor:
    async with conn.cursor() as cur:
        await cur.execute(postgres_params(sql), _params(parameters))
        rows = await cur.fetchall() if cur.description is not None else []
        return PgCursor(rows, cur.rowcount)


class PgConnection:
    """One pooled connection, inside a transaction."""

    def __init__(self, conn: psycopg.AsyncConnection[PgRow]) -> None:
        self.raw = conn
        #: BEGIN was sent: it goes with the transaction's first statement (in the same
        #: pipeline when that is ``execute_pipelined``: an alarm-only ingest commit is one
        #: round trip, BEGIN to COMMIT); a transaction that ran nothing sends nothing
        self.begun = False
        #: the transaction's COMMIT went with its last pipeline (``execute_pipelined``)
        self.committed = False

    async def _open(self) -> None:
        if self.committed:
            raise StorageError("this transaction was committed by its last batch of "
                               "statements: nothing may follow them")
        if not self.begun:
            await self.raw.execute("BEGIN")
            self.begun = True

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None, /) -> PgCursor:
        await self._open()
        return await _run(self.raw, sql, parameters)

    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]], /
                          ) -> PgCursor:
        seq = [tuple(p) for p in parameters]
        if not seq:
            if self.committed:
                await self._open()  # raises
            return PgCursor([], 0)
        await self._open()
        parts = insert_rows(sql)
        as_json = json_rows(sql, seq) if parts is not None and len(seq) > 1 else None
        async with self.raw.cursor() as cur:
            if as_json is not None:
                await cur.execute(postgres_params(as_json[0]), (as_json[1],))
                return PgCursor([], cur.rowcount)
            if parts is None or len(seq) == 1:
                await cur.executemany(postgres_params(sql), seq)
                return PgCursor([], cur.rowcount)
            # one INSERT of many rows per chunk: one round trip and one plan, not one per row
            head, row, tail = parts
            count = 0
            for i in range(0, len(seq), _ROWS_PER_INSERT):
                chunk = seq[i:i + _ROWS_PER_INSERT]
                statement = head + ",".join([row] * len(chunk)) + tail
                await cur.execute(postgres_params(statement),
                                  tuple(v for values in chunk for v in values))
                count += max(cur.rowcount, 0)
            return PgCursor([], count)

    async def execute_fetchall(self, sql: str, parameters: Iterable[Any] | None = None, /
                               ) -> list[PgRow]:
        return await (await self.execute(sql, parameters)).fetchall()

    async def execute_pipelined(self, statements: Sequence[tuple[str, Sequence[Any]]], *,
                                commit: bool = False) -> list[list[PgRow]]:
        """Every statement's rows, all sent in one pipeline: one round trip for the lot
        (the server runs them in order and stops at the first error, which is raised
        here; the transaction then rolls back as usual). With ``commit``, the COMMIT goes
        in the same pipeline, and the transaction takes no further statement."""
        if self.committed:
            await self._open()  # raises
        cursors: list[psycopg.AsyncCursor[PgRow]] = []
        try:
            async with self.raw.pipeline():
                if not self.begun:
                    await self.raw.execute("BEGIN")
                    self.begun = True
                for sql, parameters in statements:
                    cur = self.raw.cursor()
                    cursors.append(cur)
                    await cur.execute(postgres_params(sql), _params(parameters))
                if commit:
                    await self.raw.execute("COMMIT")
            # leaving the pipeline synced it: every result is here, fetching is local
            self.committed = commit
            return [await cur.fetchall() if cur.description is not None else []
                    for cur in cursors]
        finally:
            for cur in cursors:
                await cur.close()


class PgPoolReader:
    """``db.conn``: each statement on a free pooled connection (autocommit), or on the
    current task's transaction connection when there is one."""

    def __init__(self, engine: PostgresEngine, *, follow_transaction: bool) -> None:
        self._engine = engine
        self._follow = follow_transaction

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None, /) -> PgCursor:
        tx = self._engine.current() if self._follow else None
        if tx is not None:
            return await tx.execute(sql, parameters)
        async with self._engine.pool.connection() as conn:
            return await _run(conn, sql, parameters)

    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]], /
                          ) -> PgCursor:
        tx = self._engine.current() if self._follow else None
        if tx is not None:
            return await tx.executemany(sql, parameters)
        async with self._engine.pool.connection() as conn, conn.transaction():
            tx = PgConnection(conn)
            tx.begun = True  # psycopg's transaction() sent it
            return await tx.executemany(sql, parameters)

    async def execute_fetchall(self, sql: str, parameters: Iterable[Any] | None = None, /
                               ) -> list[PgRow]:
        return await (await self.execute(sql, parameters)).fetchall()


class PostgresEngine:
    def __init__(self, url: str, *, pool_min: int = 1, pool_max: int = 10) -> None:
        self.url = url
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[PgRow]] | None = None
        self._pool_min = pool_min
        self._pool_max = pool_max
        self._tx: contextvars.ContextVar[PgConnection | None] = contextvars.ContextVar(
            f"eldercare-pg-tx-{id(self)}", default=None)
        self.migration_lock = _MIGRATION_LOCK
        self.conn = PgPoolReader(self, follow_transaction=True)
        self.reader = PgPoolReader(self, follow_transaction=False)

    @property
    def pool(self) -> AsyncConnectionPool[psycopg.AsyncConnection[PgRow]]:
        if self._pool is None:
            raise StorageError("database is not open")
        return self._pool

    def current(self) -> PgConnection | None:
        return self._tx.get()

    async def open(self) -> None:
        pool: AsyncConnectionPool[psycopg.AsyncConnection[PgRow]] = AsyncConnectionPool(
            self.url, min_size=self._pool_min, max_size=self._pool_max, open=False,
            # no server-side prepared statements: a migration that alters a table would
            # otherwise break plans cached on other pooled connections
            kwargs={"autocommit": True, "row_factory": _row_factory,
                    "cursor_factory": psycopg.AsyncClientCursor,
                    "prepare_threshold": None},
            configure=_configure, name="eldercare-cloud")
        try:
            await pool.open(wait=True, timeout=30)
        except psycopg.Error as exc:
            await pool.close()
            raise StorageError(f"cannot connect to PostgreSQL: {exc}") from exc
        except PoolTimeout as exc:
            await pool.close()
            raise StorageError(f"cannot connect to PostgreSQL within 30 s: {exc}") from exc
        self._pool = pool
        async with self.transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                " component TEXT PRIMARY KEY, version BIGINT NOT NULL)")

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PgConnection]:
        """BEGIN ... COMMIT, or ROLLBACK on error. Not psycopg's ``transaction()``: a
        transaction may send its COMMIT itself, in its last pipeline
        (``Database.execute_batch(commit=True)``), so that a lock it holds is released
        without one more round trip to the client."""
        async with self.pool.connection() as raw:
            # BEGIN goes with the first statement (PgConnection._open)
            conn = PgConnection(raw)
            token = self._tx.set(conn)
            try:
                yield conn
            except BaseException:
                if conn.begun and not conn.committed:
                    # a connection left in a bad state is discarded by the pool
                    with contextlib.suppress(psycopg.Error):
                        await raw.execute("ROLLBACK")
                raise
            else:
                if conn.begun and not conn.committed:
                    await raw.execute("COMMIT")
            finally:
                self._tx.reset(token)

    async def listen(self, channel: str, callback: Callable[[], None]) -> None:
        """LISTEN on a connection of its own until cancelled; reconnect after a failure
        (and call back once then: a notification may have been missed meanwhile)."""
        delay = 0.5
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
            except psycopg.Error as exc:
                log.warning("LISTEN %s: cannot connect (%s); retrying in %.1f s", channel,
                            exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            try:
                await conn.execute(f"LISTEN {channel}")
                callback()
                delay = 0.5
                async for _ in conn.notifies():
                    callback()
            except psycopg.Error as exc:
                log.warning("LISTEN %s: connection lost (%s); reconnecting", channel, exc)
                await asyncio.sleep(delay)
            finally:
                await conn.close()

    def leadership(self, name: str) -> PgLeadership:
        return PgLeadership(self.url, zlib.crc32(f"eldercare-leader:{name}".encode()))

    @staticmethod
    def statements(script: str) -> list[str]:
        return [postgres_ddl(s) for s in split_script(script)]



class PgLeadership:
    """A session advisory lock on a connection of its own: held by one process at a time,
    released by PostgreSQL when that connection ends (the process exits or dies)."""

    def __init__(self, url: str, key: int) -> None:
        self._url = url
        self._key = key
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._held = False
        self._mutex = asyncio.Lock()

    async def held(self) -> bool:
        async with self._mutex:
            try:
                if self._conn is None or self._conn.closed:
                    self._held = False
                    self._conn = await psycopg.AsyncConnection.connect(self._url,
                                                                       autocommit=True)
                if self._held:
                    await self._conn.execute("SELECT 1")  # still ours while this lives
                else:
                    cur = await self._conn.execute("SELECT pg_try_advisory_lock(%s)",
                                                   (self._key,))
                    row = await cur.fetchone()
                    self._held = bool(row and row[0])
            except psycopg.Error as exc:
                if self._held:
                    log.warning("leadership lost with its connection: %s", exc)
                await self._close()
            return self._held

    async def release(self) -> None:
        async with self._mutex:
            await self._close()

    async def _close(self) -> None:
        self._held = False
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(psycopg.Error):
                await conn.close()
