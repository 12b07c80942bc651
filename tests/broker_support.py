"""Mosquitto on a free loopback port, for tests (the launcher is
``eldercare_transport.mosquitto``, shared with the benchmarks and the run command).

A plain module (not a conftest.py): pytest imports every conftest.py outside a package
under the one name "conftest", so ``from conftest import ...`` finds whichever was
loaded last. Import these from here instead: ``from broker_support import Broker``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from eldercare_transport import mosquitto
from eldercare_transport.mosquitto import Mosquitto as Broker
from eldercare_transport.mosquitto import free_port

MOSQUITTO = mosquitto.find_mosquitto() or "/usr/sbin/mosquitto"


def start_mosquitto(directory: Path, extra_conf: str = "") -> Broker:
    """Start Mosquitto on 127.0.0.1 with anonymous access (auth tests pass extra_conf,
    which then says who may log in)."""
    if mosquitto.find_mosquitto() is None:
        pytest.fail("mosquitto is not installed: run the README's test command (it installs it)")
    options = mosquitto.Options(anonymous=not extra_conf, extra=extra_conf)
    return mosquitto.start(directory, options)


__all__ = ["MOSQUITTO", "Broker", "free_port", "start_mosquitto"]
