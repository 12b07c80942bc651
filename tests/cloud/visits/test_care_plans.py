"""Plans computed from the demo district's records, tasks scheduled from the tiers'
frequencies, pairings, and the missed-visit ladder across a restart."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from care_support import GRID, NEIGHBOUR, RESIDENT, SON, VOLUNTEER, Care, care_settings, open_care
from cv_support import OPERATOR, local

from eldercare_cloud.notify.base import Outbound
from eldercare_cloud.visits.care_models import PairingCreate, TaskStatus, TierRuleUpdate
from eldercare_cloud.visits.risk import Tier


async def test_plans_follow_the_tiers_of_the_demo_records(cv: Care) -> None:
    visits = cv.services.care_visits
    plans = {p.resident_id: p for p in await visits.generate_plans(OPERATOR, "D-XH")}
    # 王秀英: 86 on 4 March 2025, alone, 半失能 → weekly visit, a call every 3 days
    p = plans[RESIDENT]
    assert (p.tier, p.rule, p.visit_every_days, p.call_every_days) == ("medium", "age80_alone",
                                                                       7, 3)
    assert p.matched == ["age80_alone", "semi_disabled_alone", "alone", "age80",
                         "poor_or_empty_nest"]
    # volunteer first, neighbour as backup, the grid worker for the last step
    assert (p.visitor_contact_id, p.backup_contact_id, p.worker_contact_id) == (
        VOLUNTEER, NEIGHBOUR, GRID)
    # 孙阿大: 失能 and alone → twice a week; 郑长根: 94 and alone
    assert (plans["R-XH-005"].tier, plans["R-XH-005"].rule) == ("high", "disabled_alone")
    assert (plans["R-XH-009"].tier, plans["R-XH-009"].rule) == ("high", "age90_alone")
    # 刘桂兰: 失智 living with her husband; 陈德明 (89, with his wife): low
    assert (plans["R-XH-003"].tier, plans["R-XH-003"].rule) == ("medium", "dementia")
    assert (plans["R-XH-002"].tier, plans["R-XH-002"].rule) == ("low", "age80")
    # every plan's tasks: the first visit and call due within their first period
    tasks = [t for t in await visits.list_tasks(OPERATOR) if t.resident_id == RESIDENT]
    assert sorted((t.mode, t.due_date) for t in tasks) == [
        ("in_person", date(2025, 3, 10)), ("phone", date(2025, 3, 6))]
    high = [t for t in await visits.list_tasks(OPERATOR) if t.resident_id == "R-XH-005"]
    assert sorted((t.mode, t.due_date) for t in high) == [
        ("in_person", date(2025, 3, 6)), ("phone", date(2025, 3, 4))]
    # scheduling again changes nothing
    assert await visits.schedule() == 0
    # the rule and the record read are audited per resident
    cur = await cv.db.conn.execute("SELECT COUNT(*) FROM audit_log WHERE record_id = ? AND"
                                   " reason = 'care-visit plan'", (RESIDENT,))
    assert (await cur.fetchone())[0] == 1


async def test_district_frequency_and_pairing_are_data(cv: Care) -> None:
    visits = cv.services.care_visits
    await visits.set_tier_rule(OPERATOR, "D-XH", Tier.MEDIUM,
                               TierRuleUpdate(visit_every_days=14, call_every_days=0))
    plan = await visits.set_pairing(OPERATOR, RESIDENT, PairingCreate(
        visitor_contact_id=NEIGHBOUR, backup_contact_id=SON))
    assert (plan.visitor_contact_id, plan.backup_contact_id, plan.paired) == (
        NEIGHBOUR, SON, True)
    assert (plan.visit_every_days, plan.call_every_days) == (14, 0)
    await visits.schedule()
    tasks = [t for t in await visits.list_tasks(OPERATOR) if t.resident_id == RESIDENT]
    assert [(t.mode, t.due_date, t.visitor_contact_id) for t in tasks] == [
        ("in_person", date(2025, 3, 17), NEIGHBOUR)]


async def test_a_missed_visit_climbs_its_ladder_across_a_restart(
        cv: Care, tmp_path: Path, care_db: Path) -> None:
    visits = cv.services.care_visits
    await visits.generate_plans(OPERATOR, "D-XH")
    [call] = [t for t in await visits.list_tasks(OPERATOR)
              if t.resident_id == RESIDENT and t.mode == "phone"]

    def mine(sent: list[Outbound]) -> list[Outbound]:
        return [m for m in sent if m.alert_id == call.id]

    phones = {cid: (await cv.services.registry.contact(cid)).phone  # type: ignore[union-attr]
              for cid in (VOLUNTEER, NEIGHBOUR, GRID)}
    # due on 6 March: nothing happens before the end of that day
    cv.clock.set(local(6, 23, 59))
    await cv.services.care_visit_engine.tick()
    assert mine(cv.sms.sent) == []
    cv.clock.set(local(7, 0, 0))
    await cv.services.care_visit_engine.tick()
    assert [m.address for m in mine(cv.sms.sent)] == [phones[VOLUNTEER]]
    text = mine(cv.sms.sent)[0].text
    assert "王秀英" in text and "电话问候" in text and "/visit/?token=" in text
    overdue = await visits.list_tasks(OPERATOR, overdue_only=True)
    assert [(t.id, t.step, t.overdue) for t in overdue if t.resident_id == RESIDENT] == [
        (call.id, 1, True)]
    clock = cv.clock
    user_ids = cv.user_ids
    # a restart: the next step's timer is a row
    async with open_care(care_db, care_settings(tmp_path), clock, user_ids) as again:
        clock.advance(timedelta(hours=23, minutes=59).total_seconds())
        await again.services.care_visit_engine.tick()
        assert mine(again.sms.sent) == []
        clock.advance(60)
        await again.services.care_visit_engine.tick()
        assert [m.address for m in mine(again.sms.sent)] == [phones[NEIGHBOUR]]
        clock.advance(timedelta(hours=24).total_seconds())
        await again.services.care_visit_engine.tick()
        assert [m.address for m in mine(again.sms.sent)] == [phones[NEIGHBOUR], phones[GRID]]
        clock.advance(timedelta(days=5).total_seconds())
        await again.services.care_visit_engine.tick()
        assert len(mine(again.sms.sent)) == 2  # the ladder ends with the community worker
        task = next(t for t in await again.services.care_visits.list_tasks(
            OPERATOR, status=TaskStatus.OPEN) if t.id == call.id)
        assert (task.step, task.assignee_contact_id, task.next_step_at) == (3, GRID, None)
        coverage = await again.services.care_visits.coverage(OPERATOR, "D-XH", "2025-03")
        cy = {r.key: r for r in coverage.by_community}["C-XH-CY"]
        assert cy.missed >= 1 and cy.on_time == 0 and cy.share_on_time == 0.0


async def test_plans_are_reassessed_daily_from_the_record(cv: Care) -> None:
    """An open concern lifts 王秀英 from medium to high at the next daily re-plan; her
    visitors stay; the system's read of her record is audited."""
    from eldercare_cloud.visits.routine import ConcernKind

    visits = cv.services.care_visits
    engine = cv.services.care_visit_engine
    await visits.generate_plans(OPERATOR, "D-XH")
    await engine.tick(check=False)  # the first pass re-plans (nothing changed)
    assert await visits.raise_concern(RESIDENT, ConcernKind.OPERATOR, "家属反映老人食欲差", {})
    await engine.tick(check=False)
    plan = next(p for p in await visits.list_plans(OPERATOR) if p.resident_id == RESIDENT)
    assert plan.tier == "medium"  # not before the day is over
    cv.clock.advance(86400)
    await engine.tick(check=False)
    plan = next(p for p in await visits.list_plans(OPERATOR) if p.resident_id == RESIDENT)
    assert (plan.tier, plan.rule, plan.visit_every_days) == ("high", "open_concern", 3)
    assert (plan.visitor_contact_id, plan.backup_contact_id) == (VOLUNTEER, NEIGHBOUR)
    cur = await cv.db.conn.execute("SELECT actor FROM audit_log WHERE record_id = ? AND"
                                   " reason = 'care-visit daily re-plan'", (RESIDENT,))
    assert {r[0] for r in await cur.fetchall()} == {"user:care-visits"}
