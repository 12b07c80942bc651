"""Two gateways running with one gateway id knock each other off the brokers; the gateway
counts it in its health report (``client_id_conflict_home|cloud``) and the care engine
turns that into one maintenance alert per gateway: a ``gateway_id_conflict`` for the
centre and the installers, never a ladder to the family. Health reports committed through
ingest's real write path, real SQLite, a hand-driven clock seeded with a fixed time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from care_support import GW, OTHER_GW, Care, care_settings, open_care

from eldercare_cloud.care.models import KIND_ZH, AlertKind
from eldercare_cloud.clock import ManualClock
from eldercare_cloud.ingest import Received
from eldercare_protocols.uplink import GatewayState

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
async def care_fixed(tmp_path: Path, care_db: Path | str,
                     care_template: tuple[Path | str, dict[str, str]]) -> AsyncIterator[Care]:
    async with open_care(care_db, care_settings(tmp_path), ManualClock(T0),
                         care_template[1]) as c:
        yield c


async def _health(care: Care, gateway_id: str, **counters: int) -> None:
    now = care.clock.now()
    state = GatewayState(gateway_id=gateway_id, status="health", ts=now, uptime_s=600.0,
                         counters={"alarms_stored": 4, **counters})
    info = await care.store.commit([Received(gateway_id, state, now)])
    assert info is not None


async def _conflicts(care: Care) -> list[dict[str, Any]]:
    cur = await care.db.conn.execute("SELECT * FROM alerts WHERE kind = ? ORDER BY opened_at",
                                     (AlertKind.GATEWAY_ID_CONFLICT.value,))
    return [dict(r) for r in await cur.fetchall()]


async def test_client_id_conflict_in_health_raises_one_maintenance_alert(
        care_fixed: Care) -> None:
    care = care_fixed
    rules_s = care.settings.care.rules_interval_s
    await _health(care, GW, client_id_conflict_cloud=3)
    await _health(care, OTHER_GW, client_id_conflict_cloud=0)  # a healthy neighbour
    await care.run()

    [alert] = await _conflicts(care)
    assert alert["subject"] == f"gateway:{GW}" and alert["gateway_id"] == GW
    assert alert["category"] == "maintenance" and alert["severity"] == "medium"
    assert alert["status"] == "open" and alert["source"] == "cloud"
    assert alert["district_id"] == "D-XH"  # the centre of the gateway's district sees it
    assert await care.asked(alert["id"]) == []  # no ladder: no contact is asked
    cur = await care.db.conn.execute("SELECT COUNT(*) FROM ladder_offers WHERE alert_id = ?",
                                     (alert["id"],))
    assert (await cur.fetchone())[0] == 0
    assert KIND_ZH[AlertKind.GATEWAY_ID_CONFLICT] == "网关编号冲突"

    # the conflict goes on: the next report counts more, on the home broker too
    await _health(care, GW, client_id_conflict_cloud=5, client_id_conflict_home=1)
    await care.advance(rules_s + 1)
    [again] = await _conflicts(care)
    assert again["id"] == alert["id"] and again["repeat_count"] == 1

    # a report with the same count is not news: nothing moves
    await _health(care, GW, client_id_conflict_cloud=5, client_id_conflict_home=1)
    await care.advance(rules_s + 1)
    [same] = await _conflicts(care)
    assert same["id"] == alert["id"] and same["repeat_count"] == 1
    assert [m for m in care.sms.sent if m.alert_id == alert["id"]] == []  # no family SMS


async def test_health_without_conflicts_raises_nothing(care_fixed: Care) -> None:
    care = care_fixed
    await _health(care, GW)
    await _health(care, OTHER_GW, client_id_conflict_home=0, client_id_conflict_cloud=0)
    await care.run()
    assert await _conflicts(care) == []
