"""Dispatch: a missed accept deadline re-dispatches to the next worker and tells the
operator; a decline does the same; the deadline is a row, so a restart in the middle
loses no timer and acts once; no worker left leaves the order unassigned, flagged."""

from __future__ import annotations

from pathlib import Path

import pytest
from care_support import RESIDENT, care_settings, open_care
from svc_support import OPERATOR, T0, local

from eldercare_cloud.clock import ManualClock
from eldercare_cloud.errors import NotFoundError
from eldercare_cloud.services.desk import Actor
from eldercare_cloud.services.models import DeclineCreate, OrderCreate

CLEANING = OrderCreate(resident_id=RESIDENT, service_type_id="cleaning",
                       window_start=local(4, 14), window_end=local(4, 16, 30))


async def offers(db_conn: object, order_id: str) -> list[tuple[str, str]]:
    cur = await db_conn.execute(  # type: ignore[attr-defined]
        "SELECT worker_id, status FROM svc_dispatches WHERE order_id = ? ORDER BY id",
        (order_id,))
    return [(r[0], r[1]) for r in await cur.fetchall()]


async def test_missed_accept_deadline_redispatches_once_across_a_restart(
        tmp_path: Path, care_db: Path, care_template: tuple[Path, dict[str, str]]) -> None:
    clock = ManualClock(T0)
    settings = care_settings(tmp_path)
    async with open_care(care_db, settings, clock, care_template[1]) as care:
        desk = care.services.desk
        order = await desk.create_order(OPERATOR, CLEANING)
        assert order.worker_id == "W-XH-AK-01"
        assert order.accept_due_at == T0.replace(minute=15)  # 助洁: accept within 15 min
        # 陈美华 gets the offer by SMS with her signed link, once
        await care.services.service_engine.tick()
        await care.services.service_engine.tick()
        [sms] = care.sms.to("13900005001")
        assert sms.text.startswith("【安心守护】新工单：助洁，王秀英，")
        assert "14:00-16:30" in sms.text
        assert sms.link is not None and f"/job/{order.id}?token=" in sms.link
        view = await desk.work_view(order.id, sms.link.split("token=", 1)[1])
        assert view.order.id == order.id and view.order.worker_id == "W-XH-AK-01"
        clock.advance(899)
        assert await desk.run_due() == 0
    # the cloud restarts; the timer is in the database, not in memory
    clock.advance(2)
    async with open_care(care_db, settings, clock, care_template[1]) as care:
        desk = care.services.desk
        assert await desk.next_due() == T0.replace(minute=15)
        await care.services.service_engine.tick()
        again = await desk.get_order(OPERATOR, order.id)
        assert again.worker_id == "W-XH-AK-03" and again.status == "dispatched"
        assert again.attention == "accept_expired"  # the operator is told
        assert [t.action for t in again.timeline] == [
            "created", "dispatched", "accept_expired", "dispatched"]
        assert await offers(care.db.conn, order.id) == [("W-XH-AK-01", "expired"),
                                                        ("W-XH-AK-03", "offered")]
        # the same due time again acts on nothing (nothing sent or offered twice)
        assert await desk.run_due() == 0
        await care.services.service_engine.tick()
        assert [m.address for m in care.sms.sent] == ["13900005003"]  # only the new offer
        # 陈美华's old link no longer opens the order: it is 杨秀芳's now
        with pytest.raises(NotFoundError):
            await desk.work_view(order.id, sms.link.split("token=", 1)[1])
        # the second worker declines: nobody else in 翠苑 cleans, the order waits for a person
        await desk.worker_act(order.id, "W-XH-AK-03", Actor("user:x", "杨秀芳"), "decline",
                              DeclineCreate(reason="腰伤"))
        last = await desk.get_order(OPERATOR, order.id)
        assert (last.status, last.worker_id, last.attention) == ("unassigned", None,
                                                                 "no_worker")
        assert [t.action for t in last.timeline][-2:] == ["declined", "unassigned"]
        assert await offers(care.db.conn, order.id) == [("W-XH-AK-01", "expired"),
                                                        ("W-XH-AK-03", "declined")]
        assert await desk.suggestions(OPERATOR, order.id) == []


async def test_missed_arrival_tells_the_operator_once(
        tmp_path: Path, care_db: Path, care_template: tuple[Path, dict[str, str]]) -> None:
    clock = ManualClock(T0)
    async with open_care(care_db, care_settings(tmp_path), clock, care_template[1]) as care:
        desk = care.services.desk
        order = await desk.create_order(OPERATOR, CLEANING)
        await desk.worker_act(order.id, "W-XH-AK-01", Actor("user:w", "陈美华"), "accept")
        accepted = await desk.get_order(OPERATOR, order.id)
        # arrival deadline: window start (14:00) + 30 min
        assert accepted.arrive_due_at == local(4, 14, 30)
        clock.set(local(4, 14, 31))
        assert await desk.run_due() == 1
        assert await desk.run_due() == 0
        late = await desk.get_order(OPERATOR, order.id)
        assert late.attention == "arrival_overdue" and late.status == "accepted"
        assert [t.action for t in late.timeline][-1] == "arrival_overdue"


async def test_recurring_plans_make_orders_once(
        tmp_path: Path, care_db: Path, care_template: tuple[Path, dict[str, str]]) -> None:
    """助洁 every other Tuesday 9:00–11:00 and a daily meal, generated two days ahead."""
    from datetime import date, time

    from eldercare_cloud.services.models import PlanCreate

    clock = ManualClock(T0)  # Tuesday 4 March, 09:00
    async with open_care(care_db, care_settings(tmp_path), clock, care_template[1]) as care:
        desk = care.services.desk
        await desk.create_plan(OPERATOR, PlanCreate(
            resident_id=RESIDENT, service_type_id="cleaning", every_days=14,
            first_date=date(2025, 3, 4), start_time=time(9), end_time=time(11)))
        await desk.create_plan(OPERATOR, PlanCreate(
            resident_id=RESIDENT, service_type_id="meal", every_days=1,
            first_date=date(2025, 3, 1), start_time=time(11), end_time=time(12)))
        assert await desk.generate_plans() == 4  # cleaning today; meals 4th, 5th, 6th
        assert await desk.generate_plans() == 0
        orders = await desk.list_orders(OPERATOR)
        got = sorted((o.service_type_id, o.window_start.isoformat(), o.source) for o in orders)
        assert got == [
            ("cleaning", "2025-03-04T01:00:00+00:00", "plan"),
            ("meal", "2025-03-04T03:00:00+00:00", "plan"),
            ("meal", "2025-03-05T03:00:00+00:00", "plan"),
            ("meal", "2025-03-06T03:00:00+00:00", "plan")]
        # the kitchen delivers the meals
        assert {o.provider_id for o in orders if o.service_type_id == "meal"} == {"P-XH-ST"}
        clock.set(local(18, 8))  # two weeks on: the next cleaning, three more meals
        assert await desk.generate_plans() == 4


async def test_callback_sample_share_and_new_workers(
        tmp_path: Path, care_db: Path, care_template: tuple[Path, dict[str, str]]) -> None:
    """Every visit of a worker with fewer than N completed visits is called back, and a
    configurable share of the rest (0 → none, 1 → all)."""
    from eldercare_cloud.services.models import CheckOutCreate, ConfigUpdate

    clock = ManualClock(T0)
    async with open_care(care_db, care_settings(tmp_path), clock, care_template[1]) as care:
        desk = care.services.desk
        assert (await desk.get_config(OPERATOR, "D-XH")).callback_share == 0.1

        async def visit_on(day: int, share: float, new_worker_visits: int) -> bool:
            await desk.set_config(OPERATOR, "D-XH", ConfigUpdate(
                callback_share=share, new_worker_visits=new_worker_visits))
            clock.set(local(day, 8))
            order = await desk.create_order(OPERATOR, OrderCreate(
                resident_id=RESIDENT, service_type_id="company", window_start=local(day, 9),
                window_end=local(day, 10), dispatch=False))
            await desk.dispatch(OPERATOR, order.id, "W-XH-AK-01")
            who = Actor("user:w", "陈美华")
            for action in ("accept", "check_in", "check_out"):
                await desk.worker_act(order.id, "W-XH-AK-01", who, action,
                                      CheckOutCreate() if action == "check_out" else None)
            return (await desk.get_order(OPERATOR, order.id)).callback_due

        assert await visit_on(5, 0.0, 2) is True    # her first visit: always
        assert await visit_on(6, 0.0, 2) is True    # her second: still new
        assert await visit_on(7, 0.0, 2) is False   # no longer new, share 0
        assert await visit_on(10, 1.0, 2) is True   # share 1: every visit
