"""Fleet-mode benchmark: how many messages per second the simulator gets through Mosquitto.

Run from the repository root (it starts its own Mosquitto on a free loopback port)::

    uv run python bench/bench_sim_fleet.py            # 1,000 homes, ~2 minutes
    uv run python bench/bench_sim_fleet.py --homes 200 --realtime 10 --fast 1800

Three figures, all taken in the same run on the same broker:

1. baseline: pre-encoded QoS 0 messages pushed through the same asyncio/paho transport
   as fast as it goes (the ceiling for one Python process on this machine);
2. realistic: the fleet at real time (speed 1) with the residents' routines: the
   message rate a thousand homes really produce, and whether the simulator keeps up;
3. flat out: the same fleet as fast as possible (simulated clock jumping from event to
   event): the most the simulator can sustain, as a ratio of the baseline, and how many
   homes at realistic rates that is.

A subscriber counts what the broker delivered, so the figures are messages that
arrived, not messages queued.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from _broker import start_mosquitto
from eldercare_sim.clock import SimClock
from eldercare_sim.fleet import Fleet
from eldercare_transport import Endpoint, MqttClient, Session


class BrokerCount:
    """MQTT packets the broker received, from Mosquitto's own $SYS counter.

    Read by a short-lived subscriber, so counting costs the measured process nothing.
    (publish/messages/received would be closer but Mosquitto leaves retained publishes
    out of it; the few CONNECT/SUBSCRIBE/PINGREQ packets this one adds are noise.)
    """

    TOPIC = "$SYS/broker/messages/received"

    def __init__(self, port: int) -> None:
        self.port = port

    def read(self) -> int:
        got: list[int] = []
        done = threading.Event()
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-sys-{time.time()}")

        def on_message(_c: object, _u: object, msg: paho.MQTTMessage) -> None:
            got.append(int(msg.payload))
            done.set()

        client.on_message = on_message
        client.connect("127.0.0.1", self.port)
        client.subscribe(self.TOPIC, 0)
        client.loop_start()
        done.wait(5)  # $SYS is published every sys_interval (1 s here)
        client.disconnect()
        client.loop_stop()
        return got[-1] if got else -1

    def settled(self, wait_s: float = 15.0) -> int:
        """The counter once it stopped moving (the broker worked through its backlog)."""
        deadline = time.monotonic() + wait_s
        last = self.read()
        while time.monotonic() < deadline:
            time.sleep(1.1)
            now = self.read()
            if now == last:
                return now
            last = now
        return last


async def baseline(port: int, messages: int, connections: int) -> float:
    addr = Endpoint("127.0.0.1", port)
    conns = [MqttClient(addr, Session(f"bench-raw-{i}", max_inflight=1000))
             for i in range(connections)]
    for c in conns:
        await c.connect()
    payload = (b'{"v":1,"seq":1,"ts":"2026-01-12T02:00:00Z","type":"gas_detector",'
               b'"kind":"gas_level","values":{"lel":0.6}}')
    t = time.perf_counter()
    for i in range(messages):
        conns[i % connections].publish(f"bench/raw/{i % 8000}/telemetry", payload, 0)
        if i % 200 == 0:
            await asyncio.sleep(0)
            for c in conns:
                await c.drain(30, below=5_000)
    for c in conns:
        await c.drain(30)
    rate = messages / (time.perf_counter() - t)
    for c in conns:
        await c.stop()
    return rate


async def fleet_run(port: int, homes: int, speed: float, sim_seconds: float, connections: int,
                    start: datetime) -> tuple[float, float, float, int]:
    """Returns (messages per real second, per simulated second, lag s, messages)."""
    clock = SimClock(start, speed=speed)
    async with Fleet(f"mqtt://127.0.0.1:{port}", homes, seed=1, clock=clock,
                     connections=connections) as fleet:
        p = await fleet.run(sim_seconds)
        lag = max(0.0, fleet.clock.monotonic() - fleet.sched.position())
    return p.rate, p.completed / max(p.sim_seconds, 1e-9), lag, p.completed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--homes", type=int, default=1000)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--realtime", type=float, default=40.0,
                    help="seconds of the real-time (speed 1) run")
    ap.add_argument("--fast", type=float, default=3 * 3600.0,
                    help="simulated seconds of the as-fast-as-possible run")
    ap.add_argument("--baseline", type=int, default=200_000, help="messages in the baseline")
    args = ap.parse_args()

    # 07:00 in Zhejiang: the residents are waking, cooking and going out
    start = datetime(2026, 1, 12, 23, 0, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        broker, port = start_mosquitto(Path(tmp), "persistence false\nsys_interval 1\n")
        try:
            print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
                  f"Mosquitto on 127.0.0.1:{port}")
            count = BrokerCount(port)
            before = count.settled()
            base = asyncio.run(baseline(port, args.baseline, args.connections))
            got = count.settled() - before
            print(f"baseline  raw QoS 0 publish, {args.connections} connections: "
                  f"{base:,.0f} msg/s ({got:,} of {args.baseline:,} arrived at the broker)")

            rt_rate, _, rt_lag, _ = asyncio.run(
                fleet_run(port, args.homes, 1.0, args.realtime, args.connections, start))
            print(f"realistic {args.homes:,} homes x 8 devices, speed 1, {args.realtime:g} s: "
                  f"{rt_rate:,.1f} msg/s, lag behind the clock {rt_lag:.2f} s")

            before = count.settled()
            fast_rate, per_sim, _, fast_n = asyncio.run(
                fleet_run(port, args.homes, 0.0, args.fast, args.connections, start))
            arrived = count.settled() - before
            per_home = per_sim / args.homes
            print(f"flat out  {args.homes:,} homes, {args.fast / 3600:g} simulated hours as fast "
                  f"as possible: {fast_rate:,.0f} msg/s = {fast_rate / base:.2f} x baseline "
                  f"({fast_n:,} messages after boot; the broker received {arrived:,} in all, "
                  "boot and shutdown states included)")
            print(f"realistic load: {per_home * 3600:.0f} messages per home per hour "
                  f"({per_home * args.homes:,.1f} msg/s for {args.homes:,} homes)")
            print(f"headroom: the simulator sustains {fast_rate / per_sim:,.1f} x real time "
                  f"for {args.homes:,} homes, i.e. about {fast_rate / per_home:,.0f} homes at "
                  "realistic rates on this machine")
        finally:
            broker.stop(5)


if __name__ == "__main__":
    main()
