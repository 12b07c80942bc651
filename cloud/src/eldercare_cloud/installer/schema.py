"""The installer component's tables (``db.migrate("installer", MIGRATIONS)``).

Gateways and devices themselves live in ingest's and the registry's tables; these
keep what commissioning adds: who claimed and bound what and when, walk-test
results, stored commissioning records, self-test times and maintenance tasks.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    """
CREATE TABLE installer_claims (
    gateway_id TEXT PRIMARY KEY,
    household_id TEXT NOT NULL,
    claimed_by TEXT NOT NULL,
    claimed_at TEXT NOT NULL,
    broker_url TEXT NOT NULL,
    revoked_at TEXT,
    revoked_by TEXT
);
CREATE TABLE installer_pairings (
    device_id TEXT PRIMARY KEY,
    gateway_id TEXT NOT NULL,
    serial TEXT NOT NULL,
    bound_by TEXT NOT NULL,
    bound_at TEXT NOT NULL
);
CREATE TABLE installer_walk_runs (
    id TEXT PRIMARY KEY,
    gateway_id TEXT NOT NULL,
    simulated INTEGER NOT NULL,
    tested_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX installer_walk_runs_gateway ON installer_walk_runs(gateway_id, created_at);
CREATE TABLE installer_walk_results (
    run_id TEXT NOT NULL REFERENCES installer_walk_runs(id),
    position INTEGER NOT NULL,
    device_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    step TEXT NOT NULL,
    result TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    latency_ms REAL,
    event_id TEXT,
    device_ts TEXT,
    committed_at TEXT,
    tested_at TEXT NOT NULL,
    PRIMARY KEY (run_id, position)
);
CREATE TABLE installer_reports (
    id TEXT PRIMARY KEY,
    gateway_id TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    record TEXT NOT NULL,
    html TEXT NOT NULL
);
CREATE INDEX installer_reports_gateway ON installer_reports(gateway_id, created_at);
CREATE TABLE installer_self_tests (
    device_id TEXT PRIMARY KEY,
    last_at TEXT NOT NULL
);
CREATE TABLE installer_cursor (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE installer_maintenance (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'done')),
    created_at TEXT NOT NULL,
    done_at TEXT,
    done_by TEXT
);
CREATE UNIQUE INDEX installer_maintenance_open ON installer_maintenance(device_id, kind)
    WHERE status = 'open'
""",
]
