"""Two ingest workers on one database: a record both receive is stored once (the unique
idempotency id, not a memory set), and a gateway revoked through one worker is refused
by the other at once, without a restart.

On PostgreSQL (scripts/test.sh's second run) the workers have a connection pool each,
as two processes would, and the revoke reaches the other worker by NOTIFY. On SQLite
(one process by design) they share the Database, and the notification is in-process.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from ingest_support import GatewayClient, envelope, ingest_settings, wait_until

import db_support
from eldercare_cloud.db import Database
from eldercare_cloud.ingest import IngestService
from eldercare_protocols.uplink import Up

if TYPE_CHECKING:
    from broker_support import Broker

pytestmark = pytest.mark.integration

GW = "gw-workers-01"
REVOKED_AT = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@contextlib.asynccontextmanager
async def two_workers(tmp_path: Path, broker: Broker
                      ) -> AsyncIterator[tuple[IngestService, IngestService]]:
    """Both subscribed to every gateway's uplink (no shared group: each gets each copy)."""
    a_settings = ingest_settings(tmp_path, broker)
    b_settings = ingest_settings(tmp_path, broker)
    async with contextlib.AsyncExitStack() as stack:
        db_a = await stack.enter_async_context(Database(a_settings.database))
        db_b = (await stack.enter_async_context(Database(b_settings.database))
                if db_support.POSTGRES else db_a)
        a = await stack.enter_async_context(IngestService(a_settings, db_a))
        b = await stack.enter_async_context(IngestService(b_settings, db_b))
        assert await a.wait_connected(10) and await b.wait_connected(10)
        yield a, b


async def test_a_gateway_revoked_through_one_worker_is_refused_by_the_other(
        tmp_path: Path, mosquitto: Broker,
        gateway_factory: Callable[..., GatewayClient]) -> None:
    async with two_workers(tmp_path, mosquitto) as (a, b):
        await a.store.add_gateway(GW)  # B started before: it looks the gateway up itself
        gw = gateway_factory(GW)
        first = envelope(GW, 1)
        gw.publish(Up.EVENTS, first)
        await wait_until(lambda: a.counters.committed + a.counters.duplicates >= 1
                         and b.counters.committed + b.counters.duplicates >= 1,
                         what="both workers handling the first record")
        # both received it, one row stored; both acked it
        assert await a.store.events_after(0) == await b.store.events_after(0)
        assert [e.id for e in await a.store.events_after(0)] == [first.id]
        await wait_until(lambda: gw.acked_ids().count(first.id) == 2, what="two acks")

        seen = b.counters.gateway_set_changes
        assert await a.store.revoke_gateway(GW, REVOKED_AT)
        await wait_until(lambda: b.counters.gateway_set_changes > seen,
                         what="worker B told of the revoke")
        second = envelope(GW, 2)
        gw.publish(Up.EVENTS, second)
        await wait_until(lambda: a.counters.rejected_unregistered >= 1
                         and b.counters.rejected_unregistered >= 1,
                         what="both workers refusing the revoked gateway")
        assert [e.id for e in await b.store.events_after(0)] == [first.id]
        assert second.id not in gw.acked_ids()
        # a revoke is final
        assert not await a.store.accepts(GW) and GW not in await b.store.gateway_ids()
