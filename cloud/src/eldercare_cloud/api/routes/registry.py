"""Districts, communities, households, residents, contacts, gateways and devices."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from eldercare_cloud.api.deps import CurrentUser, ServicesDep, roles
from eldercare_cloud.auth.models import Role
from eldercare_cloud.registry.card import ResidentCard, resident_card
from eldercare_cloud.registry.models import (
    CommunityCreate,
    CommunityPublic,
    ContactCreate,
    ContactPublic,
    ContactUpdate,
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
    ResidentCreate,
    ResidentPublic,
    ResidentSummary,
    ResidentUpdate,
    WatchProfile,
    WatchProfilePublic,
)
from eldercare_protocols.uplink import GatewayConfig

A, O, F, I = Role.ADMIN, Role.OPERATOR, Role.FAMILY, Role.INSTALLER  # noqa: E741
router = APIRouter(tags=["registry"])
Reason = Annotated[str, Query(max_length=100, description="why the record is read (audit)")]
Ref = Annotated[str | None, Query(max_length=64)]


@router.get("/districts", response_model=list[DistrictPublic],
            **roles(A, O, I, Role.DISTRICT_ADMIN))
async def list_districts(services: ServicesDep, user: CurrentUser) -> list[DistrictPublic]:
    return await services.registry.list_districts(user)


@router.post("/districts", response_model=DistrictPublic, status_code=status.HTTP_201_CREATED,
             **roles(A))
async def create_district(services: ServicesDep, user: CurrentUser,
                          body: DistrictCreate) -> DistrictPublic:
    return await services.registry.create_district(user, body)


@router.get("/districts/{district_id}", response_model=DistrictPublic, **roles(A, O, I))
async def get_district(services: ServicesDep, user: CurrentUser,
                       district_id: str) -> DistrictPublic:
    return await services.registry.get_district(user, district_id)


@router.get("/communities", response_model=list[CommunityPublic],
            **roles(A, O, I, Role.DISTRICT_ADMIN))
async def list_communities(services: ServicesDep, user: CurrentUser,
                           district_id: Ref = None) -> list[CommunityPublic]:
    return await services.registry.list_communities(user, district_id)


@router.post("/communities", response_model=CommunityPublic,
             status_code=status.HTTP_201_CREATED, **roles(A))
async def create_community(services: ServicesDep, user: CurrentUser,
                           body: CommunityCreate) -> CommunityPublic:
    return await services.registry.create_community(user, body)


@router.get("/communities/{community_id}", response_model=CommunityPublic, **roles(A, O, I))
async def get_community(services: ServicesDep, user: CurrentUser,
                        community_id: str) -> CommunityPublic:
    return await services.registry.get_community(user, community_id)


@router.get("/households", response_model=list[HouseholdPublic], **roles(A, O, I))
async def list_households(services: ServicesDep, user: CurrentUser,
                          community_id: Ref = None) -> list[HouseholdPublic]:
    return await services.registry.list_households(user, community_id)


@router.post("/households", response_model=HouseholdPublic,
             status_code=status.HTTP_201_CREATED, **roles(A, O))
async def create_household(services: ServicesDep, user: CurrentUser,
                           body: HouseholdCreate) -> HouseholdPublic:
    return await services.registry.create_household(user, body)


@router.get("/households/{household_id}", response_model=HouseholdPublic, **roles(A, O, F, I))
async def get_household(services: ServicesDep, user: CurrentUser,
                        household_id: str) -> HouseholdPublic:
    return await services.registry.get_household(user, household_id)


@router.patch("/households/{household_id}", response_model=HouseholdPublic, **roles(A, O))
async def update_household(services: ServicesDep, user: CurrentUser, household_id: str,
                           body: HouseholdUpdate) -> HouseholdPublic:
    return await services.registry.update_household(user, household_id, body)


@router.get("/residents", response_model=list[ResidentSummary], **roles(A, O, F))
async def list_residents(services: ServicesDep, user: CurrentUser, district_id: Ref = None,
                         community_id: Ref = None,
                         q: Annotated[str | None, Query(max_length=64)] = None,
                         limit: Annotated[int, Query(ge=1, le=1000)] = 200,
                         offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
                         ) -> list[ResidentSummary]:
    return await services.registry.list_residents(user, district_id=district_id,
                                                  community_id=community_id, q=q,
                                                  limit=limit, offset=offset)


@router.post("/residents", response_model=ResidentPublic, status_code=status.HTTP_201_CREATED,
             **roles(A, O))
async def create_resident(services: ServicesDep, user: CurrentUser,
                          body: ResidentCreate) -> ResidentPublic:
    return await services.registry.create_resident(user, body)


@router.get("/residents/{resident_id}", response_model=ResidentPublic, **roles(A, O, F))
async def get_resident(services: ServicesDep, user: CurrentUser, resident_id: str,
                       reason: Reason = "view") -> ResidentPublic:
    return await services.registry.get_resident(user, resident_id, reason)


@router.patch("/residents/{resident_id}", response_model=ResidentPublic, **roles(A, O))
async def update_resident(services: ServicesDep, user: CurrentUser, resident_id: str,
                          body: ResidentUpdate) -> ResidentPublic:
    return await services.registry.update_resident(user, resident_id, body)


@router.get("/residents/{resident_id}/watch-profile", response_model=WatchProfilePublic,
            **roles(A, O, F))
async def get_watch_profile(services: ServicesDep, user: CurrentUser,
                            resident_id: str) -> WatchProfilePublic:
    return await services.registry.get_watch_profile(user, resident_id)


@router.put("/residents/{resident_id}/watch-profile", response_model=WatchProfilePublic,
            **roles(A, O))
async def put_watch_profile(services: ServicesDep, user: CurrentUser, resident_id: str,
                            body: WatchProfile) -> WatchProfilePublic:
    return await services.registry.put_watch_profile(user, resident_id, body)


@router.get("/residents/{resident_id}/card", response_model=ResidentCard, **roles(A, O, F))
async def get_resident_card(services: ServicesDep, user: CurrentUser, resident_id: str,
                            hours: Annotated[float, Query(gt=0, le=24 * 31)] = 24.0,
                            reason: Reason = "resident card") -> ResidentCard:
    return await resident_card(user, resident_id, services.registry, services.engine,
                               services.care, services.clock.now(), hours, reason)


@router.get("/residents/{resident_id}/contacts", response_model=list[ContactPublic],
            **roles(A, O, F))
async def list_contacts(services: ServicesDep, user: CurrentUser,
                        resident_id: str) -> list[ContactPublic]:
    return await services.registry.list_contacts(user, resident_id)


@router.post("/residents/{resident_id}/contacts", response_model=ContactPublic,
             status_code=status.HTTP_201_CREATED, **roles(A, O))
async def create_contact(services: ServicesDep, user: CurrentUser, resident_id: str,
                         body: ContactCreate) -> ContactPublic:
    return await services.registry.create_contact(user, resident_id, body)


@router.patch("/contacts/{contact_id}", response_model=ContactPublic, **roles(A, O))
async def update_contact(services: ServicesDep, user: CurrentUser, contact_id: str,
                         body: ContactUpdate) -> ContactPublic:
    return await services.registry.update_contact(user, contact_id, body)


@router.delete("/contacts/{contact_id}", status_code=status.HTTP_204_NO_CONTENT,
               response_class=Response, **roles(A, O))
async def delete_contact(services: ServicesDep, user: CurrentUser, contact_id: str) -> None:
    await services.registry.delete_contact(user, contact_id)


@router.get("/gateways", response_model=list[GatewayPublic], **roles(A, O, I))
async def list_gateways(services: ServicesDep, user: CurrentUser) -> list[GatewayPublic]:
    return await services.registry.list_gateways(user)


@router.post("/gateways", response_model=GatewayPublic, status_code=status.HTTP_201_CREATED,
             **roles(A, I))
async def create_gateway(services: ServicesDep, user: CurrentUser,
                         body: GatewayCreate) -> GatewayPublic:
    return await services.registry.create_gateway(user, body)


@router.get("/gateways/{gateway_id}", response_model=GatewayPublic, **roles(A, O, I))
async def get_gateway(services: ServicesDep, user: CurrentUser,
                      gateway_id: str) -> GatewayPublic:
    return await services.registry.get_gateway(user, gateway_id)


@router.patch("/gateways/{gateway_id}", response_model=GatewayPublic, **roles(A, I))
async def update_gateway(services: ServicesDep, user: CurrentUser, gateway_id: str,
                         body: GatewayUpdate) -> GatewayPublic:
    return await services.registry.update_gateway(user, gateway_id, body)


@router.get("/gateways/{gateway_id}/config", response_model=GatewayConfig, **roles(A, I))
async def get_gateway_config(services: ServicesDep, user: CurrentUser,
                             gateway_id: str) -> GatewayConfig:
    return await services.registry.gateway_config_for(user, gateway_id)


@router.get("/devices", response_model=list[DevicePublic], **roles(A, O, I))
async def list_devices(services: ServicesDep, user: CurrentUser, gateway_id: Ref = None,
                       household_id: Ref = None) -> list[DevicePublic]:
    return await services.registry.list_devices(user, gateway_id=gateway_id,
                                                household_id=household_id)


@router.post("/devices", response_model=DevicePublic, status_code=status.HTTP_201_CREATED,
             **roles(A, I))
async def create_device(services: ServicesDep, user: CurrentUser,
                        body: DeviceCreate) -> DevicePublic:
    return await services.registry.create_device(user, body)


@router.get("/devices/{device_id}", response_model=DevicePublic, **roles(A, O, I))
async def get_device(services: ServicesDep, user: CurrentUser, device_id: str) -> DevicePublic:
    return await services.registry.get_device(user, device_id)


@router.patch("/devices/{device_id}", response_model=DevicePublic, **roles(A, I))
async def update_device(services: ServicesDep, user: CurrentUser, device_id: str,
                        body: DeviceUpdate) -> DevicePublic:
    return await services.registry.update_device(user, device_id, body)
