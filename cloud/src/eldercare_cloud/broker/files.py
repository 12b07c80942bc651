"""The broker's files: the initial dynamic-security.json and a mosquitto.conf for it.

Only the first start reads these accounts from disk; from then on the plugin owns the
JSON file (it rewrites it on every change made over ``$CONTROL``), so writing is
refused when the file exists unless the caller asks to overwrite it.

Passwords are stored the way the plugin verifies them: PBKDF2-HMAC-SHA512 over a
random 12-byte salt, base64-encoded, with the iteration count beside them.
"""

from __future__ import annotations

import base64
import glob
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from eldercare_cloud.broker.acl import (
    ADMIN_ROLE,
    DEFAULT_ACL_ACCESS,
    INGEST_ROLE,
    admin_acls,
    ingest_acls,
    role_json,
)
from eldercare_cloud.broker.errors import BrokerSecurityError
from eldercare_cloud.broker.names import check_account, check_password
from eldercare_transport.mosquitto import Options, queue_lines

PLUGIN_NAME = "mosquitto_dynamic_security.so"
#: where distributions install the plugin (Debian/Ubuntu multiarch first)
PLUGIN_GLOBS = (
    "/usr/lib/*/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/lib64/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/*/mosquitto_dynamic_security.so",
)
PLUGIN_ENV = "ELDERCARE_DYNSEC_PLUGIN"
PBKDF2_ITERATIONS = 10_000
DYNSEC_FILE = "dynamic-security.json"
CONF_FILE = "mosquitto.conf"


@dataclass(frozen=True)
class Account:
    username: str
    password: str

    def __post_init__(self) -> None:
        check_account(self.username)
        check_password(self.password)

    def __repr__(self) -> str:  # never print a password into a log
        return f"Account(username={self.username!r}, password=***)"


def generate_password() -> str:
    """192 random bits, URL-safe (fits a config file and a URL)."""
    return secrets.token_urlsafe(24)


def find_plugin() -> Path:
    """The dynamic-security plugin's path: $ELDERCARE_DYNSEC_PLUGIN, else the usual places."""
    override = os.environ.get(PLUGIN_ENV)
    if override:
        path = Path(override)
        if not path.is_file():
            raise BrokerSecurityError(f"{PLUGIN_ENV}={override} is not a file")
        return path
    for pattern in PLUGIN_GLOBS:
        for hit in sorted(glob.glob(pattern)):
            return Path(hit)
    raise BrokerSecurityError(f"{PLUGIN_NAME} not found (install mosquitto >= 2.0, or set "
                              f"{PLUGIN_ENV})")


def hash_password(password: str, *, salt: bytes | None = None,
                  iterations: int = PBKDF2_ITERATIONS) -> dict[str, object]:
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return {"password": base64.b64encode(digest).decode(),
            "salt": base64.b64encode(salt).decode(), "iterations": iterations}


def _client(account: Account, role: str, text: str) -> dict[str, object]:
    return {"username": account.username, "textName": text,
            **hash_password(account.password), "roles": [{"rolename": role}]}


def dynsec_config(admin: Account, ingest: Account) -> dict[str, object]:
    """The plugin's initial state: an admin that can only drive the plugin, the cloud
    ingest's service account, no gateways yet, and deny-by-default everywhere."""
    if admin.username == ingest.username:
        raise BrokerSecurityError("the admin and the ingest account must differ")
    return {
        "clients": [
            _client(admin, ADMIN_ROLE, "dynamic-security admin"),
            _client(ingest, INGEST_ROLE, "cloud ingest service"),
        ],
        "groups": [],
        "roles": [role_json(ADMIN_ROLE, admin_acls()), role_json(INGEST_ROLE, ingest_acls())],
        "defaultACLAccess": dict(DEFAULT_ACL_ACCESS),
    }


def conf_body(dynsec_file: Path, plugin: Path | None = None) -> str:
    """The security part of mosquitto.conf (everything but the listener).

    Started by root, Mosquitto switches to the ``mosquitto`` user, which could then
    neither read nor rewrite a plugin file kept in root's private directory (a data
    folder, a test's temp dir); the broker then keeps running as the user who started
    it, which is what a non-root start does anyway."""
    plugin = plugin or find_plugin()
    user = "user root\n" if hasattr(os, "geteuid") and os.geteuid() == 0 else ""
    return (
        "per_listener_settings false\n"
        "allow_anonymous false\n"
        f"{user}"
        f"plugin {plugin}\n"
        f"plugin_opt_config_file {dynsec_file}\n"
    )


#: Queues sized for a stall of the cloud's ingest (a GC pause, a slow disk, a blocked
#: loop): with Mosquitto's defaults (20 in flight, 1,000 queued per session) a stall of
#: half a second at 2,000 msg/s overflows the cloud's session and the broker drops
#: messages. 100,000 queued is 20 s of one worker's ceiling (~5,000 msg/s); at ~600 bytes a
#: message that is ~60 MB per cloud session (two per worker: the alarm and the bulk lane),
#: not capped in bytes. The limits apply to every client, but a gateway's session only
#: ever holds a few acks and configs. The numbers are the shared launcher's defaults
#: (eldercare_transport.mosquitto.Options: tests, benchmarks and the run command's
#: anonymous brokers); deploy/mosquitto/mosquitto.conf carries the same lines.
_STALL = Options()
QUEUE_CONF = "".join(line + "\n" for line in queue_lines(
    _STALL.max_queued, _STALL.max_inflight, _STALL.max_queued_bytes))


def mosquitto_conf(dynsec_file: Path, *, host: str, port: int, plugin: Path | None = None,
                   persistence_dir: Path | None = None) -> str:
    # no Nagle: an alarm is one small packet that must not wait for a delayed ACK
    lines = [f"listener {port} {host}\n", "set_tcp_nodelay true\n", QUEUE_CONF]
    if persistence_dir is not None:
        lines.append(f"persistence true\npersistence_location {persistence_dir}/\n")
    else:
        lines.append("persistence false\n")
    return "".join(lines) + conf_body(dynsec_file, plugin)


@dataclass(frozen=True)
class BrokerFiles:
    directory: Path
    conf: Path
    dynsec: Path


def write_dynsec(path: Path, admin: Account, ingest: Account, *, overwrite: bool = False
                 ) -> Path:
    """Write the initial dynamic-security.json with 0600 permissions."""
    if path.exists() and not overwrite:
        raise BrokerSecurityError(f"{path} exists; the broker owns it now (pass overwrite to "
                                  "start over, which drops every gateway account)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(dynsec_config(admin, ingest), fh, indent=2)
    os.replace(tmp, path)
    return path


def write_broker_files(directory: Path, admin: Account, ingest: Account, *, host: str,
                       port: int, plugin: Path | None = None, persistence: bool = False,
                       overwrite: bool = False) -> BrokerFiles:
    """Write dynamic-security.json and mosquitto.conf into ``directory``.

    The conf file is always rewritten (ports change between runs); the JSON file only
    when it does not exist yet or ``overwrite`` is set."""
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    dynsec = directory / DYNSEC_FILE
    if overwrite or not dynsec.exists():
        write_dynsec(dynsec, admin, ingest, overwrite=overwrite)
    conf = directory / CONF_FILE
    conf.write_text(mosquitto_conf(dynsec, host=host, port=port, plugin=plugin,
                                   persistence_dir=directory if persistence else None))
    return BrokerFiles(directory, conf, dynsec)
