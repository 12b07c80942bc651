"""The three signed-link pages (responder, worker, visitor) take their token the same way:
from their own header or the ``token`` query parameter, refused with a 401 that says
which link is missing, and a token too long to be one is a 422 before anything is read."""

from __future__ import annotations

import httpx
import pytest
from care_support import Running

pytestmark = pytest.mark.integration

#: (a page's GET route, its header, who holds the link)
LINKS = [("/api/v1/respond/alert-1", "X-Responder-Token", "responder"),
         ("/api/v1/jobs/order-1", "X-Work-Token", "worker"),
         ("/api/v1/visit", "X-Visit-Token", "visitor")]


@pytest.mark.parametrize(("path", "header", "holder"), LINKS)
async def test_a_link_token_comes_from_its_header_or_the_query(
        care_http: Running, path: str, header: str, holder: str) -> None:
    async with httpx.AsyncClient(base_url=care_http.url) as c:
        missing = await c.get(path)
        assert missing.status_code == 401
        assert f"a {holder} link token is required" in missing.text
        # a bearer token is not a link's credential
        bearer = await c.get(path, headers=care_http.auth("admin"))
        assert bearer.status_code == 401 and "link token is required" in bearer.text
        # a forged token, in either place, reaches the check of the signature
        for kwargs in ({"headers": {header: "forged.token.x"}},
                       {"params": {"token": "forged.token.x"}}):
            forged = await c.get(path, **kwargs)  # type: ignore[arg-type]
            assert forged.status_code == 401, forged.text
            assert "link token is required" not in forged.text
        too_long = await c.get(path, headers={header: "x" * 2049})
        assert too_long.status_code == 422 and header.lower() in too_long.text.lower()
