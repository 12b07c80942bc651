"""The deployment file is valid for docker-compose (no Docker engine needed for `config`)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from eldercare_cloud.settings import CloudSettings
from eldercare_edge.errors import SettingsError
from eldercare_edge.settings import EdgeSettings

ROOT = Path(__file__).resolve().parents[1]
ENV = {"INFLUX_ADMIN_PASSWORD": "x", "INFLUX_TOKEN": "x", "GRAFANA_ADMIN_PASSWORD": "x",
       "CLOUD_SECRET_KEY": "x", "CLOUD_MQTT_PASSWORD": "x", "DEMO_GATEWAY_PASSWORD": "x",
       "POSTGRES_PASSWORD": "pg-secret", "BROKER_ADMIN_PASSWORD": "x", "EMQX_COOKIE": "x",
       "EMQX_DASHBOARD_PASSWORD": "x", "PATH": "/usr/local/bin:/usr/bin:/bin"}
ROLES = {"ingest-1": "ingest", "ingest-2": "ingest", "api-1": "api", "api-2": "api",
         "engine-1": "engine", "engine-2": "engine"}


def _compose() -> str:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail("docker-compose is not installed: the README's test command installs it")
    return exe


def test_compose_config_is_valid_and_complete(monkeypatch: pytest.MonkeyPatch) -> None:
    res = subprocess.run([_compose(), "-f", str(ROOT / "docker-compose.yml"), "config"],
                         capture_output=True, text=True, env=ENV, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    services = yaml.safe_load(res.stdout)["services"]
    assert {"postgres", "broker-init", "mosquitto", "emqx1", "emqx2", "influxdb", "grafana",
            "edge", "simulator", *ROLES} <= set(services)
    grafana_mounts = " ".join(services["grafana"]["volumes"])
    assert "/var/lib/grafana/dashboards" in grafana_mounts
    provider = ROOT / "deploy/grafana/provisioning/dashboards/eldercare.yaml"
    assert yaml.safe_load(provider.read_text(encoding="utf-8"))["providers"][0]["options"][
        "path"] == "/var/lib/grafana/dashboards"
    assert list((ROOT / "dashboards/grafana").glob("*.json")), "no Grafana dashboards"
    assert "COPY dashboards" in (ROOT / "deploy/cloud.Dockerfile").read_text(encoding="utf-8")

    # the demo gateway's file holds no password: production refuses to start without one
    with pytest.raises(SettingsError, match="password"):
        EdgeSettings.from_file(ROOT / "deploy/edge/gateway.yaml")
    monkeypatch.setenv("ELDERCARE_EDGE_CLOUD__PASSWORD", "a-real-secret-from-the-environment")
    demo = EdgeSettings.from_file(ROOT / "deploy/edge/gateway.yaml")
    assert demo.gateway_id == "gw-demo-0001"
    for name in ("ingest-1", "edge", "simulator"):
        dockerfile = ROOT / services[name]["build"]["dockerfile"]
        assert dockerfile.exists(), dockerfile


def test_compose_refuses_missing_secrets() -> None:
    env = {"PATH": ENV["PATH"]}
    res = subprocess.run([_compose(), "-f", str(ROOT / "docker-compose.yml"), "config"],
                         capture_output=True, text=True, env=env, timeout=120, check=False)
    assert res.returncode != 0
    assert "set " in res.stderr


def _services() -> dict[str, Any]:
    res = subprocess.run([_compose(), "-f", str(ROOT / "docker-compose.yml"), "config"],
                         capture_output=True, text=True, env=ENV, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    services: dict[str, Any] = yaml.safe_load(res.stdout)["services"]
    return services


def test_compose_runs_the_cloud_as_roles_on_postgresql(monkeypatch: pytest.MonkeyPatch) -> None:
    services = _services()
    for name, role in ROLES.items():
        svc = services[name]
        assert svc["command"] == ["eldercare-cloud", "run", "--role", role]
        env = svc["environment"]
        assert env["ELDERCARE_CLOUD_ENVIRONMENT"] == "production"
        # one shared PostgreSQL database, never a SQLite file per container
        assert env["ELDERCARE_CLOUD_DB__URL"] == \
            "postgresql://eldercare:pg-secret@postgres:5432/eldercare"
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
        # every worker its own client id, all on one shared subscription group
        assert "{host}" in env["ELDERCARE_CLOUD_MQTT__CLIENT_ID"]
        assert env["ELDERCARE_CLOUD_MQTT__SHARED_GROUP"] == "ingest"
        # what the command and the environment say is a valid cloud configuration, read
        # from the environment as the container reads it
        with monkeypatch.context() as m:
            for key, value in env.items():
                if key.startswith("ELDERCARE_CLOUD_"):
                    m.setenv(key, str(value))
            m.setenv("ELDERCARE_CLOUD_AUTH__SECRET_KEY", "a-real-secret-0123456789")
            settings = CloudSettings(role=role)
        assert settings.environment == "production" and settings.role == role
        assert settings.database.startswith("postgresql://")
        assert settings.mqtt.password is not None and not settings.telemetry.sqlite
        assert settings.mqtt.client_id not in {"cloud-{host}", ""}
    api_ports = {services[n]["ports"][0]["published"] for n in ("api-1", "api-2")}
    assert len(api_ports) == 2  # two API workers side by side
    assert services["postgres"]["image"].startswith("postgres:15")
    assert not any("ports" in services[n] for n in ("ingest-1", "ingest-2", "engine-1"))


def test_compose_brokers_by_profile_with_tls_and_per_gateway_accounts() -> None:
    services = _services()
    assert services["mosquitto"]["profiles"] == ["mosquitto"]
    assert services["broker-init"]["profiles"] == ["mosquitto"]
    assert services["broker-init"]["command"][:3] == ["eldercare-cloud", "broker", "init"]
    assert services["mosquitto"]["depends_on"]["broker-init"]["condition"] == \
        "service_completed_successfully"
    # gateways reach Mosquitto only over TLS; plain 1883 stays on the compose network
    assert [p["target"] for p in services["mosquitto"]["ports"]] == [8883]
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text(encoding="utf-8")
    assert "allow_anonymous false" in conf
    assert "plugin /usr/lib/mosquitto_dynamic_security.so" in conf
    assert "listener 8883" in conf and "certfile /mosquitto/certs/server.crt" in conf
    assert "max_queued_messages 100000" in conf
    mounts = " ".join(v if isinstance(v, str) else f"{v['source']}:{v['target']}"
                      for v in services["mosquitto"]["volumes"])
    assert "deploy/certs:/mosquitto/certs" in mounts

    seeds = "[emqx@emqx1.eldercare, emqx@emqx2.eldercare]"
    for name in ("emqx1", "emqx2"):
        emqx = services[name]
        assert emqx["profiles"] == ["emqx"]
        env = emqx["environment"]
        assert env["EMQX_CLUSTER__STATIC__SEEDS"] == seeds
        assert env["EMQX_NODE__NAME"] == f"emqx@{name}.eldercare"
        assert env["EMQX_AUTHENTICATION__1__BACKEND"] == "built_in_database"
        assert env["EMQX_AUTHORIZATION__NO_MATCH"] == "deny"
        assert env["EMQX_LISTENERS__SSL__DEFAULT__SSL_OPTIONS__CERTFILE"].endswith("server.crt")
    acl = (ROOT / "deploy/emqx/acl.conf").read_text(encoding="utf-8")
    assert '{allow, all, publish, ["ec/v1/${username}/up/#"]}.' in acl
    assert acl.rstrip().endswith("{deny, all}.")

    # certificates are made on the host by the script, never committed
    script = ROOT / "scripts/make-certs.sh"
    assert script.exists() and os.access(script, os.X_OK)
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    assert not [f for f in tracked if f.endswith((".key", ".pem", ".crt", ".p12"))]
    assert "/deploy/certs/" in (ROOT / ".gitignore").read_text(encoding="utf-8")


def _dependencies(package: str) -> list[str]:
    import tomllib

    project = tomllib.loads((ROOT / package / "pyproject.toml").read_text(encoding="utf-8"))
    return [str(d) for d in project["project"]["dependencies"]]


def test_the_gateway_image_has_neither_the_simulator_nor_the_demo_broker() -> None:
    """The edge image installs protocols, transport and edge, without the `simulate`
    extra; the edge's own dependencies name neither the simulator nor amqtt, and every
    image that installs a package using MQTT installs the shared transport too."""
    edge_deps = " ".join(_dependencies("edge"))
    assert "eldercare-transport" in edge_deps
    assert "amqtt" not in edge_deps and "eldercare-sim" not in edge_deps
    edge = (ROOT / "deploy/edge.Dockerfile").read_text(encoding="utf-8")
    install = next(line for line in edge.splitlines() if "pip install" in line)
    assert "./edge" in install and "./transport" in install
    assert "firmware-sim" not in edge and "[simulate]" not in install and "amqtt" not in edge
    for name, package in (("edge", "edge"), ("cloud", "cloud"), ("sim", "firmware-sim")):
        assert "eldercare-transport" in " ".join(_dependencies(package)), package
        dockerfile = (ROOT / f"deploy/{name}.Dockerfile").read_text(encoding="utf-8")
        assert "COPY transport /app/transport" in dockerfile and "./transport" in dockerfile
