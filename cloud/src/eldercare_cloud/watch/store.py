"""The watch listener's own table: each watch's geofence state (``watch_fences``).

The listener keeps no state in memory beyond a connection, so whichever cloud process a
watch reconnects to knows whether the resident is already outside the fence.
"""

from __future__ import annotations

from eldercare_cloud.clock import iso, opt_parse
from eldercare_cloud.db import Database
from eldercare_cloud.watch.fence import FenceState

MIGRATIONS: list[str] = [
    """
CREATE TABLE watch_fences (
    device_id TEXT PRIMARY KEY,
    outside INTEGER NOT NULL,
    fix_ts TEXT,
    changed_at TEXT NOT NULL
)
""",
]


class WatchStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def migrate(self) -> None:
        await self._db.migrate("watch", MIGRATIONS)

    async def fence(self, device_id: str) -> FenceState:
        cur = await self._db.conn.execute(
            "SELECT outside, fix_ts FROM watch_fences WHERE device_id = ?", (device_id,))
        row = await cur.fetchone()
        if row is None:
            return FenceState(False)
        return FenceState(bool(row["outside"]), opt_parse(row["fix_ts"]))

    async def set_fence(self, device_id: str, state: FenceState, now_iso: str) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO watch_fences(device_id, outside, fix_ts, changed_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT(device_id) DO UPDATE SET"
                " outside = excluded.outside, fix_ts = excluded.fix_ts,"
                " changed_at = excluded.changed_at",
                (device_id, int(state.outside),
                 iso(state.fix_ts) if state.fix_ts else None, now_iso))
