"""Responder links: signed, expiring, scoped to one alert and one contact.

A responder needs no account; the link is the credential. It names its alert, so a
token for one alert presented on another alert's URL is refused (as "not found", which
tells the holder nothing about the other alert).
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from eldercare_cloud.auth.signing import sign, verify
from eldercare_cloud.errors import NotFoundError

LINK_PURPOSE = "respond"


def link_token(secret: str, alert_id: str, contact_id: str, expires: datetime) -> str:
    return sign(secret, LINK_PURPOSE, {"a": alert_id, "c": contact_id}, expires)


def verify_link(secret: str, token: str, alert_id: str, now: datetime) -> str:
    """The contact id the link was issued to; AuthenticationError when forged or expired."""
    claims = verify(secret, LINK_PURPOSE, token, now)
    if claims.get("a") != alert_id or not isinstance(claims.get("c"), str):
        raise NotFoundError(f"alert {alert_id} not found")
    return str(claims["c"])


def link_url(base_url: str, alert_id: str, token: str) -> str:
    """The phone page (served by the console) that calls /api/v1/respond/{alert_id}."""
    return f"{base_url.rstrip('/')}/respond/{quote(alert_id)}?token={quote(token)}"
