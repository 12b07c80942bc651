"""The platform's one MQTT transport: paho-mqtt driven by asyncio, and Mosquitto for
tests, benchmarks and the one-command run.

Only this package sees paho objects; the gateway, the cloud's ingest, the simulator and
the administrative tools build an ``Endpoint`` and a ``Session`` from their own settings
and get frozen ``Received`` messages back.
"""

from eldercare_transport.blocking import LoopThread
from eldercare_transport.client import (
    MQTT_V5,
    MQTT_V311,
    Message,
    MqttClient,
    Received,
    Session,
    subscriptions,
)
from eldercare_transport.endpoint import Endpoint
from eldercare_transport.errors import (
    ConnectError,
    EndpointError,
    PublishError,
    SubscribeError,
    TransportError,
    UnreachableError,
)

__all__ = [
    "MQTT_V5",
    "MQTT_V311",
    "ConnectError",
    "Endpoint",
    "EndpointError",
    "LoopThread",
    "Message",
    "MqttClient",
    "PublishError",
    "Received",
    "Session",
    "SubscribeError",
    "TransportError",
    "UnreachableError",
    "subscriptions",
]
