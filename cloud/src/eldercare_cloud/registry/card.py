"""The resident card: who, where, who to call, and what the devices said lately.

Device states come from the gateway's last health report and vitals from ingest's
telemetry store; the card is one audited read of the resident's record.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from eldercare_cloud.auth.models import Principal
from eldercare_cloud.care.models import AlertPublic
from eldercare_cloud.ingest.models import GatewayRecord, StoredTelemetry
from eldercare_cloud.registry.models import (
    ContactPublic,
    DevicePublic,
    HouseholdPublic,
    ResidentPublic,
)
from eldercare_cloud.registry.service import RegistryService


class DeviceState(BaseModel):
    model_config = ConfigDict(frozen=True)
    device: DevicePublic
    online: bool | None
    battery: float | None
    rssi: int | None
    last_seen: datetime | None


class VitalsPoint(BaseModel):
    model_config = ConfigDict(frozen=True)
    device_id: str
    kind: str
    ts: datetime
    values: dict[str, float]


class ResidentCard(BaseModel):
    model_config = ConfigDict(frozen=True)
    resident: ResidentPublic
    household: HouseholdPublic
    contacts: list[ContactPublic]
    devices: list[DeviceState]
    gateway_online: bool | None
    vitals: list[VitalsPoint]
    open_alerts: list[AlertPublic]


class CardSources(Protocol):
    async def recent_vitals(self, device_ids: list[str], since: datetime,
                            limit: int = 200) -> list[StoredTelemetry]: ...

    async def gateway_record(self, gateway_id: str) -> GatewayRecord | None: ...


class OpenAlerts(Protocol):
    async def open_alerts_of(self, resident_id: str) -> list[AlertPublic]: ...


async def resident_card(p: Principal, resident_id: str, registry: RegistryService,
                        sources: CardSources, alerts: OpenAlerts, now: datetime,
                        hours: float = 24.0, reason: str = "resident card") -> ResidentCard:
    resident = await registry.get_resident(p, resident_id, reason)
    household = await registry.get_household(p, resident.household_id)
    contacts = await registry.contacts_of(resident_id)
    devices = [d for d in await registry.list_devices(p, household_id=household.id)
               if d.resident_id in (None, resident_id)]
    states: list[DeviceState] = []
    gateway_online: bool | None = None
    records: dict[str, GatewayRecord | None] = {}
    for d in devices:
        if d.gateway_id and d.gateway_id not in records:
            records[d.gateway_id] = await sources.gateway_record(d.gateway_id)
        rec = records.get(d.gateway_id) if d.gateway_id else None
        status = rec.last_health.devices.get(d.id) if rec and rec.last_health else None
        states.append(DeviceState(device=d, online=status.online if status else None,
                                  battery=status.battery if status else None,
                                  rssi=status.rssi if status else None,
                                  last_seen=status.last_seen if status else None))
    known = [r for r in records.values() if r is not None]
    if known:
        gateway_online = all(r.online for r in known)
    vitals_ids = [d.id for d in devices if d.type in ("vitals_monitor", "bed_sensor")]
    points = await sources.recent_vitals(vitals_ids, now - timedelta(hours=hours))
    return ResidentCard(
        resident=resident, household=household, contacts=contacts, devices=states,
        gateway_online=gateway_online,
        vitals=[VitalsPoint(device_id=t.device_id, kind=t.kind.value, ts=t.ts, values=t.values)
                for t in points],
        open_alerts=await alerts.open_alerts_of(resident_id))
