"""The care-visit tables (``db.migrate("care_visits", MIGRATIONS)``), all ``cv_*``.

A care visit in person is a row of the shared ``visits`` table (the same six facts, the
same device verification); these tables hold what only care visits have: the plan
and its tier, pairings, the scheduled tasks with their missed-visit ladder (timers as
rows: ``next_step_at``), the ledger entries, concerns, reminders, the learned routine's
daily counts and the volunteer time bank.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    """
CREATE TABLE cv_tier_rules (
    district_id TEXT NOT NULL,
    tier TEXT NOT NULL,
    visit_every_days INTEGER NOT NULL,
    call_every_days INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (district_id, tier)
);
CREATE TABLE cv_pairings (
    resident_id TEXT PRIMARY KEY,
    visitor_contact_id TEXT NOT NULL,
    backup_contact_id TEXT,
    since TEXT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE TABLE cv_plans (
    resident_id TEXT PRIMARY KEY,
    household_id TEXT NOT NULL,
    community_id TEXT NOT NULL,
    district_id TEXT NOT NULL,
    tier TEXT NOT NULL,
    rule TEXT,
    matched TEXT NOT NULL,
    visit_every_days INTEGER NOT NULL,
    call_every_days INTEGER NOT NULL,
    visitor_contact_id TEXT,
    backup_contact_id TEXT,
    worker_contact_id TEXT,
    paired INTEGER NOT NULL,
    start_date TEXT NOT NULL,
    active INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX cv_plans_district ON cv_plans(district_id, community_id);
CREATE TABLE cv_tasks (
    id TEXT PRIMARY KEY,
    resident_id TEXT NOT NULL,
    household_id TEXT NOT NULL,
    community_id TEXT NOT NULL,
    district_id TEXT NOT NULL,
    mode TEXT NOT NULL,
    reason TEXT NOT NULL,
    concern_id TEXT,
    alert_id TEXT,
    due_date TEXT NOT NULL,
    due_at TEXT NOT NULL,
    visitor_contact_id TEXT,
    backup_contact_id TEXT,
    worker_contact_id TEXT,
    assignee_contact_id TEXT,
    status TEXT NOT NULL,
    step INTEGER NOT NULL DEFAULT 0,
    next_step_at TEXT,
    done_at TEXT,
    entry_id TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (resident_id, mode, reason, due_date)
);
CREATE INDEX cv_tasks_open ON cv_tasks(status, next_step_at);
CREATE INDEX cv_tasks_district ON cv_tasks(district_id, due_date);
CREATE INDEX cv_tasks_home ON cv_tasks(household_id, status, mode);
CREATE TABLE cv_entries (
    id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL UNIQUE,
    resident_id TEXT NOT NULL,
    resident_name TEXT NOT NULL,
    community_id TEXT NOT NULL,
    district_id TEXT NOT NULL,
    month TEXT NOT NULL,
    visitor_contact_id TEXT NOT NULL,
    visitor_name TEXT NOT NULL,
    mode TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT NOT NULL,
    visit_id TEXT,
    verification TEXT NOT NULL,
    findings TEXT NOT NULL,
    note TEXT NOT NULL,
    record_note TEXT NOT NULL,
    order_id TEXT,
    concern_id TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX cv_entries_month ON cv_entries(district_id, month, community_id);
CREATE TABLE cv_concerns (
    id TEXT PRIMARY KEY,
    resident_id TEXT NOT NULL,
    household_id TEXT NOT NULL,
    community_id TEXT NOT NULL,
    district_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    day TEXT NOT NULL,
    rule TEXT NOT NULL,
    evidence TEXT NOT NULL,
    status TEXT NOT NULL,
    task_id TEXT,
    raised_by TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    closed_at TEXT,
    resolution TEXT,
    UNIQUE (resident_id, kind, day)
);
CREATE INDEX cv_concerns_open ON cv_concerns(district_id, status);
CREATE TABLE cv_reminders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    contact_id TEXT,
    address TEXT NOT NULL,
    text TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT,
    UNIQUE (task_id, step)
);
CREATE TABLE cv_cursors (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE cv_activity_days (
    household_id TEXT NOT NULL,
    day TEXT NOT NULL,
    events INTEGER NOT NULL,
    night_events INTEGER NOT NULL,
    first_min INTEGER,
    PRIMARY KEY (household_id, day)
);
CREATE TABLE cv_vital_days (
    household_id TEXT NOT NULL,
    day TEXT NOT NULL,
    metric TEXT NOT NULL,
    n INTEGER NOT NULL,
    total REAL NOT NULL,
    PRIMARY KEY (household_id, day, metric)
);
CREATE TABLE cv_timebank (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    contact_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    minutes REAL NOT NULL,
    entry_id TEXT UNIQUE,
    note TEXT NOT NULL,
    actor TEXT NOT NULL,
    ts TEXT NOT NULL
);
CREATE INDEX cv_timebank_contact ON cv_timebank(contact_id, ts)
""",
]
