"""End to end: the simulated watch plays the ``watch-wander`` scenario over TCP against
the cloud's own watch listener, started by the real app (ingest on a real Mosquitto,
engines, HTTP API under uvicorn) on the test's database. The watch is registered and its
profile set through the HTTP API, as an installer and an operator would."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from care_support import RESIDENT, SON, RecordingChannel, care_settings, mint_tokens
from ingest_support import IngestHarness
from stack_support import _Server, ok, until

from broker_support import Broker, free_port
from eldercare_cloud.app import create_app
from eldercare_cloud.clock import ManualClock
from eldercare_cloud.db import Database
from eldercare_cloud.ingest import IngestService
from eldercare_cloud.watch import WatchServer
from eldercare_protocols.events import EventKind
from eldercare_sim import watch_scenario
from eldercare_sim.geo import offset
from eldercare_sim.watch import SimWatch

pytestmark = pytest.mark.integration

SCENARIO = Path(__file__).resolve().parents[3] / "firmware-sim" / "scenarios" / \
    "watch" / "watch-wander.yaml"
WATCH = "9051004074"
#: half a minute after the scenario's SOS (09:25 +08:00)
NOW = datetime(2026, 11, 23, 1, 25, 30, tzinfo=UTC)


async def test_simulated_watch_wanders_takes_strap_off_and_presses_sos(
        tmp_path: Path, care_db: Path, care_template: tuple[Path, dict[str, str]],
        mosquitto: Broker) -> None:
    scenario = watch_scenario.load(SCENARIO)
    watch_port = free_port()
    settings = care_settings(
        tmp_path, mqtt={"url": mosquitto.url, "client_id": f"watch-e2e-{uuid.uuid4().hex[:6]}"},
        http={"enabled": False}, ingest={"batch_wait_ms": 0}, care={"poll_s": 0.2},
        watch={"port": watch_port})
    sms = RecordingChannel()
    tokens = mint_tokens(care_template[1], NOW)

    def auth(user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[user]}"}

    async with Database(care_db) as db, IngestService(settings, db) as ingest:
        assert await ingest.wait_connected(10)
        app = create_app(settings, db=db, ingest=ingest, store=ingest.store,
                         clock=ManualClock(NOW), channels={"sms": sms}, run_engine=True)
        server = _Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(),
                                        log_level="warning", lifespan="on"))
        task = asyncio.create_task(server.serve(), name="watch-e2e-uvicorn")
        try:
            await until(lambda: server.started or task.done(), "uvicorn")
            port = server.servers[0].sockets[0].getsockname()[1]
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
                await ok(await c.post("/api/v1/devices", headers=auth("admin"), json={
                    "id": WATCH, "type": "gps_tracker", "household_id": "H-XH-001",
                    "resident_id": RESIDENT, "source": "watch"}), 201)
                await ok(await c.put(f"/api/v1/residents/{RESIDENT}/watch-profile",
                                     headers=auth("operator"), json={
                                         "home": {"latitude": scenario.home[0],
                                                  "longitude": scenario.home[1]},
                                         "radius_m": 300, "strap_alert": False}))
                async with SimWatch("127.0.0.1", watch_port, WATCH, vendor="SG") as w:
                    answers = await watch_scenario.play(w, scenario)
                assert answers == [b"[SG*9051004074*0002*LK]"] + \
                    [b"[SG*9051004074*0002*AL]"] * 3

                async def alerts() -> list[dict[str, Any]]:
                    got: list[dict[str, Any]] = await ok(await c.get(
                        "/api/v1/alerts", params={"open_only": "true",
                                                  "resident_id": RESIDENT},
                        headers=auth("operator")))
                    return got

                async def settled() -> bool:
                    kinds = {a["kind"] for a in await alerts()}
                    return {"sos", "geofence_exit"} <= kinds

                await until(settled, "the SOS and the fence exit as alerts")
                by_kind: dict[str, list[dict[str, Any]]] = {}
                for a in await alerts():
                    by_kind.setdefault(a["kind"], []).append(a)
                # SOS: one life-safety alert (the resend was acked, not stored again), with
                # the fix of the alarm frame itself
                [sos] = by_kind["sos"]
                lat, lon = offset(scenario.home, 850, 0)
                assert (sos["severity"], sos["repeat_count"]) == ("critical", 0)
                assert sos["position"]["valid"] and sos["position"]["source"] == "fix"
                assert (round(sos["position"]["lat"], 5), round(sos["position"]["lon"], 5)) \
                    == (round(lat, 5), round(lon, 5))
                # the fence: one exit, one concern, although the walk reported 4 positions
                # outside it
                [concern] = by_kind["geofence_exit"]
                assert (concern["severity"], concern["category"], concern["repeat_count"]) \
                    == ("medium", "care", 0)
                # the strap: recorded, no alert (this resident's profile)
                assert "strap_removed" not in by_kind
                events = await ingest.store.events_after(0, limit=100)
                kinds = [e.kind for e in events if e.device_id == WATCH]
                assert kinds.count(EventKind.SOS) == 1
                assert kinds.count(EventKind.GEOFENCE_EXIT) == 1
                assert kinds.count(EventKind.STRAP_REMOVED) == 1
                # the first responder's SMS says where, in Chinese
                contact = await app.state.services.registry.contact(SON)
                await until(lambda: any("紧急呼叫" in m.text for m in sms.to(contact.phone)),
                            "the SOS text to the son")
                [text] = [m.text for m in sms.to(contact.phone) if "紧急呼叫" in m.text]
                assert f"位置 {lat:.5f},{lon:.5f}（刚刚）" in text
                assert "https://uri.amap.com/marker?position=" in text
        finally:
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 10)


async def test_the_simulator_command_plays_the_watch_scenario(ingest: IngestHarness) -> None:
    """``eldercare-sim watch --scenario watch-wander`` as a process: every step with the
    server's answer, and the resent SOS stored once."""
    script = Path(sys.executable).parent / "eldercare-sim"
    clock = ManualClock(NOW)

    async def registered(watch_id: str) -> bool:
        return watch_id == WATCH           # the registry's is_watch in the app

    async with WatchServer(host="127.0.0.1", port=0, registered=registered,
                           commit=ingest.ingest.commit_local, now=clock.now) as server:
        proc = await asyncio.create_subprocess_exec(
            str(script), "watch", "--server", f"127.0.0.1:{server.port}", "--id", WATCH,
            "--scenario", "watch-wander",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        async with asyncio.timeout(60):
            out, errs = await proc.communicate()
    assert proc.returncode == 0, errs.decode()
    text = out.decode()
    assert "09:25:00 AL sos -> [3G*9051004074*0002*AL]" in text
    assert "09:25:00 AL (resent) -> [3G*9051004074*0002*AL]" in text
    assert "09:20:00 AL strap_off -> [3G*9051004074*0002*AL]" in text
    assert text.count(" UD ") == 7                  # home, 5 on the walk, one further out
    events = await ingest.store.events_after(0, limit=100)
    assert [e.kind for e in events] == [EventKind.STRAP_REMOVED, EventKind.SOS]
