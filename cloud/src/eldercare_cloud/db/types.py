"""What every domain sees of the database, whichever engine is behind it.

These are structural types: ``aiosqlite``'s connection, cursor and ``sqlite3.Row``
satisfy them as they are (the SQLite engine hands them over unwrapped, so its hot path
costs nothing extra), and the PostgreSQL engine's adapters implement the same subset.
Write domain code against these, never against ``aiosqlite`` or ``psycopg``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class Row(Protocol):
    """A result row: ``row[0]`` and ``row["column"]`` (names are case-insensitive),
    ``dict(row)``, unpacking."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...

    def __len__(self) -> int: ...

    def keys(self) -> list[str]: ...


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    async def fetchone(self) -> Row | None: ...

    async def fetchall(self) -> Iterable[Row]: ...


class Connection(Protocol):
    """``?`` placeholders, one statement per call."""

    def execute(self, sql: str, parameters: Iterable[Any] | None = None, /
                ) -> Awaitable[Cursor]: ...

    def executemany(self, sql: str, parameters: Iterable[Iterable[Any]], /
                    ) -> Awaitable[Cursor]: ...

    def execute_fetchall(self, sql: str, parameters: Iterable[Any] | None = None, /
                         ) -> Awaitable[Iterable[Row]]: ...


@dataclass(frozen=True)
class Rows:
    """One statement for many rows of parameters, as one item of
    ``Database.execute_batch``; whatever it returns comes back as one list. An ``INSERT
    INTO t(cols) VALUES (?, ...) [ON CONFLICT DO NOTHING] [RETURNING ...]`` goes to
    PostgreSQL as one statement with one JSON parameter (``sql.json_insert``) and to
    SQLite as multi-row VALUES of a few hundred rows each (or executemany, without
    RETURNING); any other statement (an UPDATE) runs once per row."""

    sql: str
    rows: Sequence[Sequence[Any]]


#: an item of ``Database.execute_batch``: (sql, parameters) or many rows of one INSERT
Statement = tuple[str, Sequence[Any]] | Rows
