"""The cloud broker goes away mid-stream and comes back (the home broker stays up)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from broker_support import Broker
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import EventEnvelope, TelemetryBatch

from .helpers import (
    Client,
    CloudAcker,
    clients,
    event_payload,
    running,
    settings_for,
    telemetry_payload,
    wait_for,
)

pytestmark = pytest.mark.integration


async def test_cloud_broker_restart_every_alarm_once_in_order_before_telemetry(
        tmp_path: Path, mosquitto: Broker, cloud_broker: Broker) -> None:
    settings = settings_for(tmp_path, mosquitto.port, cloud_broker.port,
                            cloud={"resend_after_s": 30.0})
    # resends are not needed here: the cloud broker queues for the stand-in cloud
    b1 = Client(mosquitto.port, "btn-1")
    b2 = Client(mosquitto.port, "btn-2")
    vit = Client(mosquitto.port, "vit-1")
    cloud = CloudAcker(cloud_broker.port, persistent=True)
    with clients(b1, b2, vit, cloud):
        async with running(settings) as gw:
            # steady state first: a few alarms and telemetry go through and are acked
            for i in range(5):
                b1.publish("eldercare/btn-1/event", event_payload("call_button", "sos", i))
                vit.publish("eldercare/vit-1/telemetry",
                            telemetry_payload("vitals_monitor", "vitals", i, heart_rate=72))
            await wait_for(lambda: gw.outbox.size_bytes == 0 and
                           len(cloud.records(EventEnvelope)) >= 5, what="steady state drained")

            cloud_broker.stop()
            await wait_for(lambda: not gw.cloud.connected, what="gateway saw the outage")
            mark = len(cloud.seen)
            seq = {"btn-1": 100, "btn-2": 100}
            for i in range(100):
                dev = "btn-1" if i % 2 else "btn-2"
                seq[dev] += 1
                (b1 if dev == "btn-1" else b2).publish(
                    f"eldercare/{dev}/event", event_payload("call_button", "sos", seq[dev]))
                if i % 5 == 0:
                    vit.publish("eldercare/vit-1/telemetry", telemetry_payload(
                        "vitals_monitor", "vitals", 100 + i, heart_rate=70 + i % 7))
                if i % 25 == 0:
                    await asyncio.sleep(0.05)   # let a telemetry batch close mid-outage
            await wait_for(lambda: gw.counters.get("alarms_stored") == 105, what="all stored")
            await wait_for(lambda: len(gw.batcher) == 0, what="telemetry batch flushed")
            depth = await gw.outbox.depth()
            assert depth["alarm"] == 100 and depth["telemetry"] >= 1

            cloud_broker.start()
            await wait_for(lambda: gw.outbox.size_bytes == 0, within_s=30,
                           what="backlog drained after the restart")

    after = cloud.seen[mark:]
    firsts: dict[str, int] = {}
    for i, s in enumerate(after):
        if hasattr(s.record, "id"):
            firsts.setdefault(s.record.id, i)
    alarms = [s.record for s in after if isinstance(s.record, EventEnvelope)
              and s.record.kind is EventKind.SOS]
    distinct = {a.id: a for a in alarms}
    assert len(distinct) == 100
    # no alarm was stored twice under two ids
    assert len({(a.device_id, a.device_seq) for a in distinct.values()}) == 100
    for dev in ("btn-1", "btn-2"):
        mine = sorted((a for a in distinct.values() if a.device_id == dev),
                      key=lambda a: firsts[a.id])
        assert [a.device_seq for a in mine] == list(range(101, 151)), f"{dev} out of order"
    backlog_tel = [s.record for s in after if isinstance(s.record, TelemetryBatch)]
    assert backlog_tel, "the telemetry backlog arrived too"
    last_alarm = max(firsts[a] for a in distinct)
    first_tel = min(firsts[t.id] for t in backlog_tel)
    assert last_alarm < first_tel, "an outage's telemetry overtook an alarm"
