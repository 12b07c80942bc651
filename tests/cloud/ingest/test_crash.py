"""Issue 4, test 4: the cloud ingest killed between its commit and its ack.

A real cloud process started from the test entry point ``tests/crash_entry.py`` (the
cloud's run with a hook that SIGKILLs it right after its first commit, before publishing
the ack; production settings have no such hook). The gateway (played by a plain MQTT
client) got no ack, so it resends; the restarted cloud finds the id already committed,
stores nothing new, and acks it: one row.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from ingest_support import GatewayClient, envelope, wait_until
from process_support import CloudProcess, start_cloud, stopping

import db_support
from eldercare_cloud.db import Database
from eldercare_cloud.ingest import IngestStore
from eldercare_protocols.uplink import EventEnvelope, TelemetryBatch, Up

if TYPE_CHECKING:
    from broker_support import Broker

pytestmark = pytest.mark.integration

GW = "gw-crash-01"
#: the cloud's run with a hook that kills it between a commit and its ack
CRASH_ENTRY = Path(__file__).resolve().parents[2] / "crash_entry.py"


def start(tmp_path: Path, broker: Broker, name: str, entry: Path | None = None) -> CloudProcess:
    """Both runs share the data directory (the database) and the MQTT session."""
    return start_cloud(tmp_path, broker, name, data_dir="cloud", client_id="ingest-crash-test",
                       settings={"HTTP__ENABLED": "false"}, entry=entry)


def rows(db: str | Path, table: str, record_id: str) -> int:
    [(count,)] = db_support.rows(db, f"SELECT COUNT(*) FROM {table} WHERE id = ?", (record_id,))
    return int(count)


async def resend_until(gw: GatewayClient, records: list[EventEnvelope | TelemetryBatch],
                       done: Callable[[], bool], within_s: float) -> int:
    """What the gateway does with unacked records: resend after a (short) timeout."""
    sends = 0
    async with asyncio.timeout(within_s):
        while not done():
            for rec in records:
                gw.publish(Up.EVENTS if isinstance(rec, EventEnvelope) else Up.TELEMETRY, rec)
                sends += 1
            await asyncio.sleep(0.25)
    return sends


async def test_ingest_killed_between_commit_and_ack_stores_one_row(
        tmp_path: Path, mosquitto: Broker,
        gateway_factory: Callable[..., GatewayClient]) -> None:
    db_path = db_support.env_target(tmp_path / "cloud" / "cloud.sqlite3")
    async with Database(db_path) as db, IngestStore(db) as store:
        await store.add_gateway(GW)

    gw = gateway_factory(GW)
    alarm = envelope(GW, 1)
    first = start(tmp_path, mosquitto, "first", entry=CRASH_ENTRY)
    with stopping(first):
        # resend until the cloud is up, commits, and kills itself before acking
        await resend_until(gw, [alarm], lambda: not first.alive(), within_s=60)
    assert first.returncode == -signal.SIGKILL, first.text()
    assert "killing this process after the commit" in first.text()
    assert rows(db_path, "events", alarm.id) == 1  # committed ...
    assert gw.acked_ids() == []  # ... but never acked

    second = start(tmp_path, mosquitto, "second")
    with stopping(second):
        await resend_until(gw, [alarm], lambda: alarm.id in gw.acked_ids(), within_s=60)
        await wait_until(lambda: len(gw.acked_ids()) >= 1, what="the ack")
    assert second.returncode == 0, second.text()
    assert rows(db_path, "events", alarm.id) == 1
    assert db_support.rows(db_path, "SELECT COUNT(*) FROM events") == [(1,)]
