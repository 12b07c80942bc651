"""Stateless signed tokens (HMAC-SHA256 with ``settings.auth.secret_key``).

Used for bearer tokens and for responder links. The purpose is part of the MAC, so a
responder link can never be replayed as a bearer token or the other way round.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

from eldercare_cloud.errors import AuthenticationError


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, purpose: str, body: str) -> str:
    return _b64(hmac.new(secret.encode(), f"{purpose}.{body}".encode(),
                         hashlib.sha256).digest())


def sign(secret: str, purpose: str, claims: dict[str, Any], expires: datetime) -> str:
    body = _b64(json.dumps({**claims, "exp": int(expires.timestamp())},
                           separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_mac(secret, purpose, body)}"


def verify(secret: str, purpose: str, token: str, now: datetime) -> dict[str, Any]:
    """Return the claims of a token that is intact and not expired, else AuthenticationError."""
    body, _, mac = token.partition(".")
    if not body or not mac or len(token) > 2048:
        raise AuthenticationError("malformed token")
    if not hmac.compare_digest(mac, _mac(secret, purpose, body)):
        raise AuthenticationError("invalid token signature")
    try:
        claims = json.loads(_unb64(body))
    except ValueError as exc:
        raise AuthenticationError("malformed token") from exc
    if not isinstance(claims, dict) or not isinstance(claims.get("exp"), int):
        raise AuthenticationError("malformed token")
    if claims["exp"] <= now.timestamp():
        raise AuthenticationError("token expired")
    return claims
