"""A small client for Mosquitto's dynamic-security plugin, spoken over MQTT.

The plugin takes JSON command batches on ``$CONTROL/dynamic-security/v1`` from an
account whose role allows it, and answers every batch on ``.../response`` with one
response per command, in order, echoing each command's ``correlationData``. This
module is the only place that sees the plugin's JSON; callers use the verbs below
(create / revoke a gateway, ...).

The session is the shared transport's client (``eldercare_transport``) on an event
loop: the cloud's HTTP handlers use it on theirs (``AsyncDynsecClient``), command-line
tools and scripts through a blocking facade that runs it on a loop thread of its own
(``DynsecClient``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

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
from eldercare_transport import (
    ConnectError,
    Endpoint,
    LoopThread,
    MqttClient,
    Received,
    Session,
    SubscribeError,
    UnreachableError,
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


# -- the session -------------------------------------------------------------------------

class _Session:
    """One admin MQTT session on the shared transport; requests are matched to responses
    by correlation id. Its methods run on one event loop (the caller's, or the blocking
    facade's own loop thread)."""

    def __init__(self, options: DynsecOptions) -> None:
        self.options = options
        self._pending: dict[str, asyncio.Future[list[Response]]] = {}
        o = options
        self._client = MqttClient(
            Endpoint(o.host, o.port, o.tls, ca_file=o.tls_ca, username=o.username,
                     password=o.password),
            Session(o.client_id or f"dynsec-{uuid.uuid4().hex[:12]}",
                    subscriptions=((RESPONSE_TOPIC, 1),), reconnect_min_s=0.5,
                    reconnect_max_s=5.0),
            name="dynsec", on_message=self._on_message)

    async def open(self) -> None:
        o = self.options
        try:
            await self._client.connect(o.timeout_s)
        except UnreachableError as exc:
            raise BrokerUnavailableError(f"cannot reach the broker at {o.host}:{o.port}: "
                                         f"{exc.reason}") from exc
        except SubscribeError as exc:
            raise BrokerUnavailableError(
                f"dynamic-security admin login as {o.username!r} at {o.host}:{o.port} "
                f"failed: account {o.username!r} may not read {RESPONSE_TOPIC} (not a "
                "dynamic-security admin)") from exc
        except ConnectError as exc:
            raise BrokerUnavailableError(
                f"dynamic-security admin login as {o.username!r} at {o.host}:{o.port} "
                f"failed: {exc}") from exc

    async def close(self) -> None:
        await self._client.stop()
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(BrokerUnavailableError("admin session closed"))

    async def execute(self, commands: list[Command]) -> list[Response]:
        req = uuid.uuid4().hex
        batch = [dict(c, correlationData=f"{req}:{i}") for i, c in enumerate(commands)]
        fut: asyncio.Future[list[Response]] = asyncio.get_running_loop().create_future()
        self._pending[req] = fut
        try:
            if not self._client.publish(CONTROL_TOPIC, json.dumps({"commands": batch}).encode(),
                                        qos=1):
                raise BrokerUnavailableError("cannot send to the broker: not connected")
            async with asyncio.timeout(self.options.timeout_s):
                return await fut
        except TimeoutError as exc:
            raise BrokerUnavailableError(f"dynamic security did not answer within "
                                         f"{self.options.timeout_s:g}s") from exc
        finally:
            self._pending.pop(req, None)

    def _on_message(self, msg: Received) -> None:
        try:
            body = json.loads(msg.payload)
            responses = body["responses"]
            req = str(responses[0]["correlationData"]).split(":", 1)[0]
        except (ValueError, KeyError, IndexError, TypeError):
            log.warning("dynsec: unexpected payload on %s: %r", msg.topic, msg.payload[:200])
            return
        fut = self._pending.pop(req, None)
        if fut is not None and not fut.done():
            fut.set_result([dict(r) for r in responses])


class DynsecClient:
    """Blocking facade: ``with DynsecClient(opts) as dynsec: dynsec.create_gateway(...)``;
    the session runs on an event loop thread of its own."""

    def __init__(self, options: DynsecOptions) -> None:
        self.options = options
        self._session = _Session(options)
        self._loop = LoopThread("dynsec")

    def __enter__(self) -> DynsecClient:
        self._loop.start()
        try:
            self._loop.run(self._session.open())
        except BaseException:
            self._loop.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self._loop.run(self._session.close(), 10.0)
        finally:
            self._loop.close()

    def execute(self, commands: list[Command]) -> list[Response]:
        return self._loop.run(self._session.execute(commands))

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
        await self._session.open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._session.close()

    async def execute(self, commands: list[Command]) -> list[Response]:
        return await self._session.execute(commands)

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
