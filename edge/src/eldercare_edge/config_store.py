"""The cloud's retained config, kept on disk so a restart without the cloud still knows
the contacts to text and the thresholds to apply."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from eldercare_protocols.errors import DecodeError
from eldercare_protocols.native import load_object, validate
from eldercare_protocols.uplink import GatewayConfig, encode

log = logging.getLogger(__name__)


class ConfigStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> GatewayConfig | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return validate(GatewayConfig, load_object(raw, str(self.path)), raw, str(self.path))
        except DecodeError as exc:
            log.error("stored config %s is unreadable (%s); starting from defaults",
                      self.path, exc)
            return None

    def save(self, config: GatewayConfig) -> None:
        """Write-then-rename with fsync: a crash leaves the old file or the new, never half."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("wb") as fh:
            fh.write(encode(config))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
