"""The forwarder over a real SQLite outbox, with the transport faked at the boundary.

The link here is a recording stand-in for MqttLink (what paho would be handed); the
broker path is exercised in test_gateway.py and test_uplink_outage.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from clock_support import TEST_EPOCH
from eldercare_edge.clock import SystemClock
from eldercare_edge.connectors.mqtt import Outgoing
from eldercare_edge.counters import Counters
from eldercare_edge.forwarder import Forwarder
from eldercare_edge.outbox import Draft, Outbox, Stored
from eldercare_protocols.uplink import Ack, Lane

from .helpers import wait_for

GW = "gw-fw"


class FakeLink:
    """Records what would go to the broker; ``capacity`` makes it refuse after N more."""

    def __init__(self) -> None:
        self.connected = True
        self.sent: list[tuple[str, dict[str, object]]] = []
        self.capacity: int | None = None

    def _take(self) -> bool:
        if not self.connected:
            return False
        if self.capacity is not None:
            if self.capacity <= 0:
                return False
            self.capacity -= 1
        return True

    def publish(self, msg: Outgoing) -> bool:
        if not self._take():
            return False
        self.sent.append((msg.topic, json.loads(msg.payload)))
        return True

    def publish_many(self, topic: str, payloads: Sequence[bytes], qos: int = 1) -> int:
        for n, payload in enumerate(payloads):
            if not self._take():
                return n
            self.sent.append((topic, json.loads(payload)))
        return len(payloads)

    def ids(self) -> list[str]:
        return [str(body["id"]) for _, body in self.sent]

    def bodies(self) -> list[str]:
        return [str(body["body"]) for _, body in self.sent]


def draft(lane: Lane, body: str, device: str = "dev-1") -> Draft:
    def build(seq: int, rid: str) -> bytes:
        return json.dumps({"id": rid, "seq": seq, "body": body, "device": device}).encode()
    return Draft(lane, build, device_id=device)


def ack(ids: list[str]) -> Ack:
    return Ack(ids=ids, committed_at=TEST_EPOCH)


@asynccontextmanager
async def forwarding(outbox: Outbox, link: FakeLink, **kw: object
                     ) -> AsyncIterator[tuple[Forwarder, list[Stored]]]:
    committed: list[Stored] = []
    opts: dict[str, object] = {"window": 1000, "resend_after_s": 60.0, "read_batch": 500}
    opts.update(kw)
    fw = Forwarder(GW, outbox, link, clock=SystemClock(), counters=Counters(),
                   on_committed=committed.extend, **opts)  # type: ignore[arg-type]
    task = asyncio.create_task(fw.run(), name="test-forwarder")
    try:
        yield fw, committed
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


@pytest.fixture
async def outbox(tmp_path: Path) -> AsyncIterator[Outbox]:
    async with Outbox(tmp_path / "o.sqlite", GW) as ob:
        yield ob


async def test_every_alarm_goes_before_any_backlog_even_past_one_read_batch(
        outbox: Outbox) -> None:
    # a backlog where alarms were stored between events, more alarms than one read batch
    for i in range(20):
        await outbox.put(draft(Lane.EVENT, f"e{i}"))
        if i % 3 == 0:
            await outbox.put(draft(Lane.ALARM, f"a{i}"))
    await outbox.put(draft(Lane.TELEMETRY, "t0"))
    link = FakeLink()
    link.connected = False
    async with forwarding(outbox, link, read_batch=3, window=100):
        await asyncio.sleep(0.05)
        assert link.sent == []
        link.connected = True
        await wait_for(lambda: len(link.sent) == 28, what="the whole backlog sent")
    bodies = link.bodies()
    alarms = [b for b in bodies if b.startswith("a")]
    assert len(alarms) == 7
    assert bodies[:7] == alarms, "an event overtook an alarm"
    assert bodies[7:] == [f"e{i}" for i in range(20)] + ["t0"]
    topics = {t for t, _ in link.sent}
    assert topics == {f"ec/v1/{GW}/up/events", f"ec/v1/{GW}/up/telemetry"}


async def test_window_bounds_the_backlog_but_not_alarms_and_only_an_ack_deletes(
        outbox: Outbox) -> None:
    stored = await outbox.put_many([draft(Lane.EVENT, f"e{i}") for i in range(12)])
    link = FakeLink()
    async with forwarding(outbox, link, window=5, read_batch=4) as (fw, committed):
        await wait_for(lambda: len(link.sent) == 5, what="a window's worth")
        await asyncio.sleep(0.05)
        assert len(link.sent) == 5 and fw.inflight == 5
        # an alarm is not held by a full window
        alarm = await outbox.put(draft(Lane.ALARM, "sos"))
        fw.wake()
        await wait_for(lambda: "sos" in link.bodies(), what="alarm past the full window")
        # PUBACK means nothing: everything is still stored
        assert sum((await outbox.depth()).values()) == 13
        # two acks handled in one go free their room and delete exactly those records
        gone = await fw.on_acks([ack([stored[0].id, stored[1].id]),
                                 ack([stored[2].id, f"{GW}-999999"])])
        assert [g.id for g in gone] == [s.id for s in stored[:3]]
        assert [c.id for c in committed] == [s.id for s in stored[:3]]
        assert fw.counters.get("acks_for_unknown_ids") == 1
        # the unacked alarm holds one place of the window: two more events fit
        await wait_for(lambda: len(link.sent) == 8, what="two more after the ack")
        await asyncio.sleep(0.05)
        assert link.bodies()[5:] == ["sos", "e5", "e6"]
        assert alarm is not None and await outbox.contains(alarm.id)


async def test_the_window_is_bounded_in_bytes_too_but_alarms_are_not(outbox: Outbox) -> None:
    """Records in flight are held for a resend: big telemetry batches stop at the byte
    budget long before the count window, and the next go once an ack frees room."""
    stored = await outbox.put_many([draft(Lane.TELEMETRY, f"t{i}:" + "x" * 1000)
                                    for i in range(10)])
    link = FakeLink()
    async with forwarding(outbox, link, window=1000, read_batch=500,
                          max_inflight_bytes=3500) as (fw, _):
        await wait_for(lambda: len(link.sent) == 3, what="three batches in flight")
        await asyncio.sleep(0.05)
        assert len(link.sent) == 3 and fw.inflight == 3
        assert 3000 < fw.inflight_bytes <= 3500
        alarm = await outbox.put(draft(Lane.ALARM, "sos"))
        assert alarm is not None
        fw.wake()
        await wait_for(lambda: "sos" in link.bodies(), what="an alarm past the byte budget")
        await fw.on_acks([ack([stored[0].id, stored[1].id, alarm.id])])
        await wait_for(lambda: len(link.sent) == 6, what="two more after the ack")
        await asyncio.sleep(0.05)
        assert [b.split(":")[0] for b in link.bodies()] == ["t0", "t1", "t2", "sos", "t3",
                                                            "t4"]
        assert fw.inflight == 3


async def test_a_refused_publish_keeps_the_rest_in_order_for_later(outbox: Outbox) -> None:
    await outbox.put_many([draft(Lane.EVENT, f"e{i}", device="door-1") for i in range(10)])
    link = FakeLink()
    link.capacity = 4
    async with forwarding(outbox, link) as (fw, _):
        await wait_for(lambda: len(link.sent) == 4, what="four taken")
        link.capacity = None
        fw.wake()
        await wait_for(lambda: len(link.sent) == 10, what="the rest")
    assert link.bodies() == [f"e{i}" for i in range(10)]   # no gap, no repeat, in order


async def test_unacked_records_are_resent_with_the_same_id_alarms_first(outbox: Outbox
                                                                       ) -> None:
    ev = await outbox.put(draft(Lane.EVENT, "e0"))
    al = await outbox.put(draft(Lane.ALARM, "a0"))
    assert ev is not None and al is not None
    link = FakeLink()
    async with forwarding(outbox, link, resend_after_s=0.1) as (fw, _):
        await wait_for(lambda: len(link.sent) >= 4, what="a resend round")
        assert link.ids()[:4] == [al.id, ev.id, al.id, ev.id]
        assert fw.counters.get("resent") >= 2
        await fw.on_acks([ack([al.id, ev.id])])
        count = len(link.sent)
        await asyncio.sleep(0.3)
        assert len(link.sent) == count, "an acked record was sent again"
    assert sum((await outbox.depth()).values()) == 0


async def test_a_cancel_that_coincides_with_a_wake_still_stops_the_loop(outbox: Outbox
                                                                        ) -> None:
    """The gateway's stop cancels the forwarder; on Python 3.11 ``asyncio.wait_for`` lost
    a cancel that arrived just as the awaited event fired, and stop() waited forever."""
    link = FakeLink()
    link.connected = False
    for spins in range(6):      # the cancel lands 0..5 loop iterations after the wake
        fw = Forwarder(GW, outbox, link, window=10, resend_after_s=60, read_batch=10,
                       clock=SystemClock(), counters=Counters())
        task = asyncio.create_task(fw.run(), name=f"fw-{spins}")
        await asyncio.sleep(0.02)
        fw.wake()
        for _ in range(spins):
            await asyncio.sleep(0)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=2)
        assert task in done, f"the forwarder ignored a cancel {spins} iterations after a wake"
