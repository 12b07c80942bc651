"""Two ``eldercare-cloud run --role engine`` processes on one PostgreSQL database, with an
``--role ingest`` process in front: the leading engine is SIGKILLed in the middle of a
ladder, the standby takes the lead and goes on from the step the database says, and no
contact is texted twice. SMS leave through the HTTP provider to a small SMS gateway run
by this test on loopback (the boundary: a real operator's SMS API cannot run here).
PostgreSQL only: SQLite is one process by design.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from care_support import BUTTON, DAUGHTER, GW, SECRET, SON
from ingest_support import GatewayClient, envelope
from process_support import CloudProcess, start_cloud, stopping, until, wait_for_log

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
               sms_url: str) -> CloudProcess:
    return start_cloud(tmp_path, broker, name, role=role, settings={
        "DB__URL": db,
        "AUTH__SECRET_KEY": SECRET,
        "HTTP__PUBLIC_BASE_URL": "http://127.0.0.1:9",
        "MQTT__SHARED_GROUP": "ingest",
        "CARE__POLL_S": "0.2",
        "CARE__LADDER_LIFE_SAFETY_TIMEOUT_S": str(STEP_S),
        "SMS__PROVIDER": "http",
        "SMS__HTTP_URL": sms_url,
    })


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
    with stopping(ingest, leader) as running:
        await until(lambda: "care engine: leading" in leader.text(), "engine A to lead",
                    procs=(ingest, leader))
        standby = start_role(tmp_path, mosquitto, care_db, "engine", "engine-b",
                             sms_gateway.url)
        running.append(standby)
        await wait_for_log(standby, "cloud role engine")
        await wait_for_log(ingest, "ingest: connected")

        gw = gateway_factory(GW)
        alarm = envelope(GW, 1, EventKind.SOS, device_id=BUTTON)
        gw.publish(Up.EVENTS, alarm)
        await until(lambda: alarm.id in gw.acked_ids(), "the ack", procs=(ingest,))
        # the leader asks the son and records the text as sent
        await until(lambda: sent_rows(care_db, SON) == 1, "the leader texting the son",
                    procs=(leader, standby))
        assert sms_gateway.to(PHONES[SON]) == 1 and sms_gateway.to(PHONES[DAUGHTER]) == 0
        assert "care engine: leading" not in standby.text()

        leader.kill()  # mid-ladder: the son's step is running
        # the standby takes the lead when PostgreSQL ends the dead leader's session, and
        # asks the daughter when the son's step times out, then the next step
        await until(lambda: sms_gateway.to(PHONES[DAUGHTER]) >= 1, "the standby texting "
                    "the daughter", timeout=60, procs=(standby,))
        await until(lambda: len({m["to"] for m in list(sms_gateway.sent)}) > 2,
                    "the ladder's next step", timeout=60, procs=(standby,))
        assert "care engine: leading" in standby.text()
        # nobody texted twice: not the son (asked by the dead leader), not the daughter
        texts: dict[str, int] = {}
        for m in list(sms_gateway.sent):
            texts[m["to"]] = texts.get(m["to"], 0) + 1
        assert all(n == 1 for n in texts.values()), texts
        assert sent_rows(care_db, SON) == 1 and sent_rows(care_db, DAUGHTER) == 1
        # one alert for the press, and it is still climbing
        [(alerts,)] = db_support.rows(care_db, "SELECT COUNT(*) FROM alerts WHERE kind = 'sos'")
        assert alerts == 1
