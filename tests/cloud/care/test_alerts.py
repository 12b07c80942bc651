"""Alerts from what ingest committed, and from the cloud's own rules (gateway silent,
home quiet), on a real SQLite file with ingest's real write path in front."""

from __future__ import annotations

from pathlib import Path

from care_support import (
    BUTTON,
    DOOR,
    GAS,
    GW,
    OTHER_BUTTON,
    OTHER_GW,
    OTHER_RESIDENT,
    RESIDENT,
    Care,
    care_settings,
    open_care,
)

from clock_support import TEST_EPOCH
from eldercare_cloud.clock import ManualClock, parse_iso
from eldercare_protocols.events import EventKind


async def test_alarm_becomes_one_alert_with_every_timestamp(care: Care) -> None:
    ev = await care.commit(EventKind.SOS)
    await care.run()
    (alert,) = await care.open_alerts()
    assert alert["kind"] == "sos" and alert["severity"] == "critical"
    assert alert["category"] == "life_safety" and alert["status"] == "open"
    assert alert["resident_id"] == RESIDENT and alert["district_id"] == "D-XH"
    assert alert["device_id"] == BUTTON and alert["room"] == "卧室"
    # invariant 5: raised on the device, received by the gateway, committed in the cloud
    assert ev.device_ts is not None
    assert parse_iso(alert["raised_at"]) == ev.device_ts
    assert parse_iso(alert["received_at"]) == ev.gateway_ts
    assert parse_iso(alert["committed_at"]) == ev.committed_at
    assert parse_iso(alert["opened_at"]) == care.clock.now()
    # first notified: the son's SMS went out in the same pass
    assert alert["first_notified_at"] is not None
    assert [m.address for m in care.sms.sent] == ["13900003001"]
    assert "王秀英" in care.sms.sent[0].text and "紧急呼叫" in care.sms.sent[0].text


async def test_repeated_presses_attach_to_the_open_alert(care: Care) -> None:
    for _ in range(3):
        await care.commit(EventKind.SOS)
    await care.run()
    await care.commit(EventKind.SOS)
    await care.run()
    (alert,) = await care.open_alerts()
    assert alert["repeat_count"] == 3
    cur = await care.db.conn.execute("SELECT COUNT(*) FROM alert_sources WHERE alert_id = ?",
                                     (alert["id"],))
    assert (await cur.fetchone())[0] == 4
    # a different kind for the same resident is a different alert
    await care.commit(EventKind.FALL, device_id="radar-xh001")
    await care.run()
    assert sorted(a["kind"] for a in await care.open_alerts()) == ["fall", "sos"]


async def test_nothing_is_lost_between_ingest_commit_and_alert_creation(
        tmp_path: Path, care_db: Path, care_template: tuple[Path, dict[str, str]]) -> None:
    clock = ManualClock(TEST_EPOCH)
    settings = care_settings(tmp_path)
    # ingest committed two alarms, then the process died before the care engine ran
    async with open_care(care_db, settings, clock, care_template[1]) as first:
        await first.commit(EventKind.SOS)
        await first.commit(EventKind.GAS_ALARM, device_id=GAS)
    async with open_care(care_db, settings, clock, care_template[1]) as second:
        await second.run()
        alerts = await second.open_alerts()
        assert sorted(a["kind"] for a in alerts) == ["gas_alarm", "sos"]
        cur = await second.db.conn.execute("SELECT value FROM care_cursors WHERE name = ?",
                                           ("events",))
        cursor = (await cur.fetchone())[0]
        # replaying from an older cursor (as after a crash before our commit) repeats nothing
        async with second.db.transaction() as conn:
            await conn.execute("UPDATE care_cursors SET value = 0 WHERE name = 'events'")
        await second.run()
        again = await second.open_alerts()
        assert [(a["id"], a["repeat_count"]) for a in again] == [
            (a["id"], a["repeat_count"]) for a in alerts]
        cur = await second.db.conn.execute("SELECT value FROM care_cursors WHERE name = ?",
                                           ("events",))
        assert (await cur.fetchone())[0] == cursor


async def test_test_presses_and_plain_activity_raise_nothing(care: Care) -> None:
    await care.commit(EventKind.SOS, test=True)
    await care.commit(EventKind.DOOR_OPEN, device_id=DOOR)
    await care.commit(EventKind.HEARTBEAT, device_id=DOOR)
    await care.run()
    assert await care.open_alerts() == []
    assert care.sms.sent == []


async def test_severity_follows_the_kind_and_device_problems_are_per_device(care: Care) -> None:
    await care.commit(EventKind.FALL, device_id="radar-xh001")
    await care.commit(EventKind.INACTIVITY, device_id=GW)
    await care.commit(EventKind.BATTERY_LOW, device_id=DOOR)
    await care.commit(EventKind.BATTERY_LOW, device_id=GAS)
    await care.commit(EventKind.BATTERY_LOW, device_id=GAS)
    await care.run()
    got = sorted((a["kind"], a["severity"], a["subject"]) for a in await care.open_alerts())
    assert got == [
        ("battery_low", "low", f"device:{DOOR}"),
        ("battery_low", "low", f"device:{GAS}"),
        ("fall", "critical", f"resident:{RESIDENT}"),
        ("inactivity", "high", f"resident:{RESIDENT}"),
    ]
    # device problems go to the console, not up a ladder of relatives
    cur = await care.db.conn.execute(
        "SELECT COUNT(*) FROM ladder_runs r JOIN alerts a ON a.id = r.alert_id"
        " WHERE a.kind = 'battery_low'")
    assert (await cur.fetchone())[0] == 0


async def test_alerts_land_on_the_right_resident(care: Care) -> None:
    await care.commit(EventKind.SOS, device_id=OTHER_BUTTON, gateway_id=OTHER_GW)
    await care.run()
    (alert,) = await care.open_alerts()
    assert alert["resident_id"] == OTHER_RESIDENT and alert["gateway_id"] == OTHER_GW


async def test_last_will_is_a_maintenance_alert_not_a_welfare_alert(care: Care) -> None:
    await care.gateway_state("online")
    await care.gateway_state("offline")
    await care.run()
    (alert,) = await care.open_alerts()
    assert alert["kind"] == "gateway_offline" and alert["category"] == "maintenance"
    assert alert["subject"] == f"gateway:{GW}" and alert["source"] == "cloud"
    assert care.sms.sent == []  # nobody's relatives are woken for a router
    # back online: a note on the alert, which stays for a person to close
    await care.gateway_state("online")
    await care.run()
    (still,) = await care.open_alerts()
    cur = await care.db.conn.execute(
        "SELECT detail FROM alert_timeline WHERE alert_id = ? AND action = 'note'",
        (still["id"],))
    assert "网关已恢复在线" in (await cur.fetchone())[0]
    # a device that goes quiet is not a person who is fine, nor one who is not
    await care.gateway_state("offline")
    await care.advance(24 * 3600)
    kinds = [a["kind"] for a in await care.open_alerts()]
    assert "welfare_check" not in kinds


async def test_silent_gateway_is_offline_after_n_seconds_once(care: Care) -> None:
    await care.gateway_state("online")
    await care.run()
    assert await care.open_alerts() == []
    await care.advance(care.settings.care.gateway_offline_after_s + 5)
    (alert,) = await care.open_alerts()
    assert alert["kind"] == "gateway_offline"
    await care.advance(60)
    (same,) = await care.open_alerts()
    assert same["id"] == alert["id"] and same["repeat_count"] == 0


async def test_quiet_home_with_live_gateway_raises_a_welfare_alert(
        tmp_path: Path, care_db: Path, care_template: tuple[Path, dict[str, str]]) -> None:
    clock = ManualClock(TEST_EPOCH)
    settings = care_settings(tmp_path, care={"welfare_inactive_hours": 1.0,
                                             "gateway_offline_after_s": 3 * 3600})
    async with open_care(care_db, settings, clock, care_template[1]) as care:
        await care.gateway_state("online")
        await care.commit(EventKind.MOTION, device_id="pir-xh001")
        await care.run()
        await care.advance(1800)
        assert await care.open_alerts() == []
        await care.advance(1900)
        (alert,) = await care.open_alerts()
        assert alert["kind"] == "welfare_check" and alert["severity"] == "high"
        assert alert["resident_id"] == RESIDENT and alert["source"] == "cloud"
        # a welfare check is for people: the ladder starts with the family
        assert care.sms.sent[0].address == "13900003001"
        await care.advance(60)
        (same,) = await care.open_alerts()
        assert same["repeat_count"] == 0
