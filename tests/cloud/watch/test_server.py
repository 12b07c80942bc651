"""GPS SOS watches over real TCP on 127.0.0.1: the simulated watch talks to the cloud's
watch listener, whose alarms are committed on ingest's own path (a real database and
ingest connected to Mosquitto)."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from care_support import care_settings, open_care
from ingest_support import IngestHarness

from eldercare_cloud.auth.models import Principal, Role
from eldercare_cloud.clock import ManualClock
from eldercare_cloud.ingest import Received, StoredEvent
from eldercare_cloud.registry.models import DeviceCreate
from eldercare_cloud.watch import WATCH_GATEWAY, WatchServer
from eldercare_protocols import watch
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import Lane
from eldercare_sim.watch import SimWatch

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 23, 3, 12, 5, tzinfo=UTC)
WATCH = "8800000015"
REGISTERED = {WATCH}


async def is_registered(watch_id: str) -> bool:
    # the registry's is_watch in the app; the device registry is not under test here
    return watch_id in REGISTERED


@asynccontextmanager
async def listening(ingest: IngestHarness) -> AsyncIterator[WatchServer]:
    clock = ManualClock(T0)
    async with WatchServer(host="127.0.0.1", port=0, registered=is_registered,
                           commit=ingest.ingest.commit_local, now=clock.now,
                           idle_timeout_s=30) as server:
        yield server


async def events(ingest: IngestHarness) -> list[StoredEvent]:
    return await ingest.store.events_after(0, limit=100)


async def wait_closed(w: SimWatch) -> bytes:
    return await w.read_reply()


async def test_sos_watch_heartbeat_position_and_alarms(ingest: IngestHarness) -> None:
    async with listening(ingest) as server, SimWatch("127.0.0.1", server.port, WATCH) as w:
        assert await w.link() == b"[3G*8800000015*0002*LK]"
        await w.position(T0)
        assert await w.alarm(T0, EventKind.SOS) == b"[3G*8800000015*0002*AL]"
        # the AL answer comes after the commit: the alarm is stored when the watch hears it
        stored = await events(ingest)
        assert [(e.kind, e.source, e.lane, e.device_id, e.gateway_id) for e in stored] == [
            (EventKind.SOS, "watch", Lane.ALARM, WATCH, WATCH_GATEWAY)]
        assert stored[0].data == {"lat": 30.2741, "lon": 120.1551, "position": "fix"}
        assert stored[0].device_ts == T0
        # a fall and the strap taken off, without a GPS fix: the last position travels
        w.lat, w.lon = 30.0, 120.0
        assert await w.alarm(T0, EventKind.FALL, EventKind.STRAP_REMOVED, fix=False) \
            == b"[3G*8800000015*0002*AL]"
        later = {e.kind: e for e in (await events(ingest))[1:]}
        assert set(later) == {EventKind.FALL, EventKind.STRAP_REMOVED}
        fall = later[EventKind.FALL]
        assert fall.data["position"] == "last_known" and fall.data["lat"] == 30.2741
        assert fall.lane is Lane.ALARM and later[EventKind.STRAP_REMOVED].lane is Lane.EVENT
        points = await ingest.store.telemetry(WATCH)
        assert len(points) == 2        # the UD and the SOS alarm's own fix
    assert server.counters.bad_frames == 0 and server.counters.alarms == 3
    assert server.counters.replies == 3


async def test_unregistered_watch_is_counted_and_disconnected(
        ingest: IngestHarness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    async with listening(ingest) as server, SimWatch("127.0.0.1", server.port,
                                                     "1234567890") as w:
        assert await w.alarm(T0, EventKind.SOS) == b""      # closed, no answer
    assert server.counters.unregistered == 1
    assert await events(ingest) == []
    assert "unregistered watch 1234567890" in caplog.text


@pytest.mark.parametrize("junk", [
    b"GET / HTTP/1.1\r\n\r\n",                                       # not the protocol
    b"[3G*8800000015*00G9*LK]",                                      # length not hex
    b"[3G*8800000015*0002*" + b"x" * 5000,                           # oversized, no end
    watch.encode("3G", "8800000015", "AL,220414,134652,A,95.0,N,113.8,E"),   # bad latitude
])
async def test_bad_frames_are_counted_logged_and_close_the_connection(
        ingest: IngestHarness, caplog: pytest.LogCaptureFixture, junk: bytes) -> None:
    caplog.set_level(logging.WARNING)
    async with listening(ingest) as server:
        async with SimWatch("127.0.0.1", server.port, WATCH) as w:
            await w.send_raw(junk)
            assert await wait_closed(w) == b""
        assert server.counters.bad_frames == 1
        assert "bad frame" in caplog.text
        # the listener is still there for the next watch
        async with SimWatch("127.0.0.1", server.port, WATCH) as w:
            assert await w.link() == b"[3G*8800000015*0002*LK]"
    assert await events(ingest) == []


async def test_truncated_frame_then_hang_up_stores_nothing(ingest: IngestHarness) -> None:
    async with listening(ingest) as server:
        async with SimWatch("127.0.0.1", server.port, WATCH) as w:
            await w.send_raw(watch.encode("3G", WATCH, "AL,220414,134652,A")[:-1])
        for _ in range(200):     # bounded: the server sees the hang-up
            if server.counters.connections == 1 and not server._conns:
                break
            await asyncio.sleep(0.01)
    assert await events(ingest) == [] and server.counters.frames == 0


async def test_watch_sos_is_a_life_safety_alert_for_its_resident(
        tmp_path: Path, care_db: Path, care_template: tuple[Path, dict[str, str]]) -> None:
    """Registered like any device (bound to a resident), the watch's SOS becomes the same
    alert a red button makes, with its position, and climbs the ladder."""
    clock = ManualClock(T0)
    async with open_care(care_db, care_settings(tmp_path), clock, care_template[1]) as care:
        admin = Principal(user_id="installer-test", username="installer-test",
                          role=Role.ADMIN, tenant=care.settings.tenant)
        await care.services.registry.create_device(admin, DeviceCreate(
            id=WATCH, type="gps_tracker", household_id="H-XH-002", resident_id="R-XH-002",
            source="watch"))
        registry = care.services.registry
        assert await registry.is_watch(WATCH)
        assert not await registry.is_watch("btn-xh001")      # a device, not a watch
        assert not await registry.is_watch("gps-xh002")      # a wristband on the gateway
        # the home's gateway is not told about the watch: it would call it offline
        config = await registry.build_gateway_config("GW-XH-002")
        assert config is not None and WATCH not in {d.device_id for d in config.devices}
        assert "gps-xh002" in {d.device_id for d in config.devices}
        assert not await registry.is_watch("1234567890")     # nobody registered it

        async def commit(items: list[Received]) -> bool:
            await care.store.commit(items)                    # ingest's own write path
            return True

        async with WatchServer(host="127.0.0.1", port=0, registered=registry.is_watch,
                               commit=commit, now=clock.now) as server, \
                SimWatch("127.0.0.1", server.port, WATCH) as w:
            assert await w.alarm(T0, EventKind.SOS) == b"[3G*8800000015*0002*AL]"
        await care.run()
        sos = [a for a in await care.open_alerts() if a["kind"] == "sos"]
        assert len(sos) == 1
        assert (sos[0]["resident_id"], sos[0]["device_id"], sos[0]["severity"]) == (
            "R-XH-002", WATCH, "critical")
        assert await care.asked(sos[0]["id"]), "the ladder asked nobody"


async def test_the_simulator_command_plays_a_watch(ingest: IngestHarness) -> None:
    """``eldercare-sim watch`` as a process: heartbeat, position, SOS, with the answers."""
    script = Path(sys.executable).parent / "eldercare-sim"
    async with listening(ingest) as server:
        proc = await asyncio.create_subprocess_exec(
            str(script), "watch", "--server", f"127.0.0.1:{server.port}", "--id", WATCH,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        async with asyncio.timeout(60):
            out, errs = await proc.communicate()
    assert proc.returncode == 0, errs.decode()
    text = out.decode()
    assert "LK -> [3G*8800000015*0002*LK]" in text
    assert "AL sos -> [3G*8800000015*0002*AL]" in text
    assert [e.kind for e in await events(ingest)] == [EventKind.SOS]
