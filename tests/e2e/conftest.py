"""Fixtures for the end-to-end tests: two real Mosquitto brokers (the home's and the
cloud's, so the cloud link can be cut while the devices keep talking) and the real cloud
(``CloudService``: ingest committing to SQLite, acks after commit) on the cloud broker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from broker_support import Broker, start_mosquitto
from eldercare_cloud.service import CloudService

from .helpers import GW, cloud_settings


@pytest.fixture
def home_broker(mosquitto: Broker) -> Broker:
    return mosquitto


@pytest.fixture
def cloud_broker(tmp_path: Path) -> Iterator[Broker]:
    broker = start_mosquitto(tmp_path / "cloud-mosquitto")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
async def cloud(tmp_path: Path, cloud_broker: Broker) -> AsyncIterator[CloudService]:
    async with CloudService(cloud_settings(tmp_path, cloud_broker)) as service:
        assert await service.ingest.wait_connected(10), "cloud ingest did not connect"
        await service.store.add_gateway(GW)
        service.ingest.note_gateway_registered(GW)
        yield service
