"""One typed settings object for the cloud, built in main()/create_app(), never at import."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from eldercare_cloud.errors import ConfigError

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "dev-secret-change-me"}


class CloudSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ELDERCARE_CLOUD_", env_file=None,
                                      extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("data/cloud")
    database_path: Path | None = None

    # cloud broker (the gateways' uplink)
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    mqtt_client_id: str = "eldercare-cloud-ingest"
    #: "$share/<group>/" prefix for many ingest workers; empty for a single worker
    mqtt_shared_group: str = ""

    # ingest batching: a batch is committed when it is this big or this old
    ingest_batch_max: int = Field(default=500, ge=1, le=10000)
    ingest_batch_wait_ms: int = Field(default=5, ge=0, le=1000)

    # HTTP API
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    secret_key: str = "dev-secret-change-me"
    public_base_url: str = "http://127.0.0.1:8080"

    # gateway health (cloud rules)
    gateway_offline_after_s: int = Field(default=300, ge=5)
    welfare_inactive_hours: float = Field(default=12.0, gt=0)

    # InfluxDB v2 (telemetry at scale); SQLite is used when no URL is set
    influx_url: str | None = None
    influx_token: str | None = None
    influx_org: str = "eldercare"
    influx_bucket: str = "telemetry"

    @property
    def db_path(self) -> Path:
        return self.database_path or (self.data_dir / "cloud.sqlite3")

    @property
    def mqtt_host_port(self) -> tuple[str, int]:
        parsed = urlparse(self.mqtt_url)
        if parsed.scheme not in {"mqtt", "mqtts"} or not parsed.hostname:
            raise ConfigError(f"mqtt_url must look like mqtt://HOST:PORT, got {self.mqtt_url!r}")
        return parsed.hostname, parsed.port or (8883 if parsed.scheme == "mqtts" else 1883)

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> CloudSettings:
        if self.environment == "production" and self.secret_key in PLACEHOLDER_SECRETS:
            raise ConfigError("ELDERCARE_CLOUD_SECRET_KEY must be set to a real secret in "
                              "production")
        return self
