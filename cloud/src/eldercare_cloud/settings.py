"""One typed settings object for the cloud, built in main()/create_app(), never at import."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from eldercare_cloud.errors import ConfigError

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "dev-secret-change-me"}


class CloudSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ELDERCARE_CLOUD_", env_file=None,
                                      extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("data/cloud")
    database_path: Path | None = None
    #: ``postgresql://USER:PASSWORD@HOST:PORT/DB`` for the production engine; unset = the
    #: embedded SQLite file (``sqlite:///PATH`` names one explicitly)
    database_url: str | None = None
    #: what this process runs: "all" (the one-command shape: ingest, HTTP API, care engine)
    #: or one role of the production shape, each scaled on its own against one PostgreSQL:
    #: "ingest" (uplink subscriber on the shared subscription; no HTTP), "api" (HTTP API,
    #: console and live stream; no uplink, no engine), "engine" (care engine: alerts,
    #: ladders, notifications; one leads per database, the others stand by)
    role: Literal["all", "ingest", "api", "engine"] = "all"

    # cloud broker (the gateways' uplink)
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    #: ``{host}`` is replaced by the host name (a container's id), so replicas started
    #: from one environment (compose ``deploy.replicas``) get client ids of their own
    mqtt_client_id: str = "eldercare-cloud-ingest"
    #: "$share/<group>/" prefix for many ingest workers; empty for a single worker
    mqtt_shared_group: str = ""

    # ingest batching: a batch is committed when it is this big or this old
    ingest_batch_max: int = Field(default=500, ge=1, le=10000)
    ingest_batch_wait_ms: int = Field(default=5, ge=0, le=1000)
    #: messages received but not yet committed before ingest stops reading the socket
    ingest_queue_max: int = Field(default=20000, ge=100)
    mqtt_keepalive_s: int = Field(default=30, ge=5, le=3600)
    mqtt_reconnect_max_s: float = Field(default=10.0, gt=0, le=300)
    #: CA bundle for mqtts:// (system CAs when unset)
    mqtt_tls_ca: Path | None = None
    #: how long publish_config/publish_command wait for the broker's PUBACK
    mqtt_publish_timeout_s: float = Field(default=10.0, gt=0, le=120)
    #: test hook: the process SIGKILLs itself right after a commit, before its ack
    test_exit_after_commit: bool = False

    # -- ingest lanes (issue 14: alarms get their own path through the cloud) ----------
    #: which uplink this process takes: "both" (the alarm lane and the bulk lane, each on
    #: its own MQTT session), "alarm" (events and gateway state only: a dedicated pool of
    #: alarm workers) or "bulk" (telemetry only). Several workers of one kind share the
    #: lane through mqtt_shared_group.
    ingest_lanes: Literal["both", "alarm", "bulk"] = "both"
    #: the bulk lane decodes this many records, then lets the event loop run (the alarm
    #: lane's socket is read between chunks, so an SOS never waits for a whole batch)
    ingest_decode_chunk: int = Field(default=64, ge=1, le=10000)

    # HTTP API
    #: CloudService serves the care core's app (eldercare_cloud.app) when present
    http_enabled: bool = True
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    secret_key: str = "dev-secret-change-me"
    public_base_url: str = "http://127.0.0.1:8080"
    #: the console and phone-page files (eldercare_cloud.web); None = the repo's dashboards/
    dashboards_dir: Path | None = None

    # GPS SOS watches (the common "3G" protocol over TCP, eldercare_cloud.watch)
    #: None: no watch listener
    watch_port: int | None = Field(default=None, ge=0, le=65535)
    watch_host: str = "127.0.0.1"
    watch_idle_timeout_s: float = Field(default=900.0, gt=0)

    # gateway health (cloud rules)
    gateway_offline_after_s: int = Field(default=300, ge=5)
    welfare_inactive_hours: float = Field(default=12.0, gt=0)

    #: a claimed gateway's alarms are commissioning tests for this long (walk-test window)
    commissioning_window_s: int = Field(default=1800, ge=60, le=4 * 3600)

    # care core: escalation ladder, responders, notifications, live stream
    tenant: str = "default"
    #: load the demo district (杭州市西湖区) at start-up; idempotent
    demo_data: bool = False
    ladder_life_safety_timeout_s: int = Field(default=60, ge=1, le=3600)
    ladder_default_timeout_s: int = Field(default=300, ge=1, le=86400)
    #: an alert nobody at the centre acknowledged within this goes to the shift
    #: supervisors, on screen and by SMS (0: never)
    supervisor_escalation_s: int = Field(default=60, ge=0, le=3600)
    #: administrators must sign in with a one-time code (enrol them first with
    #: ``eldercare-cloud user totp --username NAME``); operators may opt in
    admin_totp_required: bool = False
    #: telemetry older than this is purged once a day (0: kept for ever)
    telemetry_retention_days: int = Field(default=365, ge=0, le=36500)
    responder_link_ttl_s: int = Field(default=24 * 3600, ge=60)
    access_token_ttl_s: int = Field(default=8 * 3600, ge=60)
    care_poll_s: float = Field(default=1.0, gt=0, le=60)
    care_rules_interval_s: float = Field(default=30.0, gt=0)
    #: how often the engine turns overdue detector self-tests into maintenance tasks
    maintenance_scan_interval_s: float = Field(default=3600.0, gt=0)
    notify_max_attempts: int = Field(default=5, ge=1, le=50)
    notify_retry_base_s: float = Field(default=5.0, ge=0)
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    #: the key receivers use to check webhook signatures; derived from secret_key when empty
    #: (never the secret_key itself: a receiver holding that could forge tokens and links)
    webhook_secret: str = ""
    stream_heartbeat_s: float = Field(default=15.0, gt=0)
    #: how SMS leave the cloud: not at all, an HTTP SMS gateway, a GSM modem on a serial
    #: port, or (demo runs) kept in a loopback outbox listed at /dev/sms
    sms_provider: Literal["none", "http", "gsm", "outbox"] = "none"
    sms_http_url: str | None = None
    sms_http_token: str | None = None
    sms_serial_port: str | None = None
    sms_serial_baud: int = 115200
    sms_timeout_s: float = Field(default=10.0, gt=0)
    #: how long the gateway waits for the cloud's ack of an alarm before it texts itself
    gateway_sms_timeout_s: int = Field(default=60, ge=5, le=3600)

    # InfluxDB v2 (telemetry at scale); SQLite is used when no URL is set
    influx_url: str | None = None
    influx_token: str | None = None
    influx_org: str = "eldercare"
    influx_bucket: str = "telemetry"
    #: keep telemetry in SQLite as well when InfluxDB is configured
    telemetry_sqlite: bool = True
    influx_batch_size: int = Field(default=1000, ge=1, le=50000)
    influx_flush_ms: int = Field(default=500, ge=1, le=60000)
    #: points buffered for InfluxDB during an outage before the oldest are dropped (counted)
    influx_max_pending: int = Field(default=200000, ge=1)
    influx_timeout_ms: int = Field(default=5000, ge=100)
    influx_retry_max_s: float = Field(default=30.0, gt=0)

    @field_validator("mqtt_client_id")
    @classmethod
    def _expand_client_id(cls, value: str) -> str:
        if "{host}" in value:
            import socket

            value = value.replace("{host}", socket.gethostname())
        return value

    @property
    def db_path(self) -> Path:
        return self.database_path or (self.data_dir / "cloud.sqlite3")

    @property
    def database(self) -> str:
        """The database URL every component opens (``Database(settings.database)``)."""
        return self.database_url or f"sqlite:///{self.db_path}"

    @property
    def mqtt_host_port(self) -> tuple[str, int]:
        parsed = urlparse(self.mqtt_url)
        if parsed.scheme not in {"mqtt", "mqtts"} or not parsed.hostname:
            raise ConfigError(f"mqtt_url must look like mqtt://HOST:PORT, got {self.mqtt_url!r}")
        return parsed.hostname, parsed.port or (8883 if parsed.scheme == "mqtts" else 1883)

    @property
    def effective_webhook_secret(self) -> str:
        if self.webhook_secret:
            return self.webhook_secret
        import hashlib
        import hmac

        return hmac.new(self.secret_key.encode(), b"webhook", hashlib.sha256).hexdigest()

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> CloudSettings:
        if self.database_url is not None and not self.database_url.startswith(
                ("sqlite:///", "postgresql://", "postgres://")):
            raise ConfigError("ELDERCARE_CLOUD_DATABASE_URL must start with sqlite:/// or "
                              "postgresql://")
        if self.environment == "production" and self.secret_key in PLACEHOLDER_SECRETS:
            raise ConfigError("ELDERCARE_CLOUD_SECRET_KEY must be set to a real secret in "
                              "production")
        if self.environment == "production" and self.sms_provider == "outbox":
            raise ConfigError("sms_provider=outbox keeps messages on a page for demos; "
                              "production needs http or gsm")
        if self.environment == "production" and self.test_exit_after_commit:
            raise ConfigError("ELDERCARE_CLOUD_TEST_EXIT_AFTER_COMMIT is a test hook; "
                              "never set it in production")
        return self
