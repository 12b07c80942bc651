"""Refuse NaN and Infinity in JSON request bodies with a 422 that says so, on every route.

Python's json module reads ``NaN``, ``Infinity`` and ``-Infinity`` although they are not
JSON; pydantic then lets them into float fields, and writing the answer (or the
validation error that quotes the input) fails, so the client got a 500 and sometimes a
half-made change. This ASGI middleware reads a JSON body once, before any route does:
with such a constant in it the request is answered 422 with the reason and reaches no
route; otherwise the same bytes are handed on.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: bodies larger than this are not inspected here (the routes bound their own inputs)
MAX_INSPECTED = 4 * 1024 * 1024


class NonFiniteNumber(ValueError):
    pass


def _refuse(constant: str) -> Any:
    raise NonFiniteNumber(constant)


def has_non_finite(body: bytes) -> str | None:
    """The first NaN/Infinity constant of a JSON body, or None (also for non-JSON)."""
    try:
        json.loads(body, parse_constant=_refuse)
    except NonFiniteNumber as exc:
        return str(exc)
    except (ValueError, RecursionError):
        return None     # not JSON at all: the route's own validation says so
    return None


class RejectNonFiniteJson:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if b"json" not in headers.get(b"content-type", b"").lower():
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        messages: list[Message] = []
        while more:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            more = bool(message.get("more_body")) and size <= MAX_INSPECTED
        body = b"".join(chunks)
        constant = has_non_finite(body) if not more else None
        if constant is not None:
            detail = [{"type": "json_invalid", "loc": ["body"],
                       "msg": f"{constant} is not a valid JSON number (NaN and Infinity are"
                              " not allowed)", "input": constant}]
            # the same stable code as every other 422, which the pages translate
            payload = json.dumps({"detail": detail, "code": "validation"}).encode()
            await send({"type": "http.response.start", "status": 422,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(payload)).encode())]})
            await send({"type": "http.response.body", "body": payload})
            return
        pending = messages

        async def replay() -> Message:
            if pending:
                return pending.pop(0)
            return await receive()

        await self.app(scope, replay, send)
