"""Two ``eldercare-cloud run --role engine`` processes on one PostgreSQL database, with an
``--role ingest`` process in front: the leading engine is SIGKILLed in the middle of a
ladder, the standby takes the lead and goes on from the step the database says, and no
contact is texted twice. SMS leave through the HTTP provider to a small SMS gateway run
by this test on loopback (the boundary: a real operator's SMS API cannot run here).
PostgreSQL only: SQLite is one process by design.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from care_support import BUTTON, DAUGHTER, GW, SECRET, SON
from ingest_support import GatewayClient, envelope

import db_support
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import Up

if TYPE_CHECKING:
    from broker_support import Broker

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not db_support.POSTGRES, reason="several engines need PostgreSQL "
                       "(set ELDERCARE_TEST_DATABASE_URL; scripts/test.sh does)"),
]

PHONES = {SON: "13900003001", DAUGHTER: "13900003002"}
#: each life-safety step's timeout: short, so the ladder moves within the test
STEP_S = 4


class SmsGateway:
    """An HTTP SMS provider on loopback that records every text it is asked to send."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        lock = threading.Lock()
        sent = self.sent

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    sent.append(body)
                reply = json.dumps({"id": body["id"]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def to(self, phone: str) -> int:
        return sum(1 for m in list(self.sent) if m["to"] == phone)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sms_gateway() -> Iterator[SmsGateway]:
    gateway = SmsGateway()
    try:
        yield gateway
    finally:
        gateway.close()


def start_role(tmp_path: Path, broker: Broker, db: str, role: str, name: str,
               sms_url: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ELDERCARE_CLOUD_ENVIRONMENT": "test",
        "ELDERCARE_CLOUD_DB__URL": db,
        "ELDERCARE_CLOUD_DATA_DIR": str(tmp_path / name),
        "ELDERCARE_CLOUD_AUTH__SECRET_KEY": SECRET,
        "ELDERCARE_CLOUD_HTTP__PUBLIC_BASE_URL": "http://127.0.0.1:9",
        "ELDERCARE_CLOUD_MQTT__URL": broker.url,
        "ELDERCARE_CLOUD_MQTT__CLIENT_ID": f"cloud-{name}",
        "ELDERCARE_CLOUD_MQTT__SHARED_GROUP": "ingest",
        "ELDERCARE_CLOUD_INGEST__BATCH_WAIT_MS": "0",
        "ELDERCARE_CLOUD_CARE__POLL_S": "0.2",
        "ELDERCARE_CLOUD_CARE__LADDER_LIFE_SAFETY_TIMEOUT_S": str(STEP_S),
        "ELDERCARE_CLOUD_SMS__PROVIDER": "http",
        "ELDERCARE_CLOUD_SMS__HTTP_URL": sms_url,
    }
    log = (tmp_path / f"{name}.log").open("wb")
    return subprocess.Popen([sys.executable, "-m", "eldercare_cloud.cli", "run", "--role", role],
                            env=env, stdout=log, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def read_log(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


async def until(predicate: Callable[[], bool], what: str, timeout: float = 60,  # noqa: ASYNC109
                procs: tuple[subprocess.Popen[bytes], ...] = ()) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        for proc in procs:
            assert proc.poll() is None, f"a cloud process exited while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def sent_rows(db: str, contact_id: str) -> int:
    [(n,)] = db_support.rows(db, "SELECT COUNT(*) FROM notifications WHERE contact_id = ?"
                             " AND channel = 'sms' AND status = 'sent'", (contact_id,))
    return int(n)


async def test_the_leading_engine_sigkilled_mid_ladder_the_standby_goes_on(
        tmp_path: Path, mosquitto: Broker, care_db: Path | str, sms_gateway: SmsGateway,
        gateway_factory: Callable[..., GatewayClient]) -> None:
    assert isinstance(care_db, str)
    ingest = start_role(tmp_path, mosquitto, care_db, "ingest", "ingest", sms_gateway.url)
    leader = start_role(tmp_path, mosquitto, care_db, "engine", "engine-a", sms_gateway.url)
    standby: subprocess.Popen[bytes] | None = None
    try:
        await until(lambda: "care engine: leading" in read_log(tmp_path / "engine-a.log"),
                    "engine A to lead", procs=(ingest, leader))
        standby = start_role(tmp_path, mosquitto, care_db, "engine", "engine-b",
                             sms_gateway.url)
        await until(lambda: "cloud role engine" in read_log(tmp_path / "engine-b.log"),
                    "engine B to stand by", procs=(standby,))
        await until(lambda: "ingest: connected" in read_log(tmp_path / "ingest.log"),
                    "the ingest worker", procs=(ingest,))

        gw = gateway_factory(GW)
        alarm = envelope(GW, 1, EventKind.SOS, device_id=BUTTON)
        gw.publish(Up.EVENTS, alarm)
        await until(lambda: alarm.id in gw.acked_ids(), "the ack", procs=(ingest,))
        # the leader asks the son and records the text as sent
        await until(lambda: sent_rows(care_db, SON) == 1, "the leader texting the son",
                    procs=(leader, standby))
        assert sms_gateway.to(PHONES[SON]) == 1 and sms_gateway.to(PHONES[DAUGHTER]) == 0
        assert "care engine: leading" not in read_log(tmp_path / "engine-b.log")

        leader.send_signal(signal.SIGKILL)  # mid-ladder: the son's step is running
        leader.wait(timeout=10)
        # the standby takes the lead when PostgreSQL ends the dead leader's session, and
        # asks the daughter when the son's step times out, then the next step
        await until(lambda: sms_gateway.to(PHONES[DAUGHTER]) >= 1, "the standby texting "
                    "the daughter", timeout=60, procs=(standby,))
        await until(lambda: len({m["to"] for m in list(sms_gateway.sent)}) > 2,
                    "the ladder's next step", timeout=60, procs=(standby,))
        assert "care engine: leading" in read_log(tmp_path / "engine-b.log")
        # nobody texted twice: not the son (asked by the dead leader), not the daughter
        texts: dict[str, int] = {}
        for m in list(sms_gateway.sent):
            texts[m["to"]] = texts.get(m["to"], 0) + 1
        assert all(n == 1 for n in texts.values()), texts
        assert sent_rows(care_db, SON) == 1 and sent_rows(care_db, DAUGHTER) == 1
        # one alert for the press, and it is still climbing
        [(alerts,)] = db_support.rows(care_db, "SELECT COUNT(*) FROM alerts WHERE kind = 'sos'")
        assert alerts == 1
    finally:
        for proc in (standby, leader, ingest):
            if proc is not None:
                stop(proc)
