"""Helpers for the simulator's tests: a subscriber that records what reached the broker."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from broker_support import Broker


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool


class Collector:
    """Subscribes to everything on a broker (in paho's own thread) and keeps it in order."""

    def __init__(self, broker: Broker, topics: tuple[str, ...] = ("#",)) -> None:
        self.messages: list[Received] = []
        self._cond = threading.Condition()
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"collector-{id(self)}")
        self._client.on_message = self._on_message
        subscribed = threading.Event()
        self._client.on_subscribe = lambda *a: subscribed.set()
        self._client.connect(broker.host, broker.port)
        self._client.subscribe([(t, 1) for t in topics])
        self._client.loop_start()
        if not subscribed.wait(5):
            raise RuntimeError("collector could not subscribe")

    def _on_message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain)))
            self._cond.notify_all()

    def snapshot(self) -> list[Received]:
        with self._cond:
            return list(self.messages)

    def clear(self) -> None:
        with self._cond:
            self.messages.clear()

    def wait_for(self, pred: Callable[[list[Received]], bool], timeout: float = 10.0
                 ) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not pred(self.messages):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out; got {len(self.messages)} messages: "
                                         f"{[m.topic for m in self.messages[-10:]]}")
                self._cond.wait(left)
            return list(self.messages)

    async def until(self, pred: Callable[[list[Received]], bool], within: float = 10.0
                    ) -> list[Received]:
        """wait_for for async tests: the event loop (and the simulator on it) keeps running."""
        deadline = time.monotonic() + within
        while True:
            msgs = self.snapshot()
            if pred(msgs):
                return msgs
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; got {len(msgs)} messages: "
                                     f"{[m.topic for m in msgs[-10:]]}")
            await asyncio.sleep(0.01)

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        self._client.publish(topic, payload, qos=qos).wait_for_publish(5)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@pytest.fixture
def collector(mosquitto: Broker) -> Iterator[Collector]:
    c = Collector(mosquitto)
    try:
        yield c
    finally:
        c.close()
