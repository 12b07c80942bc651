"""``eldercare-protocols``: decode device payloads in the field, regenerate schemas.

    eldercare-protocols decode eldercare/btn-1/event < payload.json
    eldercare-protocols decode zigbee2mqtt/front_door --model MCCGQ11LM < payload.json
    eldercare-protocols decode zigbee2mqtt/front_door --devices bridge-devices.json < payload.json
    eldercare-protocols decode ec/v1/gw-1/up/events < record.json
    echo '$EC1,EVT,btn-1,1,kind=sos*XXXX' | eldercare-protocols decode --serial
    eldercare-protocols catalogue
    eldercare-protocols schema --out protocols/schema
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from eldercare_protocols import native, schema, serial_frame, uplink, z2m
from eldercare_protocols.catalogue import CATALOGUE
from eldercare_protocols.errors import DecodeError


def _decode(topic: str | None, model: str | None, serial: bool, data: bytes,
            devices: bytes | None = None) -> list[Any]:
    if serial:
        lines = [ln for ln in data.splitlines() if ln.strip()]
        if len(lines) != 1:
            raise DecodeError(f"expected one frame line, got {len(lines)}")
        return [e.model_dump(mode="json") for e in serial_frame.decode_canonical(lines[0])]
    if not topic:
        raise DecodeError("a TOPIC is required unless --serial is given")
    if topic.startswith(f"{z2m.BASE_TOPIC}/"):
        if not model and devices is None and not topic.endswith("/availability"):
            raise DecodeError("a Zigbee2MQTT payload needs --model MODEL or --devices FILE",
                              topic=topic)
        adapter = z2m.Z2MAdapter()
        if devices is not None:
            adapter.learn(devices)
        events = adapter.decode(topic, data, model)
        return [e.model_dump(mode="json") for e in events]
    if topic.startswith(f"{native.PREFIX}/"):
        return [e.model_dump(mode="json") for e in native.decode_canonical(topic, data)]
    if topic.startswith(f"{uplink.ROOT}/"):
        if "/down/" in topic:
            _, ch = uplink.parse_down_topic(topic)
            down_models: dict[uplink.Down, type[BaseModel]] = {
                uplink.Down.ACK: uplink.Ack, uplink.Down.CONFIG: uplink.GatewayConfig,
                uplink.Down.CMD: uplink.DownCommand}
            model_cls = down_models[ch]
            return [{"kind": f"down_{ch.value}",
                     **native.validate(model_cls, native.load_object(data, topic), data,
                                       topic).model_dump(mode="json")}]
        _, msg = uplink.decode_uplink(topic, data)
        dumped = msg.model_dump(mode="json")
        dumped.setdefault("kind", dumped.get("type") or "gateway_state")
        return [dumped]
    raise DecodeError("unknown topic family (expected eldercare/, zigbee2mqtt/ or ec/v1/)",
                      topic=topic)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eldercare-protocols", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    dec = sub.add_parser("decode", help="decode one payload from stdin into canonical events")
    dec.add_argument("topic", nargs="?")
    dec.add_argument("--model", help="Zigbee2MQTT device model")
    dec.add_argument("--devices", type=Path,
                     help="a saved zigbee2mqtt/bridge/devices message: decode by exposes")
    dec.add_argument("--serial", action="store_true", help="decode one serial frame line")
    sch = sub.add_parser("schema", help="write the JSON Schemas")
    sch.add_argument("--out", type=Path, required=True)
    sub.add_parser("catalogue", help="print the device catalogue as JSON")
    args = parser.parse_args(argv)

    if args.command == "decode":
        data = sys.stdin.buffer.read()
        try:
            devices = args.devices.read_bytes() if args.devices else None
        except OSError as exc:
            print(f"error: cannot read --devices: {exc}", file=sys.stderr)
            return 2
        try:
            out = _decode(args.topic, args.model, args.serial, data, devices)
        except DecodeError as exc:
            preview = exc.preview()
            print(f"error: {exc}" + (f": {preview}" if preview else ""), file=sys.stderr)
            return 2
        json.dump(out, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return 0
    if args.command == "schema":
        for path in schema.write(args.out):
            print(path)
        return 0
    cat = {
        name: {
            "label_zh": t.label_zh, "label_en": t.label_en, "heartbeat_s": t.heartbeat_s,
            "events": sorted(t.events), "telemetry": sorted(t.telemetry_kinds),
            "measurements": {k: asdict(m) for k, m in t.measurements.items()},
            "state_fields": list(t.state_fields), "commands": sorted(t.commands),
            "z2m_models": list(t.z2m_models),
        }
        for name, t in CATALOGUE.items()
    }
    json.dump(cat, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
