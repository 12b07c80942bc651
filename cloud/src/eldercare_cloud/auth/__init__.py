"""Users, roles, bearer tokens and the scope every query applies."""

from eldercare_cloud.auth.models import ALL_ROLES, STAFF, Principal, Role

__all__ = ["ALL_ROLES", "STAFF", "Principal", "Role"]
