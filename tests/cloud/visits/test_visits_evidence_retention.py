"""Home-device evidence is pruned once no visit can be judged against it (a real
database: the SQLite file, or the test's PostgreSQL database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import db_support
from eldercare_cloud.db import Database
from eldercare_cloud.visits import store as V
from eldercare_cloud.visits.schema import MIGRATIONS
from eldercare_cloud.visits.verify import Method

NOW = datetime(2025, 3, 14, 1, 30, tzinfo=UTC)
QUIET, VISITED = "HH-QUIET", "HH-VISITED"


async def evidence(db: Database) -> list[tuple[str, str]]:
    cur = await db.conn.execute("SELECT household_id, record_id FROM visit_evidence"
                                " ORDER BY record_id")
    return [(r[0], r[1]) for r in await cur.fetchall()]


async def test_old_evidence_goes_unless_a_visit_there_is_still_open(tmp_path: Path) -> None:
    async with Database(db_support.target(tmp_path / "cloud.db")) as db:
        await db.migrate("visits", MIGRATIONS)
        async with db.transaction() as conn:
            for home in (QUIET, VISITED):
                await V.add_evidence(conn, home, f"{home}-old", "door-1", "door_open",
                                     NOW - timedelta(days=3))
                await V.add_evidence(conn, home, f"{home}-new", "door-1", "door_open",
                                     NOW - timedelta(hours=1))
            # a visit checked in three days ago and never checked out
            await V.open_visit(conn, order_id="SO-1", service_type_id="cleaning",
                               resident_id="R-1", household_id=VISITED, district_id="D-1",
                               address="a", provider_id="P-1", worker_id="W-1",
                               window_start=(NOW - timedelta(days=3)).isoformat(),
                               window_end=(NOW - timedelta(days=2)).isoformat(),
                               min_minutes=60, check_in_at=NOW - timedelta(days=3),
                               method=Method.BUTTON, lat=None, lon=None,
                               now=NOW - timedelta(days=3))
        async with db.transaction() as conn:
            assert await V.prune_evidence(conn, NOW - timedelta(days=2)) == 1
        assert await evidence(db) == [(QUIET, f"{QUIET}-new"), (VISITED, f"{VISITED}-new"),
                                      (VISITED, f"{VISITED}-old")]
        # the visit is closed: its verdict is kept, the raw rows may go
        async with db.transaction() as conn:
            row = await V.by_order(conn, "SO-1")
            assert row is not None
            await V.close_visit(conn, row, check_out_at=NOW - timedelta(days=3, minutes=-90),
                                method=Method.BUTTON, note="", now=NOW)
        async with db.transaction() as conn:
            assert await V.prune_evidence(conn, NOW - timedelta(days=2)) == 1
        assert await evidence(db) == [(QUIET, f"{QUIET}-new"), (VISITED, f"{VISITED}-new")]
        async with db.transaction() as conn:  # nothing more to do: nothing changes
            assert await V.prune_evidence(conn, NOW - timedelta(days=2)) == 0
