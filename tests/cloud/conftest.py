"""Fixtures for the cloud tests (shared file: append only)."""

from __future__ import annotations

import sys
from pathlib import Path

# the cloud tests' helper modules live next to this file (no package __init__ here)
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

# --- ingest (cloud_ingest helper) -------------------------------------------------------

from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from test_ingest_support import GatewayClient, IngestHarness, ingest_settings

from eldercare_cloud.db import Database
from eldercare_cloud.ingest import IngestService

if TYPE_CHECKING:
    from conftest import Broker  # tests/conftest.py


@pytest.fixture
async def ingest(tmp_path: Path, mosquitto: Broker) -> AsyncIterator[IngestHarness]:
    settings = ingest_settings(tmp_path, mosquitto)
    async with Database(settings.db_path) as db, IngestService(settings, db) as service:
        assert await service.wait_connected(10)
        yield IngestHarness(settings, db, service, mosquitto)


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
