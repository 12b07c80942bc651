"""The ingest component's tables (``db.migrate("ingest", MIGRATIONS)``).

Each uplink record type has its own table with a ``UNIQUE`` idempotency id, so
``INSERT ... ON CONFLICT DO NOTHING`` drops a redelivered record while the cloud acks it
again (on PostgreSQL too, whichever ingest worker got the copy), and an
``INTEGER PRIMARY KEY AUTOINCREMENT`` rowid that readers use as a cursor (never reused,
even if rows are pruned one day). Timestamps are ISO-8601 UTC text.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    """
CREATE TABLE gateways (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    online INTEGER NOT NULL DEFAULT 0,
    last_seen TEXT,
    last_birth_at TEXT,
    last_will_at TEXT,
    last_health_at TEXT,
    last_health TEXT,
    version TEXT
);
CREATE TABLE gateway_log (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,
    gateway_id TEXT NOT NULL REFERENCES gateways(id),
    status TEXT NOT NULL CHECK (status IN ('online', 'offline')),
    reason TEXT NOT NULL,
    ts TEXT,
    received_at TEXT NOT NULL
);
CREATE TABLE events (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    gateway_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    device_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    test INTEGER NOT NULL,
    lane TEXT NOT NULL,
    rule TEXT,
    source TEXT NOT NULL,
    data TEXT NOT NULL,
    device_ts TEXT,
    device_seq INTEGER,
    gateway_ts TEXT NOT NULL,
    received_at TEXT NOT NULL,
    committed_at TEXT NOT NULL
);
CREATE INDEX events_device ON events(device_id, rowid);
CREATE INDEX events_gateway_seq ON events(gateway_id, seq);
CREATE TABLE gaps (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    gateway_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    dropped INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    oldest_ts TEXT NOT NULL,
    newest_ts TEXT NOT NULL,
    reason TEXT NOT NULL,
    gateway_ts TEXT NOT NULL,
    received_at TEXT NOT NULL,
    committed_at TEXT NOT NULL
);
CREATE TABLE sms_reports (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    gateway_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    alarm_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    sent_at TEXT,
    error TEXT,
    gateway_ts TEXT NOT NULL,
    received_at TEXT NOT NULL,
    committed_at TEXT NOT NULL
);
CREATE INDEX sms_reports_alarm ON sms_reports(alarm_id);
CREATE TABLE unknown_devices (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    gateway_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    device_id TEXT NOT NULL,
    source TEXT NOT NULL,
    topic TEXT NOT NULL,
    device_type TEXT,
    gateway_ts TEXT NOT NULL,
    received_at TEXT NOT NULL,
    committed_at TEXT NOT NULL
);
CREATE TABLE telemetry_batches (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    gateway_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    records INTEGER NOT NULL,
    gateway_ts TEXT NOT NULL,
    received_at TEXT NOT NULL,
    committed_at TEXT NOT NULL
)
""",
    # a revoked gateway is refused by every ingest worker (they reload on a notification)
    """
ALTER TABLE gateways ADD COLUMN revoked_at TEXT
""",
]
