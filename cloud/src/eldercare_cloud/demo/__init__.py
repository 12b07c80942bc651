"""The demo data set: ``await load_demo(db)`` (idempotent), so the platform looks like what
it is from the first minute. It goes through the registry service, so the demo obeys
the same validation as real data."""

from __future__ import annotations

import json

from eldercare_cloud.audit import AuditLog
from eldercare_cloud.auth.models import Principal, Role
from eldercare_cloud.auth.users import UserService
from eldercare_cloud.care.models import Ladder, LadderStep, StepKind, StepMode
from eldercare_cloud.care.schema import MIGRATIONS as CARE_MIGRATIONS
from eldercare_cloud.clock import Clock, SystemClock, iso
from eldercare_cloud.db import Database
from eldercare_cloud.demo import data
from eldercare_cloud.registry import RegistryService
from eldercare_cloud.registry.models import (
    CognitiveImpairment,
    CommunityCreate,
    Consent,
    ContactCreate,
    Coordinates,
    DeviceCreate,
    DistrictCreate,
    GatewayCreate,
    HouseholdCreate,
    KeySafe,
    LivingSituation,
    Mobility,
    Relation,
    ResidentCategory,
    ResidentCreate,
    Sex,
)
from eldercare_cloud.stream import MIGRATIONS as STREAM_MIGRATIONS
from eldercare_protocols.uplink import Threshold

DEMO_LADDER = Ladder(steps=[
    LadderStep(relations=[Relation.FAMILY], mode=StepMode.IN_TURN),
    LadderStep(relations=[Relation.NEIGHBOUR, Relation.VOLUNTEER], mode=StepMode.ALL_AT_ONCE),
    LadderStep(relations=[Relation.GRID_WORKER], mode=StepMode.ALL_AT_ONCE),
    LadderStep(kind=StepKind.MONITORING_CENTRE),
    LadderStep(kind=StepKind.EMERGENCY_SERVICES),
])


async def load_demo(db: Database, tenant: str = "default", clock: Clock | None = None) -> int:
    """Create what is missing of the demo district; return how many records were added."""
    clock = clock or SystemClock()
    audit = AuditLog(db, clock)
    registry = RegistryService(db, clock, audit, tenant)
    users = UserService(db, clock, "demo-loader-issues-no-tokens", tenant, 60)
    await registry.migrate()
    await users.migrate()
    await audit.migrate()
    await db.migrate("stream", STREAM_MIGRATIONS)
    await db.migrate("care", CARE_MIGRATIONS)
    system = Principal(user_id="demo-loader", username="demo-loader", role=Role.ADMIN,
                       tenant=tenant)
    added = 0

    async def exists(table: str, record_id: str) -> bool:
        cur = await db.conn.execute(f"SELECT 1 FROM {table} WHERE id = ?", (record_id,))
        return await cur.fetchone() is not None

    if not await exists("districts", data.DISTRICT["id"]):
        await registry.create_district(system, DistrictCreate(**data.DISTRICT))
        added += 1
    for c in data.COMMUNITIES:
        if not await exists("communities", c["id"]):
            await registry.create_community(system, CommunityCreate(
                district_id=data.DISTRICT["id"], **c))
            added += 1
    for n, home in enumerate(data.HOMES, 1):
        if not await exists("households", home.id):
            await registry.create_household(system, HouseholdCreate(
                id=home.id, community_id=home.community, address=home.address,
                coordinates=Coordinates(latitude=home.lat, longitude=home.lon),
                rooms=data.STANDARD_ROOMS,
                key_safe=KeySafe(**home.key_safe) if home.key_safe else None))
            added += 1
        for person in home.residents:
            if not await exists("residents", person.id):
                await registry.create_resident(system, ResidentCreate(
                    id=person.id, household_id=home.id, name=person.name,
                    birth_date=person.birth, sex=Sex(person.sex), phone=person.phone,
                    living_situation=LivingSituation(home.living),
                    conditions=person.conditions, medications=person.medications,
                    allergies=person.allergies, mobility=Mobility(person.mobility),
                    cognitive_impairment=CognitiveImpairment(person.cognitive),
                    care_level=person.care_level, language=person.language,
                    consent=Consent(monitoring=True, share_with_contacts=True,
                                    signed_on=clock.now().date(), signed_by=person.name),
                    wandering_risk=person.wandering,
                    thresholds={k: Threshold(**v) for k, v in person.thresholds.items()},
                    categories=[ResidentCategory(c) for c in person.categories]))
                added += 1
            people = [(name, rel, phone, prio) for name, rel, phone, prio in home.contacts]
            grid_name, grid_phone = data.GRID_WORKERS[home.community]
            people += [(v_name, "volunteer", v_phone, 40)
                       for v_name, v_phone in data.VOLUNTEERS[home.community]]
            people.append((grid_name, "grid_worker", grid_phone, 50))
            for i, (name, rel, phone, prio) in enumerate(people, 1):
                contact_id = f"K-{person.id[2:]}-{i:02d}"
                if not await exists("contacts", contact_id):
                    await registry.create_contact(system, person.id, ContactCreate(
                        id=contact_id, name=name, relation=Relation(rel), phone=phone,
                        priority=prio))
                    added += 1
        gateway_id = f"GW-XH-{n:03d}"
        if not await exists("gateway_bindings", gateway_id):
            await registry.create_gateway(system, GatewayCreate(
                id=gateway_id, household_id=home.id, label=f"{home.address[-12:]} 网关"))
            added += 1
        first = home.residents[0].id
        for device_type, room in home.devices:
            device_id = f"{data.DEVICE_PREFIX[device_type]}-xh{n:03d}"
            if not await exists("devices", device_id):
                resident = first if device_type in ("call_button", "vitals_monitor",
                                                    "gps_tracker", "bed_sensor") else None
                await registry.create_device(system, DeviceCreate(
                    id=device_id, type=device_type, gateway_id=gateway_id,
                    household_id=home.id, resident_id=resident, room=room))
                added += 1
    cur = await db.conn.execute("SELECT 1 FROM ladders WHERE scope = ?",
                                (f"district:{data.DISTRICT['id']}",))
    if await cur.fetchone() is None:
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO ladders(scope, district_id, resident_id, steps, updated_at,"
                " updated_by) VALUES (?,?,?,?,?,?)",
                (f"district:{data.DISTRICT['id']}", data.DISTRICT["id"], None,
                 json.dumps([st.model_dump(mode="json") for st in DEMO_LADDER.steps]),
                 iso(clock.now()), "demo-loader"))
        added += 1
    from eldercare_cloud.demo.services import load_service_demo

    added += await load_service_demo(db, clock, audit, registry, tenant)
    return added


__all__ = ["load_demo"]
