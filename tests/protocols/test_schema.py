"""The committed JSON Schemas are exactly what the models generate."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from eldercare_protocols import schema

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "protocols" / "schema"
GOLDEN = Path(__file__).parent / "golden"


def test_committed_schemas_are_not_stale() -> None:
    generated = schema.generate()
    committed = {p.name: p.read_text(encoding="utf-8") for p in SCHEMA_DIR.glob("*.json")}
    assert set(committed) == set(generated), "run: uv run eldercare-protocols schema --out " \
                                             "protocols/schema"
    for name, text in generated.items():
        assert committed[name] == text, f"{name} is stale: regenerate with " \
                                        "`uv run eldercare-protocols schema --out protocols/schema`"


def test_goldens_validate_against_the_schemas() -> None:
    channel_schema = {"event": "native-event", "telemetry": "native-telemetry",
                      "state": "native-state", "cmd": "native-command",
                      "cmd/ack": "native-command-ack"}
    checked = 0
    for path in GOLDEN.glob("*.json"):
        doc = json.loads(path.read_text(encoding="utf-8"))
        topic: str = doc["topic"]
        if topic.startswith("eldercare/"):
            name = channel_schema[topic.split("/", 2)[2]]
        elif "/up/" in topic:
            name = "up-" + topic.rsplit("/", 1)[1]
        else:
            name = "down-" + topic.rsplit("/", 1)[1]
        spec = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))
        jsonschema.validate(doc["payload"], spec)
        checked += 1
    assert checked >= 25
