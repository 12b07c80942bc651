"""SQLite (WAL) through aiosqlite, with per-component migrations.

Each component (ingest, registry, care, ...) owns its tables and calls
``await db.migrate("component", MIGRATIONS)`` at start-up; the applied version is
kept per component, so components evolve without editing one shared list.
Storage stays behind this module so a PostgreSQL backend can take its place.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType

import aiosqlite

from eldercare_cloud.errors import StorageError


class Database:
    """One writer connection (SQLite serialises writers anyway) plus a write lock so that
    a multi-statement transaction of one component is never interleaved with another's."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: aiosqlite.Connection | None = None
        self._lock: asyncio.Lock | None = None

    async def __aenter__(self) -> Database:
        await self.open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def open(self) -> None:
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
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise StorageError("database is not open")
        return self._conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE … COMMIT (fsync'd: synchronous=FULL); rolls back on error."""
        assert self._lock is not None, "database is not open"
        async with self._lock:
            conn = self.conn
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            else:
                await conn.execute("COMMIT")

    async def migrate(self, component: str, migrations: Sequence[str]) -> int:
        """Apply the migrations of one component that are not applied yet; return its version."""
        async with self.transaction() as conn:
            cur = await conn.execute(
                "SELECT version FROM schema_version WHERE component = ?", (component,))
            row = await cur.fetchone()
            current = int(row[0]) if row else 0
            if current > len(migrations):
                raise StorageError(f"{component} schema version {current} is newer than this "
                                   f"code ({len(migrations)})")
            for script in migrations[current:]:
                for statement in _split(script):
                    await conn.execute(statement)
            await conn.execute(
                "INSERT INTO schema_version(component, version) VALUES (?, ?) "
                "ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                (component, len(migrations)),
            )
        return len(migrations)


def _split(script: str) -> list[str]:
    return [s.strip() for s in script.split(";\n") if s.strip()]

