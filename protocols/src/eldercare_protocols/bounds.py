"""Bounded, canonical values: what every decoder lets through is encodable and storable.

One hostile message must cost one rejected record, never a stopped loop. So every
value a decoder accepts stays inside what every later stage can handle, and this
module is the one place that says what that is:

* integers in the signed 64-bit range (SQLite's INTEGER, PostgreSQL's BIGINT);
* finite floats only (JSON has no NaN or Infinity; Python's json reads them anyway);
* strings that UTF-8 can encode (no lone surrogates such as ``"\\ud800"``, which JSON
  escapes can produce), at most :data:`MAX_STRING` characters in free-form data;
* free-form objects nested at most :data:`MAX_DEPTH` levels, with at most
  :data:`MAX_ITEMS` members in all (the encoder and the database recurse too);
* timestamps that can be converted to UTC (``9999-12-31T23:59:59-23:00`` cannot), i.e.
  between :data:`TS_MIN` and :data:`TS_MAX`;
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


def check_str(value: str, where: str = "string", max_len: int = MAX_STRING) -> None:
    if len(value) > max_len:
        raise BoundsError(f"{where} of {len(value)} characters exceeds {max_len}")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise BoundsError(f"{where} cannot be encoded as UTF-8 (lone surrogate at "
                              f"{exc.start})") from None


def check_int(value: int, where: str = "integer") -> None:
    if not INT64_MIN <= value <= INT64_MAX:
        raise BoundsError(f"{where} is outside the signed 64-bit range")


def check_json(value: Any, *, max_depth: int = MAX_DEPTH, max_string: int = MAX_STRING
               ) -> None:
    """Raise BoundsError unless ``value`` is a JSON value inside the bounds (iterative:
    a value nested too deep for recursion is reported, not a RecursionError)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    items = 0
    while stack:
        v, depth = stack.pop()
        if v is None or v is True or v is False:
            continue
        if isinstance(v, str):
            check_str(v, max_len=max_string)
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
                    check_str(k, "object key", max_string)
                    stack.append((x, depth + 1))
            else:
                stack.extend((x, depth + 1) for x in v)
        else:
            raise BoundsError(f"{type(v).__name__} is not a JSON value")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def loads(payload: bytes, *, into_model: bool = False) -> Any:
    """Parse JSON and check it; BoundsError or ValueError (json's own) on bad input.

    ``NaN`` and ``Infinity`` are refused as the parser meets them. A payload whose
    result is used as a raw object (a Zigbee2MQTT state, a downlink) is then walked in
    full. One validated into a wire model next (``into_model=True``: every native and
    uplink message) is walked only when its bytes do not rule out what the model
    cannot catch, a lone surrogate in a typed string field: in ASCII bytes only a
    ``\\u`` escape makes one (json reads raw bytes with ``surrogatepass``, so
    non-ASCII payloads are walked). Everything else the model checks where it lands:
    typed fields have their bounds (:data:`Seq`, :data:`Int64`, ``allow_inf_nan=False``,
    which also refuses ``1e400``) and refuse a nested value without descending into it;
    free-form fields (:data:`JsonData`) walk themselves. (Walking every telemetry batch,
    or parser hooks on every number, each cost a third of its decoding rate.)
    """
    if len(payload) > MAX_PAYLOAD:
        raise BoundsError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    try:
        # what json.loads(bytes) does, with one decoder made once (json.loads with any
        # keyword argument builds a new decoder per call: half the loading time)
        text = payload.decode(json.detect_encoding(payload), "surrogatepass")
        obj = _DECODER.decode(text)
    except RecursionError as exc:
        raise BoundsError(f"nested deeper than {MAX_DEPTH} levels") from exc
    if not into_model or not payload.isascii() or b"\\u" in payload:
        check_json(obj, max_string=MAX_PAYLOAD)
    return obj


def _data(value: dict[str, Any]) -> dict[str, Any]:
    if value:   # most events carry none
        check_json(value)
    return value


#: a day inside datetime's range at each end: any offset (±24 h) converts to UTC
TS_MIN = datetime(1, 1, 2, tzinfo=UTC)
TS_MAX = datetime(9999, 12, 30, tzinfo=UTC)


#: a signed 64-bit integer
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
#: a sequence number or count: 0 .. 2**63-1
Seq = Annotated[int, Field(ge=0, le=INT64_MAX)]
#: a timestamp that converts to UTC (storage keeps UTC text); compared as an instant, in
#: pydantic's own code (a Python validator here cost a third of the decoding rate)
Timestamp = Annotated[datetime, Field(ge=TS_MIN, le=TS_MAX)]
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
