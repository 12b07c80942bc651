"""GET /api/v1/stream over real HTTP: in commit order, scoped per role, resumable with
Last-Event-ID, and live (a commit wakes waiting readers)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from care_support import GW, OTHER_BUTTON, OTHER_GW, Running, commit_event

from eldercare_protocols.events import EventKind

pytestmark = pytest.mark.integration


class Sse:
    """Reads the response in a task into a queue, so a read that times out loses nothing."""

    def __init__(self, response: httpx.Response) -> None:
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._read(response), name="sse-reader")

    async def _read(self, response: httpx.Response) -> None:
        event: dict[str, Any] = {}
        try:
            async for line in response.aiter_lines():
                if line == "":
                    if "data" in event:
                        await self._queue.put(event)
                    event = {}
                elif not line.startswith(":"):
                    key, _, value = line.partition(": ")
                    event[key] = json.loads(value) if key == "data" else value
        finally:
            await self._queue.put(None)

    def close(self) -> None:
        self._task.cancel()

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        """The next event (comments and keep-alives skipped), or TimeoutError."""
        event = await asyncio.wait_for(self._queue.get(), timeout)
        if event is None:
            raise AssertionError("stream ended")
        return event

    async def take(self, n: int) -> list[dict[str, Any]]:
        return [await self.next() for _ in range(n)]

    async def nothing_for(self, seconds: float) -> None:
        with pytest.raises(TimeoutError):
            await self.next(seconds)


@asynccontextmanager
async def stream(running: Running, user: str, **headers: str) -> AsyncIterator[Sse]:
    params = {}
    if headers.pop("from_start", None):
        params["after"] = "0"
    async with (httpx.AsyncClient(base_url=running.url, timeout=10) as client,
                client.stream("GET", "/api/v1/stream", params=params,
                              headers={**running.auth(user), **headers}) as resp):
        assert resp.status_code == 200, await resp.aread()
        assert resp.headers["content-type"].startswith("text/event-stream")
        sse = Sse(resp)
        try:
            yield sse
        finally:
            sse.close()


async def sos(running: Running, gateway: str = GW, device: str = "btn-xh001") -> None:
    await commit_event(running.store, EventKind.SOS, device_id=device, gateway_id=gateway,
                       at=running.clock.now())
    await running.services.engine.tick()


async def test_in_order_and_resuming_with_last_event_id(care_http: Running) -> None:
    await sos(care_http)
    async with stream(care_http, "operator", from_start="1") as sse:
        first = await sse.take(3)
    assert [e["event"] for e in first] == ["alert.opened", "offer", "ladder.step"]
    ids = [int(e["id"]) for e in first]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert first[0]["data"]["alert"]["kind"] == "sos"
    assert first[1]["data"]["name"] == "李建国"
    alert_id = first[0]["data"]["alert"]["id"]
    # while nobody listens, the operator acknowledges and the son says he can't go
    async with httpx.AsyncClient(base_url=care_http.url) as client:
        ack = await client.post(f"/api/v1/alerts/{alert_id}/acknowledge",
                                headers=care_http.auth("operator"))
        assert ack.status_code == 200
    # resume after the last event seen: exactly what happened since, in order
    async with stream(care_http, "operator", **{"Last-Event-ID": str(ids[-1])}) as sse:
        resumed = await sse.next()
        assert resumed["event"] == "alert.updated"
        assert int(resumed["id"]) > ids[-1]
        assert resumed["data"]["alert"]["status"] == "acknowledged"
        await sse.nothing_for(0.3)


async def test_live_events_wake_a_waiting_reader(care_http: Running) -> None:
    async with stream(care_http, "operator") as sse:
        await sse.nothing_for(0.2)  # from now on only: nothing old is replayed
        await sos(care_http)
        opened = await sse.next()
        assert opened["event"] == "alert.opened"
        assert opened["data"]["alert"]["severity"] == "critical"


async def test_stream_is_scoped_to_the_role(care_http: Running) -> None:
    await sos(care_http)  # 王秀英, whose family and volunteer have accounts
    await sos(care_http, OTHER_GW, OTHER_BUTTON)  # 钱美娟, nobody's account here
    async with stream(care_http, "family", from_start="1") as sse:
        got = await sse.take(3)
        assert {e["data"].get("alert", {}).get("resident_id") for e in got} <= {"R-XH-001",
                                                                               None}
        await sse.nothing_for(0.3)
    async with stream(care_http, "operator_other", from_start="1") as sse:
        await sse.nothing_for(0.3)
    async with stream(care_http, "volunteer", from_start="1") as sse:
        await sse.nothing_for(0.3)  # not offered to her yet
        assert care_http.clock is not None
        for _ in range(2):
            care_http.clock.advance(60)
            await care_http.services.engine.tick()
        offer = await sse.next()
        assert offer["event"] == "offer" and offer["data"]["name"] == "周晓燕"
    async with httpx.AsyncClient(base_url=care_http.url) as client:
        denied = await client.get("/api/v1/stream", headers=care_http.auth("installer"))
        assert denied.status_code == 403
        bad = await client.get("/api/v1/stream", headers={**care_http.auth("operator"),
                                                          "Last-Event-ID": "yesterday"})
        assert bad.status_code == 422
        assert (await client.get("/api/v1/stream")).status_code == 401
