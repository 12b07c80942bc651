"""Telemetry sinks: SQLite (embedded default, inside the ingest transaction) and InfluxDB
(v2 write API, its own queue, when ``influx.url`` is set)."""
