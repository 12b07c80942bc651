"""Broker security against a live Mosquitto with the dynamic-security plugin.

The access matrix of issue 7: a gateway publishes only under its own ``up/`` and reads
only its own ``down/``; ``#`` and ``$SYS/#`` give it nothing; anonymous and wrong
passwords are refused; a revoked gateway is cut off within seconds and stays out.
Negative checks ("never delivered") are made deterministic with a positive control
sent after the forbidden message on the same connection: Mosquitto keeps one
client's messages in order, so once the control has arrived the forbidden one would
have arrived before it.
"""

from __future__ import annotations

import json
import os
import queue
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from eldercare_cloud.broker import (
    Account,
    AccountExistsError,
    AsyncDynsecClient,
    BrokerSecurityError,
    BrokerUnavailableError,
    DynsecClient,
    DynsecOptions,
    InvalidAccountError,
    generate_password,
    write_broker_files,
)
from eldercare_cloud.broker.files import conf_body, dynsec_config, write_dynsec
from eldercare_cloud.broker.names import gateway_client_id

if TYPE_CHECKING:
    from broker_support import Broker

pytestmark = pytest.mark.integration

WAIT_S = 5.0


@dataclass
class Secured:
    broker: Broker
    admin: Account
    ingest: Account
    gateways: dict[str, str] = field(default_factory=dict)

    def options(self, **kw: Any) -> DynsecOptions:
        return DynsecOptions(self.broker.host, self.broker.port, self.admin.username,
                             self.admin.password, **kw)


def root_conftest(config: pytest.Config) -> ModuleType:
    """tests/conftest.py as pytest loaded it ("conftest" in sys.modules may be another
    folder's conftest by the time this module is imported)."""
    path = Path(__file__).resolve().parents[2] / "conftest.py"
    for plugin in config.pluginmanager.get_plugins():
        if isinstance(plugin, ModuleType) and plugin.__file__ and \
                Path(plugin.__file__).resolve() == path:
            return plugin
    raise RuntimeError(f"{path} is not loaded")


def start_secured(config: pytest.Config, directory: Path) -> Secured:
    admin = Account("admin", generate_password())
    ingest = Account("cloud-ingest", generate_password())
    dynsec = write_dynsec(directory / "dynamic-security.json", admin, ingest)
    broker = root_conftest(config).start_mosquitto(directory, conf_body(dynsec))
    return Secured(broker, admin, ingest)


@pytest.fixture(scope="module")
def secured(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    sec = start_secured(request.config, tmp_path_factory.mktemp("secured"))
    try:
        with DynsecClient(sec.options()) as dynsec:
            for gw in ("gw-a", "gw-b"):
                sec.gateways[gw] = generate_password()
                dynsec.create_gateway(gw, sec.gateways[gw])
        yield sec
    finally:
        sec.broker.stop()


class Client:
    """A blocking test client: connect result, SUBACK codes, received messages."""

    def __init__(self, broker: Broker, username: str | None, password: str | None,
                 client_id: str | None = None) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"t-{os.urandom(4).hex()}",
                                  protocol=paho.MQTTv311, clean_session=True)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.broker = broker
        self.connack = threading.Event()
        self.refused: str | None = None
        self.lost = threading.Event()
        self.subacks: dict[int, list[Any]] = {}
        self.suback_event = threading.Condition()
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, bytes(m.payload)))
        self.client.reconnect_delay_set(60, 60)  # no automatic retry inside a test

    def _on_connect(self, c: Any, u: Any, flags: Any, rc: Any, p: Any) -> None:
        if rc.is_failure:
            self.refused = str(rc)
        self.connack.set()

    def _on_disconnect(self, c: Any, u: Any, flags: Any, rc: Any, p: Any) -> None:
        self.lost.set()

    def _on_subscribe(self, c: Any, u: Any, mid: int, rcs: list[Any], p: Any) -> None:
        with self.suback_event:
            self.subacks[mid] = rcs
            self.suback_event.notify_all()

    def connect(self) -> bool:
        """True when the broker accepted the CONNECT."""
        self.client.connect(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()
        assert self.connack.wait(WAIT_S), "no CONNACK"
        return self.refused is None

    def subscribe(self, topic: str) -> bool:
        """True when the SUBACK granted the subscription."""
        _, mid = self.client.subscribe(topic, qos=1)
        assert mid is not None
        with self.suback_event:
            assert self.suback_event.wait_for(lambda: mid in self.subacks, WAIT_S), "no SUBACK"
        return not any(rc.is_failure for rc in self.subacks[mid])

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(WAIT_S)

    def until(self, payload: bytes) -> list[tuple[str, bytes]]:
        """Every message received up to and including the one with ``payload``."""
        seen: list[tuple[str, bytes]] = []
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            try:
                msg = self.messages.get(timeout=0.1)
            except queue.Empty:
                continue
            seen.append(msg)
            if msg[1] == payload:
                return seen
        raise AssertionError(f"{payload!r} never arrived; got {seen}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def clients(secured: Secured) -> Iterator[Any]:
    made: list[Client] = []

    def make(username: str | None, password: str | None = None,
             client_id: str | None = None, *, must_connect: bool = True) -> Client:
        c = Client(secured.broker, username, password, client_id)
        made.append(c)
        ok = c.connect()
        if must_connect:
            assert ok, f"{username} refused: {c.refused}"
        return c

    yield make
    for c in made:
        c.close()


def gateway(secured: Secured, make: Any, gw: str) -> Client:
    return make(gw, secured.gateways[gw], gateway_client_id(gw))  # type: ignore[no-any-return]


def ingest(secured: Secured, make: Any) -> Client:
    return make(secured.ingest.username, secured.ingest.password)  # type: ignore[no-any-return]


# -- who may connect ---------------------------------------------------------------------

def test_anonymous_is_refused(clients: Any) -> None:
    c = clients(None, must_connect=False)
    assert c.refused is not None


def test_wrong_password_is_refused(secured: Secured, clients: Any) -> None:
    c = clients("gw-a", "not-the-secret-at-all", gateway_client_id("gw-a"),
                must_connect=False)
    assert c.refused is not None


def test_gateway_account_is_pinned_to_its_client_id(secured: Secured, clients: Any) -> None:
    # with gw-a's secret but gw-b's client id it could kick gw-b's session off the broker
    c = clients("gw-a", secured.gateways["gw-a"], gateway_client_id("gw-b"),
                must_connect=False)
    assert c.refused is not None


def test_wildcard_usernames_are_refused(secured: Secured, clients: Any) -> None:
    for name in ("gw-a/#", "gw-+", "#"):
        c = clients(name, secured.gateways["gw-a"], must_connect=False)
        assert c.refused is not None, name


def test_wildcard_names_never_reach_the_broker(secured: Secured) -> None:
    with DynsecClient(secured.options()) as dynsec:
        before = dynsec.list_clients()
        for bad in ("gw/x", "gw+", "gw#", "", "a" * 65):
            with pytest.raises(InvalidAccountError):
                dynsec.create_gateway(bad, generate_password())
        with pytest.raises(InvalidAccountError):
            dynsec.create_gateway("gw-weak", "short")
        assert dynsec.list_clients() == before


# -- what a gateway may do ---------------------------------------------------------------

def test_gateway_cannot_publish_as_another(secured: Secured, clients: Any) -> None:
    cloud = ingest(secured, clients)
    assert cloud.subscribe("ec/v1/+/up/#")
    a = gateway(secured, clients, "gw-a")
    a.publish("ec/v1/gw-b/up/events", b"forged")
    a.publish("ec/v1/gw-b/up/state", b"forged-state")
    a.publish("ec/v1/gw-a/down/cmd", b"forged-own-downlink")
    a.publish("ec/v1/gw-a/up/events", b"control")
    seen = cloud.until(b"control")
    assert seen == [("ec/v1/gw-a/up/events", b"control")]


def test_gateway_cannot_read_another_downlink(secured: Secured, clients: Any) -> None:
    a = gateway(secured, clients, "gw-a")
    assert not a.subscribe("ec/v1/gw-b/down/#")
    assert not a.subscribe("ec/v1/gw-b/down/cmd")
    a.subscribe("ec/v1/+/down/#")  # granted or not, it must deliver nothing of gw-b's
    assert a.subscribe("ec/v1/gw-a/down/#")
    cloud = ingest(secured, clients)
    cloud.publish("ec/v1/gw-b/down/cmd", b"for-b")
    cloud.publish("ec/v1/gw-b/down/config", b"for-b-config")
    cloud.publish("ec/v1/gw-a/down/cmd", b"for-a")
    seen = a.until(b"for-a")
    assert {p for _, p in seen} == {b"for-a"}


def test_gateway_cannot_subscribe_to_everything(secured: Secured, clients: Any) -> None:
    a = gateway(secured, clients, "gw-a")
    assert not a.subscribe("#")
    assert not a.subscribe("$SYS/#")
    assert not a.subscribe("ec/v1/+/up/#")
    assert not a.subscribe("$CONTROL/dynamic-security/#")
    assert a.subscribe("ec/v1/gw-a/down/#")
    b = gateway(secured, clients, "gw-b")
    b.publish("ec/v1/gw-b/up/events", b"b-uplink")
    cloud = ingest(secured, clients)
    cloud.publish("ec/v1/gw-a/down/ack", b"control")
    seen = a.until(b"control")
    assert [p for _, p in seen] == [b"control"]


def test_gateway_cannot_drive_the_security_plugin(secured: Secured, clients: Any) -> None:
    a = gateway(secured, clients, "gw-a")
    a.publish("$CONTROL/dynamic-security/v1", json.dumps({"commands": [
        {"command": "createClient", "username": "evil", "password": "x" * 20}]}).encode())
    with DynsecClient(secured.options()) as dynsec:
        assert "evil" not in dynsec.list_clients()


def test_ingest_reads_all_uplinks_through_a_shared_subscription(secured: Secured,
                                                                clients: Any) -> None:
    cloud = ingest(secured, clients)
    assert cloud.subscribe("$share/ingest/ec/v1/+/up/#")
    assert not cloud.subscribe("#")
    gateway(secured, clients, "gw-a").publish("ec/v1/gw-a/up/events", b"from-a")
    gateway(secured, clients, "gw-b").publish("ec/v1/gw-b/up/events", b"from-b")
    got = {p for _, p in cloud.until(b"from-a")} | {p for _, p in cloud.until(b"from-b")}
    assert got == {b"from-a", b"from-b"}


def test_admin_cannot_touch_gateway_traffic(secured: Secured, clients: Any) -> None:
    admin = clients(secured.admin.username, secured.admin.password)
    assert not admin.subscribe("ec/v1/+/up/#")
    a = gateway(secured, clients, "gw-a")
    assert a.subscribe("ec/v1/gw-a/down/#")
    admin.publish("ec/v1/gw-a/down/cmd", b"from-admin")
    ingest(secured, clients).publish("ec/v1/gw-a/down/cmd", b"control")
    assert [p for _, p in a.until(b"control")] == [b"control"]


# -- the admin API -----------------------------------------------------------------------

def test_admin_login_failures_are_clear(secured: Secured) -> None:
    wrong = DynsecOptions(secured.broker.host, secured.broker.port, "admin", "x" * 20,
                          timeout_s=2)
    with pytest.raises(BrokerUnavailableError, match="refused"), DynsecClient(wrong):
        pass
    # the ingest account is real but is no dynsec admin
    ingest_opts = DynsecOptions(secured.broker.host, secured.broker.port,
                                secured.ingest.username, secured.ingest.password, timeout_s=2)
    with pytest.raises(BrokerUnavailableError, match="admin"), DynsecClient(ingest_opts):
        pass


def test_claiming_an_existing_gateway_is_refused(secured: Secured) -> None:
    with DynsecClient(secured.options()) as dynsec, pytest.raises(AccountExistsError):
        dynsec.create_gateway("gw-a", generate_password())


def test_revoked_gateway_is_cut_off_and_stays_out(secured: Secured, clients: Any) -> None:
    secret = generate_password()
    with DynsecClient(secured.options()) as dynsec:
        dynsec.create_gateway("gw-revoked", secret)
    live = clients("gw-revoked", secret, gateway_client_id("gw-revoked"))
    assert live.subscribe("ec/v1/gw-revoked/down/#")
    with DynsecClient(secured.options()) as dynsec:
        assert dynsec.revoke_gateway("gw-revoked") is True
        assert "gw-revoked" not in dynsec.list_clients()
        assert dynsec.revoke_gateway("gw-revoked") is False  # idempotent
    assert live.lost.wait(WAIT_S), "revoked gateway still connected"
    again = clients("gw-revoked", secret, gateway_client_id("gw-revoked"), must_connect=False)
    assert again.refused is not None


async def test_async_client_creates_and_revokes(secured: Secured, clients: Any) -> None:
    secret = generate_password()
    async with AsyncDynsecClient(secured.options()) as dynsec:
        await dynsec.create_gateway("gw-async", secret)
        assert "gw-async" in await dynsec.list_clients()
    c = clients("gw-async", secret, gateway_client_id("gw-async"))
    assert c.subscribe("ec/v1/gw-async/down/#")
    async with AsyncDynsecClient(secured.options()) as dynsec:
        assert await dynsec.revoke_gateway("gw-async")


def test_broker_unreachable_is_a_clear_error(request: pytest.FixtureRequest) -> None:
    port = root_conftest(request.config).free_port()
    opts = DynsecOptions("127.0.0.1", port, "admin", "x" * 20, timeout_s=1)
    with pytest.raises(BrokerUnavailableError, match="cannot reach"), DynsecClient(opts):
        pass


# -- the files ---------------------------------------------------------------------------

def test_files_hold_no_plain_password_and_are_private(tmp_path: Path) -> None:
    admin = Account("admin", generate_password())
    ingest_acc = Account("cloud-ingest", generate_password())
    files = write_broker_files(tmp_path / "broker", admin, ingest_acc, host="127.0.0.1",
                               port=1883)
    text = files.dynsec.read_text()
    assert admin.password not in text and ingest_acc.password not in text
    assert stat.S_IMODE(files.dynsec.stat().st_mode) == 0o600
    conf = files.conf.read_text()
    assert "allow_anonymous false" in conf and "per_listener_settings false" in conf
    assert f"plugin_opt_config_file {files.dynsec}" in conf
    # the plugin owns the JSON once it exists: a second write keeps the accounts
    again = write_broker_files(tmp_path / "broker", Account("admin", generate_password()),
                               ingest_acc, host="127.0.0.1", port=1884)
    assert again.dynsec.read_text() == text
    assert "listener 1884 127.0.0.1" in again.conf.read_text()
    with pytest.raises(BrokerSecurityError, match="exists"):
        write_dynsec(files.dynsec, admin, ingest_acc)


def test_initial_config_denies_by_default() -> None:
    cfg = dynsec_config(Account("admin", generate_password()),
                        Account("cloud-ingest", generate_password()))
    assert cfg["defaultACLAccess"] == {"publishClientSend": False,
                                       "publishClientReceive": False,
                                       "subscribe": False, "unsubscribe": True}
    with pytest.raises(BrokerSecurityError):
        dynsec_config(Account("same", generate_password()), Account("same",
                                                                     generate_password()))
    with pytest.raises(InvalidAccountError):
        Account("ingest/x", generate_password())
