"""The desk's engine: its own cursor over ingest's committed events."""

from __future__ import annotations

from pathlib import Path

from care_support import BUTTON, GW, care_settings, open_care
from svc_support import T0, commit_at

from eldercare_cloud.clock import ManualClock
from eldercare_protocols.events import EventKind


async def test_first_start_skips_history_and_later_starts_lose_nothing(
        tmp_path: Path, care_db: Path, care_template: tuple[Path, dict[str, str]]) -> None:
    clock = ManualClock(T0)
    settings = care_settings(tmp_path)
    async with open_care(care_db, settings, clock, care_template[1]) as care:
        # as if the desk had never run on this database: a press from before it existed
        async with care.db.transaction() as conn:
            await conn.execute("DELETE FROM svc_cursors")
        old = await commit_at(care.store, clock, EventKind.SERVICE_REQUEST, BUTTON, GW,
                              press="single")
        engine = care.services.service_engine
        await engine.init_cursor()
        await engine.tick()
        cur = await care.db.conn.execute("SELECT COUNT(*) FROM svc_requests")
        assert (await cur.fetchone())[0] == 0
        cur = await care.db.conn.execute("SELECT value FROM svc_cursors")
        assert (await cur.fetchone())[0] == old.rowid
        # committed while the cloud is down: found on the next start
        new = await commit_at(care.store, clock, EventKind.SERVICE_REQUEST, BUTTON, GW,
                              press="single")
    async with open_care(care_db, settings, clock, care_template[1]) as care:
        await care.services.service_engine.tick()
        cur = await care.db.conn.execute("SELECT first_record_id FROM svc_requests")
        assert [r[0] for r in await cur.fetchall()] == [new.id]
