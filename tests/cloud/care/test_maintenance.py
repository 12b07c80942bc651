"""The engine's periodic self-test scan: overdue gas and smoke detectors become one open
maintenance task each without anyone asking, never two however often it scans, and a
self-test closes the task at the next scan. The console's board uses the same 30-day
rule. Real SQLite, ingest's real write path, a hand-driven clock."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from care_support import GAS, Care, Running

from eldercare_cloud.care import maintenance as M
from eldercare_protocols.events import EventKind


async def _open_tasks(care: Care) -> list[str]:
    cur = await care.db.conn.execute("SELECT device_id FROM installer_maintenance"
                                     " WHERE status = 'open' ORDER BY device_id")
    return [r[0] for r in await cur.fetchall()]


async def test_engine_scans_on_its_timer_and_never_duplicates_a_task(care: Care) -> None:
    detectors = [d for d, _ in await M.all_detectors(care.db.conn)]
    assert GAS in detectors and len(detectors) > 1
    await care.run()  # the first pass scans: nobody asked
    assert await _open_tasks(care) == sorted(detectors)

    # the gas detector's test button is pressed; the next scan is an hour away
    await care.commit(EventKind.SELF_TEST, device_id=GAS)
    await care.advance(60)
    assert GAS in await _open_tasks(care)
    interval = care.settings.care.maintenance_scan_interval_s
    assert interval == 3600  # hourly unless configured
    for _ in range(3):  # three more hourly scans: still one open task per device
        await care.advance(interval)
    assert await _open_tasks(care) == sorted(d for d in detectors if d != GAS)
    cur = await care.db.conn.execute("SELECT device_id, COUNT(*) FROM installer_maintenance"
                                     " GROUP BY device_id HAVING COUNT(*) > 1")
    assert await cur.fetchall() == []

    # 31 days on, the gas detector is overdue again: one new task for it
    await care.advance(31 * 86400)
    assert await _open_tasks(care) == sorted(detectors)


def test_one_thirty_day_rule() -> None:
    t = datetime(2026, 1, 31, tzinfo=UTC)
    assert M.overdue(None, t)
    assert not M.overdue(t - M.SELF_TEST_MAX_AGE, t)
    assert M.overdue(t - M.SELF_TEST_MAX_AGE - M.SELF_TEST_MAX_AGE / 1000, t)


async def test_console_board_flags_what_the_maintenance_rule_flags(care_http: Running) -> None:
    services = care_http.services
    await services.engine.tick()
    async with httpx.AsyncClient(base_url=care_http.url + "/api/v1") as client:
        r = await client.get("/console/fleet", headers=care_http.auth("operator"))
    assert r.status_code == 200, r.text
    fleet = r.json()
    assert fleet["tested_within_days"] == M.SELF_TEST_MAX_AGE.days
    cur = await services.db.conn.execute("SELECT device_id FROM installer_maintenance"
                                         " WHERE status = 'open'")
    tasks = {row[0] for row in await cur.fetchall()}
    flagged = {d["id"] for d in fleet["devices"] if "not_tested" in d["problems"]
               and d["type"] in M.SELF_TEST_TYPES}
    assert tasks and flagged == tasks
