"""Privacy on request: one resident's full export, and an erasure that leaves no trace of
them in any table (the audit log keeps only their id) while the statistics keep their
counts; telemetry past the retention is purged."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from care_support import (
    GW,
    RESIDENT,
    SON,
    Care,
    Running,
    care_settings,
    mint_tokens,
    open_care,
    serve,
)

from eldercare_cloud.auth.models import Principal
from eldercare_cloud.care.models import NoteCreate, ResolveRequest
from eldercare_cloud.clock import ManualClock, iso
from eldercare_cloud.errors import InvalidRequestError
from eldercare_cloud.records.privacy import EraseRequest
from eldercare_protocols.events import EventKind

T0 = datetime(2025, 3, 14, 1, 30, tzinfo=UTC)
NAME = "王秀英"


@pytest.fixture
async def care(tmp_path: Path, care_db: Path,
               care_template: tuple[Path, dict[str, str]]) -> AsyncIterator[Care]:
    async with open_care(care_db, care_settings(tmp_path), ManualClock(T0),
                         care_template[1]) as c:
        yield c


async def principal(care: Care, name: str) -> Principal:
    return await care.services.users.principal(mint_tokens(care.user_ids, care.clock.now())[name])


async def her_history(care: Care) -> str:
    """An SOS the son accepts and resolves, a note naming her, and telemetry."""
    await care.commit(EventKind.SOS, gateway_id=GW)
    await care.run()
    (alert,) = await care.open_alerts()
    op = await principal(care, "operator")
    care.clock.advance(15)
    await care.services.care.acknowledge(op, alert["id"])
    await care.services.care.add_note(op, alert["id"], NoteCreate(text=f"{NAME}说头晕"))
    care.clock.advance(45)
    await care.services.care.responder_act(alert["id"], SON, "accept")
    await care.services.care.responder_act(alert["id"], SON, "resolve",
                                           ResolveRequest(closure_code="helped_at_home"))
    await care.run()
    async with care.db.transaction() as conn:
        for i in range(5):
            await conn.execute(
                "INSERT INTO telemetry(batch_id, gateway_id, device_id, kind, ts, device_seq,"
                " values_json) VALUES (?,?,?,?,?,?,?)",
                ("b1", GW, "radar-xh001", "vitals", iso(T0 + timedelta(minutes=i)), i,
                 json.dumps({"heart_rate": 70 + i})))
    return str(alert["id"])


async def all_text(care: Care) -> dict[str, str]:
    """Every table, every row, as text."""
    cur = await care.db.conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        if care.db.engine == "postgresql"
        else "SELECT name FROM sqlite_master WHERE type = 'table'")
    out = {}
    for (table,) in await cur.fetchall():
        rows = await (await care.db.conn.execute(f'SELECT * FROM "{table}"')).fetchall()
        out[table] = json.dumps([list(r) for r in rows], ensure_ascii=False, default=str)
    return out


async def test_export_then_erase_leaves_no_trace_and_keeps_the_counts(care: Care) -> None:
    alert_id = await her_history(care)
    admin = await principal(care, "admin")
    export = await care.services.privacy.export(admin, RESIDENT)  # type: ignore[union-attr]
    assert export["resident"]["name"] == NAME
    assert {c["id"] for c in export["contacts"]} >= {SON}
    assert [a["id"] for a in export["alerts"]] == [alert_id]
    assert any(e["action"] == "note" for e in export["alerts"][0]["timeline"])
    assert len(export["telemetry"]["radar-xh001"]) == 5
    assert export["audit"]
    # the community's volunteer and grid worker are contacts of other elders too: they stay
    cur = await care.db.conn.execute("SELECT phone FROM contacts WHERE resident_id <> ?",
                                     (RESIDENT,))
    shared = {r[0] for r in await cur.fetchall()}
    own = [c for c in export["contacts"] if c["phone"] not in shared]
    assert len(own) >= 3  # two children and a neighbour
    identifiers = [NAME, export["resident"]["phone"], export["household"]["address"],
                   *[c["name"] for c in own], *[c["phone"] for c in own]]
    assert all(identifiers)
    before = await care.services.records.kpis(admin, "2025-03")

    with pytest.raises(InvalidRequestError):
        await care.services.privacy.erase(  # type: ignore[union-attr]
            admin, RESIDENT, EraseRequest(reason="her request", confirm_name="someone"))
    assert NAME in (await all_text(care))["residents"]

    report = await care.services.privacy.erase(  # type: ignore[union-attr]
        admin, RESIDENT, EraseRequest(reason="written request of 2025-03-14",
                                      confirm_name=NAME))
    assert report.alerts_anonymized == 1 and report.telemetry_rows_deleted == 5
    assert report.household_cleared and report.contacts_deleted == len(export["contacts"])

    tables = await all_text(care)
    for table, text in tables.items():
        for ident in identifiers:
            assert ident not in text, f"{ident} still in {table}"
        if table != "audit_log":
            assert RESIDENT not in text, f"{RESIDENT} still in {table}"
    cur = await care.db.conn.execute("SELECT COUNT(*) FROM telemetry WHERE device_id = ?",
                                     ("radar-xh001",))
    assert (await cur.fetchone())[0] == 0

    # the statistics keep their counts (anonymous now)
    after = await care.services.records.kpis(admin, "2025-03")
    assert after.overall.alerts == before.overall.alerts == 1
    assert after.overall.accepted == before.overall.accepted
    assert after.overall.accepted_at_step == before.overall.accepted_at_step
    assert after.overall.ack_median_s == before.overall.ack_median_s == 15.0
    assert ({g.key: g.figures.alerts for g in after.by_community}
            == {g.key: g.figures.alerts for g in before.by_community})
    assert after.overall.residents == before.overall.residents - 1
    # and the erasure is on the audit log, with its reason
    audit = await care.services.audit.entries(care.settings.tenant, record_type="resident",
                                              record_id=RESIDENT)
    assert audit[0].action == "erase_resident" and "written request" in audit[0].reason


async def test_retention_purges_old_telemetry(care: Care) -> None:
    async with care.db.transaction() as conn:
        for days in (400, 366, 10):
            await conn.execute(
                "INSERT INTO telemetry(batch_id, gateway_id, device_id, kind, ts, device_seq,"
                " values_json) VALUES (?,?,?,?,?,?,?)",
                ("b", GW, "door-xh001", "door", iso(T0 - timedelta(days=days)), days, "{}"))
    assert await care.services.engine.run_retention() == 2
    cur = await care.db.conn.execute("SELECT COUNT(*) FROM telemetry")
    assert (await cur.fetchone())[0] == 1


@pytest.fixture
async def http(tmp_path: Path, care_db: Path,
               care_template: tuple[Path, dict[str, str]]) -> AsyncIterator[Running]:
    async with serve(care_db, care_settings(tmp_path), ManualClock(T0), care_template[1],
                     signed_in=True) as running:
        yield running


async def test_export_and_erase_over_http_are_admin_only(http: Running) -> None:
    async with httpx.AsyncClient(base_url=http.url) as client:
        url = f"/api/v1/records/residents/{RESIDENT}"
        for role in ("operator", "district_admin", "family"):
            assert (await client.get(f"{url}/export", headers=http.auth(role))).status_code == 403
        resp = await client.get(f"{url}/export", headers=http.auth("admin"))
        assert resp.status_code == 200 and resp.json()["resident"]["name"] == NAME
        assert "attachment" in resp.headers["content-disposition"]
        resp = await client.post(f"{url}/erase", headers=http.auth("admin"),
                                 json={"reason": "x", "confirm_name": NAME})
        assert resp.status_code == 422  # a reason of three characters at least
        resp = await client.post(f"{url}/erase", headers=http.auth("admin"),
                                 json={"reason": "her request", "confirm_name": "王"})
        assert (resp.status_code, resp.json()["code"]) == (422, "confirm_mismatch")
        resp = await client.post(f"{url}/erase", headers=http.auth("admin"),
                                 json={"reason": "her request", "confirm_name": NAME})
        assert resp.status_code == 200, resp.text
        resp = await client.get(f"{url}/export", headers=http.auth("admin"))
        assert resp.status_code == 404
