"""Shared fixtures: a real Mosquitto broker on a free loopback port, per test or per module,
and the cloud database each test runs on (SQLite, or PostgreSQL: see db_support.py).

The helpers themselves live in broker_support.py and db_support.py (importable from every
test folder)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

import db_support
from broker_support import MOSQUITTO, Broker, free_port, start_mosquitto

# Wall-clock deadlines make property tests flaky on a loaded 2-core machine; timing belongs
# in bench/, not in tests.
settings.register_profile("eldercare", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("eldercare")


@pytest.fixture(autouse=True)
def cloud_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[str | None]:
    """On a PostgreSQL run (ELDERCARE_TEST_DATABASE_URL set): a fresh database for this
    test, in ELDERCARE_CLOUD_DB__URL, so CloudSettings (and a CLI subprocess) use it;
    its URL. On SQLite: None, and nothing changes."""
    if not db_support.POSTGRES:
        yield None
        return
    url = db_support.CURRENT.new()
    monkeypatch.setenv("ELDERCARE_CLOUD_DB__URL", url)
    try:
        yield url
    finally:
        db_support.CURRENT.drop_all()
        db_support.CURRENT.by_path.clear()


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
