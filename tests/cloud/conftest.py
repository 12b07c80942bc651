"""Fixtures for the cloud tests (shared file: append only).

This folder has no ``__init__.py``: pytest puts it on sys.path, so the helper modules
next to this file import by their plain names.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ingest_support import GatewayClient, IngestHarness, running_ingest

# the shared broker helpers (a plain module: see tests/broker_support.py)
from broker_support import Broker, start_mosquitto

# --- ingest (cloud ingest helper) -------------------------------------------------------


@pytest.fixture
async def ingest(tmp_path: Path, mosquitto: Broker) -> AsyncIterator[IngestHarness]:
    async with running_ingest(tmp_path, mosquitto) as harness:
        yield harness


@pytest.fixture
def gateway_factory(mosquitto: Broker) -> Iterator[Callable[..., GatewayClient]]:
    made: list[GatewayClient] = []

    def make(gateway_id: str, **kwargs: Any) -> GatewayClient:
        gw = GatewayClient(mosquitto, gateway_id, **kwargs).connect()
        made.append(gw)
        return gw

    yield make
    for gw in made:
        gw.close()


@pytest.fixture
def cloud_broker(tmp_path: Path) -> Iterator[Broker]:
    """A second Mosquitto, the cloud's, for tests with a home broker and a cloud broker."""
    broker = start_mosquitto(tmp_path / "cloud-mosquitto")
    try:
        yield broker
    finally:
        broker.stop()


# --- care core (cloud care helper) --------------------------------------------------------


from care_support import (  # noqa: E402
    Care,
    Running,
    care_settings,
    copy_template,
    demo_template,
    open_care,
    serve,
)

from clock_support import TEST_EPOCH  # noqa: E402
from eldercare_cloud.clock import ManualClock  # noqa: E402


@pytest.fixture(scope="session")
def care_template(tmp_path_factory: pytest.TempPathFactory
                  ) -> tuple[Path | str, dict[str, str]]:
    """The demo district and one account per role, built once and copied per test."""
    return demo_template(tmp_path_factory.mktemp("care-template"))


@pytest.fixture
def care_db(tmp_path: Path, care_template: tuple[Path | str, dict[str, str]],
            monkeypatch: pytest.MonkeyPatch) -> Path | str:
    """The test's copy of the demo database (a file, or a PostgreSQL database that
    ELDERCARE_CLOUD_DB__URL then names too)."""
    target = copy_template(care_template[0], tmp_path / "db")
    if isinstance(target, str):
        monkeypatch.setenv("ELDERCARE_CLOUD_DB__URL", target)
    return target


@pytest.fixture
async def care(tmp_path: Path, care_db: Path | str,
               care_template: tuple[Path | str, dict[str, str]]) -> AsyncIterator[Care]:
    clock = ManualClock(TEST_EPOCH)
    async with open_care(care_db, care_settings(tmp_path), clock, care_template[1]) as c:
        yield c


@pytest.fixture
async def care_http(tmp_path: Path, care_db: Path | str,
                    care_template: tuple[Path | str, dict[str, str]]) -> AsyncIterator[Running]:
    """The app on a real loopback port (engine driven by hand), logged in as every role."""
    clock = ManualClock(TEST_EPOCH)
    # signed in by minted tokens (api/test_api.py logs in for real)
    async with serve(care_db, care_settings(tmp_path), clock, care_template[1],
                     signed_in=True) as running:
        yield running
