"""Issue 4, test 9 end to end: a device that goes quiet is not a person who is fine.

Simulated devices on the home broker, the gateway on a simulated clock (a morning passes
in a moment), the cloud committing what arrives: a device's Last Will becomes a
``device_offline`` alert for that device; no door/motion/bed activity by the resident's
wake-up time while a sensor is alive becomes ``inactivity`` for the home; and with every
activity sensor dead there is no inactivity alert at all, only device alerts.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from broker_support import Broker
from eldercare_cloud.service import CloudService
from eldercare_edge.clock import FakeClock
from eldercare_edge.gateway import Gateway
from eldercare_protocols.events import EventCategory, EventKind, category_of
from eldercare_sim.clock import SimClock
from eldercare_sim.home import SimHome

from .helpers import GW, committed, edge_settings, running, wait_for

pytestmark = pytest.mark.integration

CHINA = timezone(timedelta(hours=8))


def seen_at(gw: Gateway, device_id: str, when: datetime) -> bool:
    info = gw.registry.get(device_id)
    return info is not None and info.last_seen == when


async def test_9_device_offline_and_person_inactive_are_different_alerts(
        tmp_path: Path, home_broker: Broker, cloud_broker: Broker, cloud: CloudService) -> None:
    clock = FakeClock(datetime(2026, 3, 2, 3, 0, tzinfo=CHINA))  # 03:00, before night_end
    devices = [{"device_id": "h9-door", "type": "door_contact"},
               {"device_id": "h9-pir", "type": "motion_sensor"},
               {"device_id": "h9-btn", "type": "call_button"}]
    # the rules run when the test says so (after moving the clock), not on a timer
    settings = edge_settings(tmp_path, home_broker, cloud_broker, devices, rules_tick_s=3600)
    async with running(settings, clock=clock) as gw, SimHome(
            home_broker.url, "h9", devices=[(d["device_id"], d["type"]) for d in devices],
            clock=SimClock()) as home:
        await wait_for(lambda: all(seen_at(gw, d["device_id"], clock.now()) for d in devices),
                       what="every device booted and seen")

        # 1. the door's battery dies: its Last Will is a device alert, at night, not a person
        await home.unplug("h9-door")

        async def door_offline() -> bool:
            return bool(await committed(cloud, EventKind.DEVICE_OFFLINE, "h9-door"))

        await wait_for(door_offline, what="device_offline for the door in the cloud")
        await gw.run_rules()
        assert await committed(cloud, EventKind.INACTIVITY) == []

        # 2. 10:01, nobody opened a door, moved or got up since 05:00; the motion sensor
        #    is alive (it just sent its heartbeat): the person is inactive
        clock.set(datetime(2026, 3, 2, 10, 1, tzinfo=CHINA))
        for dev in ("h9-pir", "h9-btn"):
            await home.heartbeat(dev)
        await wait_for(lambda: seen_at(gw, "h9-pir", clock.now())
                       and seen_at(gw, "h9-btn", clock.now()), what="fresh heartbeats")
        await gw.run_rules()

        async def inactive() -> bool:
            return bool(await committed(cloud, EventKind.INACTIVITY))

        await wait_for(inactive, what="inactivity in the cloud")

        # 3. the next day the motion sensor is dead too: no sensor can see the person, so
        #    there is a device alert for it and no inactivity alert
        await home.unplug("h9-pir")

        async def pir_offline() -> bool:
            return bool(await committed(cloud, EventKind.DEVICE_OFFLINE, "h9-pir"))

        await wait_for(pir_offline, what="device_offline for the motion sensor")
        clock.set(datetime(2026, 3, 3, 10, 1, tzinfo=CHINA))
        await home.heartbeat("h9-btn")
        await wait_for(lambda: seen_at(gw, "h9-btn", clock.now()), what="button heartbeat")
        await gw.run_rules()
        # let anything the rules stored reach the cloud before looking
        await wait_for(lambda: gw.outbox.size_bytes == 0, what="outbox drained")
        # (read now: leaving the simulated home shuts its devices down, which is news too)
        offline = await committed(cloud, EventKind.DEVICE_OFFLINE)
        inactivity = await committed(cloud, EventKind.INACTIVITY)

    assert {e.device_id for e in offline} == {"h9-door", "h9-pir"}
    assert len(inactivity) == 1
    [alert] = inactivity
    assert alert.device_id == GW and alert.rule == "wake_by" and alert.source == "gateway"
    assert "h9-pir" in alert.data.get("sensors", [])
    assert "h9-door" not in alert.data.get("sensors", [])
    assert category_of(EventKind.DEVICE_OFFLINE) is EventCategory.DEVICE
    assert category_of(EventKind.INACTIVITY) is EventCategory.CARE
    # the gateway's simulated clock stamped the alerts; the cloud stamped its own times
    assert alert.gateway_ts == datetime(2026, 3, 2, 10, 1, tzinfo=CHINA)
    assert alert.committed_at > alert.gateway_ts
