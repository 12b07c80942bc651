"""Minimum service levels for a month of orders, against values computed by hand.

Entitled residents with minimums in 西湖区 (demo categories + age + living alone):
R-XH-001 王秀英 (低保, 半失能, alone): 助洁 ≥2 times ≥300 min, 陪聊 ≥2 times;
R-XH-003 刘桂兰 (失智): 陪聊 ≥4 times ≥180 min; R-XH-009 郑长根 (低边, alone): 助洁 ≥2
times ≥300 min, 陪聊 ≥2 times; and the other five living alone: 陪聊 ≥2 times. Eight
in all. The month's visits:

- 王秀英: 助洁 150 + 160 min verified (2 times, 310 min: met); 陪聊 60 min verified and
  one 陪聊 with no device evidence (flagged, not counted): 1 time, not met → not met;
- 郑长根: 助洁 3 × 100 min verified (300 min: met, on the boundary); 陪聊 2 × 45 min
  verified (met) → met; a cancelled 助洁 counts for nothing;
- a February visit of 郑长根 does not count for March.

So 8 entitled, 1 met.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from care_support import RESIDENT, care_settings, open_care
from svc_support import OPERATOR, T0, local

from eldercare_cloud.clock import ManualClock
from eldercare_cloud.services.desk import Actor, ServiceDesk
from eldercare_cloud.services.models import CheckOutCreate, OrderCreate, Payment
from eldercare_cloud.visits import store as V

ZHENG = "R-XH-009"  # 郑长根, 玉泉社区 (H-XH-008)


async def visit(desk: ServiceDesk, clock: ManualClock, resident: str, household: str,
                type_id: str, worker: str, start: datetime, minutes: int, *,
                evidence: bool = True, payment: Payment = Payment.VOUCHER) -> str:
    clock.set(start - timedelta(hours=2))
    order = await desk.create_order(OPERATOR, OrderCreate(
        resident_id=resident, service_type_id=type_id, window_start=start,
        window_end=start + timedelta(minutes=minutes + 30), payment=payment, dispatch=False))
    await desk.dispatch(OPERATOR, order.id, worker)
    who = Actor(f"worker:{worker}", worker)
    await desk.worker_act(order.id, worker, who, "accept")
    clock.set(start)
    if evidence:  # the door opened as the worker came in (what the engine records)
        async with desk.db.transaction() as conn:
            await V.add_evidence(conn, household, f"ev-{order.id}", "door", "door_open",
                                 start - timedelta(minutes=1))
    await desk.worker_act(order.id, worker, who, "check_in")
    clock.set(start + timedelta(minutes=minutes))
    await desk.worker_act(order.id, worker, who, "check_out", CheckOutCreate())
    return order.id


async def test_minimum_service_levels_for_a_month(
        tmp_path: Path, care_db: Path, care_template: tuple[Path, dict[str, str]]) -> None:
    clock = ManualClock(T0)
    async with open_care(care_db, care_settings(tmp_path), clock, care_template[1]) as care:
        desk = care.services.desk
        wang = (RESIDENT, "H-XH-001")
        zheng = (ZHENG, "H-XH-008")
        await visit(desk, clock, *wang, "cleaning", "W-XH-AK-01", local(3, 9), 150)
        await visit(desk, clock, *wang, "cleaning", "W-XH-AK-03", local(17, 14), 160)
        await visit(desk, clock, *wang, "company", "W-XH-AK-01", local(10, 15), 60)
        flagged = await visit(desk, clock, *wang, "company", "W-XH-AK-03", local(20, 15), 60,
                              evidence=False)
        for day in (4, 12, 26):
            await visit(desk, clock, *zheng, "cleaning", "W-XH-XY-01", local(day, 9), 100)
        for day in (6, 21):
            await visit(desk, clock, *zheng, "company", "W-XH-XY-02", local(day, 16), 45,
                        payment=Payment.SELF)
        await visit(desk, clock, *zheng, "cleaning", "W-XH-XY-01",
                    local(25, 9, month=2), 200)
        clock.set(local(27, 8))
        cancelled = await desk.create_order(OPERATOR, OrderCreate(
            resident_id=ZHENG, service_type_id="cleaning", window_start=local(28, 9),
            window_end=local(28, 11), payment=Payment.SELF))  # 270 of 300 元 spent
        await desk.cancel(OPERATOR, cancelled.id, "老人住院")

        assert (await desk.get_order(OPERATOR, flagged)).visit["flags"] == [  # type: ignore[index]
            "no_device_evidence"]
        levels = await care.services.service_records.service_levels(OPERATOR, "D-XH",
                                                                    "2025-03")
    by = {r.resident_id: r for r in levels.residents}
    assert sorted(by) == ["R-XH-001", "R-XH-003", "R-XH-004", "R-XH-005", "R-XH-006",
                          "R-XH-007", "R-XH-009", "R-XH-012"]
    assert (levels.entitled, levels.met) == (8, 1)
    wang_lines = {(ln.service_type_id, ln.required_times, ln.required_minutes, ln.times,
                   ln.minutes, ln.met) for ln in by[RESIDENT].lines}
    assert wang_lines == {("cleaning", 2, 300, 2, 310.0, True),
                          ("company", 2, 0, 1, 60.0, False)}
    zheng_lines = {(ln.service_type_id, ln.times, ln.minutes, ln.met)
                   for ln in by[ZHENG].lines}
    assert zheng_lines == {("cleaning", 3, 300.0, True), ("company", 2, 90.0, True)}
    assert by[ZHENG].met and not by[RESIDENT].met
    liu = {(ln.service_type_id, ln.required_times, ln.required_minutes, ln.times)
           for ln in by["R-XH-003"].lines}
    assert liu == {("company", 4, 180, 0)}
    # 孙阿大 (失能, 特困, 91, alone): the strictest of each rule's minimums
    sun = {(ln.service_type_id, ln.required_times, ln.required_minutes)
           for ln in by["R-XH-005"].lines}
    assert sun == {("bathing", 4, 120), ("cleaning", 2, 300), ("meal", 20, 0),
                   ("company", 2, 0)}
