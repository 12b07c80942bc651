"""Cloud settings for tests: nested overrides merged section by section (importable from
every test folder), so ``care_settings(tmp, care={"poll_s": 1})`` keeps the helper's
other ``care`` values."""

from __future__ import annotations

from typing import Any


def merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` laid over it; a section (a dict) is merged key by key."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out
