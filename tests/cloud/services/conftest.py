"""Fixtures for the service-desk tests: the care app on a loopback port with a fixed
ManualClock (never the wall clock) and the engine driven by hand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from care_support import Running, care_settings, serve
from svc_support import T0

from eldercare_cloud.clock import ManualClock


@pytest.fixture
async def desk_http(tmp_path: Path, care_db: Path,
                    care_template: tuple[Path, dict[str, str]]) -> AsyncIterator[Running]:
    clock = ManualClock(T0)
    async with serve(care_db, care_settings(tmp_path), clock, care_template[1],
                     signed_in=True) as running:
        yield running
