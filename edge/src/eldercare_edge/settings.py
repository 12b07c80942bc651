"""The gateway's one typed settings object: a YAML or TOML file, overridden by the environment.

Built in ``main()`` (or by a test), never at import. Environment variables use the
prefix ``ELDERCARE_EDGE_`` and ``__`` between nesting levels, e.g.
``ELDERCARE_EDGE_CLOUD__PASSWORD``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

from eldercare_edge.errors import SettingsError
from eldercare_edge.outbox import ONCE_RETENTION_S
from eldercare_protocols.catalogue import CATALOGUE
from eldercare_protocols.uplink import GATEWAY_ID_RE, GatewayConfig, Resident, SmsContact

_config_file: ContextVar[Path | None] = ContextVar("eldercare_edge_config_file", default=None)

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "password", "secret"})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsSettings(_Section):
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = False


class BrokerSettings(_Section):
    """One MQTT broker. ``mqtt://`` is plain TCP, ``mqtts://`` turns TLS on."""

    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: SecretStr | None = None
    client_id: str | None = None
    keepalive_s: int = Field(default=30, ge=5, le=600)
    tls: TlsSettings | None = None
    reconnect_min_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)
    #: home broker only: a persistent session (fixed client id, QoS 1 subscriptions), so
    #: the broker holds what devices publish while the gateway is down or restarting
    persistent_session: bool = True

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"mqtt", "mqtts", "tcp", "ssl"} or not parts.hostname:
            raise ValueError(f"broker url must look like mqtt://host:port, got {value!r}")
        return value

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if self.use_tls else 1883)

    @property
    def use_tls(self) -> bool:
        return self.tls is not None or urlsplit(self.url).scheme in {"mqtts", "ssl"}


class CloudSettings(BrokerSettings):
    """The cloud broker plus the store-and-forward knobs of the uplink."""

    inflight_window: int = Field(default=1000, ge=1, le=20000)
    #: paho's own QoS 1 in-flight limit; 0 = none, the forwarder's ``inflight_window``
    #: bounds what is outstanding. A limit makes paho queue the excess and rescan its
    #: queue on every PUBACK (O(limit) per message), which halves the backlog drain.
    mqtt_inflight: int = Field(default=0, ge=0, le=65535)
    resend_after_s: float = Field(default=30.0, gt=0)
    read_batch: int = Field(default=500, ge=1, le=5000)
    #: payload bytes of the records in that window (held in memory for a resend): with
    #: ``inflight_window`` it bounds the uplink's memory whatever the records' sizes
    inflight_max_bytes: int = Field(default=8_000_000, ge=100_000, le=500_000_000)


class Z2MSettings(_Section):
    enabled: bool = True


class SerialSettings(_Section):
    """The RF receiver dongle (or RS-485 adapter) that speaks the serial frame format."""

    port: str
    baud: int = Field(default=115200, gt=0)
    reopen_s: float = Field(default=2.0, gt=0)


class ModemSettings(_Section):
    """The GSM modem used for the SMS fallback (AT commands, text mode, UCS-2)."""

    port: str
    baud: int = Field(default=115200, gt=0)
    timeout_s: float = Field(default=10.0, gt=0)
    retries: int = Field(default=3, ge=1, le=20)
    retry_delay_s: float = Field(default=5.0, ge=0)


class OutboxSettings(_Section):
    max_bytes: int = Field(default=50_000_000, ge=10_000)
    telemetry_batch_max: int = Field(default=200, ge=1, le=1000)
    telemetry_flush_s: float = Field(default=1.0, gt=0)
    #: how long a device message's identity is kept to recognise its resends (firmware
    #: retries, the home broker's redelivery), counted back from the newest one stored;
    #: at least an hour, seven days by default (see eldercare_edge.outbox)
    once_retention_s: float = Field(default=ONCE_RETENTION_S, ge=3_600)


class HomeSettings(_Section):
    """Local bootstrap of the resident's config, used until the cloud's retained
    config arrives (the cloud's wins from then on; it is persisted on disk)."""

    resident: Resident | None = None
    sms_contacts: list[SmsContact] = Field(default_factory=list)
    devices: list[dict[str, Any]] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict)


class EdgeSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ELDERCARE_EDGE_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    gateway_id: str
    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("data/edge")
    home_broker: BrokerSettings = Field(default_factory=BrokerSettings)
    cloud: CloudSettings = Field(default_factory=CloudSettings)
    z2m: Z2MSettings = Field(default_factory=Z2MSettings)
    serial: SerialSettings | None = None
    modem: ModemSettings | None = None
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    home: HomeSettings = Field(default_factory=HomeSettings)
    rules_tick_s: float = Field(default=1.0, gt=0)
    #: the rules' state (last activity, open doors, raised alerts, devices) is written with
    #: the records that change it; last-seen times and the like at least this often
    rules_state_save_s: float = Field(default=30.0, gt=0)
    #: a restart after a longer silence than this does not count as watching the home
    #: (inactivity and vital-sign windows start again); a shorter one is a mere reboot
    rules_max_gap_s: float = Field(default=7200.0, ge=0)
    health_interval_s: float = Field(default=60.0, gt=0)
    #: overrides the config's sms_timeout_s (which cannot go below 5 s): for drills and tests
    sms_timeout_s: float | None = Field(default=None, gt=0)
    sms_check_s: float = Field(default=1.0, gt=0)
    #: a contact whose SMS failed (no SIM, no network, ...) is tried again this long after,
    #: while the alarm is unacknowledged, for at most ``sms_max_rounds`` rounds in all
    sms_retry_after_s: float = Field(default=300.0, gt=0)
    sms_max_rounds: int = Field(default=12, ge=1, le=1000)
    #: unread device messages held in memory (count and payload bytes); past either a new
    #: message is dropped and counted (``inbox_dropped``), except event-channel messages
    #: (alarms), which get twice the room. Ingest handles ~4,000 messages/s, so only a
    #: flood or a dead ingest task ever fills it.
    inbox_max: int = Field(default=100_000, ge=100, le=10_000_000)
    inbox_max_bytes: int = Field(default=32_000_000, ge=100_000)
    #: at shutdown, unread device messages are handled for at most this long (SIGTERM is
    #: honoured within seconds however deep the backlog; what is left is counted and logged)
    stop_drain_s: float = Field(default=5.0, ge=0, le=600)
    log_level: str = "INFO"

    @field_validator("gateway_id")
    @classmethod
    def _gateway_id(cls, value: str) -> str:
        if not GATEWAY_ID_RE.match(value):
            raise ValueError(f"gateway_id {value!r} must match {GATEWAY_ID_RE.pattern}")
        return value

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> EdgeSettings:
        if self.environment == "production":
            pw = self.cloud.password.get_secret_value() if self.cloud.password else ""
            if pw.lower() in PLACEHOLDER_SECRETS:
                raise ValueError("cloud.password is empty or a placeholder; set a real one")
            if not self.cloud.use_tls:
                raise ValueError("production needs TLS to the cloud (mqtts:// or cloud.tls)")
        return self

    def bootstrap_config(self) -> GatewayConfig:
        """The config the gateway starts from before the cloud has spoken."""
        return GatewayConfig.model_validate(
            {
                "gateway_id": self.gateway_id,
                "version": 0,
                "resident": self.home.resident,
                "sms_contacts": self.home.sms_contacts,
                "devices": self.home.devices,
                **self.home.extra,
            }
        )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file.get()
        if path is not None:
            if path.suffix.lower() == ".toml":
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
            else:
                sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)

    @classmethod
    def from_file(cls, path: Path | str, **overrides: Any) -> EdgeSettings:
        """Load a YAML (``.yaml``/``.yml``) or TOML (``.toml``) file; env vars win over it."""
        file = Path(path)
        if not file.is_file():
            raise SettingsError(f"config file {file} does not exist")
        with _use_file(file):
            try:
                settings = cls(**overrides)
            except ValidationError as exc:
                raise SettingsError(f"invalid config {file}: {_first_error(exc)}") from exc
            except ValueError as exc:
                raise SettingsError(f"invalid config {file}: {exc}") from exc
        settings.check_home()
        return settings

    def check_home(self) -> None:
        """Validate the ``home:`` section now (it becomes the bootstrap GatewayConfig),
        so a bad value is a config error at load time, not a traceback at start-up."""
        try:
            config = self.bootstrap_config()
        except ValidationError as exc:
            raise SettingsError(f"invalid config: home.{_first_error(exc)}") from exc
        unknown = sorted({d.type for d in config.devices if d.type not in CATALOGUE})
        if unknown:
            raise SettingsError(f"invalid config: home.devices: unknown device type"
                                f" {', '.join(map(repr, unknown))}; known: {', '.join(CATALOGUE)}")


def _first_error(exc: ValidationError) -> str:
    """One line: where, what, and how many more (pydantic's own text spans many lines)."""
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"]) or "settings"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


@contextmanager
def _use_file(path: Path) -> Iterator[None]:
    token = _config_file.set(path)
    try:
        yield
    finally:
        _config_file.reset(token)
