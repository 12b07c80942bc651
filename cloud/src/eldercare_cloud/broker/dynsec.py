"""A small client for Mosquitto's dynamic-security plugin, spoken over MQTT.

The plugin takes JSON command batches on ``$CONTROL/dynamic-security/v1`` from an
account whose role allows it, and answers every batch on ``.../response`` with one
response per command, in order, echoing each command's ``correlationData``. This
module is the only place that sees paho objects or the plugin's JSON; callers use
the verbs below (create / revoke a gateway, ...).

paho runs its own network thread here (``loop_start``): administration is a few
request/response round trips, so a thread is simpler than wiring paho into the
event loop, and both a blocking facade (``DynsecClient``, for command-line tools and
scripts) and an asyncio facade (``AsyncDynsecClient``, for the cloud's HTTP handlers)
share it; the asyncio side awaits a ``concurrent.futures.Future`` the thread resolves.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import ssl
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from eldercare_cloud.broker.acl import CONTROL_TOPIC, Acl, gateway_acls
from eldercare_cloud.broker.errors import (
    AccountExistsError,
    BrokerUnavailableError,
    DynsecCommandError,
)
from eldercare_cloud.broker.names import (
    check_account,
    check_gateway_id,
    check_password,
    gateway_client_id,
    gateway_role,
)

log = logging.getLogger(__name__)

RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
Command = dict[str, Any]
Response = dict[str, Any]


@dataclass(frozen=True)
class DynsecOptions:
    host: str
    port: int
    username: str
    password: str
    client_id: str | None = None
    tls: bool = False
    tls_ca: Path | None = None
    timeout_s: float = 5.0

    def __repr__(self) -> str:
        return (f"DynsecOptions(host={self.host!r}, port={self.port}, "
                f"username={self.username!r}, password=***)")


# -- command builders (pure: what each verb sends) ---------------------------------------

def create_role_cmd(rolename: str, acls: list[Acl], text: str = "") -> Command:
    return {"command": "createRole", "rolename": rolename, "textname": text,
            "acls": [a.as_json() for a in acls]}


def create_client_cmd(username: str, password: str, *, clientid: str | None, role: str,
                      text: str = "") -> Command:
    cmd: Command = {"command": "createClient", "username": check_account(username),
                    "password": check_password(password), "textname": text,
                    "roles": [{"rolename": role, "priority": 0}]}
    if clientid is not None:
        cmd["clientid"] = check_account(clientid, "client id")
    return cmd


def gateway_commands(gateway_id: str, password: str) -> list[Command]:
    """createRole (its own topics only) + createClient pinned to the gateway's client id."""
    gw = check_gateway_id(gateway_id)
    check_password(password)
    role = gateway_role(gw)
    return [
        create_role_cmd(role, gateway_acls(gw), f"gateway {gw}"),
        create_client_cmd(gw, password, clientid=gateway_client_id(gw), role=role,
                          text=f"gateway {gw}"),
    ]


def revoke_commands(gateway_id: str) -> list[Command]:
    """Disable first (kicks the live session at once), then delete account and role."""
    gw = check_gateway_id(gateway_id)
    return [{"command": "disableClient", "username": gw},
            {"command": "deleteClient", "username": gw},
            {"command": "deleteRole", "rolename": gateway_role(gw)}]


_NOT_FOUND = ("not found",)
_EXISTS = ("already exists",)


def _is(resp: Response, needles: tuple[str, ...]) -> bool:
    err = str(resp.get("error", "")).lower()
    return any(n in err for n in needles)


def _check_create_gateway(responses: list[Response]) -> None:
    role, client = responses
    if "error" in role and not _is(role, _EXISTS):
        raise DynsecCommandError("createRole", str(role["error"]))
    if "error" in client:
        if _is(client, _EXISTS):
            raise AccountExistsError("createClient", str(client["error"]))
        raise DynsecCommandError("createClient", str(client["error"]))


def _check_revoke(responses: list[Response]) -> bool:
    """True when an account existed; a revoke of an unknown gateway is a no-op."""
    existed = False
    for resp in responses:
        if "error" in resp:
            if not _is(resp, _NOT_FOUND):
                raise DynsecCommandError(str(resp.get("command")), str(resp["error"]))
        elif resp.get("command") == "deleteClient":
            existed = True
    return existed


def _first_error(responses: list[Response]) -> None:
    for resp in responses:
        if "error" in resp:
            raise DynsecCommandError(str(resp.get("command")), str(resp["error"]))


# -- the transport -----------------------------------------------------------------------

class _Session:
    """One admin MQTT session; requests are matched to responses by correlation id."""

    def __init__(self, options: DynsecOptions) -> None:
        self.options = options
        self._lock = threading.Lock()
        self._pending: dict[str, concurrent.futures.Future[list[Response]]] = {}
        self._ready = threading.Event()
        self._refused: str | None = None
        client = paho.Client(CallbackAPIVersion.VERSION2,
                             client_id=options.client_id or f"dynsec-{uuid.uuid4().hex[:12]}",
                             protocol=paho.MQTTv311, clean_session=True)
        client.username_pw_set(options.username, options.password)
        if options.tls:
            client.tls_set_context(ssl.create_default_context(
                cafile=str(options.tls_ca) if options.tls_ca else None))
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        self._client = client

    def open(self) -> None:
        o = self.options
        try:
            self._client.connect(o.host, o.port, keepalive=30)
        except (OSError, ssl.SSLError) as exc:
            raise BrokerUnavailableError(f"cannot reach the broker at {o.host}:{o.port}: "
                                         f"{exc}") from exc
        self._client.loop_start()
        if not self._ready.wait(o.timeout_s) or self._refused is not None:
            reason = self._refused or f"no answer within {o.timeout_s:g}s"
            self.close()
            raise BrokerUnavailableError(
                f"dynamic-security admin login as {o.username!r} at {o.host}:{o.port} "
                f"failed: {reason}")

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
        with self._lock:
            pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(BrokerUnavailableError("admin session closed"))

    def submit(self, commands: list[Command]) -> concurrent.futures.Future[list[Response]]:
        req = uuid.uuid4().hex
        batch = [dict(c, correlationData=f"{req}:{i}") for i, c in enumerate(commands)]
        fut: concurrent.futures.Future[list[Response]] = concurrent.futures.Future()
        with self._lock:
            self._pending[req] = fut
        info = self._client.publish(CONTROL_TOPIC, json.dumps({"commands": batch}), qos=1)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            with self._lock:
                self._pending.pop(req, None)
            fut.set_exception(BrokerUnavailableError(
                f"cannot send to the broker: {paho.error_string(info.rc)}"))
        return fut

    def forget(self, fut: concurrent.futures.Future[list[Response]]) -> None:
        with self._lock:
            for key, value in list(self._pending.items()):
                if value is fut:
                    del self._pending[key]

    # paho callbacks, on paho's thread
    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any,
                    properties: Any) -> None:
        if reason_code.is_failure:
            self._refused = f"broker refused the connection ({reason_code})"
            self._ready.set()
            client.disconnect()
            return
        client.subscribe(RESPONSE_TOPIC, qos=1)

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int,
                      reason_codes: list[Any], properties: Any) -> None:
        if any(rc.is_failure for rc in reason_codes):
            self._refused = (f"account {self.options.username!r} may not read "
                             f"{RESPONSE_TOPIC} (not a dynamic-security admin)")
            client.disconnect()
        self._ready.set()

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any,
                       properties: Any) -> None:
        if reason_code.is_failure:
            log.warning("dynsec admin session lost: %s", reason_code)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        try:
            body = json.loads(msg.payload)
            responses = body["responses"]
            req = str(responses[0]["correlationData"]).split(":", 1)[0]
        except (ValueError, KeyError, IndexError, TypeError):
            log.warning("dynsec: unexpected payload on %s: %r", msg.topic, msg.payload[:200])
            return
        with self._lock:
            fut = self._pending.pop(req, None)
        if fut is not None and not fut.done():
            fut.set_result([dict(r) for r in responses])


class DynsecClient:
    """Blocking facade: ``with DynsecClient(opts) as dynsec: dynsec.create_gateway(...)``."""

    def __init__(self, options: DynsecOptions) -> None:
        self.options = options
        self._session = _Session(options)

    def __enter__(self) -> DynsecClient:
        self._session.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._session.close()

    def execute(self, commands: list[Command]) -> list[Response]:
        fut = self._session.submit(commands)
        try:
            return fut.result(self.options.timeout_s)
        except concurrent.futures.TimeoutError as exc:
            self._session.forget(fut)
            raise BrokerUnavailableError(f"dynamic security did not answer within "
                                         f"{self.options.timeout_s:g}s") from exc

    def create_gateway(self, gateway_id: str, password: str) -> None:
        _check_create_gateway(self.execute(gateway_commands(gateway_id, password)))

    def revoke_gateway(self, gateway_id: str) -> bool:
        return _check_revoke(self.execute(revoke_commands(gateway_id)))

    def set_password(self, username: str, password: str) -> None:
        _first_error(self.execute([{"command": "setClientPassword",
                                    "username": check_account(username),
                                    "password": check_password(password)}]))

    def list_clients(self) -> list[str]:
        responses = self.execute([{"command": "listClients", "verbose": False}])
        _first_error(responses)
        return [str(c) for c in responses[0].get("data", {}).get("clients", [])]


class AsyncDynsecClient:
    """asyncio facade over the same session: ``async with AsyncDynsecClient(opts) as d``."""

    def __init__(self, options: DynsecOptions) -> None:
        self.options = options
        self._session = _Session(options)

    async def __aenter__(self) -> AsyncDynsecClient:
        await asyncio.to_thread(self._session.open)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await asyncio.to_thread(self._session.close)

    async def execute(self, commands: list[Command]) -> list[Response]:
        fut = self._session.submit(commands)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(fut), self.options.timeout_s)
        except TimeoutError as exc:
            self._session.forget(fut)
            raise BrokerUnavailableError(f"dynamic security did not answer within "
                                         f"{self.options.timeout_s:g}s") from exc

    async def create_gateway(self, gateway_id: str, password: str) -> None:
        _check_create_gateway(await self.execute(gateway_commands(gateway_id, password)))

    async def revoke_gateway(self, gateway_id: str) -> bool:
        return _check_revoke(await self.execute(revoke_commands(gateway_id)))

    async def set_password(self, username: str, password: str) -> None:
        _first_error(await self.execute([{"command": "setClientPassword",
                                          "username": check_account(username),
                                          "password": check_password(password)}]))

    async def list_clients(self) -> list[str]:
        responses = await self.execute([{"command": "listClients", "verbose": False}])
        _first_error(responses)
        return [str(c) for c in responses[0].get("data", {}).get("clients", [])]
