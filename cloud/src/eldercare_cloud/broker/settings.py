"""How the cloud administers its broker: the dynamic-security admin account.

Kept apart from ``CloudSettings`` (the ingest's and care core's object) because only
the installer endpoints use it, and a cloud without these settings still ingests;
it is built once per app, on first use, never at import. Environment variables use
the prefix ``ELDERCARE_CLOUD_BROKER__`` (as if a ``broker`` section of ``CloudSettings``:
``ELDERCARE_CLOUD_BROKER__ADMIN_PASSWORD``).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from eldercare_cloud.broker.dynsec import DynsecOptions
from eldercare_cloud.broker.errors import BrokerSecurityError


class BrokerAdminSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ELDERCARE_CLOUD_BROKER__", env_file=None,
                                      extra="ignore", frozen=True)

    #: the broker the plugin runs in (the cloud broker); defaults to the ingest's mqtt.url
    url: str | None = None
    admin_username: str | None = None
    admin_password: SecretStr | None = None
    #: what gateways are told to connect to (a public name, mqtts:// in production);
    #: defaults to ``url``
    gateway_url: str | None = None
    tls_ca: Path | None = None
    timeout_s: float = Field(default=5.0, gt=0, le=60)

    @field_validator("url", "gateway_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in {"mqtt", "mqtts"} or not parts.hostname:
                raise ValueError(f"broker url must look like mqtt://host:port, got {value!r}")
        return value

    @property
    def configured(self) -> bool:
        return bool(self.admin_username and self.admin_password)

    def broker_url(self, fallback: str) -> str:
        return self.url or fallback

    def public_url(self, fallback: str) -> str:
        return self.gateway_url or self.broker_url(fallback)

    def dynsec_options(self, fallback_url: str) -> DynsecOptions:
        if not self.configured:
            raise BrokerSecurityError(
                "broker administration is not configured (set ELDERCARE_CLOUD_BROKER__ADMIN_"
                "USERNAME and ELDERCARE_CLOUD_BROKER__ADMIN_PASSWORD)")
        assert self.admin_username is not None and self.admin_password is not None
        parts = urlsplit(self.broker_url(fallback_url))
        tls = parts.scheme == "mqtts"
        return DynsecOptions(host=parts.hostname or "127.0.0.1",
                             port=parts.port or (8883 if tls else 1883),
                             username=self.admin_username,
                             password=self.admin_password.get_secret_value(),
                             tls=tls, tls_ca=self.tls_ca, timeout_s=self.timeout_s)
