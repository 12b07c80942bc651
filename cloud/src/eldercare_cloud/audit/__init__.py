"""The audit log: who read or changed which record, when and why (invariant 6)."""

from eldercare_cloud.audit.service import MIGRATIONS, AuditEntry, AuditLog

__all__ = ["MIGRATIONS", "AuditEntry", "AuditLog"]
