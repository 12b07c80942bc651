"""Walk-test: every bound device does its catalogue step, and the tool waits for the event
to be committed in the cloud, end to end (device → home broker → gateway → cloud
broker → ingest commit), timing it on its own monotonic clock (the laptop's wall clock
may be wrong; the cloud's timestamps are kept in the record as well).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from eldercare_edge.installer.client import CloudClient
from eldercare_edge.installer.errors import InstallerError
from eldercare_edge.installer.simulate import SimulatedHome
from eldercare_protocols.events import EventKind

Decision = Literal["retry", "skip", "fail"]
#: how far before the step's start a reading's device timestamp may lie (clock skew)
READING_SKEW = timedelta(seconds=2)


@dataclass
class Step:
    device: dict[str, Any]
    text_zh: str
    text_en: str
    kind: EventKind


@dataclass
class Outcome:
    step: Step
    result: Literal["passed", "failed", "skipped"]
    attempts: int
    latency_ms: float | None = None
    event_id: str | None = None
    device_ts: str | None = None
    committed_at: str | None = None
    tested_at: datetime | None = None

    def as_result(self) -> dict[str, Any]:
        return {"device_id": self.step.device["device_id"], "kind": self.step.kind.value,
                "step": f"{self.step.text_zh} / {self.step.text_en}"[:200],
                "result": self.result, "attempts": self.attempts,
                "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 1),
                "event_id": self.event_id, "device_ts": self.device_ts,
                "committed_at": self.committed_at,
                "tested_at": (self.tested_at or datetime.now(UTC)).isoformat()}


def steps_of(devices: list[dict[str, Any]]) -> list[Step]:
    return [Step(d, s["text_zh"], s["text_en"], EventKind(s["kind"]))
            for d in devices for s in d["walk_tests"]]


def wait_config_published(client: CloudClient, gateway_id: str, timeout_s: float,
                          poll_s: float = 0.5) -> bool:
    """The gateway learns its devices from the retained config the cloud publishes; a
    step taken before that would be an "unknown device" at the gateway."""
    deadline = time.monotonic() + timeout_s
    while True:
        gw = client.get(f"/gateways/{gateway_id}")
        if int(gw["published_version"]) >= int(gw["config_version"]):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)


class WalkTest:
    def __init__(self, client: CloudClient, gateway_id: str, *, timeout_s: float,
                 home: SimulatedHome | None = None) -> None:
        self.client = client
        self.gateway_id = gateway_id
        self.timeout_s = timeout_s
        self.home = home

    def attempt(self, step: Step) -> Outcome | None:
        """One try: returns the passed outcome, or None when the deadline passed."""
        gw = self.gateway_id
        cursor = self.client.get(f"/installer/gateways/{gw}/cursor")
        after = int(cursor["events"])
        since = datetime.fromisoformat(cursor["at"]) - READING_SKEW
        started = time.monotonic()
        if self.home is not None:
            self.home.act(step.device["device_id"], step.device["type"], step.kind)
        deadline = started + self.timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            found = self.client.get(
                f"/installer/gateways/{gw}/walk-event",
                query={"device_id": step.device["device_id"], "kind": step.kind.value,
                       "after": after, "since": since.isoformat(),
                       "wait_s": round(min(remaining, 10.0), 2)},
                timeout_s=min(remaining, 10.0) + 15)
            if found["found"]:
                return Outcome(step, "passed", 0,
                               latency_ms=(time.monotonic() - started) * 1000,
                               event_id=found.get("event_id"),
                               device_ts=found.get("device_ts"),
                               committed_at=found.get("committed_at"),
                               tested_at=datetime.now(UTC))
            after = int(found["cursor"])

    def run(self, steps: list[Step], *, on_prompt: Callable[[Step, int], None],
            on_outcome: Callable[[Outcome], None],
            decide: Callable[[Step, int], Decision]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for step in steps:
            attempts = 0
            while True:
                attempts += 1
                on_prompt(step, attempts)
                got = self.attempt(step)
                if got is not None:
                    got.attempts = attempts
                    break
                decision = decide(step, attempts)
                if decision == "retry":
                    continue
                got = Outcome(step, "skipped" if decision == "skip" else "failed", attempts,
                              tested_at=datetime.now(UTC))
                break
            on_outcome(got)
            outcomes.append(got)
        return outcomes


def require_devices(devices: list[dict[str, Any]], gateway_id: str) -> None:
    if not devices:
        raise InstallerError(f"gateway {gateway_id} has no bound devices: run "
                             f"`eldercare-install pair --gateway {gateway_id}` first")
