"""The escalation ladder with an injected clock: silence, accept, decline, cancel,
operator takeover, a per-resident override, and a kill/restart in the middle.

The demo district's ladder for 王秀英: her son then her daughter (in turn) → the
neighbour and the volunteer (all at once) → the grid worker → the monitoring centre →
emergency services; 60 s per step for life-safety alerts.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from care_support import (
    DAUGHTER,
    GRID,
    NEIGHBOUR,
    RESIDENT,
    SON,
    VOLUNTEER,
    Care,
    care_settings,
    open_care,
)

from clock_support import TEST_EPOCH
from eldercare_cloud.auth.models import Principal, Role
from eldercare_cloud.care.models import (
    ClosureCode,
    Ladder,
    LadderStep,
    ResolveRequest,
    StepMode,
    TakeoverRequest,
)
from eldercare_cloud.clock import ManualClock
from eldercare_cloud.errors import ConflictError
from eldercare_protocols.events import EventKind

PHONES = {SON: "13900003001", DAUGHTER: "13900003002", NEIGHBOUR: "13900003003",
          VOLUNTEER: "13900002001", GRID: "13900001001"}


def operator() -> Principal:
    return Principal(user_id="U-op", username="operator", role=Role.OPERATOR, tenant="default",
                     district_ids=frozenset({"D-XH"}))


async def sos(care: Care) -> str:
    await care.commit(EventKind.SOS)
    await care.run()
    (alert,) = await care.open_alerts()
    return str(alert["id"])


async def tasks(care: Care, alert_id: str) -> list[str]:
    cur = await care.db.conn.execute(
        "SELECT payload FROM notifications WHERE alert_id = ?"
        " AND channel = 'console' ORDER BY created_at", (alert_id,))
    return [json.loads(r[0]).get("task") for r in await cur.fetchall()]


async def run_status(care: Care, alert_id: str) -> tuple[str, str | None]:
    cur = await care.db.conn.execute("SELECT status, stop_reason FROM ladder_runs"
                                     " WHERE alert_id = ?", (alert_id,))
    row = await cur.fetchone()
    return row[0], row[1]


async def test_silence_moves_the_ladder_on_at_each_timeout(care: Care) -> None:
    alert_id = await sos(care)
    assert await care.asked(alert_id) == [SON]
    await care.advance(59)
    assert await care.asked(alert_id) == [SON]
    await care.advance(1)
    assert await care.asked(alert_id) == [SON, DAUGHTER]
    await care.advance(60)
    assert sorted(await care.asked(alert_id)) == sorted([SON, DAUGHTER, NEIGHBOUR, VOLUNTEER])
    await care.advance(60)
    assert (await care.asked(alert_id))[-1] == GRID
    assert await tasks(care, alert_id) == []
    await care.advance(60)
    assert await tasks(care, alert_id) == ["monitoring_centre"]
    await care.advance(60)
    assert await tasks(care, alert_id) == ["monitoring_centre", "call_120"]
    await care.advance(60)
    assert await run_status(care, alert_id) == ("exhausted", "exhausted")
    await care.advance(600)
    # everyone was asked exactly once, by SMS, in ladder order
    assert sorted(m.address for m in care.sms.sent) == sorted(PHONES.values())
    offers = await care.offers(alert_id)
    assert set(offers.values()) == {"no_answer"}


async def test_accept_stops_the_ladder_and_assigns_the_alert(care: Care) -> None:
    alert_id = await sos(care)
    await care.advance(60)  # the son said nothing; the daughter is asked
    token = await care.link_token(alert_id, DAUGHTER)
    view = await care.services.responder.act(alert_id, token, "accept")
    assert view.you_accepted and view.status == "assigned"
    assert view.medical is not None and "青霉素" in view.medical.allergies
    alert = await care.alert(alert_id)
    assert alert["status"] == "assigned" and alert["assigned_contact_id"] == DAUGHTER
    assert alert["accepted_at"] == alert["updated_at"]
    assert await run_status(care, alert_id) == ("stopped", "accepted")
    await care.advance(3600)
    assert await care.asked(alert_id) == [SON, DAUGHTER]
    # the son may still open his link, sees who is going, and cannot accept any more
    son = await care.services.responder.view(alert_id, await care.link_token(alert_id, SON))
    assert son.accepted_by == "李建英" and son.actions == [] and son.medical is None
    with pytest.raises(ConflictError):
        await care.services.responder.act(alert_id, await care.link_token(alert_id, SON),
                                          "accept")
    # the responder's progress is stamped
    for action in ("en_route", "on_scene"):
        await care.services.responder.act(alert_id, token, action)
    await care.services.responder.act(alert_id, token, "resolve", ResolveRequest(
        closure_code=ClosureCode.HELPED_AT_HOME, note="扶起，无外伤"))
    done = await care.alert(alert_id)
    assert done["status"] == "resolved" and done["closure_code"] == "helped_at_home"
    assert all(done[k] for k in ("en_route_at", "on_scene_at", "resolved_at"))
    assert done["en_route_at"] <= done["on_scene_at"] <= done["resolved_at"]


async def test_i_cant_go_moves_on_at_once(care: Care) -> None:
    alert_id = await sos(care)
    responder = care.services.responder
    await responder.act(alert_id, await care.link_token(alert_id, SON), "decline")
    await care.run()
    assert await care.asked(alert_id) == [SON, DAUGHTER]  # no time has passed
    await responder.act(alert_id, await care.link_token(alert_id, DAUGHTER), "decline")
    await care.run()
    assert set((await care.asked(alert_id))[2:]) == {NEIGHBOUR, VOLUNTEER}
    # all at once: one "no" is not enough while the other may still say yes
    await responder.act(alert_id, await care.link_token(alert_id, NEIGHBOUR), "decline")
    await care.run()
    assert GRID not in await care.asked(alert_id)
    await responder.act(alert_id, await care.link_token(alert_id, VOLUNTEER), "decline")
    await care.run()
    assert (await care.asked(alert_id))[-1] == GRID
    assert care.clock.now() == datetime.fromisoformat((await care.alert(alert_id))["opened_at"])
    # having said no, the son changes his mind: a late yes still counts
    await responder.act(alert_id, await care.link_token(alert_id, SON), "accept")
    assert (await care.alert(alert_id))["assigned_contact_id"] == SON


async def test_cancel_press_requests_cancel_but_closes_nothing(care: Care) -> None:
    alert_id = await sos(care)
    await care.commit(EventKind.CANCEL)
    await care.run()
    alert = await care.alert(alert_id)
    assert alert["status"] == "cancel_requested" and alert["cancel_requested_at"]
    # the ladder keeps asking until a person confirms, and says the elder cancelled
    await care.advance(60)
    assert care.sms.to(PHONES[DAUGHTER])[0].text.count("已按取消键") == 1
    # pressed again after cancelling: needs help after all
    await care.commit(EventKind.SOS)
    await care.run()
    assert (await care.alert(alert_id))["status"] == "open"
    await care.commit(EventKind.CANCEL)
    await care.run()
    # only an operator (or the responder who accepted) closes it
    await care.services.care.resolve(operator(), alert_id, ResolveRequest(
        closure_code=ClosureCode.FALSE_ALARM, note="电话确认误按"))
    assert await run_status(care, alert_id) == ("stopped", "resolved")
    await care.advance(600)
    assert await care.asked(alert_id) == [SON, DAUGHTER]
    await care.services.care.close(operator(), alert_id)
    assert (await care.alert(alert_id))["status"] == "closed"


async def test_monitoring_centre_sees_critical_alerts_at_once_and_can_take_over(
        care: Care) -> None:
    alert_id = await sos(care)
    # second zero: in the operator's queue and on the stream, whatever the ladder says
    queue = await care.services.care.list_alerts(operator(), open_only=True)
    assert [a.id for a in queue] == [alert_id]
    events, _ = await care.services.hub.events_after(operator(), 0)
    assert next(e.type for e in events if e.alert_id == alert_id) == "alert.opened"
    await care.services.care.takeover(operator(), alert_id, TakeoverRequest(note="我来处理"))
    alert = await care.alert(alert_id)
    assert alert["taken_over_by"] == "U-op" and alert["status"] == "acknowledged"
    assert alert["acknowledged_at"] is not None
    assert await run_status(care, alert_id) == ("stopped", "takeover")
    await care.advance(3600)
    assert await care.asked(alert_id) == [SON]
    with pytest.raises(ConflictError):
        await care.services.care.takeover(operator(), alert_id, TakeoverRequest())


async def test_resident_override_replaces_the_district_ladder(care: Care) -> None:
    ladder = Ladder(steps=[LadderStep(contact_ids=[GRID, NEIGHBOUR],
                                      mode=StepMode.ALL_AT_ONCE, timeout_s=30)])
    await care.services.care.put_ladder(operator(), ladder, resident_id=RESIDENT)
    alert_id = await sos(care)
    assert sorted(await care.asked(alert_id)) == sorted([GRID, NEIGHBOUR])
    await care.advance(29)
    assert await run_status(care, alert_id) == ("running", None)
    await care.advance(1)
    assert await run_status(care, alert_id) == ("exhausted", "exhausted")


async def test_care_alerts_wait_longer_than_life_safety(care: Care) -> None:
    await care.commit(EventKind.INACTIVITY, device_id="GW-XH-001")
    await care.run()
    (alert,) = await care.open_alerts()
    assert await care.asked(alert["id"]) == [SON]
    await care.advance(care.settings.care.ladder_default_timeout_s - 1)
    assert await care.asked(alert["id"]) == [SON]
    await care.advance(1)
    assert await care.asked(alert["id"]) == [SON, DAUGHTER]


async def test_restart_mid_ladder_skips_no_step_and_notifies_nobody_twice(
        tmp_path: Path, care_db: Path, care_template: tuple[Path, dict[str, str]]) -> None:
    clock = ManualClock(TEST_EPOCH)
    settings = care_settings(tmp_path)
    sent: list[str] = []
    async with open_care(care_db, settings, clock, care_template[1]) as care:
        alert_id = await sos(care)
        await care.advance(60)
        assert await care.asked(alert_id) == [SON, DAUGHTER]
        # the daughter's step is half over when the cloud is killed
        clock.advance(30)
        sent += [m.address for m in care.sms.sent]
    # down for five minutes: several timeouts' worth
    clock.advance(300)
    async with open_care(care_db, settings, clock, care_template[1]) as care:
        await care.run()
        # exactly one step moves on, and it gets its full minute from now
        assert set((await care.asked(alert_id))[2:]) == {NEIGHBOUR, VOLUNTEER}
        assert GRID not in await care.asked(alert_id)
        await care.advance(59)
        assert GRID not in await care.asked(alert_id)
        sent += [m.address for m in care.sms.sent]
    async with open_care(care_db, settings, clock, care_template[1]) as care:
        await care.advance(1)
        assert (await care.asked(alert_id))[-1] == GRID
        for _ in range(4):
            await care.advance(60)
        assert await tasks(care, alert_id) == ["monitoring_centre", "call_120"]
        assert await run_status(care, alert_id) == ("exhausted", "exhausted")
        sent += [m.address for m in care.sms.sent]
    assert sorted(sent) == sorted(PHONES.values())  # each person exactly once


async def test_in_flight_notification_is_resent_after_a_crash(
        tmp_path: Path, care_db: Path, care_template: tuple[Path, dict[str, str]]) -> None:
    """Killed between marking a message 'sending' and recording the result: the one
    message in flight is sent again on start (at least once), and nothing else is."""
    clock = ManualClock(TEST_EPOCH)
    settings = care_settings(tmp_path)
    async with open_care(care_db, settings, clock, care_template[1]) as care:
        await care.commit(EventKind.SOS)
        await care.services.engine.tick()  # the ladder queued the son's SMS ...
        async with care.db.transaction() as conn:  # ... and the dispatcher died mid-send
            await conn.execute("UPDATE notifications SET status = 'sending', attempts = 1")
    async with open_care(care_db, settings, clock, care_template[1]) as care:
        await care.run()
        assert [m.address for m in care.sms.sent] == [PHONES[SON]]
        cur = await care.db.conn.execute("SELECT status, attempts FROM notifications")
        assert [tuple(r) for r in await cur.fetchall()] == [("sent", 2)]


async def test_transient_failures_are_retried_and_recorded(care: Care) -> None:
    from eldercare_cloud.notify.base import Delivery

    care.sms.fail_next = [Delivery.failed("+CMS ERROR 332", transient=True)]
    alert_id = await sos(care)
    cur = await care.db.conn.execute("SELECT status, attempts, last_error FROM notifications")
    assert tuple(await cur.fetchone()) == ("pending", 1, "+CMS ERROR 332")
    assert (await care.alert(alert_id))["first_notified_at"] is None
    await care.advance(care.settings.notify.retry_base_s)
    cur = await care.db.conn.execute("SELECT status, attempts FROM notifications")
    assert tuple(await cur.fetchone()) == ("sent", 2)
    assert (await care.alert(alert_id))["first_notified_at"] is not None
    # a permanent failure is recorded and announced to the console, not retried
    care.sms.fail_next = [Delivery.failed("invalid number", transient=False)]
    await care.advance(60)
    cur = await care.db.conn.execute("SELECT status, attempts FROM notifications"
                                     " WHERE contact_id = ?", (DAUGHTER,))
    assert tuple(await cur.fetchone()) == ("failed", 1)
    events, _ = await care.services.hub.events_after(operator(), 0)
    assert "notification.failed" in [e.type for e in events]
