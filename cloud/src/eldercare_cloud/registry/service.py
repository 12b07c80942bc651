"""The registry's queries: every public method takes the caller and applies its scope.

A change that alters what a gateway must know (resident, thresholds, routine, SMS
contacts, devices) bumps that gateway's ``config_version`` in the same transaction;
the care engine publishes pending configs, so a config change survives a restart and
a broker outage.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, Iterable
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel

from eldercare_cloud.audit import AuditLog
from eldercare_cloud.auth.models import Principal, Role
from eldercare_cloud.auth.scope import district_clause, resident_clause
from eldercare_cloud.clock import Clock, iso, parse_iso
from eldercare_cloud.db import INTEGRITY_ERRORS, Connection, Database, Row
from eldercare_cloud.errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from eldercare_cloud.registry.models import (
    AvailabilityWindow,
    CognitiveImpairment,
    CommunityCreate,
    CommunityPublic,
    Consent,
    ContactChannel,
    ContactCreate,
    ContactPublic,
    ContactUpdate,
    Coordinates,
    DeviceCreate,
    DevicePublic,
    DeviceUpdate,
    DistrictCreate,
    DistrictPublic,
    GatewayCreate,
    GatewayPublic,
    GatewayUpdate,
    HouseholdCreate,
    HouseholdPublic,
    HouseholdUpdate,
    KeySafe,
    Relation,
    ResidentCreate,
    ResidentPublic,
    ResidentSummary,
    ResidentUpdate,
    WatchProfile,
    WatchProfilePublic,
)
from eldercare_cloud.registry.schema import MIGRATIONS
from eldercare_protocols.uplink import (
    DeviceBinding,
    GatewayConfig,
    Resident,
    Routine,
    SmsContact,
    Threshold,
)

#: the order in which the gateway texts contacts itself when the cloud is silent
SMS_RELATION_ORDER = {Relation.FAMILY: 0, Relation.NEIGHBOUR: 1, Relation.VOLUNTEER: 2,
                      Relation.GRID_WORKER: 3, Relation.DOCTOR: 4}

_RESIDENT_FROM = (
    "residents r JOIN households h ON h.id = r.household_id "
    "JOIN communities c ON c.id = h.community_id")


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(5)}"


def dumps(value: Any) -> str:
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        return json.dumps([v.model_dump(mode="json") for v in value], ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False)


class RegistryService:
    def __init__(self, db: Database, clock: Clock, audit: AuditLog, tenant: str,
                 on_config_change: Callable[[], None] | None = None) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._tenant = tenant
        self._on_config_change = on_config_change or (lambda: None)

    async def migrate(self) -> None:
        await self._db.migrate("registry", MIGRATIONS)

    # -- helpers -----------------------------------------------------------------------

    async def _one(self, sql: str, params: Iterable[Any]) -> Row | None:
        cur = await self._db.conn.execute(sql, tuple(params))
        row: Row | None = await cur.fetchone()
        return row

    async def _all(self, sql: str, params: Iterable[Any]) -> list[Row]:
        cur = await self._db.conn.execute(sql, tuple(params))
        return list(await cur.fetchall())

    def _now(self) -> str:
        return iso(self._clock.now())

    async def _audit_read(self, p: Principal, record_type: str, record_id: str,
                          reason: str, action: str = "read") -> None:
        await self._audit.record(tenant=p.tenant, actor=p.actor, actor_name=p.username,
                                 role=p.role.value, action=action, record_type=record_type,
                                 record_id=record_id, reason=reason)

    async def _bump_gateways(self, conn: Connection, where: str,
                             params: Iterable[Any]) -> None:
        await conn.execute(
            f"UPDATE gateway_bindings SET config_version = config_version + 1 WHERE {where}",
            tuple(params))

    async def _bump_household(self, conn: Connection, household_id: str) -> None:
        await self._bump_gateways(conn, "household_id = ?", (household_id,))

    async def _bump_resident(self, conn: Connection, resident_id: str) -> None:
        await self._bump_gateways(
            conn, "household_id = (SELECT household_id FROM residents WHERE id = ?)",
            (resident_id,))

    # -- districts and communities -------------------------------------------------------

    async def list_districts(self, p: Principal) -> list[DistrictPublic]:
        if p.role is Role.FAMILY or p.role in (Role.VOLUNTEER, Role.WORKER):
            raise PermissionDeniedError("districts are for staff")
        clause, params = district_clause(p, "id")
        rows = await self._all(f"SELECT * FROM districts WHERE {clause} ORDER BY id", params)
        return [_district(r) for r in rows]

    async def get_district(self, p: Principal, district_id: str) -> DistrictPublic:
        clause, params = district_clause(p, "id")
        row = await self._one(f"SELECT * FROM districts WHERE id = ? AND {clause}",
                              [district_id, *params])
        if row is None:
            raise NotFoundError(f"district {district_id} not found")
        return _district(row)

    async def create_district(self, p: Principal, body: DistrictCreate) -> DistrictPublic:
        district_id = body.id or new_id("D")
        async with self._db.transaction() as conn:
            await _insert_unique(conn, "districts", district_id,
                                 "INSERT INTO districts(id, tenant, name, province, city, code,"
                                 " created_at) VALUES (?,?,?,?,?,?,?)",
                                 (district_id, p.tenant, body.name, body.province, body.city,
                                  body.code, self._now()))
        return await self.get_district(p, district_id)

    async def list_communities(self, p: Principal,
                               district_id: str | None = None) -> list[CommunityPublic]:
        clause, params = district_clause(p, "district_id")
        sql = f"SELECT * FROM communities WHERE {clause}"
        if district_id is not None:
            sql += " AND district_id = ?"
            params.append(district_id)
        return [_community(r) for r in await self._all(sql + " ORDER BY id", params)]

    async def get_community(self, p: Principal, community_id: str) -> CommunityPublic:
        clause, params = district_clause(p, "district_id")
        row = await self._one(f"SELECT * FROM communities WHERE id = ? AND {clause}",
                              [community_id, *params])
        if row is None:
            raise NotFoundError(f"community {community_id} not found")
        return _community(row)

    async def create_community(self, p: Principal, body: CommunityCreate) -> CommunityPublic:
        await self.get_district(p, body.district_id)
        community_id = body.id or new_id("C")
        async with self._db.transaction() as conn:
            await _insert_unique(conn, "communities", community_id,
                                 "INSERT INTO communities(id, district_id, name, address, phone,"
                                 " created_at) VALUES (?,?,?,?,?,?)",
                                 (community_id, body.district_id, body.name, body.address,
                                  body.phone, self._now()))
        return await self.get_community(p, community_id)

    # -- households ------------------------------------------------------------------------

    async def _household_row(self, p: Principal, household_id: str) -> Row:
        clause, params = district_clause(p, "c.district_id")
        if p.role is Role.FAMILY:
            clause, params = resident_clause(p, "r.id", "c.district_id")
            clause = f"h.id IN (SELECT r.household_id FROM residents r WHERE {clause})"
        row = await self._one(
            "SELECT h.*, c.district_id FROM households h JOIN communities c"
            f" ON c.id = h.community_id WHERE h.id = ? AND {clause}",
            [household_id, *params])
        if row is None:
            raise NotFoundError(f"household {household_id} not found")
        return row

    async def list_households(self, p: Principal,
                              community_id: str | None = None) -> list[HouseholdPublic]:
        clause, params = district_clause(p, "c.district_id")
        sql = ("SELECT h.*, c.district_id FROM households h JOIN communities c"
               f" ON c.id = h.community_id WHERE {clause}")
        if community_id is not None:
            sql += " AND h.community_id = ?"
            params.append(community_id)
        return [_household(r) for r in await self._all(sql + " ORDER BY h.id", params)]

    async def get_household(self, p: Principal, household_id: str) -> HouseholdPublic:
        return _household(await self._household_row(p, household_id))

    async def create_household(self, p: Principal, body: HouseholdCreate) -> HouseholdPublic:
        await self.get_community(p, body.community_id)
        household_id = body.id or new_id("H")
        now = self._now()
        coords = body.coordinates
        async with self._db.transaction() as conn:
            await _insert_unique(
                conn, "households", household_id,
                "INSERT INTO households(id, community_id, address, latitude, longitude, rooms,"
                " key_safe, notes, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (household_id, body.community_id, body.address,
                 coords.latitude if coords else None, coords.longitude if coords else None,
                 dumps(body.rooms), body.key_safe.model_dump_json() if body.key_safe else None,
                 body.notes, now, now))
        return await self.get_household(p, household_id)

    async def update_household(self, p: Principal, household_id: str,
                               body: HouseholdUpdate) -> HouseholdPublic:
        await self._household_row(p, household_id)
        sets: dict[str, Any] = {}
        fields = body.model_fields_set
        if "address" in fields and body.address is not None:
            sets["address"] = body.address
        if "coordinates" in fields:
            sets["latitude"] = body.coordinates.latitude if body.coordinates else None
            sets["longitude"] = body.coordinates.longitude if body.coordinates else None
        if "rooms" in fields and body.rooms is not None:
            sets["rooms"] = dumps(body.rooms)
        if "key_safe" in fields:
            sets["key_safe"] = body.key_safe.model_dump_json() if body.key_safe else None
        if "notes" in fields and body.notes is not None:
            sets["notes"] = body.notes
        async with self._db.transaction() as conn:
            await _update(conn, "households", household_id, sets, self._now())
            if "address" in sets:
                await self._bump_household(conn, household_id)
        self._on_config_change()
        if "key_safe" in sets:
            await self._audit_read(p, "household", household_id, "key-safe changed", "update")
        return await self.get_household(p, household_id)

    async def key_safe(self, household_id: str) -> KeySafe | None:
        """Unscoped: callers (the responder API) check scope and audit before calling."""
        row = await self._one("SELECT key_safe FROM households WHERE id = ?", [household_id])
        if row is None or row["key_safe"] is None:
            return None
        return KeySafe.model_validate_json(row["key_safe"])

    # -- residents -------------------------------------------------------------------------

    async def _resident_row(self, p: Principal, resident_id: str) -> Row:
        clause, params = resident_clause(p, "r.id", "c.district_id")
        row = await self._one(
            f"SELECT r.*, h.address, h.community_id, c.district_id FROM {_RESIDENT_FROM}"
            f" WHERE r.id = ? AND {clause}", [resident_id, *params])
        if row is None:
            raise NotFoundError(f"resident {resident_id} not found")
        return row

    async def list_residents(self, p: Principal, *, district_id: str | None = None,
                             community_id: str | None = None, q: str | None = None,
                             limit: int = 200, offset: int = 0) -> list[ResidentSummary]:
        clause, params = resident_clause(p, "r.id", "c.district_id")
        sql = (f"SELECT r.id, r.household_id, r.name, h.address, h.community_id, c.district_id"
               f" FROM {_RESIDENT_FROM} WHERE {clause}")
        if district_id is not None:
            sql += " AND c.district_id = ?"
            params.append(district_id)
        if community_id is not None:
            sql += " AND h.community_id = ?"
            params.append(community_id)
        if q:
            sql += " AND (r.name LIKE ? OR h.address LIKE ?)"
            params += [f"%{q}%", f"%{q}%"]
        rows = await self._all(sql + " ORDER BY r.id LIMIT ? OFFSET ?", [*params, limit, offset])
        await self._audit_read(p, "resident", "*", f"list ({len(rows)} summaries)", "list")
        return [_resident_summary(r) for r in rows]

    async def get_resident(self, p: Principal, resident_id: str,
                           reason: str = "view") -> ResidentPublic:
        row = await self._resident_row(p, resident_id)
        await self._audit_read(p, "resident", resident_id, reason)
        return _resident(row)

    async def resident_summary(self, resident_id: str) -> ResidentSummary | None:
        row = await self._one(
            f"SELECT r.id, r.household_id, r.name, h.address, h.community_id, c.district_id"
            f" FROM {_RESIDENT_FROM} WHERE r.id = ?", [resident_id])
        return None if row is None else _resident_summary(row)

    async def resident_unscoped(self, resident_id: str) -> ResidentPublic | None:
        row = await self._one(
            f"SELECT r.*, h.address, h.community_id, c.district_id FROM {_RESIDENT_FROM}"
            " WHERE r.id = ?", [resident_id])
        return None if row is None else _resident(row)

    async def create_resident(self, p: Principal, body: ResidentCreate) -> ResidentPublic:
        await self._household_row(p, body.household_id)
        resident_id = body.id or new_id("R")
        now = self._now()
        async with self._db.transaction() as conn:
            await _insert_unique(
                conn, "residents", resident_id,
                "INSERT INTO residents(id, household_id, name, birth_date, sex, phone,"
                " living_situation, conditions, medications, allergies, mobility,"
                " cognitive_impairment, care_level, language, consent, wandering_risk,"
                " thresholds, routine, notes, created_at, updated_at, categories)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (resident_id, body.household_id, body.name,
                 body.birth_date.isoformat() if body.birth_date else None,
                 body.sex.value if body.sex else None, body.phone, body.living_situation.value,
                 dumps(body.conditions), dumps(body.medications), dumps(body.allergies),
                 body.mobility.value, body.cognitive_impairment.value, body.care_level,
                 body.language, body.consent.model_dump_json(), int(body.wandering_risk),
                 json.dumps({k: v.model_dump() for k, v in body.thresholds.items()}),
                 body.routine.model_dump_json(), body.notes, now, now,
                 json.dumps([c.value for c in body.categories])))
            await self._bump_household(conn, body.household_id)
        self._on_config_change()
        return await self.get_resident(p, resident_id, "created")

    async def update_resident(self, p: Principal, resident_id: str,
                              body: ResidentUpdate) -> ResidentPublic:
        await self._resident_row(p, resident_id)
        sets: dict[str, Any] = {}
        for name in body.model_fields_set:
            value = getattr(body, name)
            if value is None:
                continue
            if name in ("conditions", "medications", "allergies"):
                sets[name] = dumps(value)
            elif name == "categories":
                sets[name] = json.dumps([c.value for c in value])
            elif name in ("consent", "routine"):
                sets[name] = value.model_dump_json()
            elif name == "thresholds":
                sets[name] = json.dumps({k: v.model_dump() for k, v in value.items()})
            elif name == "birth_date":
                sets[name] = value.isoformat()
            elif name == "wandering_risk":
                sets[name] = int(value)
            elif hasattr(value, "value"):
                sets[name] = value.value
            else:
                sets[name] = value
        async with self._db.transaction() as conn:
            await _update(conn, "residents", resident_id, sets, self._now())
            await self._bump_resident(conn, resident_id)
        self._on_config_change()
        return await self.get_resident(p, resident_id, "updated")

    # -- watch profile ---------------------------------------------------------------------

    async def get_watch_profile(self, p: Principal, resident_id: str) -> WatchProfilePublic:
        row = await self._resident_row(p, resident_id)
        await self._audit_read(p, "resident", resident_id, "watch profile")
        return await self._watch_profile(row)

    async def put_watch_profile(self, p: Principal, resident_id: str,
                                body: WatchProfile) -> WatchProfilePublic:
        """Replace the resident's watch profile (validated whole before anything is
        written: a bad latitude or radius changes nothing)."""
        row = await self._resident_row(p, resident_id)
        now = self._now()
        home = body.home
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO resident_watch_profiles(resident_id, home_lat, home_lon, radius_m,"
                " strap_alert, high_risk, updated_at, updated_by) VALUES (?,?,?,?,?,?,?,?)"
                " ON CONFLICT(resident_id) DO UPDATE SET home_lat = excluded.home_lat,"
                " home_lon = excluded.home_lon, radius_m = excluded.radius_m,"
                " strap_alert = excluded.strap_alert, high_risk = excluded.high_risk,"
                " updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                (resident_id, home.latitude if home else None, home.longitude if home else None,
                 body.radius_m, int(body.strap_alert), int(body.high_risk), now, p.actor))
        await self._audit_read(p, "resident", resident_id, "watch profile changed", "update")
        return await self._watch_profile(row)

    async def watch_profile_of(self, resident_id: str) -> WatchProfilePublic | None:
        """Unscoped, for the watch listener and the care engine (no user, no read of the
        person's record beyond the profile)."""
        row = await self._one("SELECT * FROM residents WHERE id = ?", [resident_id])
        return None if row is None else await self._watch_profile(row)

    async def watch_profile_for_device(self, device_id: str) -> WatchProfilePublic | None:
        """The profile of the resident a watch is bound to (None: unbound)."""
        row = await self._one("SELECT resident_id FROM devices WHERE id = ?", [device_id])
        if row is None or row["resident_id"] is None:
            return None
        return await self.watch_profile_of(row["resident_id"])

    async def _watch_profile(self, resident: Row) -> WatchProfilePublic:
        w = await self._one("SELECT * FROM resident_watch_profiles WHERE resident_id = ?",
                            [resident["id"]])
        by_record = (bool(resident["wandering_risk"]) or resident["cognitive_impairment"]
                     in (CognitiveImpairment.MODERATE.value, CognitiveImpairment.SEVERE.value))
        if w is None:
            return WatchProfilePublic(resident_id=resident["id"],
                                      effective_high_risk=by_record)
        home = (Coordinates(latitude=w["home_lat"], longitude=w["home_lon"])
                if w["home_lat"] is not None else None)
        return WatchProfilePublic(
            resident_id=resident["id"], home=home, radius_m=w["radius_m"],
            strap_alert=bool(w["strap_alert"]), high_risk=bool(w["high_risk"]),
            effective_high_risk=bool(w["high_risk"]) or by_record,
            updated_at=parse_iso(w["updated_at"]), updated_by=w["updated_by"])

    # -- contacts --------------------------------------------------------------------------

    async def list_contacts(self, p: Principal, resident_id: str) -> list[ContactPublic]:
        await self._resident_row(p, resident_id)
        await self._audit_read(p, "resident", resident_id, "contacts", "read_contacts")
        return await self.contacts_of(resident_id)

    async def contacts_of(self, resident_id: str) -> list[ContactPublic]:
        rows = await self._all("SELECT * FROM contacts WHERE resident_id = ?"
                               " ORDER BY priority, id", [resident_id])
        return [_contact(r) for r in rows]

    async def contact(self, contact_id: str) -> ContactPublic | None:
        row = await self._one("SELECT * FROM contacts WHERE id = ?", [contact_id])
        return None if row is None else _contact(row)

    async def _contact_row(self, p: Principal, contact_id: str) -> Row:
        row = await self._one("SELECT * FROM contacts WHERE id = ?", [contact_id])
        if row is None:
            raise NotFoundError(f"contact {contact_id} not found")
        await self._resident_row(p, row["resident_id"])
        return row

    async def create_contact(self, p: Principal, resident_id: str,
                             body: ContactCreate) -> ContactPublic:
        await self._resident_row(p, resident_id)
        _check_channel(body.preferred_channel, body.webhook_url, body.user_id)
        if body.user_id is not None:
            await self._require_user(body.user_id)
        contact_id = body.id or new_id("K")
        async with self._db.transaction() as conn:
            await _insert_unique(
                conn, "contacts", contact_id,
                "INSERT INTO contacts(id, resident_id, name, relation, phone, preferred_channel,"
                " webhook_url, availability, priority, user_id, notes, created_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (contact_id, resident_id, body.name, body.relation.value, body.phone,
                 body.preferred_channel.value, body.webhook_url,
                 dumps(body.availability) if body.availability else "[]", body.priority,
                 body.user_id, body.notes, self._now()))
            await self._bump_resident(conn, resident_id)
        self._on_config_change()
        contact = await self.contact(contact_id)
        assert contact is not None
        return contact

    async def update_contact(self, p: Principal, contact_id: str,
                             body: ContactUpdate) -> ContactPublic:
        row = await self._contact_row(p, contact_id)
        current = _contact(row)
        merged = current.model_copy(update={k: getattr(body, k) for k in body.model_fields_set
                                            if getattr(body, k) is not None})
        _check_channel(merged.preferred_channel, merged.webhook_url, merged.user_id)
        if body.user_id is not None:
            await self._require_user(body.user_id)
        sets: dict[str, Any] = {}
        for name in body.model_fields_set:
            value = getattr(body, name)
            if value is None and name != "webhook_url":
                continue
            if name == "availability":
                sets[name] = dumps(value) if value else "[]"
            elif hasattr(value, "value"):
                sets[name] = value.value
            else:
                sets[name] = value
        async with self._db.transaction() as conn:
            await _update(conn, "contacts", contact_id, sets, None)
            await self._bump_resident(conn, row["resident_id"])
        self._on_config_change()
        contact = await self.contact(contact_id)
        assert contact is not None
        return contact

    async def delete_contact(self, p: Principal, contact_id: str) -> None:
        row = await self._contact_row(p, contact_id)
        async with self._db.transaction() as conn:
            await conn.execute("DELETE FROM contacts WHERE id = ?", (contact_id,))
            await self._bump_resident(conn, row["resident_id"])
        self._on_config_change()

    async def _require_user(self, user_id: str) -> None:
        row = await self._one("SELECT tenant FROM users WHERE id = ?", [user_id])
        if row is None or row["tenant"] != self._tenant:
            raise InvalidRequestError(f"user {user_id} does not exist")

    # -- gateways and devices ----------------------------------------------------------------

    def _gateway_scope(self, p: Principal) -> tuple[str, list[Any]]:
        if p.role not in (Role.ADMIN, Role.OPERATOR, Role.INSTALLER):
            return "1 = 0", []
        clause, params = district_clause(p, "c.district_id")
        # an unbound gateway belongs to no district yet: admins and installers see it
        if p.role in (Role.ADMIN, Role.INSTALLER):
            clause = f"({clause} OR g.household_id IS NULL)"
        return clause, params

    async def _gateway_row(self, p: Principal, gateway_id: str) -> Row:
        clause, params = self._gateway_scope(p)
        row = await self._one(
            "SELECT g.*, c.district_id FROM gateway_bindings g"
            " LEFT JOIN households h ON h.id = g.household_id"
            f" LEFT JOIN communities c ON c.id = h.community_id WHERE g.id = ? AND {clause}",
            [gateway_id, *params])
        if row is None:
            raise NotFoundError(f"gateway {gateway_id} not found")
        return row

    async def list_gateways(self, p: Principal) -> list[GatewayPublic]:
        clause, params = self._gateway_scope(p)
        rows = await self._all(
            "SELECT g.*, c.district_id FROM gateway_bindings g"
            " LEFT JOIN households h ON h.id = g.household_id"
            f" LEFT JOIN communities c ON c.id = h.community_id WHERE {clause} ORDER BY g.id",
            params)
        return [_gateway(r) for r in rows]

    async def get_gateway(self, p: Principal, gateway_id: str) -> GatewayPublic:
        return _gateway(await self._gateway_row(p, gateway_id))

    async def create_gateway(self, p: Principal, body: GatewayCreate) -> GatewayPublic:
        if body.household_id is not None:
            await self._household_row(p, body.household_id)
        async with self._db.transaction() as conn:
            await _insert_unique(
                conn, "gateway_bindings", body.id,
                "INSERT INTO gateway_bindings(id, household_id, label, bound_at)"
                " VALUES (?,?,?,?)", (body.id, body.household_id, body.label, self._now()))
        self._on_config_change()
        return await self.get_gateway(p, body.id)

    async def update_gateway(self, p: Principal, gateway_id: str,
                             body: GatewayUpdate) -> GatewayPublic:
        await self._gateway_row(p, gateway_id)
        sets: dict[str, Any] = {}
        if "household_id" in body.model_fields_set:
            if body.household_id is not None:
                await self._household_row(p, body.household_id)
            sets["household_id"] = body.household_id
            sets["bound_at"] = self._now()
        if body.label is not None:
            sets["label"] = body.label
        async with self._db.transaction() as conn:
            await _update(conn, "gateway_bindings", gateway_id, sets, None)
            await self._bump_gateways(conn, "id = ?", (gateway_id,))
        self._on_config_change()
        return await self.get_gateway(p, gateway_id)

    async def gateway_config_for(self, p: Principal, gateway_id: str) -> GatewayConfig:
        await self._gateway_row(p, gateway_id)
        config = await self.build_gateway_config(gateway_id)
        assert config is not None
        return config

    def _device_scope(self, p: Principal) -> tuple[str, list[Any]]:
        if p.role not in (Role.ADMIN, Role.OPERATOR, Role.INSTALLER):
            return "1 = 0", []
        clause, params = district_clause(p, "c.district_id")
        if p.role in (Role.ADMIN, Role.INSTALLER):
            clause = f"({clause} OR d.household_id IS NULL)"
        return clause, params

    async def _device_row(self, p: Principal, device_id: str) -> Row:
        clause, params = self._device_scope(p)
        row = await self._one(
            "SELECT d.* FROM devices d LEFT JOIN households h ON h.id = d.household_id"
            f" LEFT JOIN communities c ON c.id = h.community_id WHERE d.id = ? AND {clause}",
            [device_id, *params])
        if row is None:
            raise NotFoundError(f"device {device_id} not found")
        return row

    async def is_watch(self, device_id: str) -> bool:
        """Whether a GPS watch of this id is registered (a ``gps_tracker`` with source
        ``watch``), for the cloud's own watch listener, which has no user; it learns
        nothing about a person."""
        row = await self._one("SELECT type, source FROM devices WHERE id = ?", [device_id])
        return row is not None and row["type"] == "gps_tracker" and row["source"] == "watch"

    async def list_devices(self, p: Principal, *, gateway_id: str | None = None,
                           household_id: str | None = None) -> list[DevicePublic]:
        clause, params = self._device_scope(p)
        sql = ("SELECT d.* FROM devices d LEFT JOIN households h ON h.id = d.household_id"
               f" LEFT JOIN communities c ON c.id = h.community_id WHERE {clause}")
        if gateway_id is not None:
            sql += " AND d.gateway_id = ?"
            params.append(gateway_id)
        if household_id is not None:
            sql += " AND d.household_id = ?"
            params.append(household_id)
        return [_device(r) for r in await self._all(sql + " ORDER BY d.id", params)]

    async def get_device(self, p: Principal, device_id: str) -> DevicePublic:
        return _device(await self._device_row(p, device_id))

    async def _check_device_links(self, p: Principal, gateway_id: str | None,
                                  household_id: str | None, resident_id: str | None,
                                  room: str | None) -> str | None:
        """Validate the bindings and return the household the device ends up in."""
        if gateway_id is not None:
            gw = await self._gateway_row(p, gateway_id)
            if household_id is None:
                household_id = gw["household_id"]
            elif gw["household_id"] not in (None, household_id):
                raise InvalidRequestError(
                    f"gateway {gateway_id} is installed in another household")
        if resident_id is not None:
            row = await self._one("SELECT household_id FROM residents WHERE id = ?",
                                  [resident_id])
            if row is None:
                raise InvalidRequestError(f"resident {resident_id} does not exist")
            if household_id is None:
                household_id = row["household_id"]
            elif row["household_id"] != household_id:
                raise InvalidRequestError(f"resident {resident_id} lives in another household")
        if household_id is not None:
            hh = await self._household_row(p, household_id)
            rooms = json.loads(hh["rooms"])
            if room is not None and rooms and room not in rooms:
                raise InvalidRequestError(f"household {household_id} has no room {room!r};"
                                          f" rooms: {rooms}")
        return household_id

    async def create_device(self, p: Principal, body: DeviceCreate) -> DevicePublic:
        household_id = await self._check_device_links(p, body.gateway_id, body.household_id,
                                                      body.resident_id, body.room)
        async with self._db.transaction() as conn:
            await _insert_unique(
                conn, "devices", body.id,
                "INSERT INTO devices(id, type, gateway_id, household_id, resident_id, room,"
                " source, z2m_model, z2m_name, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (body.id, body.type, body.gateway_id, household_id, body.resident_id,
                 body.room, body.source, body.z2m_model, body.z2m_name, self._now()))
            if body.gateway_id is not None:
                await self._bump_gateways(conn, "id = ?", (body.gateway_id,))
        self._on_config_change()
        return await self.get_device(p, body.id)

    async def update_device(self, p: Principal, device_id: str,
                            body: DeviceUpdate) -> DevicePublic:
        row = await self._device_row(p, device_id)
        fields = body.model_fields_set
        merged = {k: (getattr(body, k) if k in fields else row[k])
                  for k in ("gateway_id", "household_id", "resident_id", "room", "z2m_model",
                            "z2m_name")}
        household_id = await self._check_device_links(
            p, merged["gateway_id"], merged["household_id"], merged["resident_id"],
            merged["room"])
        merged["household_id"] = household_id
        async with self._db.transaction() as conn:
            await _update(conn, "devices", device_id, merged, None)
            await self._bump_gateways(conn, "id IN (?, ?)",
                                      (row["gateway_id"], merged["gateway_id"]))
        self._on_config_change()
        return await self.get_device(p, device_id)

    # -- what the care engine needs (unscoped, internal) ---------------------------------------

    async def device_binding(self, device_id: str) -> Row | None:
        return await self._one("SELECT * FROM devices WHERE id = ?", [device_id])

    async def gateway_binding(self, gateway_id: str) -> Row | None:
        return await self._one(
            "SELECT g.*, c.district_id FROM gateway_bindings g"
            " LEFT JOIN households h ON h.id = g.household_id"
            " LEFT JOIN communities c ON c.id = h.community_id WHERE g.id = ?", [gateway_id])

    async def residents_of_household(self, household_id: str) -> list[str]:
        rows = await self._all("SELECT id FROM residents WHERE household_id = ? ORDER BY id",
                               [household_id])
        return [r["id"] for r in rows]

    async def bound_gateways(self) -> list[Row]:
        return await self._all(
            "SELECT g.*, c.district_id FROM gateway_bindings g"
            " JOIN households h ON h.id = g.household_id"
            " JOIN communities c ON c.id = h.community_id ORDER BY g.id", [])

    async def pending_configs(self) -> list[tuple[str, int]]:
        rows = await self._all("SELECT id, config_version FROM gateway_bindings"
                               " WHERE config_version > published_version ORDER BY id", [])
        return [(r["id"], int(r["config_version"])) for r in rows]

    async def mark_published(self, gateway_id: str, version: int, error: str | None) -> None:
        async with self._db.transaction() as conn:
            if error is None:
                await conn.execute(
                    "UPDATE gateway_bindings SET published_version = CASE WHEN"
                    " published_version > ? THEN published_version ELSE ? END,"
                    " publish_error = NULL WHERE id = ?", (version, version, gateway_id))
            else:
                await conn.execute("UPDATE gateway_bindings SET publish_error = ? WHERE id = ?",
                                   (error[:300], gateway_id))

    async def build_gateway_config(self, gateway_id: str,
                                   sms_timeout_s: int = 60) -> GatewayConfig | None:
        """What the gateway must know to keep the home safe without the cloud (invariant 3)."""
        gw = await self._one("SELECT * FROM gateway_bindings WHERE id = ?", [gateway_id])
        if gw is None:
            return None
        version = int(gw["config_version"])
        if gw["household_id"] is None:
            return GatewayConfig(gateway_id=gateway_id, version=version,
                                 sms_timeout_s=sms_timeout_s)
        household_id = gw["household_id"]
        residents = await self._all(
            "SELECT r.*, h.address FROM residents r JOIN households h ON h.id = r.household_id"
            " WHERE r.household_id = ? ORDER BY r.id", [household_id])
        resident = None
        thresholds: dict[str, Threshold] = {}
        routine = Routine()
        contacts: list[SmsContact] = []
        if residents:
            first = residents[0]
            names = "、".join(r["name"] for r in residents)
            resident = Resident(name=names[:64], address=first["address"][:200],
                                wandering_risk=any(bool(r["wandering_risk"]) for r in residents))
            thresholds = {k: Threshold.model_validate(v)
                          for k, v in json.loads(first["thresholds"]).items()}
            routine = Routine.model_validate_json(first["routine"])
            ids = [r["id"] for r in residents]
            rows = await self._all(
                f"SELECT * FROM contacts WHERE resident_id IN ({','.join('?' for _ in ids)})",
                ids)
            seen: set[str] = set()
            ordered = sorted(rows, key=lambda r: (SMS_RELATION_ORDER[Relation(r["relation"])],
                                                  r["priority"], r["id"]))
            for r in ordered:
                if r["phone"] in seen or len(contacts) >= 10:
                    continue
                seen.add(r["phone"])
                contacts.append(SmsContact(name=r["name"], phone=r["phone"],
                                           relation=r["relation"]))
        devices = await self._all(
            "SELECT * FROM devices WHERE household_id = ? OR gateway_id = ? ORDER BY id",
            [household_id, gateway_id])
        # a watch talks to the cloud, not to the gateway (which would call it offline)
        bindings = [DeviceBinding(device_id=d["id"], type=d["type"], room=d["room"],
                                  source=d["source"], z2m_model=d["z2m_model"],
                                  z2m_name=d["z2m_name"])
                    for d in devices if d["source"] != "watch"][:200]
        return GatewayConfig(gateway_id=gateway_id, version=version, resident=resident,
                             thresholds=thresholds, routine=routine,
                             sms_timeout_s=sms_timeout_s, sms_contacts=contacts,
                             devices=bindings)


# -- row mapping and small helpers -------------------------------------------------------------

async def _insert_unique(conn: Connection, table: str, record_id: str, sql: str,
                         params: tuple[Any, ...]) -> None:
    cur = await conn.execute(f"SELECT 1 FROM {table} WHERE id = ?", (record_id,))
    if await cur.fetchone() is not None:
        from eldercare_cloud.errors import ConflictError

        raise ConflictError(f"{table[:-1]} {record_id} already exists")
    try:
        await conn.execute(sql, params)
    except INTEGRITY_ERRORS as exc:
        raise InvalidRequestError(f"{table}: {exc}") from exc


async def _update(conn: Connection, table: str, record_id: str,
                  sets: dict[str, Any], now: str | None) -> None:
    if now is not None:
        sets = {**sets, "updated_at": now}
    if not sets:
        return
    assignments = ", ".join(f"{k} = ?" for k in sets)
    try:
        await conn.execute(f"UPDATE {table} SET {assignments} WHERE id = ?",
                           (*sets.values(), record_id))
    except INTEGRITY_ERRORS as exc:
        raise InvalidRequestError(f"{table}: {exc}") from exc


def _check_channel(channel: ContactChannel, webhook_url: str | None,
                   user_id: str | None) -> None:
    if channel is ContactChannel.WEBHOOK and not webhook_url:
        raise InvalidRequestError("preferred_channel webhook needs a webhook_url")
    if channel is ContactChannel.APP and not user_id:
        raise InvalidRequestError("preferred_channel app needs a user_id")


def _district(r: Row) -> DistrictPublic:
    return DistrictPublic(id=r["id"], tenant=r["tenant"], name=r["name"],
                          province=r["province"], city=r["city"], code=r["code"])


def _community(r: Row) -> CommunityPublic:
    return CommunityPublic(id=r["id"], district_id=r["district_id"], name=r["name"],
                           address=r["address"], phone=r["phone"])


def _household(r: Row) -> HouseholdPublic:
    coords = (Coordinates(latitude=r["latitude"], longitude=r["longitude"])
              if r["latitude"] is not None and r["longitude"] is not None else None)
    return HouseholdPublic(id=r["id"], community_id=r["community_id"],
                           district_id=r["district_id"], address=r["address"],
                           coordinates=coords, rooms=json.loads(r["rooms"]),
                           has_key_safe=r["key_safe"] is not None, notes=r["notes"])


def _resident_summary(r: Row) -> ResidentSummary:
    return ResidentSummary(id=r["id"], household_id=r["household_id"],
                           community_id=r["community_id"], district_id=r["district_id"],
                           name=r["name"], address=r["address"])


def _resident(r: Row) -> ResidentPublic:
    return ResidentPublic(
        id=r["id"], household_id=r["household_id"], community_id=r["community_id"],
        district_id=r["district_id"], name=r["name"], address=r["address"],
        birth_date=date.fromisoformat(r["birth_date"]) if r["birth_date"] else None,
        sex=r["sex"], phone=r["phone"], living_situation=r["living_situation"],
        conditions=json.loads(r["conditions"]), medications=json.loads(r["medications"]),
        allergies=json.loads(r["allergies"]), mobility=r["mobility"],
        cognitive_impairment=r["cognitive_impairment"], care_level=r["care_level"],
        language=r["language"], consent=Consent.model_validate_json(r["consent"]),
        wandering_risk=bool(r["wandering_risk"]),
        thresholds={k: Threshold.model_validate(v)
                    for k, v in json.loads(r["thresholds"]).items()},
        routine=Routine.model_validate_json(r["routine"]), notes=r["notes"],
        categories=json.loads(r["categories"]), updated_at=parse_iso(r["updated_at"]))


def _contact(r: Row) -> ContactPublic:
    return ContactPublic(
        id=r["id"], resident_id=r["resident_id"], name=r["name"], relation=r["relation"],
        phone=r["phone"], preferred_channel=r["preferred_channel"],
        webhook_url=r["webhook_url"],
        availability=[AvailabilityWindow.model_validate(w)
                      for w in json.loads(r["availability"])],
        priority=r["priority"], user_id=r["user_id"], notes=r["notes"])


def _gateway(r: Row) -> GatewayPublic:
    return GatewayPublic(id=r["id"], household_id=r["household_id"],
                         district_id=r["district_id"], label=r["label"],
                         config_version=r["config_version"],
                         published_version=r["published_version"])


def _device(r: Row) -> DevicePublic:
    return DevicePublic(id=r["id"], type=r["type"], gateway_id=r["gateway_id"],
                        household_id=r["household_id"], resident_id=r["resident_id"],
                        room=r["room"], source=r["source"], z2m_model=r["z2m_model"],
                        z2m_name=r["z2m_name"])


def is_available(windows: list[AvailabilityWindow], local: datetime) -> bool:
    """A contact with no windows is always available."""
    if not windows:
        return True
    t = local.time()
    return any(local.isoweekday() in w.days and w.start <= t <= w.end for w in windows)


AsyncHook = Callable[[], Awaitable[None]]
