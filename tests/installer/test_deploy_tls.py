"""The parts of docker-compose.yml's production shape that run here, for real: certificates
made by scripts/make-certs.sh, a Mosquitto with a TLS listener and the dynamic-security
plugin (its first file written by ``eldercare-cloud broker init``, as the compose
``broker-init`` service does), and the cloud as separate processes (``--role ingest`` on
the shared subscription, ``--role api``, ``--role engine``) on the test's database
(PostgreSQL in scripts/test.sh's second run), every cloud connection to the broker over
TLS. An installer claims a gateway through the API; the gateway connects over TLS with
the account the claim issued and its alarm is committed and acked, and a console
connected to the API process sees the alert that the engine process raised from what the
ingest process committed (on PostgreSQL by NOTIFY: the stream's heartbeat is then longer
than the test waits; on SQLite, one file shared by the processes, by the heartbeat's
re-read).
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import pytest
from installer_support import (
    ADMIN_PASSWORD,
    INSTALLER_PASSWORD,
    Platform,
    root_conftest,
    script,
    seed_household,
    wait_until,
)
from paho.mqtt.enums import CallbackAPIVersion

import db_support
from eldercare_cloud.broker import Account, generate_password
from eldercare_cloud.broker.files import conf_body
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import Ack, Down, EventEnvelope, Up, down_topic, encode, up_topic

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
#: shorter than the engine's poll on PostgreSQL (60 s): the alert must come by NOTIFY
ALERT_WAIT_S = 30 if db_support.POSTGRES else 60
#: fixed timestamps for the records (no wall clock in tests)
AT = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def make_certs(directory: Path) -> Path:
    res = subprocess.run(["bash", str(ROOT / "scripts/make-certs.sh"), str(directory),
                          "localhost"], capture_output=True, text=True, timeout=120,
                         check=False)
    assert res.returncode == 0, res.stderr
    for name in ("ca.crt", "server.crt", "server.key"):
        assert (directory / name).is_file(), name
    assert (directory / "server.key").stat().st_mode & 0o077 == 0  # a private key stays so
    return directory


@pytest.fixture
def tls_platform(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Platform]:
    root = root_conftest(request.config)
    certs = make_certs(tmp_path / "certs")
    admin = Account("dynsec-admin", generate_password())
    ingest = Account("cloud-ingest", generate_password())
    broker_dir = tmp_path / "cloud-broker"
    dynsec = broker_dir / "dynamic-security.json"
    made = subprocess.run(
        [script("eldercare-cloud"), "broker", "init", "--dynsec-file", str(dynsec)],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "ELDERCARE_CLOUD_BROKER__ADMIN_USERNAME": admin.username,
             "ELDERCARE_CLOUD_BROKER__ADMIN_PASSWORD": admin.password,
             "ELDERCARE_CLOUD_MQTT__USERNAME": ingest.username,
             "ELDERCARE_CLOUD_MQTT__PASSWORD": ingest.password})
    assert made.returncode == 0, made.stderr
    tls_port = root.free_port()
    broker = root.start_mosquitto(
        broker_dir, conf_body(dynsec)
        + f"listener {tls_port} 127.0.0.1\ncafile {certs / 'ca.crt'}\n"
          f"certfile {certs / 'server.crt'}\nkeyfile {certs / 'server.key'}\n"
          "tls_version tlsv1.2\n")
    tls_url = f"mqtts://127.0.0.1:{tls_port}"
    http_port = root.free_port()
    env = {
        "ELDERCARE_CLOUD_ENVIRONMENT": "test",
        "ELDERCARE_CLOUD_DATA_DIR": str(tmp_path / "cloud"),
        "ELDERCARE_CLOUD_MQTT__URL": tls_url,
        "ELDERCARE_CLOUD_MQTT__TLS_CA": str(certs / "ca.crt"),
        "ELDERCARE_CLOUD_MQTT__USERNAME": ingest.username,
        "ELDERCARE_CLOUD_MQTT__PASSWORD": ingest.password,
        "ELDERCARE_CLOUD_MQTT__SHARED_GROUP": "ingest",
        "ELDERCARE_CLOUD_MQTT__CLIENT_ID": "cloud-{host}-" + uuid.uuid4().hex[:6],
        "ELDERCARE_CLOUD_HTTP__PORT": str(http_port),
        "ELDERCARE_CLOUD_AUTH__SECRET_KEY": "deploy-tls-tests-secret-key-0123456789",
        # PostgreSQL: the engine wakes only by NOTIFY within the test's waits
        "ELDERCARE_CLOUD_CARE__POLL_S": "0.2" if not db_support.POSTGRES else "60",
        "ELDERCARE_CLOUD_CARE__RULES_INTERVAL_S": "30" if not db_support.POSTGRES else "600",
        "ELDERCARE_CLOUD_STREAM__HEARTBEAT_S": "0.5" if not db_support.POSTGRES else "120",
        "ELDERCARE_CLOUD_BROKER__URL": tls_url,
        "ELDERCARE_CLOUD_BROKER__TLS_CA": str(certs / "ca.crt"),
        "ELDERCARE_CLOUD_BROKER__ADMIN_USERNAME": admin.username,
        "ELDERCARE_CLOUD_BROKER__ADMIN_PASSWORD": admin.password,
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
    }
    plat = Platform(tmp_path, broker, broker, admin, ingest, f"http://127.0.0.1:{http_port}",
                    env)
    try:
        made = subprocess.run(
            [script("eldercare-cloud"), "user", "add", "--username", "admin", "--role",
             "admin", "--password-stdin"], input=ADMIN_PASSWORD + "\n", text=True,
            capture_output=True, timeout=60, env={**os.environ, **env}, check=False)
        assert made.returncode == 0, made.stderr
        procs = [plat.spawn(role, [script("eldercare-cloud"), "run", "--role", role],
                            env={"ELDERCARE_CLOUD_MQTT__CLIENT_ID": f"cloud-{role}-{tls_port}"})
                 for role in ("ingest", "api", "engine")]

        def healthy() -> bool:
            for p in procs:
                if p.proc.poll() is not None:
                    raise AssertionError(f"{p.name} exited: {p.tail()}")
            try:
                return httpx.get(f"{plat.http_url}/api/v1/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, 60, "the API worker")
        wait_until(lambda: "ingest: connected" in procs[0].tail(), 60,
                   "the ingest worker on the TLS listener")
        yield plat
    finally:
        for p in reversed(plat.procs):
            p.stop()
        broker.stop()


class TlsGateway:
    """A gateway on the wire over TLS with the account a claim issued."""

    def __init__(self, url: str, ca: Path, username: str, password: str,
                 client_id: str) -> None:
        host_port = url.removeprefix("mqtts://")
        host, port = host_port.rsplit(":", 1)
        self.gateway_id = username
        self.acks: list[Ack] = []
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.refused: list[Any] = []
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        client.username_pw_set(username, password)
        client.tls_set_context(ssl.create_default_context(cafile=str(ca)))
        client.on_connect = self._on_connect
        client.on_subscribe = lambda *a: self.subscribed.set()
        client.on_message = lambda c, u, msg: self.acks.append(
            Ack.model_validate_json(msg.payload))
        client.connect(host, int(port), keepalive=10)
        client.loop_start()
        self.client = client

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, rc: Any,
                    props: Any) -> None:
        if rc.is_failure:
            self.refused.append(rc)
            return
        self.connected.set()
        client.subscribe(down_topic(self.gateway_id, Down.ACK), qos=1)

    def acked_ids(self) -> list[str]:
        return [i for a in list(self.acks) for i in a.ids]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Console:
    """An operator's live stream (SSE) on the API worker, read on a thread of its own."""

    def __init__(self, url: str, token: str) -> None:
        self.events: list[dict[str, Any]] = []
        self.opened = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(url, token), daemon=True)
        self._thread.start()

    def _read(self, url: str, token: str) -> None:
        try:
            self._follow(url, token)
        except httpx.TransportError:
            # the platform stops after the test has closed this reader: a cut stream is
            # then the expected end; before close() the test's own waits fail instead
            if not self._stop.is_set():
                raise

    def _follow(self, url: str, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(timeout=httpx.Timeout(10, read=150)) as client, \
                client.stream("GET", f"{url}/api/v1/stream", headers=headers) as r:
            r.raise_for_status()
            self.opened.set()
            event: dict[str, Any] = {}
            for line in r.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith("event: "):
                    event["event"] = line[7:]
                elif line.startswith("data: "):
                    event["data"] = json.loads(line[6:])
                elif not line and event:
                    self.events.append(event)
                    event = {}

    def close(self) -> None:
        self._stop.set()


def sos(gateway_id: str, seq: int) -> EventEnvelope:
    return EventEnvelope(id=uuid.uuid4().hex, seq=seq, gateway_id=gateway_id, gateway_ts=AT,
                         device_id="btn-1", kind=EventKind.SOS, device_ts=AT, device_seq=seq)


def test_a_gateway_claimed_in_the_deployment_shape_publishes_over_tls(
        tls_platform: Platform) -> None:
    plat = tls_platform
    seeded = seed_household(plat)
    installer = plat.token("installer1", INSTALLER_PASSWORD)
    with plat.api(installer) as api:
        r = api.post("/installer/gateways/claim",
                     json={"household_id": seeded["household"], "gateway_id": "gw-tls-0001"})
    assert r.status_code in (200, 201), r.text
    creds = r.json()["broker"]
    assert creds["url"].startswith("mqtts://")  # what the gateway is told: TLS

    with plat.api(installer) as api:  # the walk test is over: alarms are real now
        done = api.delete("/installer/gateways/gw-tls-0001/commissioning")
    assert done.status_code == 200, done.text
    console = Console(plat.http_url, seeded["admin_token"])
    assert console.opened.wait(30), "the console's stream did not open"

    ca = plat.tmp / "certs" / "ca.crt"
    gw = TlsGateway(creds["url"], ca, creds["username"], creds["password"],
                    creds["client_id"])
    try:
        assert gw.connected.wait(20) and gw.subscribed.wait(20), gw.refused
        alarm = sos(gw.gateway_id, 1)
        gw.client.publish(up_topic(gw.gateway_id, Up.EVENTS), encode(alarm),
                          qos=1).wait_for_publish(10)
        wait_until(lambda: alarm.id in gw.acked_ids(), 60, "the cloud's ack over TLS")
        # ingest process -> database -> engine process -> stream -> API process -> console
        opened = wait_until(lambda: [e for e in console.events
                                     if e.get("event") == "alert.opened"], ALERT_WAIT_S,
                            "the alert on the console of the API worker")
        assert opened[0]["data"]["alert"]["kind"] == "sos"
        assert opened[0]["data"]["alert"]["gateway_id"] == "gw-tls-0001"
    finally:
        gw.close()
        console.close()
    target = db_support.env_target(plat.tmp / "cloud" / "cloud.sqlite3")
    assert db_support.rows(target, "SELECT gateway_id, kind FROM events WHERE id = ?",
                           (alarm.id,)) == [("gw-tls-0001", "sos")]
    if db_support.POSTGRES:
        assert str(target).startswith("postgresql://")

    # a broker certificate from another CA is refused: the gateway checks whom it talks to
    other = make_certs(plat.tmp / "other-ca")
    stranger = paho.Client(CallbackAPIVersion.VERSION2, client_id="gw-tls-0001-x")
    stranger.tls_set_context(ssl.create_default_context(cafile=str(other / "ca.crt")))
    host, port = creds["url"].removeprefix("mqtts://").rsplit(":", 1)
    with pytest.raises(ssl.SSLCertVerificationError):
        stranger.connect(host, int(port), keepalive=5)
