"""JSON Schema generated from the models; committed under protocols/schema/ and checked in CI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter

from eldercare_protocols import native, uplink
from eldercare_protocols.events import CanonicalEvent

SCHEMAS: dict[str, Any] = {
    "canonical-event": CanonicalEvent,
    "native-event": native.DeviceEvent,
    "native-telemetry": native.DeviceTelemetry,
    "native-state": native.DeviceState,
    "native-command": native.DeviceCommand,
    "native-command-ack": native.DeviceCommandAck,
    "up-events": uplink.UplinkRecord,
    "up-telemetry": uplink.TelemetryBatch,
    "up-state": uplink.GatewayState,
    "down-ack": uplink.Ack,
    "down-config": uplink.GatewayConfig,
    "down-cmd": uplink.DownCommand,
}


def generate() -> dict[str, str]:
    """File name → schema text, deterministic so a stale copy shows as a diff."""
    out: dict[str, str] = {}
    for name, model in SCHEMAS.items():
        if isinstance(model, type) and issubclass(model, BaseModel):
            schema = model.model_json_schema()
        else:
            schema = TypeAdapter(model).json_schema()
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                  "$id": f"{name}.schema.json", **schema}
        out[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True,
                                                ensure_ascii=False) + "\n"
    return out


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for fname, text in generate().items():
        path = directory / fname
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
