"""One interface for every way of reaching a person, with an honest delivery result.

A channel never raises for a failed delivery: it returns ``failed`` with ``transient``
saying whether a retry can help (a network timeout can, an invalid number cannot).
Only a bug raises.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


@dataclass(frozen=True)
class Outbound:
    notification_id: str
    alert_id: str
    channel: str
    address: str
    text: str
    link: str | None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Delivery:
    status: Literal["sent", "delivered", "failed"]
    transient: bool = False
    provider_ref: str | None = None
    error: str | None = None

    @staticmethod
    def failed(error: str, transient: bool) -> Delivery:
        return Delivery("failed", transient=transient, error=error[:300])


class Channel(Protocol):
    name: str

    async def send(self, msg: Outbound) -> Delivery: ...
