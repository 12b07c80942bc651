"""SQL fragments that bound a query to what a principal may see (invariant 6).

Services compose these into their WHERE clauses so that the scope is enforced in the
query itself: a record outside the caller's scope is never fetched, so it answers 404
exactly like a record that does not exist.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from eldercare_cloud.auth.models import Principal, Role


def in_clause(column: str, values: Iterable[str]) -> tuple[str, list[Any]]:
    items = sorted(set(values))
    if not items:
        return "1 = 0", []
    return f"{column} IN ({','.join('?' for _ in items)})", list(items)


def district_clause(p: Principal, district_col: str) -> tuple[str, list[Any]]:
    """Districts a staff member or installer works in (admins: their whole tenant)."""
    if p.role is Role.ADMIN:
        return f"{district_col} IN (SELECT id FROM districts WHERE tenant = ?)", [p.tenant]
    if p.role in (Role.OPERATOR, Role.SUPERVISOR, Role.INSTALLER, Role.DISTRICT_ADMIN):
        return in_clause(district_col, p.district_ids)
    return "1 = 0", []


def resident_clause(p: Principal, resident_col: str, district_col: str) -> tuple[str, list[Any]]:
    """Residents whose records the caller may read; volunteers and workers read none here."""
    if p.role is Role.FAMILY:
        return in_clause(resident_col, p.resident_ids)
    if p.role in (Role.ADMIN, Role.OPERATOR, Role.SUPERVISOR, Role.INSTALLER):
        return district_clause(p, district_col)
    return "1 = 0", []


def alert_clause(p: Principal, alias: str = "a") -> tuple[str, list[Any]]:
    """Alerts the caller may see: by district (staff), own elder (family), offered (others)."""
    if p.role in (Role.ADMIN, Role.OPERATOR, Role.SUPERVISOR):
        return district_clause(p, f"{alias}.district_id")
    if p.role is Role.FAMILY:
        return in_clause(f"{alias}.resident_id", p.resident_ids)
    if p.role in (Role.VOLUNTEER, Role.WORKER):
        clause, params = in_clause("o.contact_id", p.contact_ids)
        return (f"{alias}.id IN (SELECT o.alert_id FROM ladder_offers o WHERE {clause})",
                params)
    return "1 = 0", []
