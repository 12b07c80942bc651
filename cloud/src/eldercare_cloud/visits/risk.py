"""The risk tier of a resident, computed visibly from their record: pure functions.

Every rule is a row of ``RULES`` (an id, the tier it gives, a zh/en text and a
predicate); the tier is the highest tier of any rule that matches, and the answer names
the rule that decided it plus every other one that matched, so a community worker can
see *why* a resident is visited twice a week. Age and living alone are derived from the
birth date and living situation exactly as the service desk derives them
(``services.catalogue.categories_of``), never stored twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from eldercare_cloud.registry.models import (
    CognitiveImpairment,
    Mobility,
    ResidentCategory,
    ResidentPublic,
)
from eldercare_cloud.services.catalogue import categories_of


class Tier(StrEnum):
    HIGH = "high"      # 高风险
    MEDIUM = "medium"  # 中风险
    LOW = "low"        # 低风险
    NONE = "none"      # 无需定期探访


TIER_ORDER = {Tier.HIGH: 3, Tier.MEDIUM: 2, Tier.LOW: 1, Tier.NONE: 0}
TIER_ZH = {Tier.HIGH: "高风险", Tier.MEDIUM: "中风险", Tier.LOW: "低风险", Tier.NONE: "无"}


@dataclass(frozen=True)
class Facts:
    """What the rules look at, taken from the record on one day."""

    categories: frozenset[str]
    alone: bool
    age: int | None
    disabled: bool       # 失能
    semi_disabled: bool  # 半失能
    dementia: bool       # 失智
    alerts_30d: int
    open_concerns: int


def facts_of(resident: ResidentPublic, day: date, *, alerts_30d: int,
             open_concerns: int) -> Facts:
    cats = frozenset(categories_of(resident, day))
    age = None
    if resident.birth_date is not None:
        b = resident.birth_date
        age = day.year - b.year - ((day.month, day.day) < (b.month, b.day))
    return Facts(
        categories=cats, alone="living_alone" in cats, age=age,
        disabled=(ResidentCategory.DISABLED.value in cats
                  or resident.mobility is Mobility.BEDRIDDEN),
        semi_disabled=ResidentCategory.SEMI_DISABLED.value in cats,
        dementia=(ResidentCategory.DEMENTIA.value in cats
                  or resident.cognitive_impairment in (CognitiveImpairment.MODERATE,
                                                       CognitiveImpairment.SEVERE)),
        alerts_30d=alerts_30d, open_concerns=open_concerns)


@dataclass(frozen=True)
class Rule:
    id: str
    tier: Tier
    zh: str
    en: str
    test: Callable[[Facts], bool]


def _age(f: Facts, years: int) -> bool:
    return f.age is not None and f.age >= years


POOR = {ResidentCategory.DIBAO.value, ResidentCategory.DIBIAN.value,
        ResidentCategory.TEKUN.value, ResidentCategory.EMPTY_NEST.value}

#: in order: within a tier the first match is the one named as deciding
RULES: tuple[Rule, ...] = (
    Rule("disabled_alone", Tier.HIGH, "失能且独居", "disabled and living alone",
         lambda f: f.disabled and f.alone),
    Rule("dementia_alone", Tier.HIGH, "失智且独居", "dementia and living alone",
         lambda f: f.dementia and f.alone),
    Rule("age90_alone", Tier.HIGH, "90岁以上且独居", "aged 90+ and living alone",
         lambda f: _age(f, 90) and f.alone),
    Rule("open_concern", Tier.HIGH, "有未处理的关注事项", "an open concern",
         lambda f: f.open_concerns > 0),
    Rule("alerts_30d_2", Tier.HIGH, "近30天告警2次以上", "2+ alerts in the last 30 days",
         lambda f: f.alerts_30d >= 2),
    Rule("age80_alone", Tier.MEDIUM, "80岁以上且独居", "aged 80+ and living alone",
         lambda f: _age(f, 80) and f.alone),
    Rule("semi_disabled_alone", Tier.MEDIUM, "半失能且独居", "semi-disabled and living alone",
         lambda f: f.semi_disabled and f.alone),
    Rule("disabled", Tier.MEDIUM, "失能", "disabled", lambda f: f.disabled),
    Rule("dementia", Tier.MEDIUM, "失智", "dementia", lambda f: f.dementia),
    Rule("alert_30d", Tier.MEDIUM, "近30天有告警", "an alert in the last 30 days",
         lambda f: f.alerts_30d >= 1),
    Rule("alone", Tier.LOW, "独居", "living alone", lambda f: f.alone),
    Rule("age80", Tier.LOW, "80岁以上", "aged 80+", lambda f: _age(f, 80)),
    Rule("poor_or_empty_nest", Tier.LOW, "低保/低边/特困/空巢", "low income or empty nest",
         lambda f: bool(f.categories & POOR)),
)
RULE_BY_ID = {r.id: r for r in RULES}


@dataclass(frozen=True)
class Assessment:
    tier: Tier
    #: the rule that decided the tier (None for Tier.NONE)
    rule: str | None
    #: every rule that matched, deciding one first
    matched: tuple[str, ...]
    facts: Facts


def assess(facts: Facts) -> Assessment:
    matched = [r for r in RULES if r.test(facts)]
    if not matched:
        return Assessment(Tier.NONE, None, (), facts)
    top = max(matched, key=lambda r: TIER_ORDER[r.tier])  # max keeps the first of equals
    rest = [r.id for r in matched if r is not top]
    return Assessment(top.tier, top.id, (top.id, *rest), facts)


@dataclass(frozen=True)
class Frequency:
    """How often a tier is visited: in person every N days, a phone call every M days
    (a visit counts as the call of its day; 0 = never)."""

    visit_every_days: int
    call_every_days: int


#: the defaults a district starts from (rows in ``cv_tier_rules`` override them):
#: 失能独居 twice a week in person with a daily call, 独居80+ weekly with a call every
#: three days, the rest monthly with a weekly call
DEFAULT_FREQUENCY: dict[Tier, Frequency] = {
    Tier.HIGH: Frequency(3, 1),
    Tier.MEDIUM: Frequency(7, 3),
    Tier.LOW: Frequency(30, 7),
    Tier.NONE: Frequency(0, 0),
}
