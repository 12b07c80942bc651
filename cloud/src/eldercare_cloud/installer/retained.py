"""Clearing a revoked gateway's retained ``up/state`` on the cloud broker.

The gateway's birth (``online``) stays retained on its state topic after the broker cut
it off, and a restarted ingest would read it and show the gateway online again. The
cloud clears it with its own account (the ingest service account) by publishing an
empty retained payload, MQTT's way of deleting a retained message.

That account may not publish under ``up/`` (deny by default: only gateways speak
there), so the revoke grants it exactly this one topic for the one publish, through the
dynamic-security plugin, and takes the grant back afterwards, whatever happened. MQTT 5
is used so that a refusal comes back as a PUBACK reason code instead of silence.

A one-shot client of the shared transport on the handler's event loop: this is an
administrative action taken once per revoke, not the ingest path.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from eldercare_cloud.broker import AsyncDynsecClient
from eldercare_cloud.broker.acl import INGEST_ROLE
from eldercare_cloud.broker.errors import DynsecCommandError
from eldercare_cloud.errors import CloudError
from eldercare_cloud.ingest.service import mqtt_options
from eldercare_cloud.settings import CloudSettings
from eldercare_protocols.uplink import Up, up_topic
from eldercare_transport import (
    MQTT_V5,
    ConnectError,
    MqttClient,
    PublishError,
    Session,
    UnreachableError,
)

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
        await publish_empty_retained(settings, topic, timeout_s)
    finally:
        if granted:
            removed = await dynsec.execute([{"command": "removeRoleACL", **_acl(topic)}])
            for r in removed:
                if "error" in r:
                    log.warning("could not take back the ingest role's grant on %s: %s",
                                topic, r["error"])


async def publish_empty_retained(settings: CloudSettings, topic: str, timeout_s: float) -> None:
    """Connect as the cloud's account, publish b"" retained at QoS 1, wait for the PUBACK."""
    endpoint = mqtt_options(settings).endpoint()
    client = MqttClient(endpoint, Session(
        f"{settings.mqtt.client_id}-admin-{secrets.token_hex(4)}", protocol=MQTT_V5),
        name="retained-clear")
    try:
        await client.connect(timeout_s)
    except UnreachableError as exc:
        raise RetainedClearError(f"cannot reach the broker at {endpoint.host}:"
                                 f"{endpoint.port}: {exc.reason}") from exc
    except ConnectError as exc:
        raise RetainedClearError(f"the broker did not take the cloud's account: {exc}"
                                 ) from exc
    try:
        await client.publish_confirmed(topic, b"", qos=1, retain=True, timeout_s=timeout_s)
    except PublishError as exc:
        raise RetainedClearError(f"the broker did not clear {topic}: {exc.reason}") from exc
    finally:
        await client.stop()
