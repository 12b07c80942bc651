"""How households' devices reach the broker.

Two ways, as in the field:

* per device (``shared=0``): each native device holds its own MQTT connection,
  client id = device id, with a Last Will on its retained state topic (Wi-Fi
  firmware does this); Zigbee devices of a home share one bridge connection
  whose Will is ``zigbee2mqtt/bridge/state`` offline.
* shared (``shared=N``): N connections carry every device of every home, each
  home pinned to one connection, like a bridge or a gateway concentrating many
  radios. No per-device Will is possible; a dead device just goes quiet and the
  gateway's missed-heartbeat check has to notice. Each shared connection has a
  Will on ``eldercare-sim/links/{client_id}``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from eldercare_protocols import native
from eldercare_protocols.errors import DecodeError
from eldercare_protocols.native import Channel, DeviceCommand
from eldercare_protocols.z2m import BASE_TOPIC
from eldercare_sim.devices import SimDevice
from eldercare_sim.household import Household
from eldercare_sim.render import SERIAL_TOPIC, NativeRenderer, Outgoing
from eldercare_sim.scheduler import Scheduler
from eldercare_sim.z2m_models import bridge_devices
from eldercare_transport import Endpoint, Message, MqttClient, Received, Session

log = logging.getLogger(__name__)

BRIDGE_STATE = f"{BASE_TOPIC}/bridge/state"
BRIDGE_DEVICES = f"{BASE_TOPIC}/bridge/devices"
LINKS_PREFIX = "eldercare-sim/links"

Tap = Callable[[Outgoing], None]
SerialSink = Callable[[bytes], None]


class Links:
    def __init__(self, broker: Endpoint, sched: Scheduler, households: list[Household], *,
                 shared: int = 0, tap: Tap | None = None, serial: SerialSink | None = None,
                 client_prefix: str = "sim") -> None:
        self.broker = broker
        self.sched = sched
        self.households = households
        self.shared = shared
        self.tap = tap
        self.serial = serial
        self.client_prefix = client_prefix
        self.devices: dict[str, SimDevice] = {d.device_id: d for h in households
                                              for d in h.devices.values()}
        self.home_of: dict[str, Household] = {d: h for h in households for d in h.devices}
        self.own: dict[str, MqttClient] = {}       # per-device connections
        self.bridges: dict[str, MqttClient] = {}   # per-home Zigbee bridges
        self.pool: list[MqttClient] = []           # shared connections
        self.route: dict[str, MqttClient] = {}     # device id → where it publishes
        self.decode_errors = 0
        self.commands: list[DeviceCommand] = []
        self.serial_frames = 0

    # ------------------------------------------------------------------ building

    def all(self) -> list[MqttClient]:
        return list(self.own.values()) + list(self.bridges.values()) + self.pool

    def _connection(self, client_id: str, will: Message, *, max_inflight: int = 100,
                    on_message: bool = True) -> MqttClient:
        # reconnects back off from 0.5 s to 30 s, as device firmware does
        session = Session(client_id, will=will, reconnect_min_s=0.5, reconnect_max_s=30.0,
                          max_inflight=max_inflight)
        return MqttClient(self.broker, session,
                          on_message=self._on_message if on_message else None)

    def _own_connection(self, dev_id: str) -> MqttClient:
        will = NativeRenderer.will(dev_id)
        conn = self._connection(dev_id, Message(will.topic, will.payload, 1, True))
        conn.subscribe(native.topic(dev_id, Channel.CMD), 1)
        return conn

    async def connect(self) -> None:
        if self.shared:
            for i in range(self.shared):
                cid = f"{self.client_prefix}-link-{i}"
                # a short in-flight window: paho scans its whole QoS 1 queue after each
                # PUBACK while the window has room, so a wide window costs quadratic time
                conn = self._connection(cid, Message(f"{LINKS_PREFIX}/{cid}", b"offline", 1, True),
                                        max_inflight=20)
                if i == 0:
                    conn.subscribe(f"{native.PREFIX}/+/{Channel.CMD.value}", 1)
                self.pool.append(conn)
            for n, house in enumerate(self.households):
                for dev_id in house.devices:
                    self.route[dev_id] = self.pool[n % self.shared]
        else:
            for house in self.households:
                if house.models:
                    bridge = self._connection(
                        f"zigbee2mqtt-{house.home_id}",
                        Message(BRIDGE_STATE, b'{"state":"offline"}', 1, True), on_message=False)
                    self.bridges[house.home_id] = bridge
                for dev_id in house.devices:
                    if dev_id in house.models:
                        self.route[dev_id] = self.bridges[house.home_id]
                    else:
                        self.own[dev_id] = self.route[dev_id] = self._own_connection(dev_id)
        conns = self.all()
        try:
            for chunk in range(0, len(conns), 200):
                await asyncio.gather(*(c.connect() for c in conns[chunk:chunk + 200]))
        except BaseException:
            for c in conns:
                c.kill()
            raise
        for conn in self.pool:
            if conn.session.will is not None:
                conn.publish(conn.session.will.topic, b"online", 1, True)
        for bridge in self.bridges.values():
            bridge.publish(BRIDGE_STATE, b'{"state":"online"}', 1, True)
        for house in self.households:
            if house.home_id in self.bridges:
                # what Zigbee2MQTT retains about its paired devices: names, models, exposes
                self.bridges[house.home_id].publish(BRIDGE_DEVICES, bridge_devices(house.models),
                                                    1, True)
        for dev in self.devices.values():
            self._wire(dev)

    def _wire(self, dev: SimDevice) -> None:
        tap, serial = self.tap, self.serial
        conn = self.route[dev.device_id]

        def publish(m: Outgoing) -> None:
            if tap is not None:
                tap(m)
            if m.topic == SERIAL_TOPIC:
                if serial is not None:
                    self.serial_frames += 1
                    serial(m.payload)
                return
            conn.publish(m.topic, m.payload, m.qos, m.retain)

        dev.publish = publish
        dev.on_dead = self.gone

    # ------------------------------------------------------------------ commands

    def _on_message(self, received: Received) -> None:
        topic = received.topic
        try:
            dev_id, msg = native.decode(topic, received.payload)
        except DecodeError as exc:
            self.decode_errors += 1
            log.warning("ignoring bad command on %s: %s (%s)", topic, exc.reason, exc.preview())
            return
        dev = self.devices.get(dev_id)
        if dev is None or not isinstance(msg, DeviceCommand):
            return
        self.commands.append(msg)
        acks = []
        self.sched.call(lambda: acks.append(dev.handle_command(msg)))
        if dev.running and dev_id in self.route:
            self.route[dev_id].publish(native.topic(dev_id, Channel.CMD_ACK),
                                       native.encode(acks[0]), 1, False)

    # ------------------------------------------------------------------ failures

    def gone(self, dev: SimDevice) -> None:
        """The device went silent (unplugged, battery dead): make the broker side see it."""
        own = self.own.get(dev.device_id)
        if own is not None:
            own.kill()  # no DISCONNECT: the broker publishes the Will
            return
        house = self.home_of[dev.device_id]
        bridge = self.bridges.get(house.home_id)
        if bridge is not None and dev.device_id in house.models:
            # Zigbee2MQTT's availability check marks the device offline
            bridge.publish(f"{BASE_TOPIC}/{dev.device_id}/availability",
                           b'{"state":"offline"}', 1, True)

    async def revive(self, dev: SimDevice) -> None:
        """Give a device that was unplugged a fresh connection (it then boots)."""
        if dev.device_id in self.own:
            self.own[dev.device_id].kill()
            conn = self._own_connection(dev.device_id)
            await conn.connect()
            self.own[dev.device_id] = self.route[dev.device_id] = conn
            self._wire(dev)

    def kill_all(self) -> None:
        for conn in self.all():
            conn.kill()

    def outage(self, seconds: float) -> None:
        """Every connection lost now; back (with backoff) after ``seconds`` of sim time.

        When the scheduler runs as fast as possible, what was sent before the outage
        is flushed first and the run waits for the reconnection at its end, so the
        outage sits at its place in simulated time.
        """
        conns = self.all()

        def drop() -> None:
            for conn in conns:
                conn.drop()

        async def flush_then_drop() -> None:
            await self.drain(5.0)
            drop()

        async def reconnected() -> None:
            await asyncio.gather(*(c.wait_connected(30.0) for c in conns))

        def back() -> None:
            for conn in conns:
                conn.resume()
            if self.sched.fast:
                self.sched.hold(reconnected())

        if self.sched.fast:
            self.sched.hold(flush_then_drop())
        else:
            drop()
        self.sched.after(seconds, back)

    # ------------------------------------------------------------------ flow

    @property
    def published(self) -> int:
        return sum(c.published for c in self.all())

    @property
    def completed(self) -> int:
        return sum(c.completed for c in self.all())

    @property
    def outstanding(self) -> int:
        return sum(c.outstanding for c in self.all() if c.connected)

    async def drain(self, wait_s: float = 5.0) -> None:
        await asyncio.gather(*(c.drain(wait_s) for c in self.all() if c.connected))

    async def drain_below(self, limit: int) -> None:
        """Wait until at most ``limit`` messages are queued across all connections."""
        conns = [c for c in self.all() if c.connected]
        share = max(1, limit // max(1, len(conns)))
        await asyncio.gather(*(c.drain(30.0, below=share) for c in conns))

    async def drain_device(self, dev_id: str, wait_s: float = 5.0) -> None:
        conn = self.route.get(dev_id)
        if conn is not None and conn.connected:
            await conn.drain(wait_s)

    async def close(self) -> None:
        for conn in self.pool:
            if conn.connected and conn.session.will is not None:
                conn.publish(conn.session.will.topic, b"offline", 1, True)
        await self.drain(2.0)
        await asyncio.gather(*(c.stop() for c in self.all()), return_exceptions=True)
