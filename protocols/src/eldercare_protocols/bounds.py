"""Bounded, canonical values: what every decoder lets through is encodable and storable.

One hostile message must cost one rejected record, never a stopped loop. So every
value a decoder accepts stays inside what every later stage can handle, and this
module is the one place that says what that is:

* integers in the signed 64-bit range (SQLite's INTEGER, PostgreSQL's BIGINT);
* finite floats only (JSON has no NaN or Infinity; Python's json reads them anyway);
* strings that UTF-8 can encode (no lone surrogates such as ``"\\ud800"``, which JSON
  escapes can produce), at most :data:`MAX_STRING` characters;
* free-form objects nested at most :data:`MAX_DEPTH` levels, with at most
  :data:`MAX_ITEMS` members in all (the encoder and the database recurse too);
* timestamps that can be converted to UTC (``9999-12-31T23:59:59-23:00`` cannot);
* payloads of at most :data:`MAX_PAYLOAD` bytes.

:func:`loads` parses and checks raw JSON for the codecs; the ``Annotated`` types
(:data:`Int64`, :data:`Seq`, :data:`Timestamp`, :data:`JsonData`) put the same bounds on
model fields, so a value built in Python (or coerced by pydantic from a string such as
``"99999999999999999999999"``) is held to them too. Wire models also set
``allow_inf_nan=False``: pydantic turns the string ``"NaN"`` into a float otherwise.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_DEPTH = 32
MAX_STRING = 4096
MAX_ITEMS = 10_000
MAX_PAYLOAD = 64 * 1024


class BoundsError(ValueError):
    """A value outside the bounds above; a ValueError so pydantic validators report it."""


def _reject_constant(name: str) -> float:
    raise BoundsError(f"{name} is not a finite number")


def check_str(value: str, where: str = "string") -> None:
    if len(value) > MAX_STRING:
        raise BoundsError(f"{where} of {len(value)} characters exceeds {MAX_STRING}")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise BoundsError(f"{where} cannot be encoded as UTF-8 (lone surrogate at "
                              f"{exc.start})") from None


def check_int(value: int, where: str = "integer") -> None:
    if not INT64_MIN <= value <= INT64_MAX:
        raise BoundsError(f"{where} is outside the signed 64-bit range")


def check_json(value: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Raise BoundsError unless ``value`` is a JSON value inside the bounds (iterative:
    a value nested too deep for recursion is reported, not a RecursionError)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    items = 0
    while stack:
        v, depth = stack.pop()
        if v is None or v is True or v is False:
            continue
        if isinstance(v, str):
            check_str(v)
        elif isinstance(v, int):
            check_int(v)
        elif isinstance(v, float):
            if not math.isfinite(v):
                raise BoundsError(f"{v} is not a finite number")
        elif isinstance(v, dict | list | tuple):
            if depth >= max_depth:
                raise BoundsError(f"nested deeper than {max_depth} levels")
            items += len(v)
            if items > MAX_ITEMS:
                raise BoundsError(f"more than {MAX_ITEMS} members")
            if isinstance(v, dict):
                for k, x in v.items():
                    if not isinstance(k, str):
                        raise BoundsError(f"object key {k!r} is not a string")
                    check_str(k, "object key")
                    stack.append((x, depth + 1))
            else:
                stack.extend((x, depth + 1) for x in v)
        else:
            raise BoundsError(f"{type(v).__name__} is not a JSON value")


def _parse_int(text: str) -> int:
    value = int(text)
    check_int(value)
    return value


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # "1e400" reads as inf
        raise BoundsError(f"{text[:20]} is not a finite number")
    return value


def loads(payload: bytes) -> Any:
    """Parse JSON and check it; BoundsError or ValueError (json's own) on bad input.

    Numbers are checked as the parser meets them. The walk over the result is skipped
    when the raw bytes already rule out what it looks for, which is the common case
    (a device payload of a few hundred bytes): no string can be longer than the
    payload, no container can hold more members than the payload has bytes, nesting
    needs as many brackets as levels, and in ASCII bytes only a ``\\u`` escape can
    make a lone surrogate (json reads raw bytes with ``surrogatepass``, so non-ASCII
    payloads are always walked).
    """
    if len(payload) > MAX_PAYLOAD:
        raise BoundsError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    try:
        obj = json.loads(payload, parse_constant=_reject_constant, parse_int=_parse_int,
                         parse_float=_parse_float)
    except RecursionError as exc:
        raise BoundsError(f"nested deeper than {MAX_DEPTH} levels") from exc
    if (len(payload) > MAX_STRING or not payload.isascii() or b"\\u" in payload
            or payload.count(b"[") + payload.count(b"{") > MAX_DEPTH):
        check_json(obj)
    return obj


def _data(value: dict[str, Any]) -> dict[str, Any]:
    check_json(value)
    return value


def _utc_convertible(value: datetime) -> datetime:
    if value.tzinfo is not None:
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise BoundsError("timestamp out of range once converted to UTC") from None
    return value


#: a signed 64-bit integer
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
#: a sequence number or count: 0 .. 2**63-1
Seq = Annotated[int, Field(ge=0, le=INT64_MAX)]
#: a timestamp that converts to UTC (storage keeps UTC text)
Timestamp = Annotated[datetime, AfterValidator(_utc_convertible)]
#: free-form JSON data (event data, state props, command args) inside the bounds
JsonData = Annotated[dict[str, Any], AfterValidator(_data)]

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_DEPTH",
    "MAX_ITEMS",
    "MAX_PAYLOAD",
    "MAX_STRING",
    "BoundsError",
    "Int64",
    "JsonData",
    "Seq",
    "Timestamp",
    "check_int",
    "check_json",
    "check_str",
    "loads",
]
