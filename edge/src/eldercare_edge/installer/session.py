"""The installer's login: the cloud URL and bearer token in the user's config directory.

``$XDG_CONFIG_HOME/eldercare/installer.json`` (``~/.config/...`` when unset), written
with 0600 permissions in a 0700 directory, replaced atomically; a token file that
others can read is refused rather than used.
"""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from eldercare_edge.installer.errors import InstallerError, NotLoggedInError

APP_DIR = "eldercare"
FILE = "installer.json"


class Session(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    cloud: str
    username: str
    role: str
    token: str
    saved_at: datetime


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / APP_DIR


def session_path() -> Path:
    return config_dir() / FILE


def save(session: Session) -> Path:
    directory = config_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / FILE
    tmp = directory / f".{FILE}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(session.model_dump_json())
    os.chmod(tmp, 0o600)  # O_CREAT's mode does not apply to an existing leftover
    os.replace(tmp, path)
    return path


def load() -> Session:
    path = session_path()
    if not path.exists():
        raise NotLoggedInError("未登录 / not logged in: run `eldercare-install login --cloud URL`")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise InstallerError(f"{path} is readable by others (mode {mode:o}); log in again")
    try:
        return Session.model_validate_json(path.read_text())
    except (ValidationError, json.JSONDecodeError) as exc:
        raise NotLoggedInError(f"{path} is damaged; log in again") from exc


def clear() -> bool:
    path = session_path()
    if path.exists():
        path.unlink()
        return True
    return False


def now() -> datetime:
    return datetime.now(UTC)
