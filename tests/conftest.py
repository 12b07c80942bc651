"""Shared fixtures: a real Mosquitto broker on a free loopback port, per test or per module.

The helpers themselves live in broker_support.py (importable from every test folder)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from broker_support import MOSQUITTO, Broker, free_port, start_mosquitto

# Wall-clock deadlines make property tests flaky on a loaded 2-core machine; timing belongs
# in bench/, not in tests.
settings.register_profile("eldercare", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("eldercare")


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Broker]:
    broker = start_mosquitto(tmp_path / "mosquitto")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def mosquitto_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    broker = start_mosquitto(tmp_path_factory.mktemp("mosquitto"))
    try:
        yield broker
    finally:
        broker.stop()


__all__ = ["MOSQUITTO", "Broker", "free_port", "start_mosquitto"]
