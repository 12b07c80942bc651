"""Helpers and fixtures for the installer tests (imported by conftest.py; no tests here).

The installer's world, for real: a cloud broker with the dynamic-security plugin, a
plain home broker, the cloud (``eldercare-cloud run``) and the gateway (``eldercare-edge
run``) as processes, and the installer tool run as its console script.

Every wait has a deadline; every process started here is stopped here, by its pid.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from eldercare_cloud.broker import Account, generate_password
from eldercare_cloud.broker.files import conf_body, write_dynsec

if TYPE_CHECKING:
    from broker_support import Broker

BIN = Path(sys.executable).parent
ADMIN_PASSWORD = "admin-password-0123"
INSTALLER_PASSWORD = "installer-password-0123"


def root_conftest(config: pytest.Config) -> ModuleType:
    """tests/conftest.py as pytest loaded it (the name "conftest" is shared by folders)."""
    path = Path(__file__).resolve().parents[1] / "conftest.py"
    for plugin in config.pluginmanager.get_plugins():
        if isinstance(plugin, ModuleType) and plugin.__file__ and \
                Path(plugin.__file__).resolve() == path:
            return plugin
    raise RuntimeError(f"{path} is not loaded")


def wait_until(cond: Callable[[], Any], timeout: float, what: str, poll: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(poll)


def script(name: str) -> str:
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"console script {name} is not installed (uv sync)"
    return found


@dataclass
class Proc:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


@dataclass
class Platform:
    tmp: Path
    cloud_broker: Broker
    home_broker: Broker
    admin: Account
    ingest: Account
    http_url: str
    env: dict[str, str]
    procs: list[Proc] = field(default_factory=list)

    def spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Proc:
        log = self.tmp / f"{name}.log"
        out = log.open("ab")
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **self.env, **(env or {})})
        p = Proc(name, proc, log)
        self.procs.append(p)
        return p

    def install(self, *args: str, stdin: str | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run ``eldercare-install`` as an installer would."""
        return subprocess.run([script("eldercare-install"), *args], input=stdin, text=True,
                              capture_output=True, timeout=timeout, check=False,
                              env={**os.environ, **self.env, "COLUMNS": "200"})

    def api(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=f"{self.http_url}/api/v1", headers=headers, timeout=30)

    def token(self, username: str, password: str) -> str:
        with self.api() as c:
            r = c.post("/auth/token", data={"username": username, "password": password})
            r.raise_for_status()
            return str(r.json()["access_token"])


def _cloud_env(tmp: Path, cloud_broker: Broker, admin: Account, ingest: Account,
               port: int) -> dict[str, str]:
    return {
        "ELDERCARE_CLOUD_ENVIRONMENT": "test",
        "ELDERCARE_CLOUD_DATA_DIR": str(tmp / "cloud"),
        "ELDERCARE_CLOUD_MQTT__URL": cloud_broker.url,
        "ELDERCARE_CLOUD_MQTT__USERNAME": ingest.username,
        "ELDERCARE_CLOUD_MQTT__PASSWORD": ingest.password,
        "ELDERCARE_CLOUD_HTTP__PORT": str(port),
        "ELDERCARE_CLOUD_AUTH__SECRET_KEY": "installer-tests-secret-key-0123456789",
        "ELDERCARE_CLOUD_CARE__POLL_S": "0.05",
        "ELDERCARE_CLOUD_BROKER__ADMIN_USERNAME": admin.username,
        "ELDERCARE_CLOUD_BROKER__ADMIN_PASSWORD": admin.password,
        # the installer tool keeps its token here, not in the real home folder
        "XDG_CONFIG_HOME": str(tmp / "xdg"),
    }


@pytest.fixture
def platform(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Platform]:
    root = root_conftest(request.config)
    admin = Account("admin", generate_password())
    ingest = Account("cloud-ingest", generate_password())
    dynsec = write_dynsec(tmp_path / "cloud-broker" / "dynamic-security.json", admin, ingest)
    cloud_broker = root.start_mosquitto(tmp_path / "cloud-broker", conf_body(dynsec))
    home_broker = root.start_mosquitto(tmp_path / "home-broker")
    port = root.free_port()
    env = _cloud_env(tmp_path, cloud_broker, admin, ingest, port)
    plat = Platform(tmp_path, cloud_broker, home_broker, admin, ingest,
                    f"http://127.0.0.1:{port}", env)
    try:
        made = subprocess.run(
            [script("eldercare-cloud"), "user", "add", "--username", "admin", "--role", "admin",
             "--password-stdin"], input=ADMIN_PASSWORD + "\n", text=True,
            capture_output=True, timeout=60, env={**os.environ, **env}, check=False)
        assert made.returncode == 0, made.stderr
        cloud = plat.spawn("cloud", [script("eldercare-cloud"), "run"])

        def healthy() -> bool:
            if cloud.proc.poll() is not None:
                raise AssertionError(f"the cloud exited: {cloud.tail()}")
            try:
                return httpx.get(f"{plat.http_url}/api/v1/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, 60, "the cloud's HTTP API")
        yield plat
    finally:
        for p in reversed(plat.procs):
            p.stop()
        home_broker.stop()
        cloud_broker.stop()


def seed_household(plat: Platform, *, district: str = "D-T1", household: str = "H-T1-001",
                   resident: str = "R-T1-001") -> dict[str, str]:
    """A district, a community, one household with rooms and one resident, and an installer
    account for the district, made through the admin API."""
    admin = plat.token("admin", ADMIN_PASSWORD)
    with plat.api(admin) as c:
        for path, body in (
            ("/districts", {"id": district, "name": "西湖区", "city": "杭州市"}),
            ("/communities", {"id": f"C-{district}", "district_id": district,
                              "name": "翠苑社区"}),
            ("/households", {"id": household, "community_id": f"C-{district}",
                             "address": "杭州市西湖区文二西路翠苑一区3幢2单元301室",
                             "rooms": ["客厅", "卧室", "厨房", "门厅"]}),
            ("/residents", {"id": resident, "household_id": household, "name": "王秀英",
                            "conditions": ["高血压"], "medications": ["氨氯地平"]}),
            ("/users", {"username": "installer1", "password": INSTALLER_PASSWORD,
                        "role": "installer", "display_name": "李师傅",
                        "district_ids": [district]}),
        ):
            r = c.post(path, json=body)
            assert r.status_code == 201, (path, r.text)
    return {"district": district, "household": household, "resident": resident,
            "admin_token": admin}
