"""Centre-first discipline: an alert nobody acknowledges within 60 s goes to the shift
supervisors on screen (a stream event) and by SMS; an acknowledged one does not; the
timer lives in the database, so a restarted engine knows when the next one is due."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from care_support import (
    GW,
    OTHER_GW,
    Care,
    care_settings,
    mint_tokens,
    open_care,
)

from eldercare_cloud.auth.models import Role, UserCreate
from eldercare_cloud.care import supervision as S
from eldercare_cloud.clock import ManualClock
from eldercare_protocols.events import EventKind

T0 = datetime(2025, 3, 14, 1, 30, tzinfo=UTC)
SUPERVISOR_PHONE = "13900009001"


@pytest.fixture
async def care(tmp_path: Path, care_db: Path,
               care_template: tuple[Path, dict[str, str]]) -> AsyncIterator[Care]:
    async with open_care(care_db, care_settings(tmp_path), ManualClock(T0),
                         dict(care_template[1])) as c:
        sup = await c.services.users.create(UserCreate(
            username="supervisor-xh", password="supervisor-pass", role=Role.SUPERVISOR,
            display_name="值班主管", phone=SUPERVISOR_PHONE, district_ids=["D-XH"]))
        await c.services.users.create(UserCreate(
            username="supervisor-other", password="supervisor-pass", role=Role.SUPERVISOR,
            phone="13900009002", district_ids=["D-OTHER"]))
        c.user_ids["supervisor-xh"] = sup.id
        yield c


async def test_unacknowledged_alert_goes_to_the_supervisor(care: Care) -> None:
    await care.commit(EventKind.SOS, gateway_id=GW)
    await care.commit(EventKind.SOS, device_id="btn-xh005", gateway_id=OTHER_GW)
    await care.run()
    first, second = [a["id"] for a in await care.open_alerts()]
    # the centre answers the second one in time
    tokens = mint_tokens(care.user_ids, care.clock.now())
    op = await care.services.users.principal(tokens["operator"])
    care.clock.advance(30)
    await care.services.care.acknowledge(op, second)
    # the timer is in the database: due exactly 60 s after the first opened
    due = await S.next_due(care.db.conn, 60)
    assert due == T0 + timedelta(seconds=60)
    await care.advance(29.5)
    assert (await care.alert(first))["supervisor_escalated_at"] is None
    assert care.sms.to(SUPERVISOR_PHONE) == []

    await care.advance(1)
    row = await care.alert(first)
    assert row["supervisor_escalated_at"] is not None
    assert row["status"] == "open"
    assert (await care.alert(second))["supervisor_escalated_at"] is None
    texts = [m.text for m in care.sms.to(SUPERVISOR_PHONE)]
    assert len(texts) == 1 and "无人接警" in texts[0] and "/console/" in texts[0]
    assert care.sms.to("13900009002") == []  # another district's supervisor
    cur = await care.db.conn.execute(
        "SELECT actor, detail FROM alert_timeline WHERE alert_id = ? AND action = ?",
        (first, "supervisor_escalated"))
    entries = list(await cur.fetchall())
    assert len(entries) == 1 and "值班主管" in entries[0]["detail"]

    # on screen: the supervisor's stream carries it (and the operator's does too)
    tokens = mint_tokens(care.user_ids, care.clock.now())
    sup = await care.services.users.principal(tokens["supervisor-xh"])
    events, _ = await care.services.hub.events_after(sup, 0)
    assert any(e.type == "alert.supervisor" and e.alert_id == first for e in events)
    # a supervisor acts like an operator
    await care.services.care.acknowledge(sup, first)
    assert (await care.alert(first))["acknowledged_at"] is not None

    # once, not again on later passes
    await care.advance(120)
    assert len(care.sms.to(SUPERVISOR_PHONE)) == 1
    assert await S.next_due(care.db.conn, 60) is None


async def test_escalation_off_when_configured_zero(care: Care) -> None:
    assert await S.next_due(care.db.conn, 0) is None
    await care.commit(EventKind.SOS, gateway_id=GW)
    await care.run()
    assert await S.due_alerts(care.db.conn, T0 + timedelta(hours=1), 0) == []
