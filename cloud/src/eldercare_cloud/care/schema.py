"""The care core's tables (``db.migrate("care", MIGRATIONS)``).

Everything the ladder needs to resume after a crash is here: the run's position and
its due time, every offer made (one per contact per alert, enforced by a UNIQUE key,
so nobody is asked twice) and every notification with its delivery state.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    """
CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    kind TEXT NOT NULL,
    category TEXT NOT NULL,
    severity TEXT NOT NULL,
    severity_override TEXT,
    status TEXT NOT NULL,
    resident_id TEXT,
    household_id TEXT,
    district_id TEXT,
    gateway_id TEXT,
    device_id TEXT,
    room TEXT,
    source TEXT NOT NULL,
    repeat_count INTEGER NOT NULL DEFAULT 0,
    raised_at TEXT,
    received_at TEXT,
    committed_at TEXT,
    opened_at TEXT NOT NULL,
    first_notified_at TEXT,
    acknowledged_at TEXT,
    accepted_at TEXT,
    en_route_at TEXT,
    on_scene_at TEXT,
    cancel_requested_at TEXT,
    resolved_at TEXT,
    closed_at TEXT,
    closure_code TEXT,
    assigned_contact_id TEXT,
    taken_over_by TEXT,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX alerts_one_open ON alerts(subject, kind)
    WHERE status NOT IN ('resolved', 'closed');
CREATE INDEX alerts_district ON alerts(district_id, status);
CREATE INDEX alerts_resident ON alerts(resident_id, status);
CREATE TABLE alert_timeline (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL REFERENCES alerts(id),
    ts TEXT NOT NULL,
    actor TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    action TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX alert_timeline_alert ON alert_timeline(alert_id, id);
CREATE TABLE alert_sources (
    record_id TEXT PRIMARY KEY,
    alert_id TEXT NOT NULL REFERENCES alerts(id),
    cursor INTEGER NOT NULL,
    kind TEXT NOT NULL,
    device_id TEXT,
    device_ts TEXT,
    gateway_ts TEXT,
    committed_at TEXT
);
CREATE INDEX alert_sources_alert ON alert_sources(alert_id);
CREATE TABLE care_cursors (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE care_gateway_watch (
    gateway_id TEXT PRIMARY KEY,
    last_activity_at TEXT,
    offline_alerted_for TEXT,
    welfare_alerted_for TEXT
);
CREATE TABLE ladders (
    scope TEXT PRIMARY KEY,
    district_id TEXT,
    resident_id TEXT,
    steps TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE TABLE ladder_runs (
    alert_id TEXT PRIMARY KEY REFERENCES alerts(id),
    steps TEXT NOT NULL,
    timeout_default_s INTEGER NOT NULL,
    step_index INTEGER NOT NULL,
    position INTEGER NOT NULL,
    targets TEXT NOT NULL,
    due_at TEXT,
    status TEXT NOT NULL,
    stop_reason TEXT,
    started_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX ladder_runs_due ON ladder_runs(status, due_at);
CREATE TABLE ladder_offers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL REFERENCES alerts(id),
    step_index INTEGER NOT NULL,
    contact_id TEXT NOT NULL,
    name TEXT NOT NULL,
    relation TEXT NOT NULL,
    channel TEXT NOT NULL,
    status TEXT NOT NULL,
    offered_at TEXT NOT NULL,
    responded_at TEXT,
    UNIQUE (alert_id, contact_id)
);
CREATE INDEX ladder_offers_contact ON ladder_offers(contact_id);
CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    alert_id TEXT NOT NULL REFERENCES alerts(id),
    contact_id TEXT,
    channel TEXT NOT NULL,
    address TEXT NOT NULL,
    body TEXT NOT NULL,
    link TEXT,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT,
    provider_ref TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX notifications_due ON notifications(status, next_attempt_at);
CREATE INDEX notifications_alert ON notifications(alert_id)
""",
    """
CREATE TABLE care_commissioning (
    gateway_id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    until TEXT NOT NULL,
    started_by TEXT NOT NULL,
    ended_at TEXT,
    ended_by TEXT
);
ALTER TABLE care_gateway_watch ADD COLUMN revoked_at TEXT
""",
    """
ALTER TABLE alerts ADD COLUMN supervisor_escalated_at TEXT;
CREATE INDEX alerts_unacknowledged ON alerts(status, acknowledged_at, opened_at)
""",
    # the client id conflicts a gateway's health last counted (gateway_id_conflict rule)
    """
ALTER TABLE care_gateway_watch ADD COLUMN id_conflicts_seen INTEGER
""",
    # where the person was when the alert came (a GPS watch's fix): the newest position
    # the alert heard, its fix time and whether the watch had a valid fix then
    """
ALTER TABLE alerts ADD COLUMN position_lat REAL;
ALTER TABLE alerts ADD COLUMN position_lon REAL;
ALTER TABLE alerts ADD COLUMN position_at TEXT;
ALTER TABLE alerts ADD COLUMN position_valid INTEGER;
ALTER TABLE alerts ADD COLUMN position_source TEXT
""",
]
