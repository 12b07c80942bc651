"""The gateway's settings file that ``gateway claim`` writes for ``eldercare-edge run --config``.

It holds the gateway's own broker secret, so it is written 0600 and atomically, and it
is checked by loading it with the gateway's own settings class before the tool says
it is done: a file the gateway would refuse is never left behind as a success.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from eldercare_edge.errors import SettingsError
from eldercare_edge.installer.errors import InstallerError, UsageError
from eldercare_edge.settings import EdgeSettings


def check_writable(path: Path, force: bool) -> None:
    """Refuse before anything is claimed, so a refusal changes nothing."""
    if path.suffix.lower() not in {".yaml", ".yml"}:
        raise UsageError(f"{path}: the gateway config is YAML, name it *.yaml")
    if path.exists() and not force:
        raise UsageError(f"{path} exists; pass --force to replace it")
    if not path.parent.exists():
        raise UsageError(f"folder {path.parent} does not exist")


def gateway_settings(claim: dict[str, Any], *, home_broker: str, data_dir: Path,
                     home_username: str | None = None, home_password: str | None = None,
                     serial_port: str | None = None, modem_port: str | None = None,
                     extra: dict[str, Any] | None = None) -> dict[str, Any]:
    broker = claim["broker"]
    tls = urlsplit(broker["url"]).scheme == "mqtts"
    home: dict[str, Any] = {"url": home_broker}
    if home_username:
        home["username"] = home_username
        home["password"] = home_password
    doc: dict[str, Any] = {
        "gateway_id": claim["gateway_id"],
        "environment": "production" if tls else "development",
        "data_dir": str(data_dir),
        "home_broker": home,
        "cloud": {"url": broker["url"], "username": broker["username"],
                  "password": broker["password"], "client_id": broker["client_id"]},
    }
    if serial_port:
        doc["serial"] = {"port": serial_port}
    if modem_port:
        doc["modem"] = {"port": modem_port}
    doc.update(extra or {})
    return doc


def write(path: Path, doc: dict[str, Any]) -> EdgeSettings:
    tmp = path.with_name(f".{path.stem}.tmp.yaml")  # the suffix picks the YAML loader
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("# eldercare gateway settings, written by `eldercare-install gateway claim`.\n"
                 "# Holds the gateway's own broker secret: keep this file private (0600).\n")
        yaml.safe_dump(doc, fh, allow_unicode=True, sort_keys=False)
    os.chmod(tmp, 0o600)
    try:
        settings = EdgeSettings.from_file(tmp)
    except SettingsError as exc:
        tmp.unlink(missing_ok=True)
        raise InstallerError(f"the gateway would refuse this config: {exc}") from exc
    os.replace(tmp, path)
    return settings
