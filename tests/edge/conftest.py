"""Fixtures for the gateway tests: a second Mosquitto that plays the cloud broker, so the
home broker (devices) keeps running while the cloud link is cut."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Broker, start_mosquitto  # the shared fixtures' module (tests/conftest.py)


@pytest.fixture
def cloud_broker(tmp_path: Path) -> Iterator[Broker]:
    broker = start_mosquitto(tmp_path / "cloud-mosquitto")
    try:
        yield broker
    finally:
        broker.stop()
