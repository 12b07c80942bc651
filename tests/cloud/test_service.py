"""The cloud's roles (settings.role, ``eldercare-cloud run --role``) decide what a process
runs; ``eldercare-cloud broker init`` writes the broker's first security file once.
Built, not started: no broker or database is needed to see what a role wires up."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from eldercare_cloud.ingest.service import mqtt_options, subscription
from eldercare_cloud.service import CloudService
from eldercare_cloud.settings import CloudSettings
from settings_support import merged


def settings(tmp_path: Path, **values: Any) -> CloudSettings:
    return CloudSettings(**merged({"environment": "test", "data_dir": tmp_path / "cloud",
                                   "mqtt": {"url": "mqtt://127.0.0.1:1"}}, values))


def test_each_role_wires_only_its_parts(tmp_path: Path) -> None:
    everything = CloudService(settings(tmp_path))
    # two lanes, each on its own session: alarms never queue behind telemetry
    assert everything.ingest is not None and everything.ingest.mqtt.subscriptions == [
        ("ec/v1/+/up/telemetry", 1)]
    assert everything.ingest.alarm_mqtt is not None
    assert everything.ingest.alarm_mqtt.subscriptions == [
        ("ec/v1/+/up/events", 1), ("ec/v1/+/up/state", 1)]
    assert everything.serves_http and everything.runs_engine

    ingest = CloudService(settings(tmp_path, role="ingest", mqtt={"shared_group": "ingest"}))
    assert ingest.ingest is not None
    assert ingest.ingest.mqtt.subscriptions == [("$share/ingest/ec/v1/+/up/telemetry", 1)]
    assert ingest.ingest.alarm_mqtt is not None
    assert ingest.ingest.alarm_mqtt.subscriptions == [
        ("$share/ingest/ec/v1/+/up/events", 1), ("$share/ingest/ec/v1/+/up/state", 1)]
    assert not ingest.serves_http and not ingest.runs_engine

    api = CloudService(settings(tmp_path, role="api"))
    assert api.ingest is None  # no MQTT connection: it takes no share of the uplink
    assert api.serves_http and not api.runs_engine
    # an api worker with HTTP turned off serves nothing at all
    assert not CloudService(settings(tmp_path, role="api", http={"enabled": False})).serves_http

    engine = CloudService(settings(tmp_path, role="engine", mqtt={"shared_group": "ingest"}))
    assert engine.ingest is not None and engine.ingest.mqtt.subscriptions == []  # publishes
    assert engine.ingest.alarm_mqtt is None
    assert engine.runs_engine and not engine.serves_http


def test_shared_subscription_workers_use_clean_sessions(tmp_path: Path) -> None:
    # a kept session of a dead worker would keep getting its share, queued at the broker
    shared = settings(tmp_path, mqtt={"shared_group": "ingest"})
    assert subscription(shared) == "$share/ingest/ec/v1/+/up/#"
    assert mqtt_options(shared).clean_session is True
    single = settings(tmp_path)
    assert subscription(single) == "ec/v1/+/up/#"
    assert mqtt_options(single).clean_session is False  # one worker keeps its session


def test_client_id_names_the_host_for_replicas(tmp_path: Path) -> None:
    s = settings(tmp_path, mqtt={"client_id": "cloud-{host}"})
    assert s.mqtt.client_id == f"cloud-{socket.gethostname()}"
    assert settings(tmp_path, mqtt={"client_id": "plain"}).mqtt.client_id == "plain"


def test_an_unknown_role_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="role"):
        settings(tmp_path, role="worker")
    res = subprocess.run([sys.executable, "-m", "eldercare_cloud.cli", "run", "--role",
                          "worker"], capture_output=True, text=True, timeout=60, check=False,
                         env={**os.environ, "ELDERCARE_CLOUD_DATA_DIR": str(tmp_path)})
    assert res.returncode == 2
    assert "role" in res.stderr and "ingest" in res.stderr  # says which roles exist
    assert not (tmp_path / "cloud.sqlite3").exists()  # nothing was started


def _broker_init(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "eldercare_cloud.cli", "broker", "init",
                           "--dynsec-file", str(path)], capture_output=True, text=True,
                          timeout=60, check=False, env={**os.environ, **env})


def test_broker_init_writes_the_first_file_once(tmp_path: Path) -> None:
    path = tmp_path / "broker" / "dynamic-security.json"
    accounts = {"ELDERCARE_CLOUD_BROKER__ADMIN_USERNAME": "dynsec-admin",
                "ELDERCARE_CLOUD_BROKER__ADMIN_PASSWORD": "admin-password-0123456789",
                "ELDERCARE_CLOUD_MQTT__USERNAME": "cloud-ingest",
                "ELDERCARE_CLOUD_MQTT__PASSWORD": "ingest-password-0123456789"}
    missing = _broker_init(path, {k: v for k, v in accounts.items()
                                  if k != "ELDERCARE_CLOUD_MQTT__PASSWORD"})
    assert missing.returncode == 2 and "ELDERCARE_CLOUD_MQTT__PASSWORD" in missing.stderr
    assert not path.exists()
    weak = _broker_init(path, {**accounts, "ELDERCARE_CLOUD_MQTT__PASSWORD": "short"})
    assert weak.returncode == 1 and "password" in weak.stderr and not path.exists()

    assert _broker_init(path, accounts).returncode == 0
    written = json.loads(path.read_text(encoding="utf-8"))
    assert {c["username"] for c in written["clients"]} == {"dynsec-admin", "cloud-ingest"}
    assert "ingest-password" not in path.read_text(encoding="utf-8")  # only hashes
    assert path.stat().st_mode & 0o077 == 0
    before = path.read_bytes()
    again = _broker_init(path, {**accounts, "ELDERCARE_CLOUD_MQTT__PASSWORD": "other-0123456789"})
    assert again.returncode == 0 and "kept" in again.stderr
    assert path.read_bytes() == before  # the broker owns it now
