"""Watch scenarios: the shipped walk loads, and a bad file is one clear error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eldercare_sim import watch_scenario
from eldercare_sim.errors import ScenarioError

SHIPPED = Path(__file__).resolve().parents[2] / "firmware-sim" / "scenarios" / \
    "watch" / "watch-wander.yaml"


def test_the_shipped_walk_loads() -> None:
    s = watch_scenario.load(SHIPPED)
    assert s.name == "watch-wander" and s.home == (30.2741, 120.1551)
    assert [st.action for st in s.steps] == ["link", "position", "walk", "position",
                                             "strap_off", "sos", "resend"]
    walk = s.steps[2]
    assert (walk.north_m, walk.over_s, walk.every_s, walk.at_s) == (800, 600, 120, 300)
    assert s.start.utcoffset() is not None


GOOD: dict[str, Any] = {"start": "2026-11-23T09:00:00+08:00", "home": [30.2, 120.1],
                        "steps": [{"at": "+0s", "action": "link"}]}


@pytest.mark.parametrize(("change", "message"), [
    ({"start": "2026-11-23T09:00:00"}, "time zone"),
    ({"start": "tomorrow"}, "start"),
    ({"home": [95, 120]}, "home"),
    ({"home": "Hangzhou"}, "home"),
    ({"steps": []}, "steps"),
    ({"steps": [{"at": "+0s", "action": "dance"}]}, "action must be one of"),
    ({"steps": [{"at": "09:00", "action": "link"}]}, "DURATION from start"),
    ({"steps": [{"action": "position", "north_m": "far"}]}, "north_m must be a number"),
    ({"steps": [{"action": "position", "fix": "yes"}]}, "fix must be"),
    ({"steps": [{"action": "walk", "over": "10h", "every": "1s"}]}, "at most"),
    ({"steps": [{"action": "link", "colour": "red"}]}, "unknown field"),
    ({"steps": [{"at": "+5m", "action": "link"}, {"at": "+1m", "action": "link"}]},
     "time order"),
])
def test_bad_scenarios_are_one_clear_error(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        watch_scenario.parse({**GOOD, **change})
    assert watch_scenario.parse(GOOD).steps[0].action == "link"
