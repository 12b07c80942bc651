"""Accounts over the real HTTP server: sign-in throttling and lockout (audited), sign-out
that revokes the token at once, sessions revoked by an admin's disable or reset, the
user's own password change, and the stable error codes the pages translate."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pyotp
import pytest
from care_support import PASSWORD, Running, care_settings, serve

from eldercare_cloud.auth.throttle import ThrottlePolicy
from eldercare_cloud.clock import ManualClock

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 14, 1, 30, tzinfo=UTC)


@pytest.fixture
async def http(tmp_path: Path, care_db: Path,
               care_template: tuple[Path, dict[str, str]]) -> AsyncIterator[Running]:
    async with serve(care_db, care_settings(tmp_path), ManualClock(T0), care_template[1],
                     signed_in=True) as running:
        yield running


async def sign_in(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/api/v1/auth/token",
                             data={"username": username, "password": password})


async def test_thirty_wrong_passwords_are_throttled_then_locked_and_audited(
        http: Running) -> None:
    clock = http.clock
    assert clock is not None
    async with httpx.AsyncClient(base_url=http.url, timeout=30) as client:
        answers = [await sign_in(client, "operator", f"wrong-{i}") for i in range(30)]
        codes = [(r.status_code, r.json()["code"]) for r in answers]
        # three free failures, then every attempt is refused before any password check
        assert codes[:3] == [(401, "wrong_credentials")] * 3
        assert codes[3:] == [(429, "login_throttled")] * 27
        assert int(answers[3].headers["Retry-After"]) >= 1
        # the thirty-first, right one, is refused as well while the delay runs
        right = await sign_in(client, "operator", PASSWORD)
        assert (right.status_code, right.json()["code"]) == (429, "login_throttled")

        # waiting out each growing delay, wrong passwords count until the lock
        delays = []
        for _ in range(20):  # bounded
            resp = await sign_in(client, "operator", "still-wrong")
            if resp.status_code == 429 and resp.json()["code"] == "login_locked":
                break
            if resp.status_code == 429:
                delays.append(int(resp.headers["Retry-After"]))
                clock.advance(float(resp.headers["Retry-After"]))
        assert delays == sorted(delays) and delays[-1] > delays[0]  # growing
        right = await sign_in(client, "operator", PASSWORD)
        assert (right.status_code, right.json()["code"]) == (429, "login_locked")
        assert int(right.headers["Retry-After"]) > 600

        audit = await http.services.audit.entries(http.settings.tenant, record_type="user",
                                                  record_id="operator")
        actions = [e.action for e in audit]
        assert "login_locked" in actions and "login_refused" in actions
        locked = next(e for e in audit if e.action == "login_locked")
        assert "user:operator" in locked.reason and "127.0.0.1" in locked.reason
        # and a note to the administrators on their live stream (only theirs)
        admin = await http.services.users.principal(http.tokens["admin"])
        events, _ = await http.services.hub.events_after(admin, 0)
        notes = [e for e in events if e.type == "account.locked"]
        assert len(notes) == 1 and notes[0].data["username"] == "operator"
        op = await http.services.users.principal(http.tokens["operator_other"])
        events, _ = await http.services.hub.events_after(op, 0)
        assert not [e for e in events if e.type == "account.locked"]

        # after the lock the right password works, and the slate is clean
        clock.advance(15 * 60 + 1)
        ok = await sign_in(client, "operator", PASSWORD)
        assert ok.status_code == 200, ok.text
        assert (await sign_in(client, "operator", "wrong")).status_code == 401


async def test_an_address_that_tries_many_accounts_is_locked(http: Running) -> None:
    http.services.users.policy = ThrottlePolicy(free=100, lock_after=2)  # address: 6
    async with httpx.AsyncClient(base_url=http.url, timeout=30) as client:
        for i in range(6):
            resp = await sign_in(client, f"nobody-{i}", "guess")
            assert resp.status_code == 401
        resp = await sign_in(client, "admin", PASSWORD)
        assert (resp.status_code, resp.json()["code"]) == (429, "login_locked")


async def test_logout_revokes_the_token_at_once(http: Running) -> None:
    async with httpx.AsyncClient(base_url=http.url) as client:
        # two sessions signed in at the same instant (the clock does not move) are distinct
        first = (await sign_in(client, "family", PASSWORD)).json()["access_token"]
        second = (await sign_in(client, "family", PASSWORD)).json()["access_token"]
        assert first != second
        auth = {"Authorization": f"Bearer {first}"}
        assert (await client.get("/api/v1/auth/me", headers=auth)).status_code == 200
        resp = await client.post("/api/v1/auth/logout", headers=auth)
        assert resp.status_code == 204
        resp = await client.get("/api/v1/auth/me", headers=auth)
        assert (resp.status_code, resp.json()["code"]) == (401, "token_revoked")
        # the other session of the same person stays signed in
        resp = await client.get("/api/v1/auth/me",
                                headers={"Authorization": f"Bearer {second}"})
        assert resp.status_code == 200


async def test_disable_and_reset_revoke_every_session(http: Running) -> None:
    operator_id = http.user_ids["operator"]
    admin = http.auth("admin")
    async with httpx.AsyncClient(base_url=http.url) as client:
        token = (await sign_in(client, "operator", PASSWORD)).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        assert (await client.get("/api/v1/alerts", headers=auth)).status_code == 200
        resp = await client.patch(f"/api/v1/users/{operator_id}", headers=admin,
                                  json={"active": False})
        assert resp.status_code == 200 and resp.json()["active"] is False
        resp = await client.get("/api/v1/alerts", headers=auth)
        assert (resp.status_code, resp.json()["code"]) == (401, "token_revoked")
        assert (await sign_in(client, "operator", PASSWORD)).status_code == 401

        await client.patch(f"/api/v1/users/{operator_id}", headers=admin,
                           json={"active": True})
        token = (await sign_in(client, "operator", PASSWORD)).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        resp = await client.patch(f"/api/v1/users/{operator_id}", headers=admin,
                                  json={"password": "a-new-password-1"})
        assert resp.status_code == 200
        assert (await client.get("/api/v1/alerts", headers=auth)).status_code == 401
        assert (await sign_in(client, "operator", "a-new-password-1")).status_code == 200
    audit = await http.services.audit.entries(http.settings.tenant, record_type="user",
                                              record_id=operator_id)
    assert [e.action for e in reversed(audit)] == ["disable_user", "enable_user",
                                                   "reset_password"]


async def test_password_change(http: Running) -> None:
    async with httpx.AsyncClient(base_url=http.url) as client:
        token = (await sign_in(client, "installer", PASSWORD)).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        resp = await client.post("/api/v1/auth/password", headers=auth,
                                 json={"current_password": "not-it",
                                       "new_password": "brand-new-pass"})
        assert (resp.status_code, resp.json()["code"]) == (401, "wrong_password")
        resp = await client.post("/api/v1/auth/password", headers=auth,
                                 json={"current_password": PASSWORD, "new_password": "short"})
        assert (resp.status_code, resp.json()["code"]) == (422, "validation")
        resp = await client.post("/api/v1/auth/password", headers=auth,
                                 json={"current_password": PASSWORD,
                                       "new_password": "brand-new-pass"})
        assert resp.status_code == 200, resp.text
        fresh = {"Authorization": f"Bearer {resp.json()['access_token']}"}
        assert (await client.get("/api/v1/auth/me", headers=auth)).status_code == 401
        assert (await client.get("/api/v1/auth/me", headers=fresh)).status_code == 200
        assert (await sign_in(client, "installer", PASSWORD)).status_code == 401
        assert (await sign_in(client, "installer", "brand-new-pass")).status_code == 200


async def test_errors_carry_a_stable_code(http: Running) -> None:
    async with httpx.AsyncClient(base_url=http.url) as client:
        resp = await client.get("/api/v1/alerts/AL-nope", headers=http.auth("operator"))
        assert resp.status_code == 404 and resp.json()["code"] == "not_found"
        resp = await client.get("/api/v1/records/history", headers=http.auth("family"))
        assert resp.status_code == 403 and resp.json()["code"] == "forbidden"
        resp = await client.get("/api/v1/alerts", params={"limit": "many"},
                                headers=http.auth("operator"))
        assert resp.status_code == 422 and resp.json()["code"] == "validation"
        assert isinstance(resp.json()["detail"], list)
        resp = await client.get("/api/v1/alerts")
        assert resp.status_code == 401 and resp.json()["code"] == "unauthenticated"


async def test_two_factor_sign_in(http: Running) -> None:
    clock = http.clock
    assert clock is not None
    async with httpx.AsyncClient(base_url=http.url) as client:
        token = (await sign_in(client, "admin", PASSWORD)).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        resp = await client.post("/api/v1/auth/totp/setup", headers=auth)
        assert resp.status_code == 200, resp.text
        secret = resp.json()["secret"]
        assert resp.json()["otpauth_uri"].startswith("otpauth://totp/")
        totp = pyotp.TOTP(secret)
        resp = await client.post("/api/v1/auth/totp/enable", headers=auth,
                                 json={"code": f"{(int(totp.at(clock.now())) + 1) % 10**6:06d}"})
        assert (resp.status_code, resp.json()["code"]) == (422, "totp_wrong")
        # not in force until confirmed: the password alone still works
        assert (await sign_in(client, "admin", PASSWORD)).status_code == 200
        resp = await client.post("/api/v1/auth/totp/enable", headers=auth,
                                 json={"code": totp.at(clock.now())})
        assert resp.status_code == 204
        me = await client.get("/api/v1/auth/me", headers=auth)
        assert me.json()["totp_enabled"] is True

        resp = await sign_in(client, "admin", PASSWORD)
        assert (resp.status_code, resp.json()["code"]) == (401, "totp_required")
        clock.advance(90)  # codes follow the injected clock, not the wall clock
        stale = totp.at(clock.now() - timedelta(seconds=90))
        resp = await client.post("/api/v1/auth/token", data={
            "username": "admin", "password": PASSWORD, "totp": stale})
        assert (resp.status_code, resp.json()["code"]) == (401, "totp_wrong")
        resp = await client.post("/api/v1/auth/token", data={
            "username": "admin", "password": PASSWORD, "totp": totp.at(clock.now())})
        assert resp.status_code == 200, resp.text
        # a right code with a wrong password is still a wrong password
        resp = await client.post("/api/v1/auth/token", data={
            "username": "admin", "password": "nope", "totp": totp.at(clock.now())})
        assert (resp.status_code, resp.json()["code"]) == (401, "wrong_credentials")


async def test_administrators_must_enrol_when_two_factor_is_required(
        tmp_path: Path, care_db: Path, care_template: tuple[Path, dict[str, str]]) -> None:
    settings = care_settings(tmp_path, auth={"admin_totp_required": True})
    clock = ManualClock(T0)
    async with serve(care_db, settings, clock, care_template[1]) as running, \
            httpx.AsyncClient(base_url=running.url) as client:
        resp = await sign_in(client, "admin", PASSWORD)
        assert (resp.status_code, resp.json()["code"]) == (401, "totp_enrollment_required")
        assert (await sign_in(client, "operator", PASSWORD)).status_code == 200
        # the command line (eldercare-cloud user totp) enrols them
        setup = await running.services.users.totp_enrol("admin")
        resp = await client.post("/api/v1/auth/token", data={
            "username": "admin", "password": PASSWORD,
            "totp": pyotp.TOTP(setup.secret).at(clock.now())})
        assert resp.status_code == 200, resp.text


def test_cli_enrols_two_factor(tmp_path: Path) -> None:
    env = {**os.environ, "ELDERCARE_CLOUD_DATA_DIR": str(tmp_path)}
    cli = [sys.executable, "-m", "eldercare_cloud.cli", "user"]
    added = subprocess.run([*cli, "add", "--username", "root", "--role", "admin",
                            "--password-stdin"], input="a long enough password\n",
                           capture_output=True, text=True, env=env, timeout=60, check=False)
    assert added.returncode == 0, added.stderr
    out = subprocess.run([*cli, "totp", "--username", "root"], capture_output=True, text=True,
                         env=env, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert "otpauth://totp/" in out.stdout and "secret: " in out.stdout
    missing = subprocess.run([*cli, "totp", "--username", "nobody"], capture_output=True,
                             text=True, env=env, timeout=60, check=False)
    assert missing.returncode == 1 and "not found" in missing.stderr
