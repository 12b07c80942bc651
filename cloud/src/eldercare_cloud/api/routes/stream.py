"""Server-sent events: alert changes in commit order, scoped to the caller, resumable.

Without ``Last-Event-ID`` (or ``after``) a client gets only what happens from now on
(it loads the current queue with GET /alerts first); with it, everything after that
id that the caller may see, then live events.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from eldercare_cloud.api.deps import CurrentUser, ServicesDep, roles
from eldercare_cloud.auth.models import Role
from eldercare_cloud.errors import InvalidRequestError

router = APIRouter(tags=["stream"])
READERS = (Role.ADMIN, Role.OPERATOR, Role.FAMILY, Role.VOLUNTEER, Role.WORKER)


@router.get("/stream", response_class=StreamingResponse, **roles(*READERS),
            responses={200: {"content": {"text/event-stream": {}}}})
async def stream(request: Request, services: ServicesDep, user: CurrentUser,
                 last_event_id: Annotated[str | None, Header(alias="Last-Event-ID",
                                                             max_length=20)] = None,
                 after: Annotated[int | None, Query(ge=0, le=2**62)] = None) -> StreamingResponse:
    hub = services.hub
    if last_event_id is not None:
        if not last_event_id.strip().isdigit():
            raise InvalidRequestError("Last-Event-ID must be a non-negative integer")
        start = int(last_event_id)
    elif after is not None:
        start = after
    else:
        start = await hub.last_id()
    heartbeat = services.settings.stream.heartbeat_s

    async def events() -> AsyncIterator[str]:
        cursor = start
        yield f"retry: 3000\n: stream from {cursor}\n\n"
        while not await request.is_disconnected():
            changed = hub.watch()
            batch, scanned = await hub.events_after(user, cursor)
            for event in batch:
                data = json.dumps({"id": event.id, "ts": event.ts.isoformat(),
                                   "type": event.type, "alert_id": event.alert_id,
                                   **event.data}, ensure_ascii=False, default=str)
                yield f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n"
            if scanned != cursor:
                cursor = scanned
                continue
            if not await hub.wait(changed, heartbeat):
                yield ": keep-alive\n\n"

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
