"""The visit tables (``db.migrate("visits", MIGRATIONS)``): the six EVV facts of each
visit, how each was verified, and the home-device evidence seen around it."""

from __future__ import annotations

MIGRATIONS: list[str] = [
    """
CREATE TABLE visits (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL UNIQUE,
    service_type_id TEXT NOT NULL,
    resident_id TEXT NOT NULL,
    household_id TEXT NOT NULL,
    district_id TEXT NOT NULL,
    address TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    window_start TEXT NOT NULL,
    window_end TEXT NOT NULL,
    min_minutes INTEGER NOT NULL,
    check_in_at TEXT NOT NULL,
    check_in_method TEXT NOT NULL,
    check_in_lat REAL,
    check_in_lon REAL,
    check_out_at TEXT,
    check_out_method TEXT,
    duration_min REAL,
    door_events INTEGER NOT NULL DEFAULT 0,
    motion_events INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    flags TEXT NOT NULL,
    verification TEXT NOT NULL,
    note TEXT NOT NULL,
    reviewed_by TEXT,
    reviewed_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX visits_status ON visits(district_id, status);
CREATE INDEX visits_worker ON visits(worker_id, check_in_at);
CREATE TABLE visit_evidence (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    household_id TEXT NOT NULL,
    record_id TEXT NOT NULL UNIQUE,
    device_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    ts TEXT NOT NULL
);
CREATE INDEX visit_evidence_household ON visit_evidence(household_id, ts)
""",
]
