"""The live stream across API workers: a console connected to worker A sees an alert
raised through worker B, as soon as B commits (PostgreSQL LISTEN/NOTIFY), not at A's
next heartbeat. Two workers = two apps, each with its own connection pool and hub, on
one PostgreSQL database; SQLite is one process by design, so this runs on PostgreSQL
only (scripts/test.sh's second run)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from care_support import GW, care_settings, commit_event, mint_tokens, serve

import db_support
from eldercare_cloud.clock import ManualClock
from eldercare_protocols.events import EventKind
from stream.test_stream import stream

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not db_support.POSTGRES, reason="several workers need PostgreSQL "
                       "(set ELDERCARE_TEST_DATABASE_URL; scripts/test.sh does)"),
]

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
#: far longer than the test waits: an event that arrives came from the NOTIFY
HEARTBEAT_S = 120.0


async def test_console_on_worker_a_sees_an_alert_raised_through_worker_b(
        tmp_path: Path, care_db: Path | str,
        care_template: tuple[Path | str, dict[str, str]]) -> None:
    settings = care_settings(tmp_path, stream={"heartbeat_s": HEARTBEAT_S})
    ids = care_template[1]
    async with serve(care_db, settings, ManualClock(START), ids) as a, \
            serve(care_db, settings, ManualClock(START), ids) as b:
        a.tokens.update(mint_tokens(ids, START))
        async with stream(a, "operator") as console:
            # the SOS arrives through worker B's ingest and B's engine raises the alert
            await commit_event(b.store, EventKind.SOS, device_id="btn-xh001", gateway_id=GW,
                               at=START)
            await b.services.engine.tick()
            event = await console.next(timeout=30)
            assert event["event"] == "alert.opened", event
            assert event["data"]["alert"]["kind"] == "sos"
            # and what B does next reaches A as well, in commit order
            later = await console.next(timeout=30)
            assert int(later["id"]) > int(event["id"])
