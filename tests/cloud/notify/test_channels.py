"""The notification channels against real far ends: a loopback HTTP server for webhooks
and the HTTP SMS gateway, and the simulated GSM modem on a pseudo-terminal (pyserial)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from care_support import SON, Care

from eldercare_cloud.notify.base import Outbound
from eldercare_cloud.notify.sms import GsmModemChannel, HttpSmsChannel, split_ucs2
from eldercare_cloud.notify.webhook import WebhookChannel
from eldercare_protocols.events import EventKind
from eldercare_sim.modem import SimModem

pytestmark = pytest.mark.integration

TEXT = "【安心守护】王秀英（杭州市西湖区文二西路翠苑一区3幢2单元301室）紧急呼叫。您能否前往查看？"


@dataclass
class Sink:
    """A loopback HTTP server that records requests and answers with queued statuses."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


@pytest.fixture
def sink() -> Iterator[Sink]:
    box: dict[str, Sink] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            target = box["sink"]
            target.requests.append({"path": self.path, "headers": dict(self.headers),
                                    "body": body})
            status = target.statuses.pop(0) if target.statuses else 200
            reply = json.dumps({"id": f"msg-{len(target.requests)}"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box["sink"] = Sink(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, name="sink", daemon=True)
    thread.start()
    try:
        yield box["sink"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def joined(sent: list[dict[str, Any]]) -> str:
    """The text as the recipient reads it across numbered parts."""
    return "".join(re.sub(r"^\(\d+/\d+\)", "", s["text"]) for s in sent)


def message(address: str, text: str = TEXT) -> Outbound:
    return Outbound(notification_id="N-test-0001", alert_id="AL-1", channel="sms",
                    address=address, text=text, link="http://127.0.0.1:9/respond/AL-1?token=t",
                    payload={"type": "offer"})


async def test_webhook_is_signed_and_its_failures_classified(sink: Sink) -> None:
    secret = "webhook-shared-secret"
    channel = WebhookChannel(secret, timeout_s=2.0)
    sink.statuses = [200, 503, 400]
    ok = await channel.send(message(sink.url + "/hook"))
    assert ok.status == "delivered"
    req = sink.requests[0]
    ts, sig = req["headers"]["X-Eldercare-Timestamp"], req["headers"]["X-Eldercare-Signature"]
    expected = hmac.new(secret.encode(), ts.encode() + b"." + req["body"], hashlib.sha256)
    assert sig == "sha256=" + expected.hexdigest()
    assert req["headers"]["X-Eldercare-Delivery"] == "N-test-0001"
    assert json.loads(req["body"])["text"] == TEXT
    busy = await channel.send(message(sink.url + "/hook"))
    assert busy.status == "failed" and busy.transient
    refused = await channel.send(message(sink.url + "/hook"))
    assert refused.status == "failed" and not refused.transient
    nobody = await WebhookChannel(secret, timeout_s=1.0).send(message("http://127.0.0.1:9/x"))
    assert nobody.status == "failed" and nobody.transient


async def test_webhook_contact_through_the_ladder_with_retry(care: Care, sink: Sink) -> None:
    """A contact who prefers webhooks: a 503 is retried with the same delivery id."""
    webhook = WebhookChannel(care.settings.effective_webhook_secret, timeout_s=2.0)
    care.services.dispatcher.channels["webhook"] = webhook
    async with care.db.transaction() as conn:
        await conn.execute("UPDATE contacts SET preferred_channel = 'webhook', webhook_url = ?"
                           " WHERE id = ?", (sink.url + "/family", SON))
    sink.statuses = [503]
    await care.commit(EventKind.SOS)
    await care.run()
    assert len(sink.requests) == 1
    await care.advance(care.settings.notify.retry_base_s)
    assert len(sink.requests) == 2
    ids = {r["headers"]["X-Eldercare-Delivery"] for r in sink.requests}
    assert len(ids) == 1
    cur = await care.db.conn.execute("SELECT channel, status, attempts FROM notifications"
                                     " WHERE contact_id = ?", (SON,))
    assert tuple(await cur.fetchone()) == ("webhook", "delivered", 2)
    body = json.loads(sink.requests[1]["body"])
    assert body["type"] == "offer" and body["link"].startswith(care.settings.http.public_base_url)
    assert care.settings.auth.secret_key.get_secret_value() not in sink.requests[1]["body"].decode()


async def test_http_sms_gateway(sink: Sink) -> None:
    channel = HttpSmsChannel(sink.url + "/sms", "provider-token", timeout_s=2.0)
    result = await channel.send(message("13900003001"))
    assert result.status == "sent" and result.provider_ref == "msg-1"
    req = sink.requests[0]
    assert req["headers"]["Authorization"] == "Bearer provider-token"
    assert json.loads(req["body"]) == {"to": "13900003001", "text": TEXT, "id": "N-test-0001"}
    sink.statuses = [429]
    limited = await channel.send(message("13900003001"))
    assert limited.status == "failed" and limited.transient


def test_long_chinese_text_is_split_into_single_segment_parts() -> None:
    parts = split_ucs2(TEXT * 2)
    assert len(parts) > 1 and all(len(p) <= 70 for p in parts)
    assert joined([{"text": p} for p in parts]) == TEXT * 2
    assert split_ucs2("短信") == ["短信"]


async def test_gsm_modem_sends_chinese_as_ucs2(tmp_path: Path) -> None:
    with SimModem(tmp_path / "sms.jsonl") as modem:
        channel = GsmModemChannel(modem.port, timeout_s=2.0)
        result = await channel.send(message("+8613900003001"))
        assert result.status == "sent", result.error
        sent = modem.sent()
        assert {s["to"] for s in sent} == {"+8613900003001"}
        assert joined(sent) == TEXT
        assert 'AT+CSCS="UCS2"' in modem.commands
        # a network that is down is worth a retry; a missing SIM is not
        modem.fail_next_cmgs(1, code=331)
        down = await channel.send(message("13900003001", "测试"))
        assert down.status == "failed" and down.transient and "331" in (down.error or "")
        modem.set_sim_present(False)
        nosim = await channel.send(message("13900003001", "测试"))
        assert nosim.status == "failed" and not nosim.transient


async def test_gsm_modem_behind_the_ladder(care: Care, tmp_path: Path) -> None:
    with SimModem(tmp_path / "sms.jsonl") as modem:
        care.services.dispatcher.channels["sms"] = GsmModemChannel(modem.port, timeout_s=2.0)
        await care.commit(EventKind.SOS)
        await care.run()
        sent = modem.sent()
        assert {s["to"] for s in sent} == {"13900003001"}
        text = joined(sent)
        assert len(sent) > 1  # with its link, the offer needs more than one segment
        assert "王秀英" in text and "紧急呼叫" in text and "/respond/" in text
        cur = await care.db.conn.execute("SELECT status, provider_ref FROM notifications")
        status, ref = await cur.fetchone()
        assert status == "sent" and ref
