"""The Grafana dashboards docker-compose mounts: valid JSON, every query on the bucket the
cloud writes, and only measurements and fields the device catalogue defines (a renamed
measurement would leave a panel silently empty)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from eldercare_cloud.settings import CloudSettings
from eldercare_protocols.catalogue import CATALOGUE

GRAFANA = Path(__file__).resolve().parents[2] / "dashboards" / "grafana"
DASHBOARDS = sorted(GRAFANA.glob("*.json"))


def _targets(dash: dict[str, Any]) -> list[str]:
    return [t["query"] for p in dash["panels"] for t in p.get("targets", [])]


def test_there_are_telemetry_and_fleet_dashboards() -> None:
    assert {p.name for p in DASHBOARDS} >= {"telemetry.json", "fleet-health.json"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_queries_match_the_catalogue(path: Path) -> None:
    dash = json.loads(path.read_text(encoding="utf-8"))
    assert dash["uid"] and dash["title"] and dash["timezone"] == "Asia/Shanghai"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    assert any(v["type"] == "datasource" and v["query"] == "influxdb"
               for v in dash["templating"]["list"])
    bucket = CloudSettings().influx.bucket
    kinds = {k.value for d in CATALOGUE.values() for k in d.telemetry_kinds}
    fields = {m for d in CATALOGUE.values() for m in d.measurements}
    queries = _targets(dash)
    assert queries
    for panel in dash["panels"]:
        assert panel["datasource"]["uid"] == "${ds}", panel["title"]
    for query in queries:
        assert f'from(bucket: "{bucket}")' in query
        for measurement in re.findall(r'r\._measurement == "([^"]+)"', query):
            assert measurement in kinds, measurement
        for field in re.findall(r'r\._field == "([^"]+)"', query):
            assert field in fields, field
