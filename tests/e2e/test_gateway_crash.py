"""Issue 4, test 3: the gateway process SIGKILLed at random moments, many times in a row,
while buttons are pressed: no alarm a button was told "received" is lost, and none is
committed twice in the cloud.

Each of many buttons presses exactly once, so an LED "received" on a button's command
topic names exactly one alarm (the LED command carries no alarm id).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

import db_support
from broker_support import Broker
from clock_support import afternoon_clock
from eldercare_cloud.service import CloudService
from eldercare_protocols import native
from eldercare_protocols.events import EventKind

from .helpers import committed, edge_config_file, edge_values, wait_for

pytestmark = pytest.mark.integration

EDGE = Path(sys.executable).parent / "eldercare-edge"
BUTTONS = [f"btn-{i:02d}" for i in range(48)]
KILLS = 8


DEVICE_CLOCK = afternoon_clock()


class ButtonBank:
    """Many call buttons on one MQTT connection; records LED commands per button."""

    def __init__(self, broker: Broker) -> None:
        self.leds: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"buttons-{uuid.uuid4().hex[:6]}")
        self.client.on_connect = lambda c, *a: c.subscribe("eldercare/+/cmd", qos=1)
        self.client.on_subscribe = lambda *a: self._ready.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        if not self._ready.wait(10):
            raise RuntimeError("button bank did not subscribe")

    def _on_message(self, c: paho.Client, u: Any, m: paho.MQTTMessage) -> None:
        device_id, _ = native.parse_topic(m.topic)
        cmd = native.DeviceCommand.model_validate_json(m.payload)
        if cmd.command == "led":
            with self._lock:
                self.leds.setdefault(device_id, []).append(str(cmd.args.get("state")))

    def press(self, device_id: str) -> None:
        msg = native.DeviceEvent(seq=1, ts=DEVICE_CLOCK.now(), type="call_button",
                                 kind=EventKind.SOS, data={"button": "red"})
        self.client.publish(native.topic(device_id, native.Channel.EVENT), native.encode(msg),
                            qos=1).wait_for_publish(5)

    def told_received(self) -> set[str]:
        with self._lock:
            return {d for d, states in self.leds.items() if "received" in states}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def start_gateway(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(EDGE), "run", "--config", str(config)],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _text(path: Path) -> str:
    return path.read_text(errors="replace")


async def wait_started(proc: subprocess.Popen[bytes], log: Path) -> None:
    await wait_for(lambda: proc.poll() is not None or b"home broker connected"
                   in log.read_bytes(), within_s=30, what="gateway start")
    assert proc.poll() is None, _text(log)


async def test_3_gateway_sigkilled_repeatedly_loses_no_received_alarm_and_duplicates_none(
        tmp_path: Path, home_broker: Broker, cloud_broker: Broker, cloud: CloudService) -> None:
    rng = random.Random(3)
    devices = [{"device_id": b, "type": "call_button"} for b in BUTTONS]
    config = edge_config_file(tmp_path, edge_values(
        tmp_path, home_broker, cloud_broker, devices, cloud={"resend_after_s": 1.0},
        log_level="WARNING"))
    bank = ButtonBank(home_broker)
    pending = list(BUTTONS)
    proc: subprocess.Popen[bytes] | None = None
    try:
        for run in range(KILLS):
            log = tmp_path / f"gateway-{run}.log"
            proc = start_gateway(config, log)
            await wait_started(proc, log)
            # press a few buttons, then kill at a random moment (maybe mid-store, mid-send)
            presses = rng.randint(3, 6)
            for _ in range(presses):
                bank.press(pending.pop(0))
                await asyncio.sleep(rng.uniform(0.0, 0.15))
            await asyncio.sleep(rng.uniform(0.0, 0.4))
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            assert proc.returncode == -signal.SIGKILL
        # a last run that is left alone: it must deliver everything that was received
        log = tmp_path / "gateway-final.log"
        proc = start_gateway(config, log)
        await wait_started(proc, log)
        for device_id in pending:
            bank.press(device_id)
        received = bank.told_received()

        async def all_received_committed() -> bool:
            in_cloud = {e.device_id for e in await committed(cloud, EventKind.SOS)}
            return bank.told_received() <= in_cloud

        await wait_for(all_received_committed, within_s=60,
                       what="every alarm a button was told 'received' committed in the cloud")
        received = bank.told_received()
    finally:
        bank.close()
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)

    alarms = await committed(cloud, EventKind.SOS)
    print(f"{len(received)} of {len(BUTTONS)} presses told 'received', "
          f"{len(alarms)} alarms committed")
    by_device = [a.device_id for a in alarms]
    assert len(by_device) == len(set(by_device)), "an alarm was committed twice"
    assert len({a.id for a in alarms}) == len(alarms)
    assert received <= set(by_device)
    # the kills did happen at awkward moments: some presses were received before a kill
    assert len(received) >= len(BUTTONS) // 2
    log_rows = db_support.rows(cloud.settings.database, "SELECT status FROM gateway_log")
    # every kill is a Last Will the cloud saw as "offline", every restart a birth
    assert log_rows.count(("offline",)) >= KILLS // 2
