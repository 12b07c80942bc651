"""The cloud database the tests run on: SQLite files by default, or PostgreSQL.

``scripts/test.sh`` starts a PostgreSQL server and runs the database-touching tests a
second time with ``ELDERCARE_TEST_DATABASE_URL`` pointing at its maintenance database.
Then every test gets a fresh database of its own (``CREATE DATABASE``, dropped after the
test) and ``ELDERCARE_CLOUD_DB__URL`` is set to it, so everything built from
``CloudSettings`` (``settings.database``: the service, the CLI in a subprocess, ingest)
uses it with no change to the test. Code that opens a ``Database`` itself passes
``settings.database`` or ``target(path)``.

A plain module (not a conftest) so every test folder can import it.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

#: the PostgreSQL server's maintenance database (postgresql://USER@HOST:PORT/postgres)
ADMIN_URL = os.environ.get("ELDERCARE_TEST_DATABASE_URL") or None
POSTGRES = ADMIN_URL is not None
ENGINE = "postgresql" if POSTGRES else "sqlite"


def _with_db(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def db_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


@contextmanager
def _admin() -> Iterator[Any]:
    import psycopg

    assert ADMIN_URL is not None
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        yield conn


def create_database(template: str | None = None) -> str:
    """A new, empty PostgreSQL database (or a copy of ``template``'s); its URL."""
    assert ADMIN_URL is not None, "not a PostgreSQL run"
    name = f"t_{uuid.uuid4().hex[:16]}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"'
                     + (f' TEMPLATE "{db_name(template)}"' if template else ""))
    return _with_db(ADMIN_URL, name)


def drop_database(url: str) -> None:
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name(url)}" WITH (FORCE)')


class Databases:
    """The databases of one test: a path the test names maps to one database, so a test
    that reopens its file (a restart) reopens the same database."""

    def __init__(self) -> None:
        self.by_path: dict[Path, str] = {}
        self.created: list[str] = []

    def target(self, path: Path) -> str | Path:
        if not POSTGRES:
            return path
        key = path.resolve()
        if key not in self.by_path:
            self.by_path[key] = self.new()
        return self.by_path[key]

    def new(self, template: str | None = None) -> str:
        url = create_database(template)
        self.created.append(url)
        return url

    def drop_all(self) -> None:
        for url in self.created:
            drop_database(url)
        self.created.clear()


#: the running test's databases (set by the autouse fixture in tests/conftest.py)
CURRENT = Databases()


def target(path: Path) -> str | Path:
    """What to open for a database file the test names: the file itself on SQLite, the
    test's own PostgreSQL database (one per distinct path) otherwise."""
    return CURRENT.target(path)


def rows(target: str | Path, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
    """Read committed rows straight from the store, as an inspector would (portable SQL,
    ``?`` placeholders), without the cloud's own code."""
    if isinstance(target, str) and target.startswith("postgresql://"):
        import psycopg

        from eldercare_cloud.db.sql import postgres_params

        with psycopg.connect(target, autocommit=True,
                             cursor_factory=psycopg.ClientCursor) as conn:
            return [tuple(r) for r in conn.execute(postgres_params(sql), tuple(params))]
    path = Path(str(target).removeprefix("sqlite:///"))
    with sqlite3.connect(path, timeout=10) as db:
        result = [tuple(r) for r in db.execute(sql, tuple(params))]
    db.close()
    return result


def env_target(default: Path) -> str | Path:
    """The database a cloud configured from the environment opens (a subprocess, the
    CLI): the test's PostgreSQL database, or the SQLite file ``default``."""
    return os.environ.get("ELDERCARE_CLOUD_DB__URL") or default
