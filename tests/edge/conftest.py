"""Fixtures for the gateway tests: a second Mosquitto that plays the cloud broker, so the
home broker (devices) keeps running while the cloud link is cut."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker_support import Broker, start_mosquitto


@pytest.fixture
def cloud_broker(tmp_path: Path) -> Iterator[Broker]:
    """A cloud broker that keeps sessions across its own restart, as a production cloud
    broker does: the stand-in cloud's persistent subscription survives the outage, so
    what the gateway sends before the cloud client is back is queued, not dropped."""
    where = tmp_path / "cloud-mosquitto"
    broker = start_mosquitto(where, "allow_anonymous true\n"
                             f"user {getpass.getuser()}\npersistence true\n"
                             f"persistence_location {where}/\n")
    try:
        yield broker
    finally:
        broker.stop()
