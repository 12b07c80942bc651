"""Gateway states of one batch are folded per gateway into one row each (issue 14: each
health report was an awaited UPDATE with the full JSON), in arrival order: a Last Will
after a health report leaves the gateway offline, a birth after a will brings it back,
and only the newest health report is kept. The periodic rules read the gateways without
their health JSON and decode only reports that may carry news."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import db_support
from eldercare_cloud.db import Database
from eldercare_cloud.ingest import IngestStore
from eldercare_cloud.ingest.store import Received
from eldercare_protocols.uplink import GatewayState

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[IngestStore]:
    async with Database(db_support.target(tmp_path / "cloud.sqlite3")) as db, \
            IngestStore(db) as s:
        for gw in ("gw-a", "gw-b", "gw-c"):
            await s.add_gateway(gw)
        yield s


def state(gw: str, status: str, at: datetime, **extra: object) -> Received:
    return Received(gw, GatewayState(gateway_id=gw, status=status,  # type: ignore[arg-type]
                                     ts=at, **extra), at)  # type: ignore[arg-type]


async def test_states_of_one_batch_fold_in_arrival_order(store: IngestStore) -> None:
    t = [T0 + timedelta(seconds=i) for i in range(6)]
    info = await store.commit([
        state("gw-a", "online", t[0], version="1.0"),
        state("gw-a", "health", t[1], version="1.1", counters={"n": 1}),
        state("gw-a", "health", t[2], counters={"n": 2}),
        state("gw-a", "offline", t[3]),
        state("gw-b", "offline", t[0]),
        state("gw-b", "online", t[4], version="2.0"),
        state("gw-b", "health", t[5], counters={"n": 7}),
    ])
    a = await store.gateway("gw-a")
    b = await store.gateway("gw-b")
    assert a is not None and b is not None
    # gw-a: the will came last, so it is offline; its newest health report is kept
    assert not a.online and a.last_will_at == t[3] and a.last_birth_at == t[0]
    assert a.last_health is not None and a.last_health.counters == {"n": 2}
    assert a.last_health_at == t[2] and a.version == "1.1"
    # gw-b: the birth after the will brought it back, the health report counts
    assert b.online and b.last_will_at == t[0] and b.last_birth_at == t[4]
    assert b.last_health is not None and b.last_health.counters == {"n": 7}
    assert b.version == "2.0"
    # transitions only, in order: a online, a offline, b online (b was never online)
    assert [(e.gateway_id, e.status, e.reason) for e in info.gateway_changes] == [
        ("gw-a", "online", "birth"), ("gw-a", "offline", "will"), ("gw-b", "online", "birth")]
    untouched = await store.gateway("gw-c")
    assert untouched is not None and not untouched.online and untouched.last_health is None


async def test_the_rules_read_online_gateways_without_health_and_only_newer_reports(
        store: IngestStore) -> None:
    await store.commit([
        state("gw-a", "health", T0, counters={"client_id_conflict_cloud": 3}),
        state("gw-b", "health", T0 + timedelta(seconds=30), counters={"other": 1}),
        state("gw-c", "offline", T0),
    ])
    assert sorted(g.id for g in await store.online_gateways()) == ["gw-a", "gw-b"]
    everything = await store.gateways_reported_since(None)
    assert sorted(g.id for g in everything) == ["gw-a", "gw-b"]
    # the SQL filter leaves out reports that cannot hold the key
    conflicts = await store.gateways_reported_since(None, containing="client_id_conflict_")
    assert [g.id for g in conflicts] == ["gw-a"]
    assert conflicts[0].last_health is not None
    assert conflicts[0].last_health.counters == {"client_id_conflict_cloud": 3}
    # and reports older than the cursor are not read again
    later = await store.gateways_reported_since(T0 + timedelta(seconds=10))
    assert [g.id for g in later] == ["gw-b"]
