"""JSON helpers shared by the codecs: parse bytes into an object or raise DecodeError."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from eldercare_protocols.bounds import MAX_PAYLOAD, BoundsError, loads
from eldercare_protocols.errors import DecodeError

M = TypeVar("M", bound=BaseModel)

__all__ = ["MAX_PAYLOAD", "dump", "load_object", "parse", "utcnow", "validate"]


def load_object(payload: bytes, topic: str | None = None, *, into_model: bool = False
                ) -> dict[str, Any]:
    """Parse a bounded JSON object (``into_model``: see :func:`bounds.loads`)."""
    if len(payload) > MAX_PAYLOAD:
        raise DecodeError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}", topic=topic,
                          payload=payload)
    try:
        obj = loads(payload, into_model=into_model)
    except BoundsError as exc:
        raise DecodeError(f"out of bounds: {exc}", topic=topic, payload=payload) from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise DecodeError(f"not JSON: {exc}", topic=topic, payload=payload) from exc
    if not isinstance(obj, dict):
        raise DecodeError(f"expected a JSON object, got {type(obj).__name__}", topic=topic,
                          payload=payload)
    return obj


def validate(model: type[M], obj: Any, payload: bytes, topic: str | None = None) -> M:
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "payload"
        raise DecodeError(f"invalid {model.__name__}: {loc}: {first['msg']}", topic=topic,
                          payload=payload) from exc


def parse(model: type[M], payload: bytes, topic: str | None = None) -> M:
    """Load and validate into a wire model (the model checks what the loader skips)."""
    return validate(model, load_object(payload, topic, into_model=True), payload, topic)


def dump(model: BaseModel) -> bytes:
    return model.model_dump_json(exclude_none=True).encode()


def utcnow() -> datetime:
    return datetime.now(UTC)
