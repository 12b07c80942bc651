"""GET /api/v1/service-accounts (the console's 账号关联 list) over real HTTP: an
administrator sees which account signs in as which provider's administrator or worker;
a link that does not fit the account's role is a 422 with its Chinese reason and changes
nothing. (Who else is refused is the generated role matrix's, tests/cloud/test_care_roles.py.)"""

from __future__ import annotations

import pytest
from care_support import Running
from stack_support import ok
from svc_support import client

pytestmark = pytest.mark.integration


async def test_links_are_listed_and_a_misfit_is_refused(desk_http: Running) -> None:
    running = desk_http
    admin = running.auth("admin")
    async with client(running) as c:
        made = await ok(await c.post("/api/v1/users", headers=admin, json={
            "username": "chen-meihua", "password": "worker-pass-123", "role": "worker"}), 201)
        before = await ok(await c.get("/api/v1/service-accounts", headers=admin))
        assert "chen-meihua" not in [a["username"] for a in before]

        # a worker's account linked to the provider alone: refused, in Chinese
        resp = await c.post("/api/v1/service-accounts", headers=admin,
                            json={"user_id": made["id"], "provider_id": "P-XH-AK"})
        assert resp.status_code == 422, resp.text
        assert resp.json()["code"] == "wrong_role" and resp.json()["message_zh"]
        assert await ok(await c.get("/api/v1/service-accounts", headers=admin)) == before

        await ok(await c.post("/api/v1/service-accounts", headers=admin, json={
            "user_id": made["id"], "provider_id": "P-XH-AK", "worker_id": "W-XH-AK-01"}))
        after = await ok(await c.get("/api/v1/service-accounts", headers=admin))
        assert [a for a in after if a["user_id"] == made["id"]] == [{
            "user_id": made["id"], "username": "chen-meihua", "role": "worker",
            "provider_id": "P-XH-AK", "worker_id": "W-XH-AK-01"}]
        assert (await c.get("/api/v1/service-accounts",
                            headers=running.auth("operator"))).status_code == 403
