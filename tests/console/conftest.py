"""The console's test bed: the real cloud serving the real pages, and headless Chromium.

One stack per module: Mosquitto on a free loopback port, a loopback HTTP SMS gateway that
keeps what it was asked to send (so a test reads a responder's link out of the SMS, as
the volunteer would), and ``CloudService`` (ingest + the care core's app + the console,
uvicorn on a free port, SQLite in a temp dir, the demo district) on an event loop of its
own in a background thread. Tests stay synchronous, so Playwright's sync API drives the
browser while the cloud (and, for a red press, the real gateway and the simulator) runs
on that loop.

Chromium is Debian's (``scripts/test.sh`` installs it with ``fonts-noto-cjk``); Playwright
never downloads a browser here.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from broker_support import Broker, free_port, start_mosquitto
from eldercare_cloud.demo import data as demo
from eldercare_cloud.service import CloudService
from eldercare_cloud.settings import CloudSettings
from eldercare_cloud.web import ConsoleLogin, demo_operator_login
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import (
    EventEnvelope,
    TelemetryBatch,
    TelemetryRecord,
    Up,
    encode,
    up_topic,
)

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "console"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
OPERATOR_PASSWORD = "operator-test-pass"
GATEWAY_SECRET = "console-test-gateway-secret-0001"
LINK_RE = re.compile(r"https?://\S+/respond/[^\s?]+\?token=[A-Za-z0-9_.%-]+")


# -- a loopback SMS gateway ----------------------------------------------------------------

@dataclass
class SmsSink:
    """An HTTP SMS gateway on 127.0.0.1 that accepts everything and keeps it."""

    url: str = ""
    messages: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def to(self, phone: str) -> list[str]:
        with self.lock:
            return [m["text"] for m in self.messages if m.get("to") == phone]

    def link_for(self, phone: str) -> str | None:
        for text in reversed(self.to(phone)):
            match = LINK_RE.search(text)
            if match:
                return match.group(0)
        return None


def _sms_server(sink: SmsSink) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            with sink.lock:
                sink.messages.append(body)
            reply = json.dumps({"id": f"sms-{len(sink.messages)}"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    sink.url = f"http://127.0.0.1:{server.server_address[1]}/sms"
    return server


# -- the cloud on its own loop ---------------------------------------------------------------

class LoopThread:
    """An asyncio loop in a daemon thread; ``run(coro)`` executes a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="console-stack",
                                       daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise AssertionError(f"timed out after {timeout}s; tasks on the stack's loop:\n"
                                 + self.describe_tasks()) from None

    def describe_tasks(self) -> str:
        """Where every task on the loop waits (a hang names itself in the failure)."""
        lines = []
        for task in list(asyncio.all_tasks(self.loop)):
            frames = task.get_stack(limit=3)
            where = " <- ".join(f"{f.f_code.co_name}:{f.f_lineno}" for f in frames)
            lines.append(f"  {task.get_name()}: {where}")
        return "\n".join(lines)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class ConsoleStack:
    broker: Broker
    sms: SmsSink
    loop: LoopThread
    cloud: CloudService
    settings: CloudSettings
    login: ConsoleLogin
    base_url: str
    tmp: Path
    exits: AsyncExitStack

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=10.0)

    def token(self, username: str, password: str) -> str:
        with self.http() as client:
            resp = client.post("/api/v1/auth/token",
                               data={"username": username, "password": password})
            resp.raise_for_status()
            return str(resp.json()["access_token"])

    def operator_token(self) -> str:
        return self.token(self.login.username, self.login.password)

    def add_user(self, username: str, password: str, role: str, **links: list[str]) -> None:
        from eldercare_cloud.auth.models import Role, UserCreate
        from eldercare_cloud.auth.users import UserService
        from eldercare_cloud.clock import SystemClock

        async def create() -> None:
            users = UserService(self.cloud.db, SystemClock(),
                                self.settings.auth.secret_key.get_secret_value(),
                                self.settings.tenant, 3600)
            await users.create(UserCreate(username=username, password=password,
                                          role=Role(role), **links))
        self.loop.run(create())

    def publish_event(self, gateway_id: str, device_id: str, kind: EventKind,
                      **data: Any) -> str:
        """An uplink alarm exactly as the gateway publishes it (QoS 1, EventEnvelope)."""
        now = datetime.now(UTC)  # the stack's cloud process runs on the system clock
        env = EventEnvelope(id=uuid.uuid4().hex, seq=time.monotonic_ns() // 1000,
                            gateway_id=gateway_id, gateway_ts=now, device_id=device_id,
                            kind=kind, device_ts=now, device_seq=1, data=data)
        self._publish(gateway_id, Up.EVENTS, encode(env))
        return env.id

    def publish_reading(self, gateway_id: str, device_id: str, kind: EventKind,
                        **values: float) -> str:
        """One telemetry reading as the gateway publishes it (a TelemetryBatch of one)."""
        now = datetime.now(UTC)  # the stack's cloud process runs on the system clock
        batch = TelemetryBatch(id=uuid.uuid4().hex, seq=time.monotonic_ns() // 1000,
                               gateway_id=gateway_id, gateway_ts=now, records=[
                                   TelemetryRecord(device_id=device_id, kind=kind, ts=now,
                                                   values=values)])
        self._publish(gateway_id, Up.TELEMETRY, encode(batch))
        return batch.id

    def _publish(self, gateway_id: str, channel: Up, payload: bytes) -> None:
        client = paho.Client(CallbackAPIVersion.VERSION2,
                             client_id=f"console-test-{uuid.uuid4().hex[:6]}")
        client.connect(self.broker.host, self.broker.port, keepalive=10)
        client.loop_start()
        try:
            client.publish(up_topic(gateway_id, channel), payload, qos=1).wait_for_publish(5)
        finally:
            client.disconnect()
            client.loop_stop()

    def alerts(self, token: str, **params: Any) -> list[dict[str, Any]]:
        with self.http() as client:
            resp = client.get("/api/v1/alerts", params={"open_only": True, **params},
                              headers={"Authorization": f"Bearer {token}"})
            resp.raise_for_status()
            result: list[dict[str, Any]] = resp.json()
            return result


def wait_until(cond: Callable[[], T], within_s: float = 15.0, what: str = "condition") -> T:
    """Poll until cond() is truthy or the deadline passes (never a bare sleep)."""
    deadline = time.monotonic() + within_s
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within_s}s waiting for {what}")
        time.sleep(0.05)


def demo_gateways() -> list[str]:
    return [f"GW-XH-{n:03d}" for n in range(1, len(demo.HOMES) + 1)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    tmp = tmp_path_factory.mktemp("console")
    broker = start_mosquitto(tmp / "mosquitto")
    sink = SmsSink()
    sms_server = _sms_server(sink)
    sms_thread = threading.Thread(target=sms_server.serve_forever, name="sms-sink",
                                  daemon=True)
    sms_thread.start()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    settings = CloudSettings(
        environment="test", data_dir=tmp / "cloud", demo_data=True,
        mqtt={"url": broker.url, "client_id": f"cloud-console-{uuid.uuid4().hex[:6]}",
              "reconnect_max_s": 0.5},
        http={"port": port, "public_base_url": base_url}, ingest={"batch_wait_ms": 0},
        sms={"provider": "http", "http_url": sink.url},
        # the flow is driven by people in the test, not by ladder timeouts
        care={"ladder_life_safety_timeout_s": 600, "ladder_default_timeout_s": 3600,
              "poll_s": 0.2},
        stream={"heartbeat_s": 2.0}, notify={"retry_base_s": 0.2})
    loop = LoopThread()
    exits = AsyncExitStack()

    async def start() -> tuple[CloudService, ConsoleLogin]:
        cloud = await exits.enter_async_context(CloudService(settings))
        assert await cloud.ingest.wait_connected(10), "cloud ingest did not connect"
        for gw in demo_gateways():
            await cloud.store.add_gateway(gw, GATEWAY_SECRET)
            cloud.ingest.note_gateway_registered(gw)
        assert cloud.http_url is not None
        login = await demo_operator_login(cloud.db, settings, cloud.http_url,
                                          password=OPERATOR_PASSWORD)
        return cloud, login

    try:
        cloud, login = loop.run(start(), timeout=60)
        yield ConsoleStack(broker=broker, sms=sink, loop=loop, cloud=cloud, settings=settings,
                           login=login, base_url=base_url, tmp=tmp, exits=exits)
    finally:
        try:
            loop.run(exits.aclose(), timeout=30)
        finally:
            loop.stop()
            sms_server.shutdown()
            sms_server.server_close()
            broker.stop()


# -- the browser ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright_sync = pytest.importorskip("playwright.sync_api")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.fail("Debian's chromium is not installed: run scripts/test.sh (it installs it)")
    with playwright_sync.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def page_errors(page: Any) -> list[str]:
    """Collect uncaught errors and failed requests of a page (asserted empty by tests)."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: errors.append(f"console.{msg.type}: {msg.text}")
            if msg.type == "error" else None)
    page.on("requestfailed", lambda req: errors.append(f"requestfailed: {req.url}")
            if "/api/v1/stream" not in req.url else None)
    return errors


def sign_in(page: Any, stack: ConsoleStack, username: str | None = None,
            password: str | None = None) -> None:
    page.goto(f"{stack.base_url}/console/")
    page.fill("#login input[name=username]", username or stack.login.username)
    page.fill("#login input[name=password]", password or stack.login.password)
    page.click("#login button[type=submit]")
    page.wait_for_selector("body[data-ready='1']", timeout=15000)
