"""The service desk's tables (``db.migrate("services", MIGRATIONS)``).

The catalogue and the entitlement rules are rows, not code: a new service type or a new
district rule is an INSERT. Everything a restart must resume is here too: every order's
accept and arrival deadlines (``accept_due_at``, ``arrive_due_at``), every dispatch offer,
the LED commands still to send (one row per request and state, UNIQUE, so nothing is
sent twice), the worker's SMS with the signed link (one per dispatch offer, UNIQUE) and
the cursor over ingest's committed events.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    """
CREATE TABLE svc_types (
    id TEXT PRIMARY KEY,
    name_zh TEXT NOT NULL,
    name_en TEXT NOT NULL,
    duration_min INTEGER NOT NULL,
    unit_price_cents INTEGER NOT NULL,
    accept_within_s INTEGER NOT NULL,
    arrive_within_s INTEGER NOT NULL,
    min_visit_min INTEGER NOT NULL,
    active INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE svc_providers (
    id TEXT PRIMARY KEY,
    district_id TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    phone TEXT NOT NULL,
    communities TEXT NOT NULL,
    service_types TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);
CREATE TABLE svc_workers (
    id TEXT PRIMARY KEY,
    provider_id TEXT NOT NULL REFERENCES svc_providers(id),
    name TEXT NOT NULL,
    phone TEXT NOT NULL,
    skills TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);
CREATE INDEX svc_workers_provider ON svc_workers(provider_id);
CREATE TABLE svc_accounts (
    user_id TEXT PRIMARY KEY,
    provider_id TEXT NOT NULL REFERENCES svc_providers(id),
    worker_id TEXT REFERENCES svc_workers(id)
);
CREATE TABLE svc_entitlement_rules (
    id TEXT PRIMARY KEY,
    district_id TEXT NOT NULL,
    category TEXT NOT NULL,
    monthly_voucher_cents INTEGER NOT NULL,
    service_types TEXT NOT NULL,
    minimums TEXT NOT NULL,
    label TEXT NOT NULL,
    UNIQUE (district_id, category)
);
CREATE TABLE svc_config (
    district_id TEXT PRIMARY KEY,
    callback_share REAL NOT NULL,
    new_worker_visits INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE svc_requests (
    id TEXT PRIMARY KEY,
    resident_id TEXT NOT NULL,
    household_id TEXT NOT NULL,
    district_id TEXT NOT NULL,
    source TEXT NOT NULL,
    status TEXT NOT NULL,
    presses INTEGER NOT NULL,
    gateway_id TEXT,
    device_id TEXT,
    first_record_id TEXT,
    pressed_at TEXT,
    opened_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    closed_at TEXT,
    last_outcome TEXT,
    note TEXT NOT NULL
);
CREATE INDEX svc_requests_open ON svc_requests(district_id, status);
CREATE INDEX svc_requests_resident ON svc_requests(resident_id, status);
CREATE TABLE svc_orders (
    id TEXT PRIMARY KEY,
    request_id TEXT REFERENCES svc_requests(id),
    plan_id TEXT,
    resident_id TEXT NOT NULL,
    household_id TEXT NOT NULL,
    community_id TEXT NOT NULL,
    district_id TEXT NOT NULL,
    service_type_id TEXT NOT NULL REFERENCES svc_types(id),
    source TEXT NOT NULL,
    payment TEXT NOT NULL,
    status TEXT NOT NULL,
    window_start TEXT NOT NULL,
    window_end TEXT NOT NULL,
    month TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    provider_id TEXT,
    worker_id TEXT,
    accept_due_at TEXT,
    arrive_due_at TEXT,
    dispatched_at TEXT,
    accepted_at TEXT,
    checked_in_at TEXT,
    completed_at TEXT,
    cancelled_at TEXT,
    attention TEXT,
    callback_due INTEGER NOT NULL DEFAULT 0,
    note TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX svc_orders_status ON svc_orders(district_id, status);
CREATE INDEX svc_orders_worker ON svc_orders(worker_id, window_start);
CREATE INDEX svc_orders_resident ON svc_orders(resident_id, month);
CREATE INDEX svc_orders_accept_due ON svc_orders(status, accept_due_at);
CREATE UNIQUE INDEX svc_orders_plan_slot ON svc_orders(plan_id, window_start);
CREATE TABLE svc_dispatches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id TEXT NOT NULL REFERENCES svc_orders(id),
    provider_id TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    offered_at TEXT NOT NULL,
    status TEXT NOT NULL,
    responded_at TEXT,
    reason TEXT
);
CREATE INDEX svc_dispatches_order ON svc_dispatches(order_id);
CREATE TABLE svc_timeline (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subject TEXT NOT NULL,
    ts TEXT NOT NULL,
    actor TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX svc_timeline_subject ON svc_timeline(subject, id);
CREATE TABLE svc_vouchers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    resident_id TEXT NOT NULL,
    month TEXT NOT NULL,
    order_id TEXT,
    amount_cents INTEGER NOT NULL,
    kind TEXT NOT NULL,
    ts TEXT NOT NULL,
    UNIQUE (order_id, kind)
);
CREATE INDEX svc_vouchers_resident ON svc_vouchers(resident_id, month);
CREATE TABLE svc_ratings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id TEXT NOT NULL REFERENCES svc_orders(id),
    source TEXT NOT NULL,
    score TEXT NOT NULL,
    comment TEXT NOT NULL,
    actor TEXT NOT NULL,
    ts TEXT NOT NULL
);
CREATE INDEX svc_ratings_order ON svc_ratings(order_id);
CREATE TABLE svc_followups (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL REFERENCES svc_orders(id),
    provider_id TEXT,
    district_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    closed_at TEXT,
    resolution TEXT
);
CREATE TABLE svc_plans (
    id TEXT PRIMARY KEY,
    resident_id TEXT NOT NULL,
    district_id TEXT NOT NULL,
    service_type_id TEXT NOT NULL REFERENCES svc_types(id),
    every_days INTEGER NOT NULL,
    first_date TEXT NOT NULL,
    start_time TEXT NOT NULL,
    end_time TEXT NOT NULL,
    active INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE svc_led_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    gateway_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    state TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT,
    UNIQUE (request_id, state)
);
CREATE TABLE svc_cursors (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
)
""",
    """
CREATE TABLE svc_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dispatch_id INTEGER NOT NULL UNIQUE,
    order_id TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    address TEXT NOT NULL,
    body TEXT NOT NULL,
    link TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX svc_messages_status ON svc_messages(status, id)
""",
]
