"""Watch scenarios: a GPS SOS watch on a walk, as a YAML file played over TCP.

::

    name: watch-wander
    start: "2026-11-23T09:00:00+08:00"
    home: [30.2741, 120.1551]
    steps:
      - {at: "+0s", action: link}
      - {at: "+1m", action: position}                    # at home, a GPS fix
      - {at: "+5m", action: walk, north_m: 600, over: 10m, every: 2m}
      - {at: "+20m", action: strap_off}
      - {at: "+25m", action: sos}
      - {at: "+25m", action: resend}                     # the reply was lost: again

Actions: ``link`` (an LK heartbeat), ``position`` (a UD at ``north_m``/``east_m`` from
home, ``fix: false`` for none), ``walk`` (UDs every ``every`` along a straight line from
where the watch is to ``north_m``/``east_m`` over ``over``), ``sos``, ``fall``,
``strap_off`` (AL frames with that alarm bit, ``fix`` as for ``position``) and ``resend``
(the last AL frame again, byte for byte, as a watch does when it missed the reply).
Frames carry the scenario's time (its ``start`` plus ``at``), never the wall clock, so a
run is the same every time; the steps are played as fast as the server answers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from eldercare_protocols.events import EventKind
from eldercare_sim.errors import ScenarioError
from eldercare_sim.geo import offset
from eldercare_sim.scenario import _Loader, parse_duration
from eldercare_sim.watch import SimWatch

ALARMS = {"sos": EventKind.SOS, "fall": EventKind.FALL, "strap_off": EventKind.STRAP_REMOVED}
ACTIONS = frozenset({"link", "position", "walk", "resend", *ALARMS})
#: a walk sends at most this many positions (a bounded loop whatever the file says)
MAX_WALK_POINTS = 500


@dataclass(frozen=True)
class WatchStep:
    index: int
    at_s: float
    action: str
    north_m: float = 0.0
    east_m: float = 0.0
    fix: bool = True
    over_s: float = 0.0
    every_s: float = 60.0


@dataclass
class WatchScenario:
    name: str
    start: datetime
    home: tuple[float, float]
    steps: list[WatchStep] = field(default_factory=list)
    description: str = ""


def load(path: Path | str) -> WatchScenario:
    path = Path(path)
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML") from exc
    try:
        return parse(doc, path.stem)
    except ScenarioError as exc:
        raise ScenarioError(f"{path}: {exc}") from exc


def _number(raw: dict[str, Any], key: str, where: str, default: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ScenarioError(f"{where}: {key} must be a number")
    return float(value)


def parse(doc: Any, default_name: str = "watch") -> WatchScenario:
    if not isinstance(doc, dict):
        raise ScenarioError("a watch scenario is a mapping with start, home and steps")
    try:
        start = datetime.fromisoformat(str(doc["start"]))
    except (KeyError, ValueError) as exc:
        raise ScenarioError("start: an ISO date and time with its zone is required") from exc
    if start.tzinfo is None:
        raise ScenarioError("start: give the time zone (e.g. +08:00)")
    home = doc.get("home")
    if (not isinstance(home, list) or len(home) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in home)
            or not (-90 <= home[0] <= 90 and -180 <= home[1] <= 180)):
        raise ScenarioError("home: [latitude, longitude] in degrees")
    raw_steps = doc.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ScenarioError("steps: a list of steps is required")
    steps: list[WatchStep] = []
    for i, raw in enumerate(raw_steps, 1):
        where = f"step {i}"
        if not isinstance(raw, dict):
            raise ScenarioError(f"{where}: a mapping with at and action")
        action = raw.get("action")
        if action not in ACTIONS:
            raise ScenarioError(f"{where}: action must be one of {', '.join(sorted(ACTIONS))}")
        unknown = set(raw) - {"at", "action", "north_m", "east_m", "fix", "over", "every"}
        if unknown:
            raise ScenarioError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        at = str(raw.get("at", "+0s")).strip()
        if not at.startswith("+"):
            raise ScenarioError(f"{where}: at must be +DURATION from start")
        fix = raw.get("fix", True)
        if not isinstance(fix, bool):
            raise ScenarioError(f"{where}: fix must be true or false")
        step = WatchStep(
            index=i, at_s=parse_duration(at[1:], f"{where}: at"), action=str(action),
            north_m=_number(raw, "north_m", where, 0.0), east_m=_number(raw, "east_m", where, 0.0),
            fix=fix, over_s=parse_duration(raw.get("over", 0), f"{where}: over"),
            every_s=parse_duration(raw.get("every", 60), f"{where}: every"))
        if action == "walk" and (step.every_s <= 0 or step.over_s / step.every_s
                                 > MAX_WALK_POINTS):
            raise ScenarioError(f"{where}: a walk needs every > 0 and at most "
                                f"{MAX_WALK_POINTS} positions")
        if steps and step.at_s < steps[-1].at_s:
            raise ScenarioError(f"{where}: steps must be in time order")
        steps.append(step)
    return WatchScenario(name=str(doc.get("name") or default_name), start=start,
                         home=(float(home[0]), float(home[1])), steps=steps,
                         description=str(doc.get("description") or ""))


Report = Callable[[str], None]


async def play(w: SimWatch, scenario: WatchScenario, report: Report | None = None) -> list[bytes]:
    """Play every step on a connected watch; returns the server's answers in order.
    The watch starts at home."""
    say = report or (lambda _line: None)
    answers: list[bytes] = []
    here = (0.0, 0.0)              # metres north, east of home
    last_alarm: bytes | None = None

    def place(north: float, east: float) -> None:
        w.lat, w.lon = offset(scenario.home, north, east)

    place(*here)
    for step in scenario.steps:
        t = scenario.start + timedelta(seconds=step.at_s)
        if step.action == "link":
            answer = await w.link()
            answers.append(answer)
            say(f"{t:%H:%M:%S} LK -> {answer.decode() or '(closed)'}")
        elif step.action == "position":
            here = (step.north_m, step.east_m)
            place(*here)
            await w.position(t, fix=step.fix)
            say(f"{t:%H:%M:%S} UD {w.lat:.5f},{w.lon:.5f}")
        elif step.action == "walk":
            n = max(1, int(step.over_s // step.every_s))
            start = here
            for k in range(1, n + 1):
                f = k / n
                here = (start[0] + (step.north_m - start[0]) * f,
                        start[1] + (step.east_m - start[1]) * f)
                place(*here)
                at = t + timedelta(seconds=step.every_s * (k - 1))
                await w.position(at, fix=step.fix)
                say(f"{at:%H:%M:%S} UD {w.lat:.5f},{w.lon:.5f}")
        elif step.action == "resend":
            if last_alarm is None:
                raise ScenarioError(f"step {step.index}: resend before any alarm")
            await w.send_raw(last_alarm)
            answer = await w.read_reply()
            answers.append(answer)
            say(f"{t:%H:%M:%S} AL (resent) -> {answer.decode() or '(closed)'}")
        else:
            answer = await w.alarm(t, ALARMS[step.action], fix=step.fix)
            last_alarm = w.last_sent
            answers.append(answer)
            say(f"{t:%H:%M:%S} AL {step.action} -> {answer.decode() or '(closed)'}")
    return answers
