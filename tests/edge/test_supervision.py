"""Issue 15: a gateway whose long-lived task dies exits non-zero at once (its supervisor
restarts it; the outbox makes that lossless) instead of living on deaf."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker_support import Broker
from eldercare_edge import cli
from eldercare_edge.gateway import Gateway

from .helpers import settings_for

pytestmark = pytest.mark.integration


async def test_a_dead_task_ends_the_gateway_with_status_70(
        tmp_path: Path, mosquitto: Broker, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken_rules_loop(self: Gateway) -> None:
        raise RuntimeError("a bug in the rules loop")

    # a stand-in for a bug no input can trigger today (the inputs are isolated)
    monkeypatch.setattr(Gateway, "_rules_loop", broken_rules_loop)
    settings = settings_for(tmp_path, mosquitto.port)
    code = await cli._serve(settings)
    assert code == cli.EXIT_TASK_DIED


async def test_the_dead_flag_names_the_task(tmp_path: Path, mosquitto: Broker,
                                            monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    async def ends(self: Gateway) -> None:
        return None

    monkeypatch.setattr(Gateway, "_health_loop", ends)
    async with Gateway(settings_for(tmp_path, mosquitto.port)) as gw:
        await gw.dead.wait()
        assert isinstance(gw.died, RuntimeError)
    assert any("health ended" in r.getMessage() for r in caplog.records)
