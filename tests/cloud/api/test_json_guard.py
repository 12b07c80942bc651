"""NaN and Infinity in a JSON body: 422 with the reason on every route, nothing changed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from care_support import Running, care_settings, serve

from eldercare_cloud.api.json_guard import has_non_finite
from eldercare_cloud.clock import ManualClock

pytestmark = pytest.mark.integration


@pytest.fixture
async def app_http(tmp_path: Path, care_db: Path,
                   care_template: tuple[Path, dict[str, str]]) -> AsyncIterator[Running]:
    clock = ManualClock(datetime(2026, 11, 23, 3, 0, tzinfo=UTC))
    async with serve(care_db, care_settings(tmp_path), clock, care_template[1],
                     signed_in=True) as running:
        yield running


def test_the_check() -> None:
    assert has_non_finite(b'{"a": [1, {"b": NaN}]}') == "NaN"
    assert has_non_finite(b'{"a": -Infinity}') == "-Infinity"
    assert has_non_finite(b'{"a": 1e999}') is None     # a JSON number, merely large
    assert has_non_finite(b'{"a": "NaN"}') is None     # a string is fine
    assert has_non_finite(b"not json") is None


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
async def test_non_finite_numbers_are_422_with_the_reason_and_change_nothing(
        app_http: Running, constant: str) -> None:
    headers = {**app_http.auth("admin"), "content-type": "application/json"}
    async with httpx.AsyncClient(base_url=app_http.url + "/api/v1") as c:
        before = (await c.get("/households/H-XH-002", headers=headers)).json()
        create = ('{"community_id": "C-XH-CY", "address": "杭州市西湖区某路 1 号",'
                  f' "coordinates": {{"latitude": {constant}, "longitude": 120.1}}}}')
        update = f'{{"coordinates": {{"latitude": 30.2, "longitude": {constant}}}}}'
        for method, path, body in (("POST", "/households", create),
                                   ("PATCH", "/households/H-XH-002", update),
                                   ("POST", "/auth/token", f'{{"x": {constant}}}')):
            r = await c.request(method, path, content=body.encode(), headers=headers)
            assert r.status_code == 422, (path, r.status_code, r.text)
            detail = r.json()["detail"][0]
            assert detail["loc"] == ["body"] and constant in detail["msg"]
        after = (await c.get("/households/H-XH-002", headers=headers)).json()
        assert after == before
        listed = (await c.get("/households", headers=headers)).json()
        assert all(h["address"] != "杭州市西湖区某路 1 号" for h in listed)
        # an ordinary body still reaches its route
        ok = await c.patch("/households/H-XH-002", headers=headers,
                           json={"coordinates": {"latitude": 30.2, "longitude": 120.1}})
        assert ok.status_code == 200, ok.text
