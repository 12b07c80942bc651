"""A resident's watch profile and what a GPS watch's alarms become in the care core:
the SOS alert carries the person's last position (into the responder's SMS and phone
page), a resent alarm is one alert, fence exits raise one concern per exit and strap
removal follows the profile. The watch is the simulator's, over TCP on 127.0.0.1, against
the real listener committing on ingest's write path (SQLite file or PostgreSQL)."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from care_support import (
    RESIDENT,
    SON,
    Care,
    care_settings,
    mint_tokens,
    open_care,
    serve,
)

from eldercare_cloud.auth.models import Principal, Role
from eldercare_cloud.clock import ManualClock
from eldercare_cloud.ingest import Received
from eldercare_cloud.registry.models import Coordinates, DeviceCreate, WatchProfile
from eldercare_cloud.watch import WatchServer, WatchStore
from eldercare_cloud.watch import fence as F
from eldercare_protocols.events import EventKind
from eldercare_sim.watch import SimWatch

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 23, 3, 12, 5, tzinfo=UTC)
WATCH = "8800000015"
HOME = (30.2741, 120.1551)
#: a resident at risk of wandering in the demo data (moderate dementia)
AT_RISK = "R-XH-003"


def admin(care: Care) -> Principal:
    return Principal(user_id="installer-test", username="installer-test", role=Role.ADMIN,
                     tenant=care.settings.tenant)


async def register(care: Care, resident: str = RESIDENT, household: str = "H-XH-001",
                   **profile: object) -> None:
    await care.services.registry.create_device(admin(care), DeviceCreate(
        id=WATCH, type="gps_tracker", household_id=household, resident_id=resident,
        source="watch"))
    if profile:
        await care.services.registry.put_watch_profile(
            admin(care), resident, WatchProfile.model_validate(profile))


@asynccontextmanager
async def listening(care: Care, clock: ManualClock) -> AsyncIterator[WatchServer]:
    store = WatchStore(care.db)
    await store.migrate()

    async def commit(items: list[Received]) -> bool:
        await care.store.commit(items)          # ingest's own write path
        return True

    async with WatchServer(host="127.0.0.1", port=0, registered=care.services.registry.is_watch,
                           commit=commit, now=clock.now, idle_timeout_s=30,
                           profile=care.services.registry.watch_profile_for_device,
                           store=store) as server:
        yield server


async def watch_events(care: Care, kind: EventKind) -> int:
    return len([e for e in await care.store.events_after(0, limit=500)
                if e.device_id == WATCH and e.kind is kind])


async def alerts_of(care: Care, kind: str) -> list[dict[str, object]]:
    return [a for a in await care.open_alerts() if a["kind"] == kind]


async def phone_of(care: Care, contact_id: str) -> str:
    contact = await care.services.registry.contact(contact_id)
    assert contact is not None and contact.phone
    return contact.phone


async def test_sos_alert_carries_the_last_position_into_sms_and_responder_page(
        tmp_path: Path, care_db: Path, care_template: tuple[Path, dict[str, str]]) -> None:
    clock = ManualClock(T0)
    async with open_care(care_db, care_settings(tmp_path), clock, care_template[1]) as care:
        await register(care)
        async with listening(care, clock) as server, \
                SimWatch("127.0.0.1", server.port, WATCH, lat=30.274312, lon=120.155071) as w:
            await w.position(T0)                               # a fix at T0
            clock.advance(180)
            # three minutes later the SOS key, indoors without a fix
            assert await w.alarm(T0 + timedelta(seconds=180), EventKind.SOS, fix=False) \
                == b"[3G*8800000015*0002*AL]"
        await care.run()
        [sos] = await alerts_of(care, "sos")
        assert (sos["severity"], sos["category"], sos["resident_id"]) == (
            "critical", "life_safety", RESIDENT)
        assert (sos["position_lat"], sos["position_lon"], sos["position_valid"],
                sos["position_source"]) == (30.274312, 120.155071, 1, "last_known")
        assert sos["position_at"] is not None and sos["position_at"].startswith(
            "2026-11-23T03:12:05")
        # the first responder's SMS says where and how old the fix is, in Chinese
        [sms] = care.sms.to(await phone_of(care, SON))
        assert "紧急呼叫" in sms.text
        assert "位置 30.27431,120.15507（3分钟前）" in sms.text
        assert ("地图：https://uri.amap.com/marker?position=120.15507,30.27431"
                "&coordinate=wgs84") in sms.text
        # and the phone page behind the link
        view = await care.services.responder.view(
            str(sos["id"]), await care.link_token(str(sos["id"]), SON))
        assert view.where is not None
        assert (view.where.position.lat, view.where.age_s, view.where.text_zh) == (
            30.274312, 180, "位置 30.27431,120.15507（3分钟前）")
        assert view.where.map_url.startswith("https://uri.amap.com/marker?position=120.15507")
        # the console's API gives the position with the alert
        detail = await care.services.care.get_alert(admin(care), str(sos["id"]))
        assert detail.position is not None and detail.position.source == "last_known"


async def test_a_resent_alarm_is_acknowledged_and_stays_one_alert(
        tmp_path: Path, care_db: Path, care_template: tuple[Path, dict[str, str]]) -> None:
    """The watch repeats an AL until it hears the reply: the same frame again (same time,
    same status word) is one record and one alert, however often it comes and on however
    many connections; a later press is a repeat of the open alert, not a second one."""
    clock = ManualClock(T0)
    async with open_care(care_db, care_settings(tmp_path), clock, care_template[1]) as care:
        await register(care)
        async with listening(care, clock) as server:
            for _ in range(2):                                 # a new connection each time
                async with SimWatch("127.0.0.1", server.port, WATCH) as w:
                    for _ in range(2):
                        assert await w.alarm(T0, EventKind.SOS) == b"[3G*8800000015*0002*AL]"
            assert server.counters.replies == 4
        assert await watch_events(care, EventKind.SOS) == 1
        await care.run()
        [sos] = await alerts_of(care, "sos")
        assert sos["repeat_count"] == 0
        son_phone = await phone_of(care, SON)
        assert len(care.sms.to(son_phone)) == 1
        # a second press a minute later is a new record, a repeat on the same alert
        async with listening(care, clock) as server, \
                SimWatch("127.0.0.1", server.port, WATCH) as w:
            assert await w.alarm(T0 + timedelta(seconds=60), EventKind.SOS) \
                == b"[3G*8800000015*0002*AL]"
        await care.run()
        assert await watch_events(care, EventKind.SOS) == 2
        [sos] = await alerts_of(care, "sos")
        assert sos["repeat_count"] == 1


async def test_alarm_after_reconnect_without_fix_uses_the_last_stored_fix(
        tmp_path: Path, care_db: Path, care_template: tuple[Path, dict[str, str]]) -> None:
    clock = ManualClock(T0)
    async with open_care(care_db, care_settings(tmp_path), clock, care_template[1]) as care:
        await register(care)
        async with listening(care, clock) as server:
            async with SimWatch("127.0.0.1", server.port, WATCH) as w:
                await w.position(T0)
                assert await w.link() == b"[3G*8800000015*0002*LK]"   # the UD is in
            clock.advance(600)
            # another connection (another cloud process could have taken it): a fall,
            # no fix, and the watch wrote 0,0
            async with SimWatch("127.0.0.1", server.port, WATCH, lat=0.0, lon=0.0) as w:
                assert await w.alarm(T0 + timedelta(seconds=600), EventKind.FALL,
                                     fix=False) == b"[3G*8800000015*0002*AL]"
        await care.run()
        [fall] = await alerts_of(care, "fall")
        assert (fall["position_lat"], fall["position_lon"], fall["position_valid"],
                fall["position_source"]) == (30.2741, 120.1551, 1, "last_known")
        [sms] = care.sms.to(await phone_of(care, SON))
        assert "位置 30.27410,120.15510（10分钟前）" in sms.text


def offset(metres_north: float) -> tuple[float, float]:
    return HOME[0] + metres_north / 111_195.0, HOME[1]


async def walk(w: SimWatch, clock: ManualClock, metres_north: float) -> None:
    clock.advance(60)
    w.lat, w.lon = offset(metres_north)
    await w.position(clock.now())
    assert await w.link() == b"[3G*8800000015*0002*LK]"       # the UD was handled


async def test_geofence_exit_is_one_concern_per_exit_with_hysteresis(
        tmp_path: Path, care_db: Path, care_template: tuple[Path, dict[str, str]]) -> None:
    clock = ManualClock(T0)
    async with open_care(care_db, care_settings(tmp_path), clock, care_template[1]) as care:
        await register(care, home={"latitude": HOME[0], "longitude": HOME[1]}, radius_m=200)
        async with listening(care, clock) as server, \
                SimWatch("127.0.0.1", server.port, WATCH) as w:
            for metres in (0, 150, 500, 800):       # home, in the yard, out, further out
                await walk(w, clock, metres)
            assert server.counters.fence_exits == 1
            await care.run()
            [concern] = await alerts_of(care, "geofence_exit")
            assert (concern["severity"], concern["category"]) == ("medium", "care")
            assert concern["position_lat"] == pytest.approx(offset(500)[0])
            # back to the edge: still out (inside the 20 m margin), then out again: no alert
            await walk(w, clock, 190)
            await walk(w, clock, 260)
            assert server.counters.fence_exits == 1
            # home, then out again: the fence re-armed, a second exit
            await walk(w, clock, 20)
            await walk(w, clock, 400)
            assert server.counters.fence_exits == 2
        assert await watch_events(care, EventKind.GEOFENCE_EXIT) == 2
        assert await watch_events(care, EventKind.GEOFENCE_ENTER) == 1
        await care.run()
        [concern] = await alerts_of(care, "geofence_exit")   # still one open concern
        assert concern["repeat_count"] == 1
        # the return is a note on the concern, not an alert
        cur = await care.db.conn.execute(
            "SELECT detail FROM alert_timeline WHERE alert_id = ? AND action = 'note'",
            (concern["id"],))
        assert ["已返回安全区域" in r[0] for r in await cur.fetchall()] == [True]


async def test_fence_state_survives_a_reconnect(
        tmp_path: Path, care_db: Path, care_template: tuple[Path, dict[str, str]]) -> None:
    clock = ManualClock(T0)
    async with open_care(care_db, care_settings(tmp_path), clock, care_template[1]) as care:
        await register(care, home={"latitude": HOME[0], "longitude": HOME[1]}, radius_m=300)
        async with listening(care, clock) as server:
            async with SimWatch("127.0.0.1", server.port, WATCH) as w:
                await walk(w, clock, 1000)
            async with SimWatch("127.0.0.1", server.port, WATCH) as w:
                await walk(w, clock, 1200)         # still out, on a new connection
            assert server.counters.fence_exits == 1
        assert await watch_events(care, EventKind.GEOFENCE_EXIT) == 1


async def test_high_risk_resident_gets_high_severity_and_strap_follows_the_profile(
        tmp_path: Path, care_db: Path, care_template: tuple[Path, dict[str, str]]) -> None:
    clock = ManualClock(T0)
    async with open_care(care_db, care_settings(tmp_path), clock, care_template[1]) as care:
        # 刘桂兰 has moderate dementia and a wandering risk on her record
        await register(care, resident=AT_RISK, household="H-XH-002",
                       home={"latitude": HOME[0], "longitude": HOME[1]}, radius_m=100,
                       strap_alert=False)
        profile = await care.services.registry.watch_profile_of(AT_RISK)
        assert profile is not None and profile.effective_high_risk and not profile.high_risk
        async with listening(care, clock) as server, \
                SimWatch("127.0.0.1", server.port, WATCH) as w:
            await walk(w, clock, 0)
            await walk(w, clock, 300)
            # the strap comes off: recorded, but this profile says no alert
            assert await w.alarm(clock.now(), EventKind.STRAP_REMOVED) \
                == b"[3G*8800000015*0002*AL]"
        await care.run()
        [concern] = await alerts_of(care, "geofence_exit")
        assert concern["severity"] == "high"
        assert await watch_events(care, EventKind.STRAP_REMOVED) == 1
        assert await alerts_of(care, "strap_removed") == []
        # the profile changed: strap removal now alerts (high: she is at risk)
        await care.services.registry.put_watch_profile(admin(care), AT_RISK, WatchProfile(
            home=Coordinates(latitude=HOME[0], longitude=HOME[1]), radius_m=100,
            strap_alert=True))
        async with listening(care, clock) as server, \
                SimWatch("127.0.0.1", server.port, WATCH) as w:
            clock.advance(60)
            assert await w.alarm(clock.now(), EventKind.STRAP_REMOVED) \
                == b"[3G*8800000015*0002*AL]"
        await care.run()
        [strap] = await alerts_of(care, "strap_removed")
        assert (strap["severity"], strap["resident_id"]) == ("high", AT_RISK)


async def test_strap_removal_of_a_resident_not_at_risk_is_a_medium_concern(
        tmp_path: Path, care_db: Path, care_template: tuple[Path, dict[str, str]]) -> None:
    clock = ManualClock(T0)
    async with open_care(care_db, care_settings(tmp_path), clock, care_template[1]) as care:
        await register(care)
        async with listening(care, clock) as server, \
                SimWatch("127.0.0.1", server.port, WATCH) as w:
            assert await w.alarm(T0, EventKind.STRAP_REMOVED) == b"[3G*8800000015*0002*AL]"
        await care.run()
        [strap] = await alerts_of(care, "strap_removed")
        assert (strap["severity"], strap["category"]) == ("medium", "care")


# -- the API --------------------------------------------------------------------------------

BAD_BODIES = [
    ('{"home": {"latitude": 95.0, "longitude": 120.1}, "radius_m": 200}', "latitude"),
    ('{"home": {"latitude": 30.2, "longitude": -181}, "radius_m": 200}', "longitude"),
    ('{"home": {"latitude": 30.2, "longitude": 120.1}, "radius_m": 0}', "radius_m"),
    ('{"home": {"latitude": 30.2, "longitude": 120.1}, "radius_m": -5}', "radius_m"),
    ('{"home": {"latitude": NaN, "longitude": 120.1}, "radius_m": 200}', "NaN"),
    ('{"home": {"latitude": 30.2, "longitude": 120.1}, "radius_m": Infinity}', "Infinity"),
    ('{"home": {"latitude": 30.2, "longitude": 120.1}}', "radius_m"),
    ('{"radius_m": 100}', "home"),
    ('{"strap_alert": "sometimes"}', "strap_alert"),
    ('{"fence": 1}', "fence"),
]


async def test_watch_profile_api_validates_and_bad_input_changes_nothing(
        tmp_path: Path, care_db: Path, care_template: tuple[Path, dict[str, str]]) -> None:
    settings = care_settings(tmp_path)
    async with serve(care_db, settings, ManualClock(T0), care_template[1]) as app:
        app.tokens = mint_tokens(care_template[1], T0)
        url = f"/api/v1/residents/{RESIDENT}/watch-profile"
        async with httpx.AsyncClient(base_url=app.url) as c:
            empty = await c.get(url, headers=app.auth("operator"))
            assert empty.status_code == 200
            assert (empty.json()["home"], empty.json()["strap_alert"]) == (None, True)
            good = {"home": {"latitude": 30.2741, "longitude": 120.1551}, "radius_m": 250,
                    "strap_alert": False, "high_risk": True}
            put = await c.put(url, json=good, headers=app.auth("operator"))
            assert put.status_code == 200, put.text
            saved = put.json()
            assert (saved["radius_m"], saved["strap_alert"], saved["effective_high_risk"],
                    saved["updated_at"]) == (250, False, True, "2026-11-23T03:12:05Z")
            for body, reason in BAD_BODIES:
                r = await c.put(url, content=body.encode(), headers={
                    **app.auth("operator"), "Content-Type": "application/json"})
                assert r.status_code == 422, (body, r.status_code, r.text)
                assert reason in r.text, (body, r.text)
            after = await c.get(url, headers=app.auth("operator"))
            assert after.json() == saved
            # the family may read it, not change it; another district sees nothing
            assert (await c.get(url, headers=app.auth("family"))).status_code == 200
            assert (await c.put(url, json=good, headers=app.auth("family"))).status_code == 403
            assert (await c.get(url, headers=app.auth("operator_other"))).status_code == 404
            assert (await c.put("/api/v1/residents/R-NOBODY/watch-profile", json=good,
                                headers=app.auth("operator"))).status_code == 404


# -- the fence itself ------------------------------------------------------------------------

def test_distance_and_margin() -> None:
    # one minute of latitude is a nautical mile (1852 m) to within 0.5 %
    assert F.distance_m(30.0, 120.0, 30.0 + 1 / 60, 120.0) == pytest.approx(1852, rel=5e-3)
    assert F.distance_m(*HOME, *HOME) == 0
    assert (F.margin_m(100), F.margin_m(1000), F.margin_m(30)) == (20, 100, 15)
    assert not math.isnan(F.distance_m(0, 0, 0, 180))


def test_fence_steps_ignore_old_fixes() -> None:
    t = T0
    s = F.step(F.FenceState(False), *offset(500), t, *HOME, 200)
    assert s.change == "exit" and s.state.outside
    older = F.step(s.state, *offset(0), t - timedelta(seconds=1), *HOME, 200)
    assert older.change is None and older.state.outside      # a stored old fix, resent
    back = F.step(s.state, *offset(0), t + timedelta(seconds=1), *HOME, 200)
    assert back.change == "return" and not back.state.outside


