"""The Zigbee2MQTT definitions of the models the simulator's Zigbee devices are sold as.

A real bridge publishes, retained on ``zigbee2mqtt/bridge/devices``, every paired device
with its model and *exposes* (what it reports); the gateway learns devices from that
list. These are the exposes zigbee-herdsman-converters gives these models, reduced to
what the simulated devices publish (tests/protocols/fixtures/z2m_bridge_devices.json has
the full lists, and a test checks that these are a subset of them).
"""

from __future__ import annotations

import json
from typing import Any


def _binary(prop: str, on: Any = True, off: Any = False) -> dict[str, Any]:
    return {"type": "binary", "name": prop, "property": prop, "access": 1,
            "value_on": on, "value_off": off}


def _numeric(prop: str, unit: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "numeric", "name": prop, "property": prop, "access": 1}
    if unit:
        out["unit"] = unit
    return out


def _enum(prop: str, *values: str) -> dict[str, Any]:
    return {"type": "enum", "name": prop, "property": prop, "access": 1,
            "values": list(values)}


_BATTERY = [_numeric("battery", "%"), _numeric("voltage", "mV")]

#: model -> (vendor, description, exposes)
DEFINITIONS: dict[str, tuple[str, str, list[dict[str, Any]]]] = {
    "TS0215A_sos": ("Tuya", "SOS button", [*_BATTERY, _enum("action", "emergency")]),
    "MCCGQ11LM": ("Aqara", "Door and window sensor",
                  [_numeric("battery", "%"), _binary("contact", False, True),
                   _numeric("voltage", "mV")]),
    "JT-BZ-01AQ/A": ("Aqara", "Smart natural gas detector",
                     [_binary("gas"), _numeric("gas_density", "%LEL"), _binary("test")]),
    "HS3SA/HS1SA": ("Heiman", "Smart smoke alarm",
                    [_binary("smoke"), _binary("battery_low"), _numeric("battery", "%"),
                     _binary("test")]),
    "RTCGQ11LM": ("Aqara", "Motion sensor",
                  [_numeric("battery", "%"), _binary("occupancy"), _numeric("voltage", "mV")]),
    "MIR-HE200-TY": ("Tuya", "Human presence sensor with fall function",
                     [_binary("presence"), _enum("fall_down_status", "none", "maybe_fall",
                                                 "fall")]),
}


def bridge_devices(models: dict[str, str]) -> bytes:
    """The ``bridge/devices`` payload of a bridge with these devices (id -> model)."""
    out: list[dict[str, Any]] = [{"ieee_address": "0x00124b0000000000", "type": "Coordinator",
                                  "friendly_name": "Coordinator", "definition": None,
                                  "supported": True, "interview_completed": True}]
    for n, (device_id, model) in enumerate(sorted(models.items())):
        vendor, description, exposes = DEFINITIONS[model]
        out.append({"ieee_address": f"0x00158d00{n:08x}", "type": "EndDevice",
                    "network_address": 1000 + n, "friendly_name": device_id,
                    "supported": True, "interview_completed": True, "disabled": False,
                    "definition": {"model": model, "vendor": vendor,
                                   "description": description, "supports_ota": False,
                                   "exposes": exposes}})
    return json.dumps(out, separators=(",", ":")).encode()
