"""Alarms get their own path through the cloud (issue 14).

A telemetry backlog is built first: thousands of batches that the cloud takes in small
commits and stops reading once its queue is full, so most of the backlog waits in the
broker's queue for the cloud. Then an SOS is sent and a gateway vanishes (its Last Will).
Both travel on the alarm lane's own session and are committed and acked while the
telemetry is still backlogged; in one FIFO they would have waited behind all of it.
Ordering, not timing: the assertion is how much telemetry was acked when the SOS was.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from ingest_support import GatewayClient, running_ingest, wait_until

from eldercare_cloud.ingest.models import CommitInfo
from eldercare_cloud.ingest.store import Received
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import (
    Ack,
    GatewayState,
    TelemetryBatch,
    TelemetryRecord,
    Up,
    encode,
)
from ingest.test_stall import T0, Gateway, envelope, telemetry

if TYPE_CHECKING:
    from broker_support import Broker

pytestmark = pytest.mark.integration

GW = "gw-prio-01"
WILL_GW = "gw-prio-will"
BACKLOG = 3000


def batch(seq: int) -> bytes:
    return encode(TelemetryBatch(
        id=f"{GW}-tb-{seq:06d}", seq=seq, gateway_id=GW, gateway_ts=T0,
        records=[TelemetryRecord(device_id=f"vit-{i}", kind=EventKind.VITALS, ts=T0,
                                 values={"heart_rate": 70.0 + i, "spo2": 97.0},
                                 device_seq=seq) for i in range(10)]))


async def test_an_sos_and_a_last_will_overtake_a_telemetry_backlog(
        tmp_path: Path, mosquitto: Broker,
        gateway_factory: Callable[..., GatewayClient]) -> None:
    # small commits and a short queue: the backlog stays mostly in the broker
    async with running_ingest(tmp_path, mosquitto,
                              ingest={"batch_max": 20, "queue_max": 100}) as harness:
        service = harness.ingest
        await harness.register(GW)
        await harness.register(WILL_GW)
        watcher = gateway_factory(WILL_GW, will=GatewayState(gateway_id=WILL_GW,
                                                             status="offline"))
        watcher.publish(Up.STATE, GatewayState(gateway_id=WILL_GW, status="online", ts=T0),
                        retain=True)
        await wait_until(lambda: service.counters.gateway_states >= 1, what="the birth")

        gw = Gateway(mosquitto, GW)
        sos = envelope(GW, 1)
        telemetry_acked_at_sos: list[int] = []
        lock = threading.Lock()
        telemetry_acked = 0

        original = gw._on_message

        def on_message(client: object, userdata: object, msg: object) -> None:
            nonlocal telemetry_acked
            ids = Ack.model_validate_json(msg.payload).ids  # type: ignore[attr-defined]
            with lock:
                telemetry_acked += sum(1 for i in ids if "-tb-" in i)
                if sos.id in ids:
                    telemetry_acked_at_sos.append(telemetry_acked)
            original(client, userdata, msg)  # type: ignore[arg-type]

        gw.client.on_message = on_message
        try:
            for seq in range(1, BACKLOG + 1):
                gw.send(Up.TELEMETRY, batch(seq))
            deadline = time.monotonic() + 30
            while not gw.all_published():
                assert time.monotonic() < deadline, "the broker did not take the backlog"
                await asyncio.sleep(0.02)
            assert service.counters.telemetry_points < BACKLOG * 10  # still backlogged

            gw.send(Up.EVENTS, encode(sos))
            watcher.drop()  # the broker publishes its Last Will
            await wait_until(lambda: bool(telemetry_acked_at_sos), timeout=30,
                             what="the SOS ack")
            await wait_until(lambda: service.counters.gateway_states >= 2, timeout=30,
                             what="the Last Will")
            record = await harness.store.gateway(WILL_GW)
            assert record is not None and not record.online
            with lock:
                at_will = telemetry_acked
            # both overtook most of the backlog
            assert telemetry_acked_at_sos[0] < BACKLOG // 2, telemetry_acked_at_sos
            assert at_will < BACKLOG, at_will
            stored = await harness.store.event(sos.id)
            assert stored is not None and stored.kind is EventKind.SOS

            # and the backlog is not lost for it: all of it is committed and acked
            await wait_until(lambda: telemetry_acked >= BACKLOG, timeout=120,
                             what="the whole backlog acked")
            assert await harness.store.telemetry_batch_count() == BACKLOG
        finally:
            gw.close()


async def test_on_the_alarm_lane_life_safety_events_go_first_then_states(
        tmp_path: Path, mosquitto: Broker) -> None:
    """Door and motion events share the alarm lane's topic with SOS, and health reports
    its session: a backlog of them already in the cloud's queue does not delay an SOS
    (nor the Last Will behind the door events). The
    messages are handed to the lane directly (as its MQTT session would), all before the
    committer runs, so the order of the commit is the queue's, not the network's."""
    async with running_ingest(tmp_path, mosquitto) as harness:
        service = harness.ingest
        await harness.register(GW)
        lane = service.lanes["alarm"]
        doors = [envelope(GW, seq) for seq in range(1, 1201)]
        for door in doors:
            service._on_message(lane, f"ec/v1/{GW}/up/events", encode(
                door.model_copy(update={"kind": EventKind.DOOR_OPEN})))
        for n in range(300):  # health reports wait behind an SOS too, in their order
            service._on_message(lane, f"ec/v1/{GW}/up/state", encode(GatewayState(
                gateway_id=GW, status="health", ts=T0, counters={"n": n})))
        sos = envelope(GW, 2000)
        will = GatewayState(gateway_id=GW, status="offline")
        service._on_message(lane, f"ec/v1/{GW}/up/events", encode(sos))
        service._on_message(lane, f"ec/v1/{GW}/up/state", encode(will))
        await wait_until(lambda: service.counters.committed >= len(doors) + 1, timeout=60,
                         what="everything committed")
        stored = await harness.store.events_after(0, limit=5000)
        assert stored[0].id == sos.id  # the first row of the first commit
        assert len(stored) == len(doors) + 1
        record = await harness.store.gateway(GW)
        # the states kept their order: the Will after 300 health reports leaves it offline
        assert record is not None and record.last_will_at is not None and not record.online
        assert record.last_health is not None and record.last_health.counters == {"n": 299}


async def test_a_never_idle_alarm_lane_lets_one_telemetry_batch_through_every_n_batches(
        tmp_path: Path, mosquitto: Broker) -> None:
    """The bulk lane commits while the alarm lane is idle; an alarm lane that never is
    (here: 40 one-record batches queued at once) must not starve telemetry. After
    ``bulk_every`` alarm batches one telemetry batch goes, and only one: the alarms then
    go on. Queued directly, before either committer runs, so the alarm lane never
    drains (through the network it would between arrivals) and the order of the commits
    is the lanes', not the network's.

    On PostgreSQL the two lanes' transactions run side by side (each on a connection of
    its own: an alarm never waits for the telemetry transaction), so the telemetry batch
    finishes some alarm batches later than it began: there the order is the order in
    which the commits began."""
    every, alarms, batches = 4, 40, 3
    async with running_ingest(tmp_path, mosquitto,
                              ingest={"batch_max": 1, "bulk_every": every}) as harness:
        service = harness.ingest
        await harness.register(GW)
        order: list[str] = []
        concurrent = service.db.engine == "postgresql"
        if concurrent:
            commit = service.store.commit

            async def record_start(items: Sequence[Received]) -> CommitInfo:
                order.append("T" if any(isinstance(r.msg, TelemetryBatch) for r in items)
                             else "A")
                return await commit(items)

            service.store.commit = record_start  # type: ignore[method-assign]
        else:
            service.add_commit_listener(
                lambda info: order.append("T" if info.telemetry else "A"))
        for seq in range(1, alarms + 1):
            service._on_message(service.lanes["alarm"], f"ec/v1/{GW}/up/events",
                                encode(envelope(GW, seq)))
        for seq in range(1, batches + 1):
            service._on_message(service.lanes["bulk"], f"ec/v1/{GW}/up/telemetry",
                                encode(telemetry(GW, seq)))
        await wait_until(lambda: len(order) == alarms + batches, timeout=60,
                         what="everything committed")
    assert order.count("T") == batches
    # without the turn: every telemetry batch after all 40 alarm batches
    runs = "".join(order).split("T")
    if concurrent:
        # the first turn as on SQLite (one more alarm batch may have begun while the bulk
        # lane was woken); later turns count from the end of the telemetry transaction,
        # during which the alarm lane went on (one of its batches may span both)
        assert every <= len(runs[0]) <= every + 2, order
        assert all(len(before) >= every - 1 for before in runs[1:batches]), order
        assert len(runs[batches]) > 0, order  # the telemetry was not left until the end
        return
    for before in runs[:batches]:
        # the alarm batches since the last telemetry one: the bulk lane waited for
        # ``every`` of them (one more may have begun while it decoded)
        assert every <= len(before) <= every + 1, order
    assert "TT" not in "".join(order)   # one telemetry batch per turn, then alarms again


async def test_an_sos_commits_in_a_batch_of_its_own_before_queued_states(
        tmp_path: Path, mosquitto: Broker) -> None:
    """A batch with gateway states reads the online flags under the commit lock first (one
    more round trip on PostgreSQL): an SOS queued with states commits alone, first, and
    the states follow in the next batch, in their order."""
    async with running_ingest(tmp_path, mosquitto) as harness:
        service = harness.ingest
        await harness.register(GW)
        commits: list[CommitInfo] = []
        service.add_commit_listener(commits.append)
        lane = service.lanes["alarm"]
        for status in ("online", "offline"):
            service._on_message(lane, f"ec/v1/{GW}/up/state", encode(GatewayState(
                gateway_id=GW, status=status, ts=T0)))
        sos = envelope(GW, 1)
        service._on_message(lane, f"ec/v1/{GW}/up/events", encode(sos))
        await wait_until(lambda: len(commits) >= 2, timeout=60, what="two commits")
        first, second = commits[:2]
        assert first.new_event_count == 1 and first.acks == {GW: [sos.id]}
        assert first.gateway_changes == ()
        assert [c.status for c in second.gateway_changes] == ["online", "offline"]
        record = await harness.store.gateway(GW)
        assert record is not None and not record.online
