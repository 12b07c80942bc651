"""Scenario files: validation with one clear error, and determinism for a seed."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from broker_support import Broker
from eldercare_protocols import native, serial_frame
from eldercare_protocols.errors import DecodeError
from eldercare_protocols.events import EventKind
from eldercare_protocols.native import DeviceEvent
from eldercare_sim import scenario as sc
from eldercare_sim.errors import ScenarioError
from eldercare_sim.render import SERIAL_TOPIC, Outgoing
from eldercare_sim.runner import RunConfig, run

from .conftest import Collector

SCENARIOS = Path(__file__).resolve().parents[2] / "firmware-sim" / "scenarios"


# ---------------------------------------------------------------------- validation (no broker)


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_scenarios_load(path: Path) -> None:
    scn = sc.load(path)
    assert scn.steps and scn.start is not None and scn.duration  # reproducible: fixed start
    assert scn.description


@pytest.mark.parametrize(("text", "message"), [
    ("steps: [", "not valid YAML"),
    ("- 1\n- 2\n", "a scenario is a mapping"),
    ("name: x\n", "'steps' must be a non-empty list"),
    ("stepz: []\n", "unknown key(s) stepz"),
    ("steps:\n  - at: 10\n    action: explode\n", "step 1: unknown action 'explode'"),
    ("steps:\n  - action: fall\n", "step 1: needs both 'at' and 'action'"),
    ("steps:\n  - at: '25:99'\n    action: fall\n", "is not +DURATION, HH:MM"),
    ("steps:\n  - at: '+5 fortnights'\n    action: fall\n", "is not a duration"),
    ("steps:\n  - at: 1\n    action: door\n", "step 1 (door): missing 'open'"),
    ("steps:\n  - at: 1\n    action: door\n    open: 'yes'\n", "open = 'yes' has the wrong type"),
    ("steps:\n  - at: 1\n    action: press\n    button: blue\n", "button must be red or green"),
    ("steps:\n  - at: 1\n    action: fall\n    colour: red\n", "unknown parameter 'colour'"),
    ("steps:\n  - at: 1\n    action: episode\n    name: zombie\n", "unknown episode 'zombie'"),
    ("steps:\n  - at: 1\n    action: resident\n    condition: sleepy\n", "condition must be"),
    ("seed: abc\nsteps:\n  - at: 1\n    action: fall\n", "seed must be an integer"),
    ("start: yesterday\nsteps:\n  - at: 1\n    action: fall\n", "is not an ISO 8601 time"),
    ("homes: 0\nsteps:\n  - at: 1\n    action: fall\n", "homes must be a positive integer"),
])
def test_bad_scenarios_are_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        sc.load(path)
    assert message in str(info.value)
    assert str(info.value).startswith(str(path))
    assert "\n" not in str(info.value)


def test_times_resolve_against_the_start_in_china_time() -> None:
    scn = sc.parse({"start": "2026-01-12T22:00:00+08:00", "steps": [
        {"at": "02:40", "action": "fall"}, {"at": "+90m", "action": "fall"},
        {"at": "day 2 08:00", "action": "fall"}, {"at": 30, "action": "fall"},
        {"at": "23:00", "action": "fall"}]})
    assert scn.start is not None
    got = [scn.resolve(s, scn.start) for s in scn.steps]
    assert got == [4 * 3600 + 40 * 60, 90 * 60, (24 + 10) * 3600, 30.0, 3600.0]


def test_unknown_device_is_caught_before_the_run(mosquitto: Broker, tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text("steps:\n  - at: 5\n    action: fall\n    device: radr\n")
    proc = subprocess.run([sys.executable, "-m", "eldercare_sim", "run", "--broker",
                           mosquitto.url, "--scenario", str(path), "--speed", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: step 1 (fall): home h0001 has no device 'radr'"]


# ---------------------------------------------------------------------- determinism


async def _run(broker: Broker, name: str, seed: int | None = None,
               homes: int | None = None) -> list[Outgoing]:
    sent: list[Outgoing] = []
    cfg = RunConfig(broker=broker.url, speed=0, scenario=sc.load(SCENARIOS / f"{name}.yaml"),
                    seed=seed, homes=homes, tap=sent.append)
    await run(cfg)
    return sent


@pytest.mark.integration
async def test_same_seed_same_messages_different_seed_different(mosquitto: Broker) -> None:
    watcher = Collector(mosquitto, ("eldercare/#",))
    try:
        first = await _run(mosquitto, "fall-at-night", homes=2)
        received = await watcher.until(
            lambda m: sum(1 for x in m if b'"shutdown"' in x.payload) >= 18)
    finally:
        watcher.close()
    second = await _run(mosquitto, "fall-at-night", homes=2)
    other = await _run(mosquitto, "fall-at-night", seed=99, homes=2)
    assert len(first) > 500
    assert [(m.topic, m.payload) for m in first] == [(m.topic, m.payload) for m in second]
    assert [(m.topic, m.payload) for m in first] != [(m.topic, m.payload) for m in other]
    # what the broker delivered is what was sent, topic by topic, in order
    sent_by_topic: dict[str, list[bytes]] = defaultdict(list)
    got_by_topic: dict[str, list[bytes]] = defaultdict(list)
    for m in first:
        sent_by_topic[m.topic].append(m.payload)
    for r in received:
        got_by_topic[r.topic].append(r.payload)
    assert got_by_topic == sent_by_topic
    # and all of it decodes; the scenario's fall is there, in both homes, at 02:40 local
    falls = []
    for m in first:
        _, msg = native.decode(m.topic, m.payload)
        if isinstance(msg, DeviceEvent) and msg.kind is EventKind.FALL:
            falls.append(msg)
    assert len(falls) == 2
    assert all(f.ts.isoformat() == "2026-01-12T18:40:00+00:00" for f in falls)


@pytest.mark.integration
def test_cli_record_is_identical_for_the_same_seed(mosquitto: Broker, tmp_path: Path) -> None:
    def record(seed: int, name: str) -> str:
        out = tmp_path / name
        proc = subprocess.run([sys.executable, "-m", "eldercare_sim", "run", "--broker",
                               mosquitto.url, "--scenario", "gas-leak", "--speed", "0",
                               "--seed", str(seed), "--record", str(out), "-q"],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert "msg/s" in proc.stdout
        return out.read_text()

    a, b, c = record(3, "a.jsonl"), record(3, "b.jsonl"), record(4, "c.jsonl")
    assert a == b and a != c
    lines = [json.loads(line) for line in a.splitlines()]
    kinds = [json.loads(x["payload"]).get("kind") for x in lines if x["topic"].endswith("/event")]
    assert "gas_alarm" in kinds and "gas_clear" in kinds
    assert kinds.index("gas_alarm") < kinds.index("gas_clear")


@pytest.mark.integration
async def test_serial_scenario_writes_frames_and_corrupt_ones(mosquitto: Broker) -> None:
    sent = await _run(mosquitto, "serial-dongle")
    frames = [m.payload for m in sent if m.topic == SERIAL_TOPIC]
    assert frames, "the bound devices should speak serial"
    ids = {serial_frame.decode(f).device_id for f in frames}
    assert ids <= {"h0001-door", "h0001-pir"}
    assert not any(m.topic.startswith("eldercare/h0001-door/") for m in sent)
    events = [serial_frame.decode_canonical(f)[0].kind for f in frames]
    assert EventKind.DOOR_OPEN in events


@pytest.mark.integration
async def test_outage_scenario_delivers_qos1_events_after_reconnecting(
        mosquitto: Broker) -> None:
    watcher = Collector(mosquitto, ("eldercare/#",))
    try:
        sent = await _run(mosquitto, "outages")
        sos = [m for m in sent if m.topic.endswith("/event") and b'"sos"' in m.payload]
        assert len(sos) == 1
        got = await watcher.until(lambda m: any(x.payload == sos[0].payload for x in m))
        assert any(b'"will"' in x.payload and "smoke" in x.topic for x in got)  # unplugged
    finally:
        watcher.close()
    with pytest.raises(DecodeError):
        native.decode("eldercare/x/event", b"{}")
