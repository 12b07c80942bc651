"""Which account names may reach the broker at all.

MQTT wildcards (``+``, ``#``) and the level separator ``/`` in a username or client id
are how one tenant's name turns into a pattern over another's topics wherever a
broker substitutes names into ACLs. Our roles never substitute names (every ACL is a
literal topic built from a validated gateway id), and we refuse such names before any
request leaves for the broker, so both layers would have to fail at once.
"""

from __future__ import annotations

import re

from eldercare_cloud.broker.errors import InvalidAccountError
from eldercare_protocols.uplink import GATEWAY_ID_RE

#: usernames and client ids of our own service accounts
ACCOUNT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: passwords shorter than this are refused (gateway secrets are 32 characters, 192 bits)
MIN_PASSWORD_LENGTH = 16
_FORBIDDEN = frozenset("+#/")


def check_account(name: str, what: str = "username") -> str:
    """Return ``name`` if it may be a broker username/client id, else raise."""
    bad = sorted(_FORBIDDEN.intersection(name))
    if bad:
        raise InvalidAccountError(f"{what} {name!r} contains {' '.join(bad)}: MQTT wildcards "
                                  "and '/' are not allowed in broker accounts")
    if not ACCOUNT_RE.match(name):
        raise InvalidAccountError(f"{what} {name!r} must be 1-64 letters, digits, '_', '.' or "
                                  "'-', starting with a letter or digit")
    return name


def check_gateway_id(gateway_id: str) -> str:
    """A gateway id is also its broker username and part of its topics."""
    check_account(gateway_id, "gateway id")
    if not GATEWAY_ID_RE.match(gateway_id):
        raise InvalidAccountError(f"gateway id {gateway_id!r} must match "
                                  f"{GATEWAY_ID_RE.pattern}")
    return gateway_id


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidAccountError(f"a broker password needs at least {MIN_PASSWORD_LENGTH} "
                                  "characters")
    return password


def gateway_client_id(gateway_id: str) -> str:
    """The only MQTT client id a gateway's account may connect with (the edge default)."""
    return f"gw-{check_gateway_id(gateway_id)}"


def gateway_role(gateway_id: str) -> str:
    return f"gateway-{check_gateway_id(gateway_id)}"
