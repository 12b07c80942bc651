"""The roles of the cloud broker, as data shared by the initial file and the live API.

Every ACL is a literal topic filter: the plugin substitutes nothing, and a gateway's
filters are built from its validated id. Defaults deny publishing, subscribing *and*
receiving, so a subscription that slipped past a subscribe ACL would still deliver
nothing a role does not grant explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from eldercare_cloud.broker.names import check_gateway_id, gateway_role
from eldercare_protocols.uplink import ROOT

AclType = Literal["publishClientSend", "publishClientReceive", "subscribeLiteral",
                  "subscribePattern", "unsubscribeLiteral", "unsubscribePattern"]

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
ADMIN_ROLE = "dynsec-admin"
INGEST_ROLE = "cloud-ingest"

#: what anyone without a matching ACL may do: nothing but unsubscribe
DEFAULT_ACL_ACCESS: dict[str, bool] = {
    "publishClientSend": False,
    "publishClientReceive": False,
    "subscribe": False,
    "unsubscribe": True,
}


@dataclass(frozen=True)
class Acl:
    acltype: AclType
    topic: str
    allow: bool = True
    priority: int = 0

    def as_json(self) -> dict[str, object]:
        return {"acltype": self.acltype, "topic": self.topic, "allow": self.allow,
                "priority": self.priority}


def _grant(filter_: str, *, send: bool = False, receive: bool = False) -> list[Acl]:
    acls: list[Acl] = []
    if send:
        acls.append(Acl("publishClientSend", filter_))
    if receive:
        acls += [Acl("subscribePattern", filter_), Acl("publishClientReceive", filter_)]
    return acls


def admin_acls() -> list[Acl]:
    """The admin drives the plugin and nothing else: no device or gateway traffic."""
    return _grant(f"{CONTROL_TOPIC}/#", send=True, receive=True)


def ingest_acls() -> list[Acl]:
    """Cloud ingest: read every gateway's uplink, write every gateway's downlink.

    Shared subscriptions are checked by the broker as the filter after ``$share/<group>/``
    in some versions and as the whole string in others; granting both keeps the ingest
    working across Mosquitto 2.0.x releases without granting anything wider.
    """
    up = f"{ROOT}/+/up/#"
    acls = _grant(up, receive=True) + _grant(f"{ROOT}/+/down/#", send=True)
    acls.append(Acl("subscribePattern", f"$share/+/{up}"))
    return acls


def gateway_acls(gateway_id: str) -> list[Acl]:
    """A gateway publishes only under its own up/ and reads only its own down/."""
    gw = check_gateway_id(gateway_id)
    return (_grant(f"{ROOT}/{gw}/up/#", send=True)
            + _grant(f"{ROOT}/{gw}/down/#", receive=True))


def role_json(rolename: str, acls: list[Acl]) -> dict[str, object]:
    return {"rolename": rolename, "acls": [a.as_json() for a in acls]}


__all__ = [
    "ADMIN_ROLE",
    "CONTROL_TOPIC",
    "DEFAULT_ACL_ACCESS",
    "INGEST_ROLE",
    "Acl",
    "admin_acls",
    "gateway_acls",
    "gateway_role",
    "ingest_acls",
    "role_json",
]
