"""A revoked gateway is not a fault: the revoke records it offline (no Last Will comes for
a deleted broker account), and neither that record nor its silence raises a
``gateway_offline`` alert; another gateway's Last Will still does."""

from __future__ import annotations

from care_support import GW, OTHER_GW, Care

from eldercare_cloud.care import gateways as G


async def _revoke(care: Care) -> None:
    async with care.db.transaction() as conn:
        await G.mark_revoked(conn, GW, care.clock.now())
        first = await G.revoked_at(conn, GW)
        await G.mark_revoked(conn, GW, care.clock.advance(60))  # a second revoke: same time
        assert await G.revoked_at(conn, GW) == first is not None


async def _offline_alerts(care: Care) -> list[str]:
    return [a["gateway_id"] for a in await care.open_alerts() if a["kind"] == "gateway_offline"]


async def test_revoked_gateway_offline_record_raises_no_alert(care: Care) -> None:
    for gw in (GW, OTHER_GW):
        await care.gateway_state("online", gw)
    await care.run()
    await _revoke(care)
    for gw in (GW, OTHER_GW):
        await care.gateway_state("offline", gw)
    await care.run()
    assert await _offline_alerts(care) == [OTHER_GW]


async def test_revoked_gateway_silence_raises_no_alert(care: Care) -> None:
    for gw in (GW, OTHER_GW):
        await care.gateway_state("online", gw)
    await care.run()
    await _revoke(care)
    await care.advance(care.settings.care.gateway_offline_after_s + 60)
    assert await _offline_alerts(care) == [OTHER_GW]
