"""The registry's tables (``db.migrate("registry", MIGRATIONS)``).

Gateways are registered (id + secret) by ingest in its own ``gateways`` table; the
registry keeps only where a gateway is installed, in ``gateway_bindings``. Lists and
nested records are JSON text: they are read and written whole, never queried into.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    """
CREATE TABLE districts (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    province TEXT NOT NULL,
    city TEXT NOT NULL,
    code TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE communities (
    id TEXT PRIMARY KEY,
    district_id TEXT NOT NULL REFERENCES districts(id),
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    phone TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE households (
    id TEXT PRIMARY KEY,
    community_id TEXT NOT NULL REFERENCES communities(id),
    address TEXT NOT NULL,
    latitude REAL,
    longitude REAL,
    rooms TEXT NOT NULL,
    key_safe TEXT,
    notes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE residents (
    id TEXT PRIMARY KEY,
    household_id TEXT NOT NULL REFERENCES households(id),
    name TEXT NOT NULL,
    birth_date TEXT,
    sex TEXT,
    phone TEXT,
    living_situation TEXT NOT NULL,
    conditions TEXT NOT NULL,
    medications TEXT NOT NULL,
    allergies TEXT NOT NULL,
    mobility TEXT NOT NULL,
    cognitive_impairment TEXT NOT NULL,
    care_level INTEGER NOT NULL,
    language TEXT NOT NULL,
    consent TEXT NOT NULL,
    wandering_risk INTEGER NOT NULL,
    thresholds TEXT NOT NULL,
    routine TEXT NOT NULL,
    notes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX residents_household ON residents(household_id);
CREATE TABLE contacts (
    id TEXT PRIMARY KEY,
    resident_id TEXT NOT NULL REFERENCES residents(id),
    name TEXT NOT NULL,
    relation TEXT NOT NULL,
    phone TEXT NOT NULL,
    preferred_channel TEXT NOT NULL,
    webhook_url TEXT,
    availability TEXT NOT NULL,
    priority INTEGER NOT NULL,
    user_id TEXT,
    notes TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX contacts_resident ON contacts(resident_id, priority);
CREATE INDEX contacts_user ON contacts(user_id);
CREATE TABLE gateway_bindings (
    id TEXT PRIMARY KEY,
    household_id TEXT REFERENCES households(id),
    label TEXT NOT NULL,
    config_version INTEGER NOT NULL DEFAULT 1,
    published_version INTEGER NOT NULL DEFAULT 0,
    publish_error TEXT,
    bound_at TEXT NOT NULL
);
CREATE INDEX gateway_bindings_household ON gateway_bindings(household_id);
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    gateway_id TEXT REFERENCES gateway_bindings(id),
    household_id TEXT REFERENCES households(id),
    resident_id TEXT REFERENCES residents(id),
    room TEXT,
    source TEXT NOT NULL,
    z2m_model TEXT,
    z2m_name TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX devices_household ON devices(household_id);
CREATE INDEX devices_gateway ON devices(gateway_id)
""",
    """
ALTER TABLE residents ADD COLUMN categories TEXT NOT NULL DEFAULT '[]'
""",
    # a resident's GPS-watch profile: the safe area (geofence) and how strap removal and
    # fence exits are treated (eldercare_cloud.watch reads it)
    """
CREATE TABLE resident_watch_profiles (
    resident_id TEXT PRIMARY KEY REFERENCES residents(id),
    home_lat REAL,
    home_lon REAL,
    radius_m REAL,
    strap_alert INTEGER NOT NULL,
    high_risk INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL
)
""",
]
