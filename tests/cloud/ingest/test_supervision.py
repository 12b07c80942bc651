"""Issue 15: a cloud whose ingest task dies exits non-zero at once instead of living on
deaf (no commit, no ack, no log line: what the issue saw)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from ingest_support import ingest_settings

from eldercare_cloud import service
from eldercare_cloud.ingest import IngestService

if TYPE_CHECKING:
    from broker_support import Broker

pytestmark = pytest.mark.integration


async def test_a_dead_committer_ends_the_cloud_with_status_70(
        tmp_path: Path, mosquitto: Broker, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    async def broken_commit_loop(self: IngestService, lane: object) -> None:
        raise RuntimeError("a bug in the commit loop")

    # a stand-in for a bug no input can trigger today (each record is isolated)
    monkeypatch.setattr(IngestService, "_commit_loop", broken_commit_loop)
    code = await service.run_until_signalled(ingest_settings(tmp_path, mosquitto))
    assert code == service.EXIT_TASK_DIED
    assert any("ingest task ingest-commit-alarm died" in r.getMessage() for r in caplog.records)
