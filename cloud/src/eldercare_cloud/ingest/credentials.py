"""Gateway secrets: generated with >= 128 bits of entropy, stored only as an argon2 hash."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()

#: a gateway secret shorter than this is refused (a typed one from --secret-stdin)
MIN_SECRET_LENGTH = 16


def generate_secret() -> str:
    """24 random bytes = 192 bits, URL-safe so it can go into a config file or a URL."""
    return secrets.token_urlsafe(24)


def hash_secret(secret: str) -> str:
    return _HASHER.hash(secret)


def verify_secret(secret_hash: str, secret: str) -> bool:
    try:
        return _HASHER.verify(secret_hash, secret)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
