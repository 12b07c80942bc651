"""Declarative scenarios: at time T, do X to home H's device D.

A scenario file is YAML (documented in firmware-sim/README.md)::

    name: fall-at-night
    seed: 7
    start: "2026-01-15T21:00:00+08:00"
    duration: 8h
    steps:
      - at: "02:40"
        action: fall
        device: radar
      - at: "02:40"
        action: resident
        condition: inactive

Loading validates everything that can be checked without a broker, so a typo
is one clear error line before anything connects. For a given seed the
simulated messages are the same on every run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from eldercare_sim.devices import (
    CHINA,
    BedSensor,
    CallButton,
    DoorContact,
    FallRadar,
    GasDetector,
    GpsTracker,
    MotionSensor,
    SimDevice,
    SmokeDetector,
    VitalsMonitor,
    _Alarm,
)
from eldercare_sim.errors import ScenarioError
from eldercare_sim.household import Household
from eldercare_sim.vitals import Episode

_DURATION_RE = re.compile(r"^(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?"
                          r"(?:(\d+(?:\.\d+)?)s)?$")
_CLOCK_RE = re.compile(r"^(?:day\s*(\d+)\s+)?([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads an unquoted 02:40 as the base-60 number 160; here it stays "02:40"."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)"
                     r"|[-+]?0x[0-9a-fA-F_]+)$"), list("-+0123456789"))
_Loader.add_implicit_resolver(
    _FLOAT, re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?"
                       r"|\.[0-9_]+(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)"
                       r"|\.(?:nan|NaN|NAN))$"), list("-+0123456789."))


def parse_duration(value: Any, what: str = "duration") -> float:
    """Seconds from ``90``, ``"90s"``, ``"5m"``, ``"1h30m"``, ``"2d"``."""
    if isinstance(value, bool):
        raise ScenarioError(f"{what}: expected a duration, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ScenarioError(f"{what}: must not be negative")
        return float(value)
    text = str(value).strip().replace(" ", "")
    m = _DURATION_RE.match(text)
    if not text or m is None or not any(m.groups()):
        raise ScenarioError(f"{what}: {value!r} is not a duration like 90s, 5m, 1h30m or 2d")
    d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    return d * 86400 + h * 3600 + mi * 60 + s


@dataclass(frozen=True)
class Step:
    index: int
    at: str | float
    action: str
    home: str | None
    device: str | None
    params: dict[str, Any]

    def where(self) -> str:
        return f"step {self.index} ({self.action})"


@dataclass
class Scenario:
    name: str
    description: str = ""
    seed: int = 0
    start: datetime | None = None
    duration: float | None = None
    homes: int = 1
    routine: bool = True
    z2m: bool = False
    serial: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    path: Path | None = None

    def resolve(self, step: Step, clock_start: datetime) -> float:
        """Seconds after the clock's start at which ``step`` happens."""
        if isinstance(step.at, float):
            return step.at
        text = step.at.strip()
        if text.startswith("+"):
            return parse_duration(text[1:], f"{step.where()}: at")
        m = _CLOCK_RE.match(text)
        if m is None:  # validated at load, so only reachable for hand-built steps
            raise ScenarioError(f"{step.where()}: at {text!r} is not +DURATION, HH:MM or "
                                "'day N HH:MM'")
        day = int(m.group(1) or 1)
        hh, mm, ss = int(m.group(2)), int(m.group(3)), int(m.group(4) or 0)
        local = clock_start.astimezone(CHINA)
        when = local.replace(hour=hh, minute=mm, second=ss, microsecond=0)
        if when < local:
            when += timedelta(days=1)
        when += timedelta(days=day - 1)
        return (when - clock_start).total_seconds()


# ---------------------------------------------------------------------- actions


@dataclass(frozen=True)
class Context:
    """What an action can reach besides the household itself."""

    outage: Callable[[float], None]
    gone: Callable[[SimDevice], None]
    revive: Callable[[SimDevice], None]
    corrupt_serial: Callable[[int], None] | None


ActionFn = Callable[[Context, Household, SimDevice | None, dict[str, Any]], None]


@dataclass(frozen=True)
class Action:
    fn: ActionFn
    device: type[SimDevice] | None  # the kind of device it needs, None: no device
    params: dict[str, type | tuple[type, ...]]  # name → accepted type(s)
    required: tuple[str, ...] = ()
    default_device: str | None = None


def _dev(d: SimDevice | None) -> Any:
    assert d is not None
    return d


def _resident(ctx: Context, h: Household, d: SimDevice | None, p: dict[str, Any]) -> None:
    h.resident.condition = p["condition"]
    if p["condition"] == "wandering":
        h.act("go_out")


def _battery(ctx: Context, h: Household, d: SimDevice | None, p: dict[str, Any]) -> None:
    drain = parse_duration(p["drain"]) if "drain" in p else None
    _dev(d).set_battery(float(p.get("level", _dev(d).battery_level() or 0)), drain)


def _unplug(ctx: Context, h: Household, d: SimDevice | None, p: dict[str, Any]) -> None:
    _dev(d).stop()
    ctx.gone(_dev(d))


def _corrupt(ctx: Context, h: Household, d: SimDevice | None, p: dict[str, Any]) -> None:
    if ctx.corrupt_serial is None:
        raise ScenarioError("corrupt_serial needs a serial dongle: list devices under 'serial'")
    ctx.corrupt_serial(int(p.get("count", 1)))


NUM = (int, float)

ACTIONS: dict[str, Action] = {
    "press": Action(lambda c, h, d, p: _dev(d).press(p.get("button", "red"),
                                                     p.get("press", "single")),
                    CallButton, {"button": str, "press": str}, default_device="call_button"),
    "cancel": Action(lambda c, h, d, p: _dev(d).cancel(), CallButton, {},
                     default_device="call_button"),
    "door": Action(lambda c, h, d, p: _dev(d).set_open(bool(p["open"])), DoorContact,
                   {"open": bool}, ("open",), default_device="door_contact"),
    "gas_leak": Action(lambda c, h, d, p: _dev(d).gas_leak(
        float(p["lel"]), parse_duration(p.get("ramp", 0), "ramp")), GasDetector,
        {"lel": NUM, "ramp": (str, int, float)}, ("lel",), default_device="gas_detector"),
    "smoke": Action(lambda c, h, d, p: _dev(d).smoke(bool(p.get("on", True))), SmokeDetector,
                    {"on": bool}, default_device="smoke_detector"),
    "fall": Action(lambda c, h, d, p: _dev(d).fall(), FallRadar, {},
                   default_device="fall_radar"),
    "vitals": Action(lambda c, h, d, p: _dev(d).reading(dict(p["values"])), VitalsMonitor,
                     {"values": dict}, ("values",), default_device="vitals_monitor"),
    "episode": Action(lambda c, h, d, p: _dev(d).episode(
        p["name"], parse_duration(p.get("duration", 600), "duration")), VitalsMonitor,
        {"name": str, "duration": (str, int, float)}, ("name",),
        default_device="vitals_monitor"),
    "motion": Action(lambda c, h, d, p: _dev(d).motion(), MotionSensor, {},
                     default_device="motion_sensor"),
    "bed": Action(lambda c, h, d, p: _dev(d).set_in_bed(bool(p["in_bed"])), BedSensor,
                  {"in_bed": bool}, ("in_bed",), default_device="bed_sensor"),
    "self_test": Action(lambda c, h, d, p: _dev(d).self_test(), _Alarm, {}),
    "tamper": Action(lambda c, h, d, p: _dev(d).tamper(), SimDevice, {}),
    "wander": Action(lambda c, h, d, p: _dev(d).wander(), GpsTracker, {},
                     default_device="gps_tracker"),
    "battery": Action(_battery, SimDevice, {"level": NUM, "drain": (str, int, float)}),
    "unplug": Action(_unplug, SimDevice, {}),
    "replug": Action(lambda c, h, d, p: c.revive(_dev(d)), SimDevice, {}),
    "resident": Action(_resident, None, {"condition": str}, ("condition",)),
    "broker_outage": Action(lambda c, h, d, p: c.outage(parse_duration(p["duration"])), None,
                            {"duration": (str, int, float)}, ("duration",)),
    "corrupt_serial": Action(_corrupt, None, {"count": int}),
}

CONDITIONS = ("normal", "inactive", "wandering")
GLOBAL_ACTIONS = frozenset({"broker_outage", "corrupt_serial"})


def _check_params(step: Step) -> None:
    spec = ACTIONS[step.action]
    for name in spec.required:
        if name not in step.params:
            raise ScenarioError(f"{step.where()}: missing {name!r}")
    for name, value in step.params.items():
        if name not in spec.params:
            known = ", ".join(sorted(spec.params)) or "none"
            raise ScenarioError(f"{step.where()}: unknown parameter {name!r} (known: {known})")
        accepted = spec.params[name]
        ok_types = accepted if isinstance(accepted, tuple) else (accepted,)
        if isinstance(value, bool) and bool not in ok_types:
            ok = False
        else:
            ok = isinstance(value, ok_types)
        if not ok:
            raise ScenarioError(f"{step.where()}: {name} = {value!r} has the wrong type")
    if step.action in ("episode",):
        try:
            Episode(step.params["name"])
        except ValueError:
            names = ", ".join(e.value for e in Episode)
            raise ScenarioError(f"{step.where()}: unknown episode {step.params['name']!r} "
                                f"(known: {names})") from None
    if step.action == "resident" and step.params["condition"] not in CONDITIONS:
        raise ScenarioError(f"{step.where()}: condition must be one of {', '.join(CONDITIONS)}")
    if step.action == "press":
        if step.params.get("button", "red") not in ("red", "green"):
            raise ScenarioError(f"{step.where()}: button must be red or green")
        if step.params.get("press", "single") not in ("single", "long", "double"):
            raise ScenarioError(f"{step.where()}: press must be single, long or double")
    for key in ("duration", "ramp", "drain"):
        if key in step.params:
            parse_duration(step.params[key], f"{step.where()}: {key}")
    if step.action == "battery" and not ({"level", "drain"} & set(step.params)):
        raise ScenarioError(f"{step.where()}: give a level, a drain duration or both")


_TOP_KEYS = {"name", "description", "seed", "start", "duration", "homes", "routine", "z2m",
             "serial", "steps"}


def load(path: Path | str) -> Scenario:
    """Read and validate a scenario file. Raises ScenarioError with one clear line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario {path}: {exc.strerror or exc}") from exc
    try:
        doc = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ScenarioError(f"{path}: not valid YAML{where}") from exc
    try:
        scenario = parse(doc, default_name=path.stem)
    except ScenarioError as exc:
        raise ScenarioError(f"{path}: {exc}") from exc
    scenario.path = path
    return scenario


def parse(doc: Any, default_name: str = "scenario") -> Scenario:
    if not isinstance(doc, dict):
        raise ScenarioError("a scenario is a mapping with at least 'steps'")
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise ScenarioError(f"unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    sc = Scenario(name=str(doc.get("name", default_name)),
                  description=str(doc.get("description", "")).strip())
    seed = doc.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ScenarioError("seed must be an integer")
    sc.seed = seed
    if "start" in doc:
        start = doc["start"]
        if isinstance(start, str):
            try:
                start = datetime.fromisoformat(start)
            except ValueError:
                raise ScenarioError(f"start {start!r} is not an ISO 8601 time") from None
        if not isinstance(start, datetime):
            raise ScenarioError("start must be an ISO 8601 time like 2026-01-15T21:00:00+08:00")
        sc.start = start if start.tzinfo else start.replace(tzinfo=CHINA)
    if "duration" in doc:
        sc.duration = parse_duration(doc["duration"])
    homes = doc.get("homes", 1)
    if not isinstance(homes, int) or isinstance(homes, bool) or homes < 1:
        raise ScenarioError("homes must be a positive integer")
    sc.homes = homes
    for key in ("routine", "z2m"):
        if key in doc and not isinstance(doc[key], bool):
            raise ScenarioError(f"{key} must be true or false")
    sc.routine = bool(doc.get("routine", True))
    sc.z2m = bool(doc.get("z2m", False))
    serial = doc.get("serial", [])
    if not isinstance(serial, list) or not all(isinstance(s, str) for s in serial):
        raise ScenarioError("serial must be a list of device names (short names like door)")
    sc.serial = serial
    steps = doc.get("steps")
    if not isinstance(steps, list) or not steps:
        raise ScenarioError("'steps' must be a non-empty list")
    for i, raw in enumerate(steps, start=1):
        sc.steps.append(_parse_step(i, raw))
    return sc


def _parse_step(i: int, raw: Any) -> Step:
    if not isinstance(raw, dict):
        raise ScenarioError(f"step {i}: expected a mapping with 'at' and 'action'")
    if "action" not in raw or "at" not in raw:
        raise ScenarioError(f"step {i}: needs both 'at' and 'action'")
    action = raw["action"]
    if action not in ACTIONS:
        raise ScenarioError(f"step {i}: unknown action {action!r} (known: "
                            f"{', '.join(sorted(ACTIONS))})")
    at = raw["at"]
    if isinstance(at, bool) or not isinstance(at, int | float | str):
        raise ScenarioError(f"step {i}: 'at' must be seconds, +DURATION, HH:MM or 'day N HH:MM'")
    if isinstance(at, str):
        text = at.strip()
        if text.startswith("+"):
            parse_duration(text[1:], f"step {i}: at")
        elif not _CLOCK_RE.match(text):
            raise ScenarioError(f"step {i}: at {at!r} is not +DURATION, HH:MM or 'day N HH:MM'")
        at_value: str | float = text
    else:
        at_value = float(at)
    home = raw.get("home")
    device = raw.get("device")
    if device is not None and not isinstance(device, str):
        raise ScenarioError(f"step {i}: device must be a name")
    params = {k: v for k, v in raw.items() if k not in {"at", "action", "home", "device"}}
    step = Step(i, at_value, action, None if home is None else str(home), device, params)
    _check_params(step)
    return step


# ---------------------------------------------------------------------- binding to a run


def bind(scenario: Scenario, households: list[Household], find_home: Callable[[str], Household],
         ctx: Context, clock_start: datetime,
         schedule: Callable[[float, Callable[[], None]], None]) -> int:
    """Schedule every step on the run's scheduler; returns how many were scheduled.

    Device names are checked here, before anything runs.
    """
    count = 0
    for step in scenario.steps:
        spec = ACTIONS[step.action]
        when = scenario.resolve(step, clock_start)
        if step.action in GLOBAL_ACTIONS:
            if step.action == "corrupt_serial" and ctx.corrupt_serial is None:
                raise ScenarioError(f"{step.where()}: needs a serial dongle: list devices "
                                    "under 'serial'")
            targets: list[Household] = households[:1]
        elif step.home is None or step.home == "all":
            targets = households
        else:
            try:
                targets = [find_home(step.home)]
            except KeyError as exc:
                raise ScenarioError(f"{step.where()}: {exc.args[0]}") from None
        for house in targets:
            device = _target_device(step, spec, house)
            schedule(when, _runner(spec, ctx, house, device, step))
            count += 1
    return count


def _target_device(step: Step, spec: Action, house: Household) -> SimDevice | None:
    if spec.device is None:
        return None
    name = step.device or spec.default_device
    if name is None:
        raise ScenarioError(f"{step.where()}: which device? add 'device: NAME'")
    try:
        dev = house.find(name)
    except KeyError as exc:
        raise ScenarioError(f"{step.where()}: {exc.args[0]}") from None
    if not isinstance(dev, spec.device):
        raise ScenarioError(f"{step.where()}: {dev.device_id} is a {dev.type_name}, which "
                            f"cannot {step.action}")
    return dev


def _runner(spec: Action, ctx: Context, house: Household, device: SimDevice | None,
            step: Step) -> Callable[[], None]:
    def run() -> None:
        spec.fn(ctx, house, device, step.params)

    return run

