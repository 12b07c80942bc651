"""eldercare_transport.MqttClient against a real Mosquitto on loopback.

Each test asserts what breaks if the feature broke: reconnection after the broker
restarts, the Will on a dead connection, manual acks (an unacked QoS 1 message comes
back to a persistent session), the bounded inbound queue pausing the socket, TCP_NODELAY
on every connection, and clear errors for bad URLs and dead brokers.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from broker_support import Broker, free_port, start_mosquitto
from eldercare_transport import (
    ConnectError,
    Endpoint,
    EndpointError,
    LoopThread,
    Message,
    MqttClient,
    PublishError,
    Received,
    Session,
    mosquitto,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


async def until(cond: Callable[[], bool], what: str, within_s: float = 10.0) -> None:
    async with asyncio.timeout(within_s):
        while not cond():  # noqa: ASYNC110 - polling a condition another task changes
            await asyncio.sleep(0.02)
    assert cond(), what


@asynccontextmanager
async def client(broker: Broker, client_id: str, **kw: object) -> AsyncIterator[MqttClient]:
    callbacks = {k: kw.pop(k) for k in ("on_message", "on_connect", "on_disconnect",
                                        "on_conflict", "birth") if k in kw}
    c = MqttClient(Endpoint.parse(broker.url), Session(client_id, **kw),  # type: ignore[arg-type]
                   **callbacks)  # type: ignore[arg-type]
    await c.connect()
    try:
        yield c
    finally:
        await c.stop()


def test_bad_urls_are_refused_before_any_io() -> None:
    for url, reason in (("http://x:1883", "unsupported broker URL 'http://x:1883'"),
                        ("mqtt://host:port", "invalid port"),
                        ("mqtt://:1883", "no host"),
                        ("mqtt://h:1883/path", "no path")):
        with pytest.raises(EndpointError, match=reason):
            Endpoint.parse(url)
    e = Endpoint.parse("mqtts://user:p%40ss@broker.example")
    assert (e.tls, e.port, e.username, e.password) == (True, 8883, "user", "p@ss")
    assert "p@ss" not in repr(e) and e.url == "mqtts://broker.example:8883"
    assert Endpoint.parse("10.0.0.2:1884").url == "mqtt://10.0.0.2:1884"
    # TLS material that cannot be loaded: at construction, with the reason
    bad = Endpoint.parse("mqtts://127.0.0.1:8883", ca_file=Path("/nonexistent/ca.crt"))
    with pytest.raises(EndpointError, match="TLS setup failed"):
        MqttClient(bad, Session("x"))


async def test_a_dead_broker_is_a_clear_connect_error() -> None:
    port = free_port()
    c = MqttClient(Endpoint.parse(f"mqtt://127.0.0.1:{port}"), Session("nobody"))
    with pytest.raises(ConnectError,
                       match=f"cannot reach broker mqtt://127.0.0.1:{port}: Connection refused"):
        await c.connect(wait_s=5)
    assert not c.connected and c.runner is not None and c.runner.done()


async def test_tcp_nodelay_on_every_connection(tmp_path: Path) -> None:
    broker = start_mosquitto(tmp_path / "b")
    try:
        async with client(broker, "nodelay", reconnect_min_s=0.05) as c:
            assert c.tcp_nodelay is True
            broker.stop()
            await until(lambda: not c.connected, "disconnect seen")
            broker.start()
            await until(lambda: c.connected, "reconnected")
            assert c.tcp_nodelay is True and c.connects == 2
    finally:
        broker.stop()


async def test_reconnects_and_resubscribes_after_the_broker_restarts(tmp_path: Path) -> None:
    broker = start_mosquitto(tmp_path / "b")
    got: list[Received] = []
    downs: list[int] = []
    try:
        async with client(broker, "sub", subscriptions=(("t/#", 1),), reconnect_min_s=0.05,
                          reconnect_max_s=0.5, on_message=got.append,
                          on_disconnect=lambda: downs.append(1)) as sub, \
                client(broker, "pub", reconnect_min_s=0.05, reconnect_max_s=0.5) as pub:
            await pub.publish_confirmed("t/1", b"before", timeout_s=5)
            await until(lambda: len(got) == 1, "first message")
            broker.stop()
            await until(lambda: not sub.connected and not pub.connected, "both down")
            assert downs
            broker.start()   # persistence off: the session and subscription are gone
            assert await sub.wait_connected(10) and await pub.wait_connected(10)
            await pub.publish_confirmed("t/2", b"after", timeout_s=5)
            await until(lambda: len(got) == 2, "message after the restart")
            assert [m.payload for m in got] == [b"before", b"after"]
            assert sub.reconnects == 1 and sub.disconnects == 1
    finally:
        broker.stop()


async def test_the_will_is_published_when_the_connection_dies(mosquitto: Broker) -> None:
    wills: list[Received] = []
    births: list[Received] = []
    async with client(mosquitto, "watcher", subscriptions=(("state/#", 1),),
                      on_message=lambda m: (wills if m.payload == b"offline"
                                            else births).append(m)):
        dying = MqttClient(Endpoint.parse(mosquitto.url),
                           Session("dying", will=Message("state/dying", b"offline", 1, True)),
                           birth=lambda: Message("state/dying", b"online", 1, True))
        await dying.connect()
        await until(lambda: len(births) == 1, "birth")
        dying.kill()   # no DISCONNECT: the broker publishes the Will
        await until(lambda: len(wills) == 1, "will")
        assert wills[0].topic == "state/dying"
        # a clean stop discards the Will
        clean = MqttClient(Endpoint.parse(mosquitto.url),
                           Session("clean", will=Message("state/clean", b"offline")))
        await clean.connect()
        await clean.stop()
        await asyncio.sleep(0.3)   # give a wrongly published Will time to arrive
        assert [w.topic for w in wills] == ["state/dying"]


async def test_manual_ack_the_broker_redelivers_what_was_not_acked(mosquitto: Broker
                                                                    ) -> None:
    got: list[Received] = []
    session = dict(clean=False, manual_ack=True, subscriptions=(("work/#", 1),))
    async with client(mosquitto, "worker", **session, on_message=got.append) as w:
        await w.stop()   # the session (its subscription) stays at the broker
    async with client(mosquitto, "boss") as boss:
        for i in range(3):
            await boss.publish_confirmed(f"work/{i}", str(i).encode(), timeout_s=5)
    first = MqttClient(Endpoint.parse(mosquitto.url), Session("worker", **session),  # type: ignore[arg-type]
                       on_message=got.append)
    await first.connect()
    await until(lambda: len(got) == 3, "queued messages")
    first.ack(got[0])       # committed; 1 and 2 are not
    await asyncio.sleep(0.2)  # the PUBACK leaves before the crash
    first.kill()
    got.clear()
    second = MqttClient(Endpoint.parse(mosquitto.url), Session("worker", **session),  # type: ignore[arg-type]
                        on_message=got.append)
    await second.connect()
    try:
        await until(lambda: len(got) == 2, "redelivered")
        assert sorted(m.payload for m in got) == [b"1", b"2"]
        for m in got:
            second.ack(m)
    finally:
        await second.stop()
    got.clear()
    third = MqttClient(Endpoint.parse(mosquitto.url), Session("worker", **session),  # type: ignore[arg-type]
                       on_message=got.append)
    await third.connect()
    await asyncio.sleep(0.3)
    await third.stop()
    assert got == []   # everything acked: nothing comes back


async def test_a_full_inbound_queue_pauses_reading(mosquitto: Broker) -> None:
    async with client(mosquitto, "slow", subscriptions=(("flood/#", 1),),
                      inbound_max=4) as slow, client(mosquitto, "fast") as fast:
        for i in range(20):
            assert fast.publish("flood/x", str(i).encode())
        assert await fast.drain(10)
        await until(lambda: not slow.reading, "reading paused")
        assert slow.queued == 4
        await asyncio.sleep(0.2)
        assert slow.queued == 4      # paused: nothing more is read
        got = [m.payload for m in slow.take(3)]
        assert slow.reading          # down to half: reading again
        while len(got) < 20:
            async with asyncio.timeout(10):
                got.append((await slow.receive()).payload)
        assert got == [str(i).encode() for i in range(20)]


async def test_a_burst_is_read_and_acked_with_few_system_calls(mosquitto: Broker) -> None:
    """paho alone makes three or more recv calls per packet and one send per PUBACK; the
    client reads whole chunks and merges what is queued into one send. Messages larger
    than a chunk and packets split across chunks arrive whole and in order."""
    sizes = [10 + (i * 7919) % 2000 for i in range(600)] + [150_000, 3, 70_000]
    payloads = [bytes([65 + i % 26]) * n for i, n in enumerate(sizes)]
    got: list[Received] = []
    session = dict(clean=False, subscriptions=(("burst/#", 1),))
    async with client(mosquitto, "sink", **session, on_message=got.append) as sink, \
            client(mosquitto, "source") as source:
        recv0, send0 = sink.socket_calls
        assert source.publish_many("burst/x", payloads) == len(payloads)
        assert await source.drain(20)   # every PUBACK from the broker is in
        await until(lambda: len(got) == len(payloads), "every message")
        assert [m.payload for m in got] == payloads
        await asyncio.sleep(0.2)
        recv, send = (n - n0 for n, n0 in zip(sink.socket_calls, (recv0, send0),
                                              strict=True))
        # 600+ messages and as many PUBACKs: without the chunked reads and merged
        # writes these are >= 1800 and >= 600
        assert recv < len(payloads) // 2, recv
        assert send < len(payloads) // 2, send
        assert sink.disconnects == 0   # the broker took every merged packet
    # the broker got every PUBACK: the kept session has nothing to redeliver
    got.clear()
    async with client(mosquitto, "sink", **session, on_message=got.append):
        await asyncio.sleep(0.5)
    assert got == []


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    """A CA and a server certificate for 127.0.0.1, made by the deployment's own script."""
    directory = tmp_path / "certs"
    made = subprocess.run(["bash", str(ROOT / "scripts/make-certs.sh"), str(directory),
                           "localhost"], capture_output=True, text=True, timeout=120,
                          check=False)
    assert made.returncode == 0, made.stderr
    return directory


async def test_a_burst_over_tls_arrives_whole(tmp_path: Path, certs: Path) -> None:
    """The buffered reader over a real TLS connection (the gateways' uplink in every
    deployment): a burst arrives whole and in order, then a last small message at once.
    The client also counts what the TLS layer decrypted and kept (``pending``) as
    buffered; Python's ssl hands over a whole record per read and reads no further
    ahead, so this passes without that guard too. The launcher runs a TLS broker as its
    starter when that is root, or the private key is unreadable to it (this test failed
    so before)."""
    broker = mosquitto.start(tmp_path / "broker", mosquitto.Options(tls=mosquitto.TlsListener(
        certfile=certs / "server.crt", keyfile=certs / "server.key")))
    try:
        assert broker.tls_url is not None
        endpoint = Endpoint.parse(broker.tls_url, ca_file=certs / "ca.crt")
        sizes = [10 + (i * 7919) % 20_000 for i in range(300)] + [150_000, 3]
        payloads = [bytes([65 + i % 26]) * n for i, n in enumerate(sizes)]
        got: list[Received] = []
        sink = MqttClient(endpoint, Session("tls-sink", subscriptions=(("burst/#", 1),)),
                          on_message=got.append)
        source = MqttClient(endpoint, Session("tls-source"))
        await sink.connect()
        await source.connect()
        try:
            assert source.publish_many("burst/x", payloads) == len(payloads)
            assert await source.drain(20)
            await until(lambda: len(got) == len(payloads), "every message over TLS")
            assert [m.payload for m in got] == payloads
            # one last small message after the burst, with nothing behind it to wake us
            await source.publish_confirmed("burst/last", b"z", timeout_s=5)
            await until(lambda: len(got) == len(payloads) + 1, "the last one, at once", 2.0)
        finally:
            await source.stop()
            await sink.stop()
    finally:
        broker.stop()


def test_paho_reads_from_the_buffer_short_reads_included() -> None:
    """paho asks for a header byte or the rest of a packet; the client serves it from one
    ``recv`` of a whole chunk, with short reads as a socket's, and knows exactly how much
    it still holds (the event loop reads on while it holds anything: a wrong count means
    a busy loop or a stalled message). A socket pair: no broker needed."""
    from paho.mqtt.enums import CallbackAPIVersion

    from eldercare_transport.client import _Paho

    a, b = socket.socketpair()
    a.setblocking(False)
    c = _Paho(CallbackAPIVersion.VERSION2, client_id="buffer")
    c._sock = a
    try:
        b.sendall(b"abcdef")
        assert c._sock_recv(2) == b"ab" and c.buffered == 4
        assert c._sock_recv(10) == b"cdef" and c.buffered == 0   # short, like recv
        with pytest.raises(BlockingIOError):
            c._sock_recv(1)
        assert c.buffered == 0 and c.recv_calls == 2
        b.sendall(b"gh")
        assert c._sock_recv(1) == b"g" and c.buffered == 1
        c.discard_buffered()   # a new connection reads nothing of the old one
        assert c.buffered == 0
    finally:
        c._sock = None
        a.close()
        b.close()


def test_received_messages_are_built_whole_and_frozen() -> None:
    """The client builds each ``Received`` without its ``__init__`` (a third of the
    cost): every field set, equal to one built the usual way, still frozen."""
    from dataclasses import FrozenInstanceError, fields

    from eldercare_transport.client import _received

    fast = _received("a/b", b"x", 1, True, 7, 3)
    assert fast == Received("a/b", b"x", 1, True, 7, 3)
    assert set(vars(fast)) == {f.name for f in fields(Received)}
    with pytest.raises(FrozenInstanceError):
        fast.qos = 0  # type: ignore[misc]


async def test_publish_confirmed_times_out_without_a_broker(tmp_path: Path) -> None:
    broker = start_mosquitto(tmp_path / "b")
    try:
        async with client(broker, "p", reconnect_min_s=5) as c:
            broker.stop()
            await until(lambda: not c.connected, "down")
            with pytest.raises(PublishError, match=r"no PUBACK within 0\.3s"):
                await c.publish_confirmed("t", b"x", timeout_s=0.3)
    finally:
        broker.stop()


async def test_offline_publishes_are_refused_when_the_session_does_not_queue(
        mosquitto: Broker) -> None:
    c = MqttClient(Endpoint.parse(mosquitto.url), Session("edge", queue_while_offline=False))
    assert not c.publish("t", b"x") and c.publish_many("t", [b"a", b"b"]) == 0
    await c.connect()
    try:
        assert c.publish_many("t", [b"a", b"b"]) == 2 and await c.drain(5)
    finally:
        await c.stop()


async def test_two_clients_with_one_id_are_called_a_conflict(mosquitto: Broker) -> None:
    conflicts: list[str] = []
    clients = [MqttClient(Endpoint.parse(mosquitto.url),
                          Session("twin", reconnect_min_s=0.05, reconnect_max_s=0.2),
                          on_conflict=lambda n=n: conflicts.append(n))  # type: ignore[misc]
               for n in ("a", "b")]
    for c in clients:
        await c.start()
    try:
        await until(lambda: bool(conflicts), "conflict suspected", within_s=20)
        assert any(c.conflict_suspected for c in clients)
    finally:
        for c in clients:
            await c.stop()


def test_nodelay_constant_is_what_linux_uses() -> None:
    # the option the client sets is the one the kernel reads (guards a platform mix-up)
    assert socket.TCP_NODELAY == 1


def test_a_blocking_caller_uses_the_same_client_on_a_loop_thread(mosquitto: Broker) -> None:
    """What the installer's tool and the dynamic-security CLI do: no event loop of their
    own, the client on a loop thread; closing it leaves no task behind."""
    got: list[Received] = []
    sub = MqttClient(Endpoint.parse(mosquitto.url),
                     Session("blocking-sub", subscriptions=(("b/#", 1),)), on_message=got.append)
    pub = MqttClient(Endpoint.parse(mosquitto.url), Session("blocking-pub"))
    with LoopThread("test") as lt:
        lt.run(sub.connect(), 10)
        lt.run(pub.connect(), 10)
        lt.run(pub.publish_confirmed("b/1", b"x", timeout_s=5), 10)
        lt.run(until(lambda: len(got) == 1, "delivered"), 15)
        lt.run(pub.stop(), 10)
        lt.run(sub.stop(), 10)
        with pytest.raises(TimeoutError):
            lt.run(asyncio.sleep(5), 0.1)
        loop = lt.loop
    assert loop.is_closed() and got[0].payload == b"x"
