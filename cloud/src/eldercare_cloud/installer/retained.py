"""Clearing a revoked gateway's retained ``up/state`` on the cloud broker.

The gateway's birth (``online``) stays retained on its state topic after the broker cut
it off, and a restarted ingest would read it and show the gateway online again. The
cloud clears it with its own account (the ingest service account) by publishing an
empty retained payload, MQTT's way of deleting a retained message.

That account may not publish under ``up/`` (deny by default: only gateways speak
there), so the revoke grants it exactly this one topic for the one publish, through the
dynamic-security plugin, and takes the grant back afterwards, whatever happened. MQTT 5
is used so that a refusal comes back as a PUBACK reason code instead of silence.

A one-shot blocking paho client run in a worker thread: this is an administrative
action taken once per revoke, not the ingest path.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import ssl
import threading
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from eldercare_cloud.broker import AsyncDynsecClient
from eldercare_cloud.broker.acl import INGEST_ROLE
from eldercare_cloud.broker.errors import DynsecCommandError
from eldercare_cloud.errors import CloudError
from eldercare_cloud.settings import CloudSettings, reveal
from eldercare_protocols.uplink import Up, up_topic

log = logging.getLogger(__name__)


class RetainedClearError(CloudError):
    """The broker did not take the empty retained message (refused, unreachable, slow)."""


def state_topic(gateway_id: str) -> str:
    return up_topic(gateway_id, Up.STATE)


def _acl(topic: str) -> dict[str, Any]:
    return {"rolename": INGEST_ROLE, "acltype": "publishClientSend", "topic": topic}


async def clear_state(settings: CloudSettings, dynsec: AsyncDynsecClient,
                      gateway_id: str, timeout_s: float) -> None:
    """Grant, publish the empty retained state, revoke the grant."""
    topic = state_topic(gateway_id)
    responses = await dynsec.execute([{"command": "addRoleACL", **_acl(topic),
                                       "allow": True, "priority": 0}])
    granted = not any("error" in r for r in responses)
    if not granted and not any("already" in str(r.get("error", "")).lower()
                               for r in responses):
        raise DynsecCommandError("addRoleACL", str(responses[0].get("error")))
    try:
        await asyncio.to_thread(publish_empty_retained, settings, topic, timeout_s)
    finally:
        if granted:
            removed = await dynsec.execute([{"command": "removeRoleACL", **_acl(topic)}])
            for r in removed:
                if "error" in r:
                    log.warning("could not take back the ingest role's grant on %s: %s",
                                topic, r["error"])


def publish_empty_retained(settings: CloudSettings, topic: str, timeout_s: float) -> None:
    """Connect as the cloud's account, publish b"" retained at QoS 1, wait for the PUBACK."""
    host, port = settings.mqtt.host_port
    client = paho.Client(CallbackAPIVersion.VERSION2,
                         client_id=f"{settings.mqtt.client_id}-admin-{secrets.token_hex(4)}",
                         protocol=paho.MQTTv5)
    if settings.mqtt.username:
        client.username_pw_set(settings.mqtt.username, reveal(settings.mqtt.password))
    if settings.mqtt.url.startswith("mqtts://"):
        client.tls_set(ca_certs=str(settings.mqtt.tls_ca) if settings.mqtt.tls_ca else None,
                       cert_reqs=ssl.CERT_REQUIRED)
    connected = threading.Event()
    published = threading.Event()
    outcome: dict[str, Any] = {}

    def on_connect(c: paho.Client, userdata: Any, flags: Any, rc: ReasonCode,
                   props: Properties | None) -> None:
        outcome["connect"] = rc
        connected.set()

    def on_publish(c: paho.Client, userdata: Any, mid: int, rc: ReasonCode,
                   props: Properties | None) -> None:
        outcome["publish"] = rc
        published.set()

    client.on_connect = on_connect
    client.on_publish = on_publish
    try:
        client.connect(host, port, keepalive=30)
    except OSError as exc:
        raise RetainedClearError(f"cannot reach the broker at {host}:{port}: {exc}") from exc
    client.loop_start()
    try:
        if not connected.wait(timeout_s):
            raise RetainedClearError(f"the broker did not answer within {timeout_s:g}s")
        if outcome["connect"].is_failure:
            raise RetainedClearError(f"the broker refused the cloud's account: "
                                     f"{outcome['connect']}")
        client.publish(topic, b"", qos=1, retain=True)
        if not published.wait(timeout_s):
            raise RetainedClearError(f"no PUBACK for {topic} within {timeout_s:g}s")
        if outcome["publish"].is_failure:
            raise RetainedClearError(f"the broker refused to clear {topic}: "
                                     f"{outcome['publish']}")
    finally:
        client.disconnect()
        client.loop_stop()
