"""Risk tiers against hand-computed cases: the tier, the rule that decided it and every
rule that matched; and the district's frequencies as data."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from eldercare_cloud.registry.models import (
    Consent,
    ContactPublic,
    Relation,
    ResidentPublic,
)
from eldercare_cloud.visits.care import CareVisits
from eldercare_cloud.visits.risk import DEFAULT_FREQUENCY, Tier, assess, facts_of
from eldercare_protocols.uplink import Routine

DAY = date(2025, 3, 4)


def resident(**overrides: Any) -> ResidentPublic:
    values: dict[str, Any] = dict(
        id="R-1", household_id="H-1", community_id="C-1", district_id="D-1", name="测试",
        address="某路1号", birth_date=date(1950, 6, 1), sex=None, phone=None,
        living_situation="with_family", conditions=[], medications=[], allergies=[],
        mobility="independent", cognitive_impairment="none", care_level=1, language="zh-CN",
        consent=Consent(), wandering_risk=False, thresholds={}, routine=Routine(), notes="",
        categories=[], updated_at=datetime(2025, 1, 1, tzinfo=UTC))
    values.update(overrides)
    return ResidentPublic(**values)


CASES = [
    # (record, alerts in 30 days, open concerns) → tier, deciding rule, all matched
    ({}, 0, 0, Tier.NONE, None, ()),
    ({"living_situation": "alone"}, 0, 0, Tier.LOW, "alone", ("alone",)),
    # 80 on 1 March 2025 exactly, living alone: weekly in person
    ({"living_situation": "alone", "birth_date": date(1945, 3, 1)}, 0, 0, Tier.MEDIUM,
     "age80_alone", ("age80_alone", "alone", "age80")),
    # one day short of 80: still low
    ({"living_situation": "alone", "birth_date": date(1945, 3, 5)}, 0, 0, Tier.LOW,
     "alone", ("alone",)),
    ({"living_situation": "alone", "birth_date": date(1934, 1, 1)}, 0, 0, Tier.HIGH,
     "age90_alone", ("age90_alone", "age80_alone", "alone", "age80")),
    ({"living_situation": "alone", "categories": ["disabled", "tekun"]}, 0, 0, Tier.HIGH,
     "disabled_alone", ("disabled_alone", "disabled", "alone", "poor_or_empty_nest")),
    ({"mobility": "bedridden"}, 0, 0, Tier.MEDIUM, "disabled", ("disabled",)),
    ({"cognitive_impairment": "moderate"}, 0, 0, Tier.MEDIUM, "dementia", ("dementia",)),
    ({"cognitive_impairment": "mild"}, 0, 0, Tier.NONE, None, ()),
    ({"living_situation": "alone", "categories": ["semi_disabled"]}, 0, 0, Tier.MEDIUM,
     "semi_disabled_alone", ("semi_disabled_alone", "alone")),
    ({}, 1, 0, Tier.MEDIUM, "alert_30d", ("alert_30d",)),
    ({}, 2, 0, Tier.HIGH, "alerts_30d_2", ("alerts_30d_2", "alert_30d")),
    ({"categories": ["empty_nest"]}, 0, 1, Tier.HIGH, "open_concern",
     ("open_concern", "poor_or_empty_nest")),
]


@pytest.mark.parametrize(("record", "alerts", "concerns", "tier", "rule", "matched"), CASES)
def test_tier_and_the_rule_that_fired(record: dict[str, Any], alerts: int, concerns: int,
                                      tier: Tier, rule: str | None,
                                      matched: tuple[str, ...]) -> None:
    a = assess(facts_of(resident(**record), DAY, alerts_30d=alerts, open_concerns=concerns))
    assert (a.tier, a.rule, a.matched) == (tier, rule, matched)


def test_default_frequencies_twice_weekly_weekly_monthly() -> None:
    assert (DEFAULT_FREQUENCY[Tier.HIGH].visit_every_days,
            DEFAULT_FREQUENCY[Tier.HIGH].call_every_days) == (3, 1)
    assert DEFAULT_FREQUENCY[Tier.MEDIUM].visit_every_days == 7
    assert DEFAULT_FREQUENCY[Tier.NONE].visit_every_days == 0


def contact(cid: str, relation: Relation, priority: int) -> ContactPublic:
    return ContactPublic(id=cid, resident_id="R-1", name=cid, relation=relation,
                         phone="13900000000", preferred_channel="sms", webhook_url=None,
                         availability=[], priority=priority, user_id=None, notes="")


def test_visitors_volunteer_first_backup_next_worker_is_the_grid_worker() -> None:
    contacts = [contact("son", Relation.FAMILY, 10), contact("nb", Relation.NEIGHBOUR, 30),
                contact("vol", Relation.VOLUNTEER, 40), contact("grid", Relation.GRID_WORKER, 50)]
    assert CareVisits.choose_visitors(contacts, None) == ("vol", "nb", "grid")
    # a one-to-one pairing (结对帮扶) wins; its backup is kept
    assert CareVisits.choose_visitors(contacts, ("son", "nb")) == ("son", "nb", "grid")
    # a pairing without a backup gets the next candidate who is not the worker
    assert CareVisits.choose_visitors(contacts, ("nb", None)) == ("nb", "vol", "grid")
    assert CareVisits.choose_visitors([], None) == (None, None, None)
