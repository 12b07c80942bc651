"""``Database.execute_batch`` and ``Rows``: a transaction's last statements in one go (one
pipeline on PostgreSQL, many-row INSERTs as one statement with a JSON parameter), with
the same results on both engines. Runs on SQLite, and on PostgreSQL in scripts/test.sh's
second run."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

import db_support
from eldercare_cloud.db import INTEGRITY_ERRORS, Database, Rows
from eldercare_cloud.db.sql import json_insert, values_rows
from eldercare_cloud.errors import StorageError

MIGRATIONS = [
    """
CREATE TABLE items (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    n INTEGER,
    weight REAL,
    flag INTEGER NOT NULL DEFAULT 0
)
""",
]

INSERT = ("INSERT INTO items(id, n, weight, flag) VALUES (?, ?, ?, ?)"
          " ON CONFLICT DO NOTHING RETURNING rowid, id")


@pytest.fixture
async def db(tmp_path: Path) -> Database:
    async with Database(db_support.target(tmp_path / "db.sqlite3")) as database:
        await database.migrate("items", MIGRATIONS)
        yield database  # type: ignore[misc]


async def test_rows_return_what_was_inserted_in_order(db: Database) -> None:
    rows = [(f"item-{i:04d}", i, i / 4, i % 2 == 0) for i in range(1200)]
    async with db.transaction() as conn:
        first, count = await db.execute_batch(conn, [
            Rows(INSERT, rows), ("SELECT COUNT(*) FROM items", ())], serialise="items")
    assert [r[1] for r in first] == [r[0] for r in rows]
    assert [r[0] for r in first] == sorted(r[0] for r in first)  # ids in row order
    assert count[0][0] == 1200
    # duplicates (in the database and within the batch) are not returned, new rows are
    again = [("item-0001", 0, None, False), ("new-0001", None, None, True),
             ("new-0001", 5, None, False)]
    async with db.transaction() as conn:
        [second] = await db.execute_batch(conn, [Rows(INSERT, again)])
    assert [r[1] for r in second] == ["new-0001"]
    got = db_support.rows(db.url, "SELECT n, weight, flag FROM items WHERE id IN (?, ?)"
                          " ORDER BY id", ("item-0003", "new-0001"))
    assert got == [(3, 0.75, 0), (None, None, 1)]


async def test_values_json_cannot_carry_still_go_in(db: Database) -> None:
    """A float that is not finite has no JSON form: those rows go as bound values."""
    async with db.transaction() as conn:
        [out] = await db.execute_batch(conn, [Rows(INSERT, [
            ("inf-0001", 1, math.inf, 0), ("nan-0001", 2, math.nan, 1)])])
    assert [r[1] for r in out] == ["inf-0001", "nan-0001"]
    [(weight,)] = db_support.rows(db.url, "SELECT weight FROM items WHERE id = ?",
                                  ("inf-0001",))
    assert weight == math.inf


async def test_a_failing_statement_rolls_the_batch_back(db: Database) -> None:
    with pytest.raises(INTEGRITY_ERRORS):
        async with db.transaction() as conn:
            await db.execute_batch(conn, [
                Rows(INSERT, [("ok-00001", 1, None, 0)]),
                ("INSERT INTO items(id) VALUES (?)", ("ok-00001",))])
    assert db_support.rows(db.url, "SELECT COUNT(*) FROM items") == [(0,)]


async def test_notify_is_delivered_after_commit(db: Database) -> None:
    woken: list[str] = []
    async with db.listen("items_changed", lambda: woken.append("x")):
        before = len(woken)  # PostgreSQL calls back once when LISTEN starts
        async with db.transaction() as conn:
            await db.execute_batch(conn, [Rows(INSERT, [("n-000001", 1, None, 0)])],
                                   notify=("items_changed",))
        for _ in range(500):
            if len(woken) > before:
                break
            await asyncio.sleep(0.01)  # delivered by another connection (PostgreSQL)
    assert len(woken) > before


def test_statement_shapes() -> None:
    statement, cols = json_insert(INSERT) or ("", ())
    assert cols == ("id", "n", "weight", "flag")
    assert "json_populate_recordset(NULL::items, ?::json) WITH ORDINALITY" in statement
    assert statement.endswith("ORDER BY r.ordinality ON CONFLICT DO NOTHING"
                              " RETURNING rowid, id")
    # DO UPDATE may not touch one row twice in a statement; literals in the row do not
    # map to JSON keys: both keep the bound-parameter path
    assert json_insert("INSERT INTO items(id) VALUES (?) ON CONFLICT(id) DO UPDATE"
                       " SET n = 1") is None
    assert json_insert("INSERT INTO items(id, n) VALUES (?, 1)") is None
    chunks = values_rows("INSERT INTO items(id, n) VALUES (?, ?)",
                         [(str(i), i) for i in range(1001)])
    assert [len(p) for _, p in chunks] == [1000, 1000, 2]
    assert chunks[2][0] == "INSERT INTO items(id, n) VALUES (?, ?)"


async def test_column_names_in_any_case(db: Database) -> None:
    """PostgreSQL folds unquoted names to lower case, and so must the JSON keys."""
    async with db.transaction() as conn:
        await db.execute_batch(conn, [Rows(
            "INSERT INTO items(ID, N, Weight) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING",
            [("case-0001", 7, 1.5), ("case-0002", 8, None)])])
        await conn.executemany("INSERT INTO Items(Id, N) VALUES (?, ?)",
                               [("case-0003", 9), ("case-0004", 10)])
    assert db_support.rows(db.url, "SELECT id, n, weight FROM items ORDER BY id") == [
        ("case-0001", 7, 1.5), ("case-0002", 8, None), ("case-0003", 9, None),
        ("case-0004", 10, None)]


async def test_a_batch_may_end_the_transaction(db: Database) -> None:
    """``commit=True``: PostgreSQL commits in the batch's own pipeline, so a lock taken by
    the batch is released without another round trip; nothing may follow it there."""
    async with db.transaction() as conn:
        await db.execute_batch(conn, [Rows(INSERT, [("end-0001", 1, None, 0)])],
                               serialise="items", commit=True)
        if db.engine == "postgresql":
            # committed and the lock released already, inside the block
            assert db_support.rows(db.url, "SELECT id FROM items") == [("end-0001",)]
            assert db_support.rows(db.url, "SELECT COUNT(*) FROM pg_locks"
                                   " WHERE locktype = 'advisory'") == [(0,)]
            with pytest.raises(StorageError, match="nothing may follow"):
                await conn.execute("SELECT 1")
    assert db_support.rows(db.url, "SELECT id FROM items") == [("end-0001",)]
    # a batch that fails before its COMMIT rolls back as any other
    with pytest.raises(INTEGRITY_ERRORS):
        async with db.transaction() as conn:
            await db.execute_batch(conn, [
                Rows(INSERT, [("end-0002", 1, None, 0)]),
                ("INSERT INTO items(id) VALUES (?)", ("end-0001",))], commit=True)
    assert db_support.rows(db.url, "SELECT COUNT(*) FROM items") == [(1,)]
