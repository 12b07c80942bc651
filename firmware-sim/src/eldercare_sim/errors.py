"""What the simulator raises on purpose; the CLI turns each into one line and an exit code."""

from __future__ import annotations


class SimError(Exception):
    """Base class for the simulator's own errors."""


class BrokerUnreachable(SimError):
    """The MQTT broker refused or did not answer the connection."""


class ScenarioError(SimError):
    """A scenario file that cannot be loaded or names something that does not exist."""


class UnsupportedInMode(SimError):
    """An action the device cannot perform in the current mode (e.g. a green press over Zigbee)."""
