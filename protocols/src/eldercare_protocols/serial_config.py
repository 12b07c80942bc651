"""Device configuration over a serial cable: the ``CFG`` frames of :mod:`serial_frame`.

An installer's tool and a device in configuration mode talk point to point, one
request and one answer at a time; the answer echoes the request's sequence number::

    tool   $EC1,CFG,any,1,op=get*....
    device $EC1,CFG,btn-0001,1,op=cfg;state=active;device_id=btn-0001;broker=...*....
    tool   $EC1,CFG,any,2,op=set;device_id=btn-0007;broker=mqtt:%2F%2F10.0.0.2:1883;...
    device $EC1,CFG,btn-0001,2,op=cfg;state=staged;device_id=btn-0007;...
    tool   $EC1,CFG,any,3,op=commit*....
    device $EC1,CFG,btn-0007,3,op=ok*....

``set`` only stages: the device checks every value and reads the staged settings back
(the password as a short SHA-256 digest, never in clear); nothing changes until
``commit``. Any other request, a bad value (``op=err;reason=...``) or a frame with a
wrong checksum (``op=err;reason=checksum``) discards what was staged, so a tool that
gives up half-way leaves the device exactly as it was. The tool addresses the device
as ``any`` because it may not know the id yet (the cable is point to point).
"""

from __future__ import annotations

import hashlib
import re
from enum import StrEnum
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from eldercare_protocols.errors import DecodeError
from eldercare_protocols.serial_frame import Frame, FrameType

#: the device id a tool uses in its requests
ANY_DEVICE = "any"
#: the id a factory-fresh device answers with
UNSET_DEVICE = "unset"
_ACCOUNT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class Op(StrEnum):
    GET = "get"
    SET = "set"
    COMMIT = "commit"
    ABORT = "abort"
    # answers
    CFG = "cfg"
    OK = "ok"
    ERR = "err"


class DeviceSettings(BaseModel):
    """What an installer writes into a device: its id, home broker, account, heartbeat."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    broker: str = Field(max_length=96)
    username: str | None = None
    password: str | None = Field(default=None, min_length=1, max_length=64)
    heartbeat_s: int = Field(ge=10, le=86400)

    @field_validator("broker")
    @classmethod
    def _broker(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"mqtt", "mqtts"} or not parts.hostname:
            raise ValueError(f"broker must look like mqtt://host:port, got {value!r}")
        return value

    @field_validator("username")
    @classmethod
    def _username(cls, value: str | None) -> str | None:
        if value is not None and not _ACCOUNT_RE.match(value):
            raise ValueError(f"username {value!r}: letters, digits, '_', '.', '-' only "
                             "(no MQTT wildcards or '/')")
        return value

    @field_validator("password")
    @classmethod
    def _password(cls, value: str | None) -> str | None:
        if value is not None and not value.isprintable():
            raise ValueError("password must be printable characters")
        return value

    def to_fields(self) -> tuple[tuple[str, str], ...]:
        """The ``set`` request's fields (password in clear: it is being written)."""
        fields = [("device_id", self.device_id), ("broker", self.broker)]
        if self.username is not None:
            fields.append(("username", self.username))
        if self.password is not None:
            fields.append(("password", self.password))
        fields.append(("heartbeat_s", str(self.heartbeat_s)))
        return tuple(fields)

    def readback(self) -> dict[str, str]:
        """What a device reads back for these settings (the password only as a digest)."""
        return {"device_id": self.device_id, "broker": self.broker,
                "username": self.username or "",
                "password_sha256": password_digest(self.password),
                "heartbeat_s": str(self.heartbeat_s)}


def password_digest(password: str | None) -> str:
    """First 16 hex digits of SHA-256: enough to verify a write, useless to a bystander
    reading the serial line."""
    if not password:
        return ""
    return hashlib.sha256(password.encode()).hexdigest()[:16]


def settings_from_fields(fields: dict[str, str]) -> DeviceSettings:
    """Parse a ``set`` request's fields; DecodeError (naming the field) when invalid."""
    try:
        heartbeat = int(fields.get("heartbeat_s", ""))
    except ValueError as exc:
        raise DecodeError(f"heartbeat_s={fields.get('heartbeat_s')!r} is not an integer") \
            from exc
    data: dict[str, object] = {"device_id": fields.get("device_id", ""),
                               "broker": fields.get("broker", ""), "heartbeat_s": heartbeat,
                               "username": fields.get("username") or None,
                               "password": fields.get("password") or None}
    unknown = set(fields) - {"op", "device_id", "broker", "username", "password",
                             "heartbeat_s"}
    if unknown:
        raise DecodeError(f"unknown setting(s) {', '.join(sorted(unknown))}")
    try:
        return DeviceSettings.model_validate(data)
    except ValueError as exc:
        first = str(exc).splitlines()
        raise DecodeError(f"invalid settings: {' '.join(first[1:3]) or first[0]}") from exc


def request(op: Op, seq: int, fields: tuple[tuple[str, str], ...] = ()) -> Frame:
    return Frame(FrameType.CONFIG, ANY_DEVICE, seq, (("op", op.value), *fields))


def answer(device_id: str, seq: int, op: Op, fields: tuple[tuple[str, str], ...] = ()
           ) -> Frame:
    return Frame(FrameType.CONFIG, device_id, seq, (("op", op.value), *fields))


def op_of(frame: Frame) -> Op:
    """The frame's op; DecodeError for a non-CFG frame or an unknown op."""
    if frame.type is not FrameType.CONFIG:
        raise DecodeError(f"expected a CFG frame, got {frame.type.value}")
    raw = frame.get("op", "")
    try:
        return Op(raw or "")
    except ValueError as exc:
        raise DecodeError(f"unknown config op {raw!r}") from exc


__all__ = [
    "ANY_DEVICE",
    "UNSET_DEVICE",
    "DeviceSettings",
    "Op",
    "answer",
    "op_of",
    "password_digest",
    "request",
    "settings_from_fields",
]
