"""Webhook channel: JSON POST signed with HMAC-SHA256 over timestamp and body.

The receiver checks ``X-Eldercare-Signature: sha256=<hex>`` of ``"{timestamp}.{body}"``
with the shared secret, and may drop a repeated ``X-Eldercare-Delivery`` id: a retry
after a lost response carries the same id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx

from eldercare_cloud.notify.base import Delivery, Outbound


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookChannel:
    name = "webhook"

    def __init__(self, secret: str, timeout_s: float,
                 client: httpx.AsyncClient | None = None) -> None:
        self._secret = secret
        self._timeout = timeout_s
        self._client = client

    async def send(self, msg: Outbound) -> Delivery:
        body = json.dumps({"id": msg.notification_id, "alert_id": msg.alert_id,
                           "text": msg.text, "link": msg.link, **msg.payload},
                          ensure_ascii=False, default=str).encode()
        ts = str(int(time.time()))
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "X-Eldercare-Delivery": msg.notification_id,
                   "X-Eldercare-Timestamp": ts,
                   "X-Eldercare-Signature": signature(self._secret, ts, body)}
        try:
            if self._client is not None:
                resp = await self._client.post(msg.address, content=body, headers=headers,
                                               timeout=self._timeout)
            else:
                async with httpx.AsyncClient(timeout=self._timeout) as client:
                    resp = await client.post(msg.address, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Delivery.failed(f"{type(exc).__name__}: {exc}", transient=True)
        if 200 <= resp.status_code < 300:
            return Delivery("delivered", provider_ref=str(resp.status_code))
        transient = resp.status_code >= 500 or resp.status_code in (408, 429)
        return Delivery.failed(f"HTTP {resp.status_code}", transient=transient)
