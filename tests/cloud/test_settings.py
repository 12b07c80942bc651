"""The cloud's settings: typed sections read from ``ELDERCARE_CLOUD_<SECTION>__<FIELD>``,
secrets that never print, placeholder secrets refused in production, the old flat names
refused with their new ones, and one line (exit 2) for a bad value on the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from eldercare_cloud.errors import ConfigError
from eldercare_cloud.settings import RENAMED, CloudSettings, env_name, load_settings

REAL_SECRET = "a-real-secret-for-this-test-0123456789"


def test_sections_are_read_from_nested_environment_variables(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ELDERCARE_CLOUD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ELDERCARE_CLOUD_MQTT__URL", "mqtts://broker.example:8883")
    monkeypatch.setenv("ELDERCARE_CLOUD_MQTT__PASSWORD", "mqtt-password-0123")
    monkeypatch.setenv("ELDERCARE_CLOUD_CARE__POLL_S", "0.25")
    monkeypatch.setenv("ELDERCARE_CLOUD_HTTP__ENABLED", "false")
    monkeypatch.setenv("ELDERCARE_CLOUD_INFLUX__TOKEN", "influx-token-0123")
    settings = CloudSettings()
    assert settings.data_dir == tmp_path
    assert settings.mqtt.host_port == ("broker.example", 8883)
    assert settings.mqtt.password is not None
    assert settings.mqtt.password.get_secret_value() == "mqtt-password-0123"
    assert settings.care.poll_s == 0.25 and settings.http.enabled is False
    assert settings.influx.token is not None
    assert settings.influx.token.get_secret_value() == "influx-token-0123"


def test_secrets_never_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ELDERCARE_CLOUD_DB__URL", raising=False)
    settings = CloudSettings(
        environment="test", auth={"secret_key": REAL_SECRET},
        db={"url": "postgresql://eldercare:pg-password-0123@db:5432/eldercare"},
        mqtt={"password": "mqtt-password-0123"}, influx={"token": "influx-token-0123"},
        sms={"http_token": "sms-token-0123"}, notify={"webhook_secret": "hook-secret-0123"})
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    for secret in (REAL_SECRET, "pg-password-0123", "mqtt-password-0123", "influx-token-0123",
                   "sms-token-0123", "hook-secret-0123"):
        assert secret not in shown
    # read where it is used: the database opens with the password in its URL
    assert settings.database == "postgresql://eldercare:pg-password-0123@db:5432/eldercare"
    assert settings.effective_webhook_secret == "hook-secret-0123"


def test_the_webhook_key_is_derived_never_the_secret_key_itself() -> None:
    settings = CloudSettings(environment="test", auth={"secret_key": REAL_SECRET})
    derived = settings.effective_webhook_secret
    assert derived and derived != REAL_SECRET
    assert CloudSettings(environment="test", auth={"secret_key": REAL_SECRET + "x"}) \
        .effective_webhook_secret != derived


@pytest.mark.parametrize("secret", ["", "changeme", "secret", "dev-secret-change-me"])
def test_production_refuses_placeholder_secrets(secret: str) -> None:
    with pytest.raises(ConfigError, match="ELDERCARE_CLOUD_AUTH__SECRET_KEY"):
        CloudSettings(environment="production", auth={"secret_key": secret})
    # the default is a placeholder too
    with pytest.raises(ConfigError, match="real secret"):
        CloudSettings(environment="production")
    assert CloudSettings(environment="development", auth={"secret_key": secret})


def test_production_refuses_the_demo_sms_outbox() -> None:
    with pytest.raises(ConfigError, match="outbox"):
        CloudSettings(environment="production", auth={"secret_key": REAL_SECRET},
                      sms={"provider": "outbox"})
    assert CloudSettings(environment="production", auth={"secret_key": REAL_SECRET},
                         sms={"provider": "http", "http_url": "http://sms.example"})


def test_production_settings_carry_no_test_hooks() -> None:
    fields = set(CloudSettings.model_fields)
    for section in list(fields):
        annotation = CloudSettings.model_fields[section].annotation
        fields |= set(getattr(annotation, "model_fields", {}))
    assert not any(name.startswith("test") for name in fields), fields


def test_old_flat_names_are_refused_with_their_new_name(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELDERCARE_CLOUD_MQTT_URL", "mqtt://127.0.0.1:1883")
    with pytest.raises(ConfigError, match="set ELDERCARE_CLOUD_MQTT__URL"):
        CloudSettings()
    monkeypatch.delenv("ELDERCARE_CLOUD_MQTT_URL")
    monkeypatch.setenv("ELDERCARE_CLOUD_TEST_EXIT_AFTER_COMMIT", "true")
    with pytest.raises(ConfigError, match="no longer read"):
        CloudSettings()


def test_every_old_name_maps_to_a_field_that_exists() -> None:
    for old, new in RENAMED.items():
        if new.startswith("broker."):
            continue  # eldercare_cloud.broker.settings, its own object
        section, field = new.split(".")
        annotation = CloudSettings.model_fields[section].annotation
        assert field in getattr(annotation, "model_fields", {}), (old, new)
    assert env_name("mqtt.client_id") == "ELDERCARE_CLOUD_MQTT__CLIENT_ID"


def test_flat_keyword_arguments_are_refused_not_ignored() -> None:
    with pytest.raises(ValidationError, match="mqtt_url"):
        CloudSettings(mqtt_url="mqtt://127.0.0.1:1")  # type: ignore[call-arg]
    with pytest.raises(ConfigError,
                       match=r"^ELDERCARE_CLOUD_CARE__POLL_S \(care\.poll_s\): .*greater than 0"):
        load_settings(care={"poll_s": 0})
    with pytest.raises(ConfigError, match=r"ELDERCARE_CLOUD_DB__URL \(db\.url\): .*sqlite:///"):
        load_settings(db={"url": "mysql://db/eldercare"})


def test_a_bad_value_is_one_line_and_exit_2_on_the_command_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELDERCARE_CLOUD_")}
    res = subprocess.run([sys.executable, "-m", "eldercare_cloud.cli", "gateway", "list"],
                         capture_output=True, text=True, timeout=60, check=False,
                         env={**env, "ELDERCARE_CLOUD_DATA_DIR": str(tmp_path),
                              "ELDERCARE_CLOUD_MQTT__KEEPALIVE_S": "1"})
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert lines == ["配置错误 / config error: ELDERCARE_CLOUD_MQTT__KEEPALIVE_S "
                     "(mqtt.keepalive_s): Input should be greater than or equal to 5"], res.stderr
    prod = subprocess.run([sys.executable, "-m", "eldercare_cloud.cli", "run"],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**env, "ELDERCARE_CLOUD_DATA_DIR": str(tmp_path),
                               "ELDERCARE_CLOUD_ENVIRONMENT": "production"})
    assert prod.returncode == 2
    assert prod.stderr.strip().splitlines() == [
        "配置错误 / config error: ELDERCARE_CLOUD_AUTH__SECRET_KEY must be set to a real "
        "secret in production"], prod.stderr
    assert not (tmp_path / "cloud.sqlite3").exists()  # nothing was started
