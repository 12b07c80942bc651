"""Where a broker is and how to log in to it: parsed once, passed explicitly.

No application settings are read here: each app maps its own settings onto an
``Endpoint`` (the edge from its nested ``BrokerSettings``, the cloud from its flat
``mqtt_*`` fields, the simulator and the installer from a command-line URL).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

from eldercare_transport.errors import EndpointError

PLAIN_SCHEMES = frozenset({"mqtt", "tcp"})
TLS_SCHEMES = frozenset({"mqtts", "ssl"})


@dataclass(frozen=True)
class Endpoint:
    """A broker address with its credentials and TLS material."""

    host: str
    port: int
    tls: bool = False
    #: CA bundle that signed the broker's certificate (None: the system's)
    ca_file: Path | None = None
    #: a client certificate, for brokers that authenticate by certificate
    cert_file: Path | None = None
    key_file: Path | None = None
    #: skip the host-name check (the certificate chain is still verified)
    tls_insecure: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str, *, username: str | None = None, password: str | None = None,
              tls: bool | None = None, ca_file: Path | None = None,
              cert_file: Path | None = None, key_file: Path | None = None,
              tls_insecure: bool = False) -> Endpoint:
        """``mqtt://host:port`` (plain) or ``mqtts://host:port`` (TLS); ``tcp://``,
        ``ssl://`` and a bare ``host:port`` are accepted too. Credentials in the URL
        (``mqtt://user:pass@host``) are used unless ``username`` is given. ``tls=True``
        turns TLS on whatever the scheme says (a settings file with a TLS section)."""
        text = url.strip() if "://" in url else f"mqtt://{url.strip()}"
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        if scheme not in PLAIN_SCHEMES | TLS_SCHEMES:
            raise EndpointError(f"unsupported broker URL {url!r}: use mqtt://HOST:PORT or "
                                "mqtts://HOST:PORT")
        use_tls = scheme in TLS_SCHEMES if tls is None else tls or scheme in TLS_SCHEMES
        try:
            port = parts.port or (8883 if use_tls else 1883)
        except ValueError as exc:
            raise EndpointError(f"invalid port in broker URL {url!r}") from exc
        if not parts.hostname:
            raise EndpointError(f"no host in broker URL {url!r}")
        if parts.path not in ("", "/") or parts.query:
            raise EndpointError(f"a broker URL has no path or query: {url!r}")
        if username is None and parts.username:
            username = unquote(parts.username)
            if password is None and parts.password is not None:
                password = unquote(parts.password)
        return cls(parts.hostname, port, use_tls, ca_file, cert_file, key_file, tls_insecure,
                   username, password)

    def with_credentials(self, username: str | None, password: str | None) -> Endpoint:
        return replace(self, username=username, password=password)

    @property
    def url(self) -> str:
        """Without credentials: safe to log."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    def __str__(self) -> str:
        return self.url

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for this endpoint (None when plain), built once per client.
        EndpointError when the CA or the client certificate cannot be loaded."""
        if not self.tls:
            return None
        try:
            context = ssl.create_default_context(
                cafile=str(self.ca_file) if self.ca_file is not None else None)
            if self.cert_file is not None:
                context.load_cert_chain(
                    str(self.cert_file), str(self.key_file) if self.key_file else None)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise EndpointError(f"{self.url}: TLS setup failed: {exc}") from exc
        if self.tls_insecure:
            context.check_hostname = False
        return context
