"""The monitoring centre's record: case history and sign-off, KPIs, the monthly report."""

from eldercare_cloud.records.service import RecordsService

__all__ = ["RecordsService"]
