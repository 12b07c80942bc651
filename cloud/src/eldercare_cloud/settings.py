"""One typed settings object for the cloud, built in main()/create_app(), never at import.

Sections mirror the cloud's packages (``settings.mqtt.url``, ``settings.care.poll_s``), as
the edge's settings do. Environment variables use the prefix ``ELDERCARE_CLOUD_`` and
``__`` between a section and its field: ``ELDERCARE_CLOUD_MQTT__URL``,
``ELDERCARE_CLOUD_AUTH__SECRET_KEY``; top-level fields have none
(``ELDERCARE_CLOUD_ENVIRONMENT``). A name of the old flat scheme
(``ELDERCARE_CLOUD_MQTT_URL``) is refused with its new name, never silently ignored.
Secrets are ``SecretStr``: their value is read where it is used, and they print as
``**********`` in any dump or log line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from eldercare_cloud.errors import ConfigError

ENV_PREFIX = "ELDERCARE_CLOUD_"
PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "dev-secret-change-me"}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    #: ``postgresql://USER:PASSWORD@HOST:PORT/DB`` for the production engine; unset = the
    #: embedded SQLite file (``sqlite:///PATH`` names one explicitly)
    url: SecretStr | None = None
    #: the embedded SQLite file when no URL is set; default ``data_dir/cloud.sqlite3``
    path: Path | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
                ("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value


class MqttSettings(_Section):
    """The cloud broker (the gateways' uplink)."""

    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: SecretStr | None = None
    #: ``{host}`` is replaced by the host name (a container's id), so replicas started
    #: from one environment (compose ``deploy.replicas``) get client ids of their own
    client_id: str = "eldercare-cloud-ingest"
    #: "$share/<group>/" prefix for many ingest workers; empty for a single worker
    shared_group: str = ""
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    reconnect_max_s: float = Field(default=10.0, gt=0, le=300)
    #: CA bundle for mqtts:// (system CAs when unset)
    tls_ca: Path | None = None
    #: how long publish_config/publish_command wait for the broker's PUBACK
    publish_timeout_s: float = Field(default=10.0, gt=0, le=120)

    @field_validator("client_id")
    @classmethod
    def _expand_client_id(cls, value: str) -> str:
        if "{host}" in value:
            import socket

            value = value.replace("{host}", socket.gethostname())
        return value

    @property
    def host_port(self) -> tuple[str, int]:
        parsed = urlparse(self.url)
        if parsed.scheme not in {"mqtt", "mqtts"} or not parsed.hostname:
            raise ConfigError(f"mqtt.url must look like mqtt://HOST:PORT, got {self.url!r}")
        return parsed.hostname, parsed.port or (8883 if parsed.scheme == "mqtts" else 1883)


class IngestSettings(_Section):
    """Batching: a batch is committed when it is this big or this old."""

    batch_max: int = Field(default=500, ge=1, le=10000)
    batch_wait_ms: int = Field(default=5, ge=0, le=1000)
    #: messages received but not yet committed before ingest stops reading the socket
    queue_max: int = Field(default=20000, ge=100)
    #: which uplink this process takes (alarms get their own path through the cloud):
    #: "both" (the alarm lane and the bulk lane, each on its own MQTT session), "alarm"
    #: (events and gateway state only: a dedicated pool of alarm workers) or "bulk"
    #: (telemetry only). Several workers of one kind share the lane through
    #: mqtt.shared_group.
    lanes: Literal["both", "alarm", "bulk"] = "both"
    #: the bulk lane decodes this many records, then lets the event loop run (the alarm
    #: lane's socket is read between chunks, so an SOS never waits for a whole batch)
    decode_chunk: int = Field(default=64, ge=1, le=10000)
    #: the bulk lane commits while the alarm lane has nothing pending, or else after this
    #: many alarm batches in a row (an alarm lane that is never idle must not starve
    #: telemetry; an SOS then waits for at most one telemetry batch)
    bulk_every: int = Field(default=8, ge=1, le=10000)


class HttpSettings(_Section):
    #: CloudService serves the care core's app (eldercare_cloud.app) when present
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    #: where responders' links and the console point (behind a proxy: its public URL)
    public_base_url: str = "http://127.0.0.1:8080"
    #: the console and phone-page files (eldercare_cloud.web); None = the repo's dashboards/
    dashboards_dir: Path | None = None


class AuthSettings(_Section):
    #: signs access tokens and responder links; refused in production while a placeholder
    secret_key: SecretStr = SecretStr("dev-secret-change-me")
    access_token_ttl_s: int = Field(default=8 * 3600, ge=60)
    responder_link_ttl_s: int = Field(default=24 * 3600, ge=60)
    #: administrators must sign in with a one-time code (enrol them first with
    #: ``eldercare-cloud user totp --username NAME``); operators may opt in
    admin_totp_required: bool = False


class WatchSettings(_Section):
    """GPS SOS watches (the common "3G" protocol over TCP, eldercare_cloud.watch)."""

    #: None: no watch listener
    port: int | None = Field(default=None, ge=0, le=65535)
    host: str = "127.0.0.1"
    idle_timeout_s: float = Field(default=900.0, gt=0)


class CareSettings(_Section):
    """The care engine: escalation ladder, the cloud's own rules, maintenance."""

    poll_s: float = Field(default=1.0, gt=0, le=60)
    rules_interval_s: float = Field(default=30.0, gt=0)
    ladder_life_safety_timeout_s: int = Field(default=60, ge=1, le=3600)
    ladder_default_timeout_s: int = Field(default=300, ge=1, le=86400)
    #: an alert nobody at the centre acknowledged within this goes to the shift
    #: supervisors, on screen and by SMS (0: never)
    supervisor_escalation_s: int = Field(default=60, ge=0, le=3600)
    #: gateway health (cloud rules)
    gateway_offline_after_s: int = Field(default=300, ge=5)
    welfare_inactive_hours: float = Field(default=12.0, gt=0)
    #: a claimed gateway's alarms are commissioning tests for this long (walk-test window)
    commissioning_window_s: int = Field(default=1800, ge=60, le=4 * 3600)
    #: how often the engine turns overdue detector self-tests into maintenance tasks
    maintenance_scan_interval_s: float = Field(default=3600.0, gt=0)
    #: how long the gateway waits for the cloud's ack of an alarm before it texts itself
    gateway_sms_timeout_s: int = Field(default=60, ge=5, le=3600)


class NotifySettings(_Section):
    max_attempts: int = Field(default=5, ge=1, le=50)
    retry_base_s: float = Field(default=5.0, ge=0)
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    #: the key receivers use to check webhook signatures; derived from auth.secret_key when
    #: unset (never the secret_key itself: a receiver holding that could forge tokens)
    webhook_secret: SecretStr | None = None


class SmsSettings(_Section):
    #: how SMS leave the cloud: not at all, an HTTP SMS gateway, a GSM modem on a serial
    #: port, or (demo runs) kept in a loopback outbox listed at /dev/sms
    provider: Literal["none", "http", "gsm", "outbox"] = "none"
    http_url: str | None = None
    http_token: SecretStr | None = None
    serial_port: str | None = None
    serial_baud: int = 115200
    timeout_s: float = Field(default=10.0, gt=0)


class StreamSettings(_Section):
    heartbeat_s: float = Field(default=15.0, gt=0)


class TelemetrySettings(_Section):
    #: keep telemetry in SQLite as well when InfluxDB is configured
    sqlite: bool = True
    #: telemetry older than this is purged once a day (0: kept for ever)
    retention_days: int = Field(default=365, ge=0, le=36500)


class InfluxSettings(_Section):
    """InfluxDB v2 (telemetry at scale); SQLite is used when no URL is set."""

    url: str | None = None
    token: SecretStr | None = None
    org: str = "eldercare"
    bucket: str = "telemetry"
    batch_size: int = Field(default=1000, ge=1, le=50000)
    flush_ms: int = Field(default=500, ge=1, le=60000)
    #: points buffered for InfluxDB during an outage before the oldest are dropped (counted)
    max_pending: int = Field(default=200000, ge=1)
    timeout_ms: int = Field(default=5000, ge=100)
    retry_max_s: float = Field(default=30.0, gt=0)


#: the flat names of the earlier scheme (``ELDERCARE_CLOUD_<OLD>``) and where each went
RENAMED: dict[str, str] = {
    "database_url": "db.url", "database_path": "db.path",
    "mqtt_url": "mqtt.url", "mqtt_username": "mqtt.username",
    "mqtt_password": "mqtt.password", "mqtt_client_id": "mqtt.client_id",
    "mqtt_shared_group": "mqtt.shared_group", "mqtt_keepalive_s": "mqtt.keepalive_s",
    "mqtt_reconnect_max_s": "mqtt.reconnect_max_s", "mqtt_tls_ca": "mqtt.tls_ca",
    "mqtt_publish_timeout_s": "mqtt.publish_timeout_s",
    "ingest_batch_max": "ingest.batch_max", "ingest_batch_wait_ms": "ingest.batch_wait_ms",
    "ingest_queue_max": "ingest.queue_max", "ingest_lanes": "ingest.lanes",
    "ingest_decode_chunk": "ingest.decode_chunk",
    "http_enabled": "http.enabled", "http_host": "http.host", "http_port": "http.port",
    "public_base_url": "http.public_base_url", "dashboards_dir": "http.dashboards_dir",
    "secret_key": "auth.secret_key", "access_token_ttl_s": "auth.access_token_ttl_s",
    "responder_link_ttl_s": "auth.responder_link_ttl_s",
    "admin_totp_required": "auth.admin_totp_required",
    "watch_port": "watch.port", "watch_host": "watch.host",
    "watch_idle_timeout_s": "watch.idle_timeout_s",
    "care_poll_s": "care.poll_s", "care_rules_interval_s": "care.rules_interval_s",
    "ladder_life_safety_timeout_s": "care.ladder_life_safety_timeout_s",
    "ladder_default_timeout_s": "care.ladder_default_timeout_s",
    "supervisor_escalation_s": "care.supervisor_escalation_s",
    "gateway_offline_after_s": "care.gateway_offline_after_s",
    "welfare_inactive_hours": "care.welfare_inactive_hours",
    "commissioning_window_s": "care.commissioning_window_s",
    "maintenance_scan_interval_s": "care.maintenance_scan_interval_s",
    "gateway_sms_timeout_s": "care.gateway_sms_timeout_s",
    "notify_max_attempts": "notify.max_attempts", "notify_retry_base_s": "notify.retry_base_s",
    "webhook_timeout_s": "notify.webhook_timeout_s", "webhook_secret": "notify.webhook_secret",
    "sms_provider": "sms.provider", "sms_http_url": "sms.http_url",
    "sms_http_token": "sms.http_token", "sms_serial_port": "sms.serial_port",
    "sms_serial_baud": "sms.serial_baud", "sms_timeout_s": "sms.timeout_s",
    "stream_heartbeat_s": "stream.heartbeat_s",
    "telemetry_sqlite": "telemetry.sqlite", "telemetry_retention_days": "telemetry.retention_days",
    "influx_url": "influx.url", "influx_token": "influx.token", "influx_org": "influx.org",
    "influx_bucket": "influx.bucket", "influx_batch_size": "influx.batch_size",
    "influx_flush_ms": "influx.flush_ms", "influx_max_pending": "influx.max_pending",
    "influx_timeout_ms": "influx.timeout_ms", "influx_retry_max_s": "influx.retry_max_s",
    # the broker administration (eldercare_cloud.broker.settings), a section of its own
    "broker_url": "broker.url", "broker_admin_username": "broker.admin_username",
    "broker_admin_password": "broker.admin_password",
    "broker_gateway_url": "broker.gateway_url", "broker_tls_ca": "broker.tls_ca",
    "broker_timeout_s": "broker.timeout_s",
}
#: gone, not moved: test hooks have no place in production settings
REMOVED: dict[str, str] = {
    "test_exit_after_commit": "a test hook; the crash tests start their own entry point",
}


def env_name(dotted: str) -> str:
    """``mqtt.url`` -> ``ELDERCARE_CLOUD_MQTT__URL``."""
    return ENV_PREFIX + "__".join(dotted.split(".")).upper()


def _refuse_old_names(environ: dict[str, str] | os._Environ[str]) -> None:
    for old, new in RENAMED.items():
        if ENV_PREFIX + old.upper() in environ:
            raise ConfigError(f"{ENV_PREFIX}{old.upper()} was renamed: set {env_name(new)}")
    for old, why in REMOVED.items():
        if ENV_PREFIX + old.upper() in environ:
            raise ConfigError(f"{ENV_PREFIX}{old.upper()} is no longer read ({why})")


class CloudSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__",
                                      env_file=None, extra="forbid")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("data/cloud")
    #: what this process runs: "all" (the one-command shape: ingest, HTTP API, care engine)
    #: or one role of the production shape, each scaled on its own against one PostgreSQL:
    #: "ingest" (uplink subscriber on the shared subscription; no HTTP), "api" (HTTP API,
    #: console and live stream; no uplink, no engine), "engine" (care engine: alerts,
    #: ladders, notifications; one leads per database, the others stand by)
    role: Literal["all", "ingest", "api", "engine"] = "all"
    tenant: str = "default"
    #: load the demo district (杭州市西湖区) at start-up; idempotent
    demo_data: bool = False

    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    watch: WatchSettings = Field(default_factory=WatchSettings)
    care: CareSettings = Field(default_factory=CareSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    sms: SmsSettings = Field(default_factory=SmsSettings)
    stream: StreamSettings = Field(default_factory=StreamSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    influx: InfluxSettings = Field(default_factory=InfluxSettings)

    @property
    def db_path(self) -> Path:
        return self.db.path or (self.data_dir / "cloud.sqlite3")

    @property
    def database(self) -> str:
        """The database URL every component opens (``Database(settings.database)``); it
        holds the PostgreSQL password: log it through ``db.redact_url`` only."""
        if self.db.url is not None:
            return self.db.url.get_secret_value()
        return f"sqlite:///{self.db_path}"

    @property
    def effective_webhook_secret(self) -> str:
        secret = self.notify.webhook_secret
        if secret is not None and secret.get_secret_value():
            return secret.get_secret_value()
        import hashlib
        import hmac

        return hmac.new(self.auth.secret_key.get_secret_value().encode(), b"webhook",
                        hashlib.sha256).hexdigest()

    @model_validator(mode="before")
    @classmethod
    def _no_old_names(cls, data: Any) -> Any:
        _refuse_old_names(os.environ)
        return data

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> CloudSettings:
        if self.environment != "production":
            return self
        if self.auth.secret_key.get_secret_value() in PLACEHOLDER_SECRETS:
            raise ConfigError(f"{env_name('auth.secret_key')} must be set to a real secret "
                              "in production")
        if self.sms.provider == "outbox":
            raise ConfigError("sms.provider=outbox keeps messages on a page for demos; "
                              "production needs http or gsm")
        return self


def load_settings(**overrides: Any) -> CloudSettings:
    """The settings from the environment (and ``overrides``), or a ``ConfigError`` whose
    message is one line naming the variable (pydantic's own text spans many)."""
    try:
        return CloudSettings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_first_error(exc)) from exc


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"]) or "settings"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{env_name(where)} ({where}): {first['msg']}{more}"


def reveal(secret: SecretStr | None) -> str | None:
    """A secret's value, where it is handed to the library that uses it."""
    return secret.get_secret_value() if secret is not None else None
