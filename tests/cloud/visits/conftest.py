"""Fixtures for the care-visit tests: the care core on a copy of the demo database with a
ManualClock seeded at a fixed date (never the wall clock), engines driven by hand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from care_support import Care, Running, care_settings, open_care, serve
from cv_support import T0

from eldercare_cloud.clock import ManualClock


@pytest.fixture
async def cv(tmp_path: Path, care_db: Path,
             care_template: tuple[Path, dict[str, str]]) -> AsyncIterator[Care]:
    async with open_care(care_db, care_settings(tmp_path), ManualClock(T0),
                         care_template[1]) as c:
        yield c


@pytest.fixture
async def cv_http(tmp_path: Path, care_db: Path,
                  care_template: tuple[Path, dict[str, str]]) -> AsyncIterator[Running]:
    async with serve(care_db, care_settings(tmp_path), ManualClock(T0), care_template[1],
                     signed_in=True) as running:
        yield running
