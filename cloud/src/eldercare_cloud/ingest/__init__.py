"""Cloud ingest: the gateways' uplink in, committed rows and acks out.

See cloud/README.md, "Ingest interface", for what the care core may use.
"""

from eldercare_cloud.ingest.errors import IngestError, PublishError, RegistrationError
from eldercare_cloud.ingest.models import (
    CommitInfo,
    GatewayLogEntry,
    GatewayRecord,
    IngestCounters,
    StoredEvent,
    StoredGap,
    StoredSmsReport,
    StoredTelemetry,
    StoredUnknownDevice,
    TelemetryPoint,
)
from eldercare_cloud.ingest.service import CommitListener, IngestService
from eldercare_cloud.ingest.store import IngestStore, Received

__all__ = [
    "CommitInfo",
    "CommitListener",
    "GatewayLogEntry",
    "GatewayRecord",
    "IngestCounters",
    "IngestError",
    "IngestService",
    "IngestStore",
    "PublishError",
    "Received",
    "RegistrationError",
    "StoredEvent",
    "StoredGap",
    "StoredSmsReport",
    "StoredTelemetry",
    "StoredUnknownDevice",
    "TelemetryPoint",
]
