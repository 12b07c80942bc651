"""Wire contracts, canonical model and codecs shared by every eldercare part.

Every other package imports from here; nothing here is copied elsewhere.
"""

from eldercare_protocols.errors import DecodeError, ProtocolError, UnknownDeviceError
from eldercare_protocols.events import (
    CanonicalEvent,
    EventCategory,
    EventKind,
    category_of,
    is_life_safety,
)

PROTOCOL_VERSION = 1

__all__ = [
    "PROTOCOL_VERSION",
    "CanonicalEvent",
    "DecodeError",
    "EventCategory",
    "EventKind",
    "ProtocolError",
    "UnknownDeviceError",
    "category_of",
    "is_life_safety",
]
