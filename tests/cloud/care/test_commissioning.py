"""Commissioning windows: a real (non-test) alarm from a gateway that an installer is
walk-testing becomes one low "commissioning" entry, with no ladder and no family SMS;
after the window (or once it is ended) the same press is a real alarm again. Events go
through ingest's real write path into a SQLite file; the engine runs on a hand clock."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from care_support import BUTTON, GW, OTHER_BUTTON, OTHER_GW, RESIDENT, SON, Care

from eldercare_cloud.care import commissioning as C
from eldercare_cloud.errors import InvalidRequestError
from eldercare_cloud.ingest import Received
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import EventEnvelope


async def _start(care: Care, minutes: float = 30, gateway_id: str = GW) -> C.Window:
    async with care.db.transaction() as conn:
        return await C.start(conn, gateway_id, care.clock.now(), timedelta(minutes=minutes),
                             "user:installer")


async def _ladders(care: Care) -> list[str]:
    cur = await care.db.conn.execute("SELECT alert_id FROM ladder_runs")
    return [r[0] for r in await cur.fetchall()]


async def test_real_sos_during_commissioning_starts_no_ladder_and_after_it_does(
        care: Care) -> None:
    await _start(care, minutes=30)
    for _ in range(2):  # the installer presses the red button twice
        await care.commit(EventKind.SOS, test=False)
    await care.run()
    (entry,) = await care.open_alerts()
    assert entry["kind"] == "commissioning" and entry["severity"] == "low"
    assert entry["category"] == "maintenance" and entry["gateway_id"] == GW
    assert entry["resident_id"] == RESIDENT and entry["repeat_count"] == 1
    assert await _ladders(care) == [] and care.sms.sent == []
    # a real alarm from another home at the same time is not touched by this window
    await care.commit(EventKind.SOS, device_id=OTHER_BUTTON, gateway_id=OTHER_GW)
    await care.run()
    other = [a for a in await care.open_alerts() if a["kind"] == "sos"]
    assert [a["gateway_id"] for a in other] == [OTHER_GW]
    assert await _ladders(care) == [other[0]["id"]]

    # 31 minutes on, the window has lapsed: the same button is a real SOS again
    await care.advance(31 * 60)
    await care.commit(EventKind.SOS, test=False)
    await care.run()
    sos = [a for a in await care.open_alerts() if a["kind"] == "sos" and a["gateway_id"] == GW]
    assert len(sos) == 1 and sos[0]["severity"] == "critical"
    assert sos[0]["id"] in await _ladders(care)
    assert await care.asked(sos[0]["id"]) == [SON]


async def test_ending_the_window_makes_alarms_real_at_once(care: Care) -> None:
    await _start(care)
    care.clock.advance(60)
    async with care.db.transaction() as conn:
        assert await C.end(conn, GW, care.clock.now(), "user:installer") is True
        assert await C.end(conn, GW, care.clock.now(), "user:installer") is False
    await care.commit(EventKind.FALL, device_id="radar-xh001")
    await care.run()
    (alert,) = await care.open_alerts()
    assert alert["kind"] == "fall" and alert["id"] in await _ladders(care)


async def test_an_alarm_received_before_the_window_opened_stays_real(care: Care) -> None:
    """An engine that was behind must not turn an earlier real alarm into a test."""
    received = care.clock.now() - timedelta(seconds=30)
    env = EventEnvelope(id=uuid.uuid4().hex, seq=9000, gateway_id=GW, gateway_ts=received,
                        device_id=BUTTON, kind=EventKind.SOS, test=False, device_ts=received,
                        device_seq=9000)
    await care.store.commit([Received(GW, env, received)])
    await _start(care)
    await care.run()
    (alert,) = await care.open_alerts()
    assert alert["kind"] == "sos" and alert["id"] in await _ladders(care)


async def test_extending_keeps_the_start_and_bad_lengths_change_nothing(care: Care) -> None:
    first = await _start(care, minutes=10)
    care.clock.advance(5 * 60)
    second = await _start(care, minutes=30)
    assert second.started_at == first.started_at
    assert second.until == care.clock.now() + timedelta(minutes=30)
    for bad in (0, -5, 24 * 60):
        with pytest.raises(InvalidRequestError):
            await _start(care, minutes=bad)
    async with care.db.transaction() as conn:
        assert await C.get(conn, GW) == second
