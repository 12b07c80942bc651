"""The deployment file is valid for docker-compose (no Docker engine needed for `config`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from eldercare_edge.errors import SettingsError
from eldercare_edge.settings import EdgeSettings

ROOT = Path(__file__).resolve().parents[1]
ENV = {"HEALTHCHECK_PASSWORD": "x", "INFLUX_ADMIN_PASSWORD": "x", "INFLUX_TOKEN": "x",
       "GRAFANA_ADMIN_PASSWORD": "x", "CLOUD_SECRET_KEY": "x", "CLOUD_MQTT_PASSWORD": "x",
       "DEMO_GATEWAY_PASSWORD": "x", "PATH": "/usr/local/bin:/usr/bin:/bin"}


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
    assert {"mosquitto", "influxdb", "grafana", "cloud", "edge", "simulator"} <= set(services)
    assert services["cloud"]["environment"]["ELDERCARE_CLOUD_ENVIRONMENT"] == "production"
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
    for name in ("cloud", "edge", "simulator"):
        dockerfile = ROOT / services[name]["build"]["dockerfile"]
        assert dockerfile.exists(), dockerfile


def test_compose_refuses_missing_secrets() -> None:
    env = {"PATH": ENV["PATH"]}
    res = subprocess.run([_compose(), "-f", str(ROOT / "docker-compose.yml"), "config"],
                         capture_output=True, text=True, env=env, timeout=120, check=False)
    assert res.returncode != 0
    assert "set " in res.stderr
