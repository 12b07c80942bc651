"""Every string a person reads is in both translation tables, and every key a page uses
exists: a missing translation would show as ⟦key⟧ in a monitoring centre."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from eldercare_cloud.api.console_support import DeviceProblem, MapState
from eldercare_cloud.auth.models import Role
from eldercare_cloud.care.models import AlertKind, AlertStatus, ClosureCode, Severity
from eldercare_cloud.registry.models import (
    CognitiveImpairment,
    ContactChannel,
    LivingSituation,
    Mobility,
    Relation,
    Sex,
)
from eldercare_protocols.catalogue import CATALOGUE

DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards"
TABLES = DASHBOARDS / "shared" / "i18n"
PAGES = [p for p in DASHBOARDS.rglob("*") if p.suffix in {".js", ".html"}]


def _table(lang: str) -> dict[str, str]:
    data = json.loads((TABLES / f"{lang}.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


ZH = _table("zh-CN")
EN = _table("en")


def test_both_tables_have_the_same_keys() -> None:
    assert set(ZH) - set(EN) == set(), "keys missing in en.json"
    assert set(EN) - set(ZH) == set(), "keys missing in zh-CN.json"
    assert len(ZH) > 200


def test_no_empty_text_and_the_same_placeholders() -> None:
    for key in ZH:
        assert ZH[key].strip() and EN[key].strip(), key
        assert set(re.findall(r"\{(\w+)\}", ZH[key])) == set(re.findall(r"\{(\w+)\}", EN[key])), key


def test_chinese_table_is_chinese() -> None:
    """zh-CN first: the default table is not English left untranslated."""
    cjk = re.compile(r"[\u4e00-\u9fff]")
    with_cjk = [k for k, v in ZH.items() if cjk.search(v)]
    assert len(with_cjk) / len(ZH) > 0.9
    for key in ("app.title", "nav.map", "phone.accept", "phone.decline", "action.acknowledge"):
        assert cjk.search(ZH[key]), key


def _used_keys() -> set[str]:
    namespaces = {k.split(".")[0] for k in ZH}
    keys: set[str] = set()
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        keys.update(re.findall(r"\bt\(\s*\"([a-z0-9_]+\.[a-z0-9_]+)\"", text))
        keys.update(re.findall(r"data-i18n(?:-[a-z]+)?=\"([a-z0-9_.]+)\"", text))
        # keys passed around as data, e.g. ["call120.address", value] or ["1 2 3", "keys.views"]
        for literal in re.findall(r"\"([a-z0-9_]+\.[a-z0-9_]+)\"", text):
            if literal.split(".")[0] in namespaces and not literal.endswith((".js", ".json")):
                keys.add(literal)
    return keys


def test_every_key_the_pages_use_exists() -> None:
    used = _used_keys()
    assert len(used) > 150
    missing = sorted(k for k in used if k not in ZH)
    assert missing == []


@pytest.mark.parametrize(("prefix", "values"), [
    ("kind", [k.value for k in AlertKind]),
    ("severity", [s.value for s in Severity]),
    ("status", [s.value for s in AlertStatus]),
    ("closure", [c.value for c in ClosureCode]),
    ("relation", [r.value for r in Relation]),
    ("channel", [c.value for c in ContactChannel] + ["console"]),
    ("sex", [s.value for s in Sex]),
    ("mobility", [m.value for m in Mobility]),
    ("cognitive", [c.value for c in CognitiveImpairment]),
    ("living", [x.value for x in LivingSituation]),
    ("device_type", list(CATALOGUE)),
    ("role", [r.value for r in Role]),
    ("problem", [p.value for p in DeviceProblem]),
    ("map_state", [m.value for m in MapState]),
])
def test_every_domain_value_has_a_translation(prefix: str, values: list[str]) -> None:
    missing = [v for v in values if f"{prefix}.{v}" not in ZH]
    assert missing == [], f"{prefix}: {missing}"


def test_dynamic_key_families_exist() -> None:
    """Keys built at run time: conn.${state}, unit.${vital}."""
    for state in ("connecting", "live", "reconnecting", "stopped", "unauthorized"):
        assert f"conn.{state}" in ZH
    for vital in [k.split(".", 1)[1] for k in ZH if k.startswith("vital.")]:
        assert f"unit.{vital}" in ZH
