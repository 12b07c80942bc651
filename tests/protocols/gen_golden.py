"""Writes the golden files: one per message shape. Run by hand when the wire changes on purpose:

    uv run python tests/protocols/gen_golden.py

The diff of tests/protocols/golden/ is then the visible change to the wire.
"""

from __future__ import annotations

import json
from pathlib import Path

GOLDEN = Path(__file__).parent / "golden"

TS = "2026-11-23T03:12:05.120000Z"
GTS = "2026-11-23T03:12:05.180000Z"

# (file stem, topic, payload) — payloads exactly as a device or peer sends them
SAMPLES: list[tuple[str, str, dict[str, object]]] = [
    ("native_call_button_event", "eldercare/h1-btn/event",
     {"v": 1, "seq": 17, "ts": TS, "type": "call_button", "kind": "sos",
      "data": {"button": "red", "press": "single"}}),
    ("native_call_button_green", "eldercare/h1-btn/event",
     {"v": 1, "seq": 18, "ts": TS, "type": "call_button", "kind": "service_request",
      "data": {"button": "green", "press": "single"}}),
    ("native_door_contact_event", "eldercare/h1-door/event",
     {"v": 1, "seq": 3, "ts": TS, "type": "door_contact", "kind": "door_open"}),
    ("native_gas_detector_event", "eldercare/h1-gas/event",
     {"v": 1, "seq": 9, "ts": TS, "type": "gas_detector", "kind": "gas_alarm",
      "data": {"lel": 23.5}}),
    ("native_gas_detector_selftest", "eldercare/h1-gas/event",
     {"v": 1, "seq": 10, "ts": TS, "type": "gas_detector", "kind": "self_test", "test": True,
      "data": {"result": "pass"}}),
    ("native_gas_detector_telemetry", "eldercare/h1-gas/telemetry",
     {"v": 1, "seq": 11, "ts": TS, "type": "gas_detector", "kind": "gas_level",
      "values": {"lel": 1.2}}),
    ("native_smoke_detector_event", "eldercare/h1-smoke/event",
     {"v": 1, "seq": 2, "ts": TS, "type": "smoke_detector", "kind": "smoke_alarm"}),
    ("native_vitals_monitor_telemetry", "eldercare/h1-vitals/telemetry",
     {"v": 1, "seq": 120, "ts": TS, "type": "vitals_monitor", "kind": "vitals",
      "values": {"heart_rate": 72, "respiration_rate": 16, "spo2": 97, "systolic": 132,
                 "diastolic": 84, "body_temperature": 36.6, "blood_glucose": 6.1}}),
    ("native_bed_sensor_event", "eldercare/h1-bed/event",
     {"v": 1, "seq": 40, "ts": TS, "type": "bed_sensor", "kind": "bed_exit"}),
    ("native_bed_sensor_telemetry", "eldercare/h1-bed/telemetry",
     {"v": 1, "seq": 41, "ts": TS, "type": "bed_sensor", "kind": "vitals",
      "values": {"heart_rate": 58, "respiration_rate": 13, "movement": 4}}),
    ("native_motion_sensor_event", "eldercare/h1-pir/event",
     {"v": 1, "seq": 77, "ts": TS, "type": "motion_sensor", "kind": "motion",
      "data": {"room": "kitchen"}}),
    ("native_fall_radar_event", "eldercare/h1-radar/event",
     {"v": 1, "seq": 5, "ts": TS, "type": "fall_radar", "kind": "fall",
      "data": {"confidence": 0.93}}),
    ("native_gps_tracker_event", "eldercare/h1-gps/event",
     {"v": 1, "seq": 8, "ts": TS, "type": "gps_tracker", "kind": "geofence_exit",
      "data": {"lat": 30.2741, "lon": 120.1551, "fence": "home"}}),
    ("native_gps_tracker_telemetry", "eldercare/h1-gps/telemetry",
     {"v": 1, "seq": 9, "ts": TS, "type": "gps_tracker", "kind": "location",
      "values": {"lat": 30.2741, "lon": 120.1551, "accuracy": 12}}),
    ("native_state_heartbeat", "eldercare/h1-btn/state",
     {"v": 1, "online": True, "reason": "heartbeat", "ts": TS, "type": "call_button",
      "seq": 19, "battery": 87, "rssi": -61, "firmware": "1.4.2", "props": {"led": "off"}}),
    ("native_state_will", "eldercare/h1-btn/state", {"v": 1, "online": False, "reason": "will"}),
    ("native_command", "eldercare/h1-btn/cmd",
     {"v": 1, "id": "cmd-0001", "command": "led", "args": {"state": "received"}, "ts": TS}),
    ("native_command_ack", "eldercare/h1-btn/cmd/ack",
     {"v": 1, "id": "cmd-0001", "ok": True, "ts": TS}),
    ("up_event", "ec/v1/gw-0001/up/events",
     {"v": 1, "type": "event", "id": "gw-0001-00000042", "seq": 42, "gateway_id": "gw-0001",
      "gateway_ts": GTS, "device_id": "h1-btn", "kind": "sos", "device_ts": TS,
      "device_seq": 17, "source": "native", "data": {"button": "red", "press": "single"}}),
    # a GPS watch's SOS, heard by the cloud's watch listener and committed as this record
    # (it never travels on MQTT: the topic names the gateway it is filed under)
    ("up_watch_event", "ec/v1/cloud-watch/up/events",
     {"v": 1, "type": "event", "id": "cloud-watch-5b0c9a8e2f4d4c7a9e1f3a6b8c0d2e4f",
      "seq": 7, "gateway_id": "cloud-watch", "gateway_ts": GTS, "device_id": "8800000015",
      "kind": "sos", "device_ts": TS, "source": "watch",
      "data": {"lat": 30.2741, "lon": 120.1551, "position": "fix"}}),
    ("up_rule_event", "ec/v1/gw-0001/up/events",
     {"v": 1, "type": "event", "id": "gw-0001-00000043", "seq": 43, "gateway_id": "gw-0001",
      "gateway_ts": GTS, "device_id": "h1-pir", "kind": "inactivity", "source": "gateway",
      "rule": "wake_by", "data": {"last_activity": "2026-11-22T21:40:00Z"}}),
    ("up_gap", "ec/v1/gw-0001/up/events",
     {"v": 1, "type": "gap", "id": "gw-0001-00000044", "seq": 44, "gateway_id": "gw-0001",
      "gateway_ts": GTS, "dropped": 1200, "first_seq": 100, "last_seq": 1299,
      "oldest_ts": "2026-11-22T21:00:00Z", "newest_ts": "2026-11-23T01:00:00Z",
      "reason": "disk_cap"}),
    ("up_sms_report", "ec/v1/gw-0001/up/events",
     {"v": 1, "type": "sms_report", "id": "gw-0001-00000045", "seq": 45,
      "gateway_id": "gw-0001", "gateway_ts": GTS, "alarm_id": "gw-0001-00000042",
      "to": "+8613800000001", "status": "sent", "attempts": 1, "sent_at": GTS}),
    ("up_unknown_device", "ec/v1/gw-0001/up/events",
     {"v": 1, "type": "unknown_device", "id": "gw-0001-00000046", "seq": 46,
      "gateway_id": "gw-0001", "gateway_ts": GTS, "device_id": "kitchen_sensor",
      "source": "z2m", "topic": "zigbee2mqtt/kitchen_sensor"}),
    ("up_telemetry", "ec/v1/gw-0001/up/telemetry",
     {"v": 1, "type": "telemetry", "id": "gw-0001-00000047", "seq": 47,
      "gateway_id": "gw-0001", "gateway_ts": GTS,
      "records": [{"device_id": "h1-vitals", "kind": "vitals", "ts": TS, "device_seq": 120,
                   "values": {"heart_rate": 72, "spo2": 97}}]}),
    ("up_state_health", "ec/v1/gw-0001/up/state",
     {"v": 1, "gateway_id": "gw-0001", "status": "health", "ts": GTS, "version": "0.1.0",
      "uptime_s": 3600, "outbox": {"alarm": 0, "event": 2, "telemetry": 40},
      "oldest_unacked_s": 0.4, "last_cloud_ack": GTS,
      "devices": {"h1-btn": {"type": "call_button", "online": True, "battery": 87,
                             "rssi": -61, "last_seen": TS}},
      "counters": {"malformed": 0}}),
    ("up_state_will", "ec/v1/gw-0001/up/state",
     {"v": 1, "gateway_id": "gw-0001", "status": "offline"}),
    ("down_ack", "ec/v1/gw-0001/down/ack",
     {"v": 1, "ids": ["gw-0001-00000042", "gw-0001-00000043"], "committed_at": GTS}),
    ("down_config", "ec/v1/gw-0001/down/config",
     {"v": 1, "gateway_id": "gw-0001", "version": 3,
      "resident": {"name": "张秀英", "address": "杭州市西湖区翠苑街道文三路 100 号 2 幢 301 室",
                   "wandering_risk": True},
      "thresholds": {"heart_rate": {"low": 45, "high": 120}, "spo2": {"low": 90}},
      "vitals_sustain_s": 60,
      "routine": {"wake_by": "09:30", "waking_start": "07:00", "waking_end": "21:00",
                  "inactive_hours": 4, "night_start": "23:00", "night_end": "05:00",
                  "door_open_max_s": 600, "timezone": "Asia/Shanghai"},
      "sms_timeout_s": 60,
      "sms_contacts": [{"name": "李明", "phone": "+8613800000001", "relation": "son"}],
      "devices": [{"device_id": "h1-btn", "type": "call_button", "room": "卧室",
                   "source": "native"},
                  {"device_id": "h1-door", "type": "door_contact", "room": "入户门",
                   "source": "z2m", "z2m_model": "MCCGQ11LM", "z2m_name": "front_door"}]}),
    ("down_cmd", "ec/v1/gw-0001/down/cmd",
     {"v": 1, "id": "cmd-00000009", "device_id": "h1-gas", "command": "mute_buzzer",
      "args": {"seconds": 300}, "ts": GTS}),
]

SERIAL_SAMPLES = [
    ("serial_event", "EVT", "rf-btn-01", 42, [("kind", "sos"), ("button", "red"),
                                              ("press", "single")]),
    ("serial_telemetry", "TEL", "rf-vit-01", 43, [("kind", "vitals"), ("heart_rate", "72"),
                                                  ("spo2", "97")]),
    ("serial_state", "STA", "rf-btn-01", 44, [("type", "call_button"), ("reason", "heartbeat"),
                                              ("battery", "87"), ("rssi", "-61")]),
]


def main() -> None:
    from eldercare_protocols import serial_frame

    GOLDEN.mkdir(exist_ok=True)
    for stem, topic, payload in SAMPLES:
        (GOLDEN / f"{stem}.json").write_text(
            json.dumps({"topic": topic, "payload": payload}, indent=2, ensure_ascii=False) + "\n",
            encoding="utf-8")
    for stem, typ, dev, seq, fields in SERIAL_SAMPLES:
        frame = serial_frame.Frame(serial_frame.FrameType(typ), dev, seq, tuple(fields))
        (GOLDEN / f"{stem}.line").write_bytes(serial_frame.encode(frame))


if __name__ == "__main__":
    main()
