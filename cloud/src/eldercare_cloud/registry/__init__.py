"""Districts, communities, households, residents, contacts, gateways and devices."""

from eldercare_cloud.registry.service import RegistryService

__all__ = ["RegistryService"]
