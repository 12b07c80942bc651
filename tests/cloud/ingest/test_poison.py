"""Issue 15: one hostile uplink record costs that record, never the alarm path.

Each exact input of the issue (ints beyond signed 64-bit, a lone surrogate, nesting 400
deep) is published by a gateway between valid SOS records: every SOS is committed and
acked, each hostile record is counted and not acked, and ingest goes on. A record that
passes decoding but that the database refuses (the decoders' bounds stop such records
today; this is the second line) costs that record alone: the rest of its batch commits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from ingest_support import GatewayClient, IngestHarness, running_ingest, wait_until

from eldercare_cloud.ingest import service as ingest_service
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import EventEnvelope, Up, decode_uplink, encode
from hostile_support import uplink_poison

if TYPE_CHECKING:
    from broker_support import Broker

pytestmark = pytest.mark.integration

GW = "gw-poison-01"
T0 = datetime(2026, 11, 23, 3, 12, tzinfo=UTC)


def sos(seq: int) -> EventEnvelope:
    return EventEnvelope(id=f"{GW}-sos-{seq:06d}", seq=seq, gateway_id=GW, gateway_ts=T0,
                         device_id="btn-1", kind=EventKind.SOS, device_ts=T0, device_seq=seq)


async def test_each_hostile_record_of_the_issue_is_rejected_and_sos_keep_flowing(
        ingest: IngestHarness, gateway_factory: Callable[..., GatewayClient],
        caplog: pytest.LogCaptureFixture) -> None:
    await ingest.register(GW)
    gw = gateway_factory(GW)
    poison = uplink_poison(GW)
    caplog.set_level(logging.WARNING, logger="eldercare_cloud.ingest.service")
    valid = [sos(1)]
    gw.publish(Up.EVENTS, valid[0])
    for i, (_, payload) in enumerate(poison, start=2):
        gw.publish(Up.EVENTS, payload)
        valid.append(sos(i))
        gw.publish(Up.EVENTS, valid[-1])
    await wait_until(lambda: {v.id for v in valid} <= set(gw.acked_ids()), 15,
                     "every SOS acked")

    c = ingest.ingest.counters
    assert c.rejected_bad_payload == len(poison)
    assert c.commit_failures == 0
    committed = [e.id for e in await ingest.store.events_after(0)]
    assert committed == [v.id for v in valid]
    assert set(gw.acked_ids()) == {v.id for v in valid}
    warned = "\n".join(r.getMessage() for r in caplog.records)
    assert f"ec/v1/{GW}/up/events" in warned
    assert ingest.ingest.committers and not any(t.done() for t in ingest.ingest.committers)


async def test_a_record_the_database_refuses_costs_that_record_and_the_batch_commits(
        tmp_path: Path, mosquitto: Broker, gateway_factory: Callable[..., GatewayClient],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A decoder that let through a seq of 2**64 (built with model_construct, which skips
    validation, standing in for a bound a future field forgets): SQLite raises
    OverflowError inside the batch's transaction; the other records still commit."""
    marker = b'"poison-marker"'

    def decode(topic: str, payload: bytes) -> tuple[str, Any]:
        if marker in payload:
            good = sos(900)
            return GW, EventEnvelope.model_construct(
                **{**good.__dict__, "id": f"{GW}-bad-000001", "seq": 2**64})
        return decode_uplink(topic, payload)

    monkeypatch.setattr(ingest_service, "decode_uplink", decode)
    async with running_ingest(tmp_path, mosquitto) as harness:
        await harness.register(GW)
        gw = gateway_factory(GW)
        # paused, the records wait at the broker and arrive as one batch on resume
        harness.ingest.mqtt.pause_reading()
        valid = [sos(i) for i in range(1, 6)]
        for v in valid[:3]:
            gw.publish(Up.EVENTS, v)
        gw.publish(Up.EVENTS, b'{"x": ' + marker + b"}")
        for v in valid[3:]:
            gw.publish(Up.EVENTS, v)
        harness.ingest.mqtt.resume_reading()
        await wait_until(lambda: {v.id for v in valid} <= set(gw.acked_ids()), 15,
                         "every SOS acked")
        assert harness.ingest.counters.commit_failures == 1
        assert f"{GW}-bad-000001" not in gw.acked_ids()
        assert [e.id for e in await harness.store.events_after(0)] == [v.id for v in valid]


async def test_a_decoder_that_breaks_costs_that_record(
        ingest: IngestHarness, gateway_factory: Callable[..., GatewayClient],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in a decoder (anything but DecodeError) rejects that record; the committer
    goes on (it died, silently, in the issue)."""
    def decode(topic: str, payload: bytes) -> tuple[str, Any]:
        if b"poison-marker" in payload:
            raise RecursionError("a decoder bug")
        return decode_uplink(topic, payload)

    monkeypatch.setattr(ingest_service, "decode_uplink", decode)
    await ingest.register(GW)
    gw = gateway_factory(GW)
    gw.publish(Up.EVENTS, b'{"x": "poison-marker"}')
    valid = sos(1)
    gw.publish(Up.EVENTS, valid)
    await wait_until(lambda: valid.id in gw.acked_ids(), 10, "the SOS acked")
    assert ingest.ingest.counters.rejected_bad_payload == 1
    assert ingest.ingest.committers and not any(t.done() for t in ingest.ingest.committers)


async def test_ingest_reconnects_after_a_keepalive_drop_while_reading_is_paused(
        tmp_path: Path, mosquitto: Broker,
        gateway_factory: Callable[..., GatewayClient]) -> None:
    """Reading paused for backpressure when the connection drops: only the keep-alive
    notices (nothing is read), and the CONNACK of the reconnect must still be read, or
    ingest never comes back (it did not: issue 15)."""
    async with running_ingest(tmp_path, mosquitto, mqtt={"keepalive_s": 5}) as harness:
        await harness.register(GW)
        mqtt = harness.ingest.mqtt
        mqtt.pause_reading()
        harness.broker.stop()
        harness.broker.start()
        await wait_until(lambda: not mqtt.connected, 30, "the keep-alive drop")
        assert await mqtt.wait_connected(15), "no reconnect while reading was paused"
        mqtt.resume_reading()
        gw = gateway_factory(GW)
        env = sos(1)
        gw.publish(Up.EVENTS, encode(env))
        await wait_until(lambda: env.id in gw.acked_ids(), 10, "ack after reconnect")
