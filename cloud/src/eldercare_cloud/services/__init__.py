"""The green half: catalogue, entitlements, vouchers, requests, orders, dispatch,
evaluation and records (issue 10). A green press goes ingest → services → visits."""

from eldercare_cloud.services.desk import ServiceDesk
from eldercare_cloud.services.engine import ServiceEngine
from eldercare_cloud.services.records import ServiceRecords
from eldercare_cloud.services.schema import MIGRATIONS

__all__ = ["MIGRATIONS", "ServiceDesk", "ServiceEngine", "ServiceRecords"]
