"""The API behind a responder's phone page: the signed link is the credential."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from eldercare_cloud.api.deps import ServicesDep, link_token, public
from eldercare_cloud.care.models import ResolveRequest
from eldercare_cloud.care.responder import ResponderView
from eldercare_cloud.registry.models import KeySafe

router = APIRouter(prefix="/respond", tags=["responder"])
LINK = public("a signed, expiring responder link scoped to one alert and one contact")
ResponderToken = Annotated[str, Depends(link_token("X-Responder-Token", "responder"))]


@router.get("/{alert_id}", response_model=ResponderView, **LINK)
async def view(services: ServicesDep, alert_id: str, token: ResponderToken) -> ResponderView:
    return await services.responder.view(alert_id, token)


@router.post("/{alert_id}/accept", response_model=ResponderView, **LINK)
async def accept(services: ServicesDep, alert_id: str, token: ResponderToken) -> ResponderView:
    return await services.responder.act(alert_id, token, "accept")


@router.post("/{alert_id}/decline", response_model=ResponderView, **LINK)
async def decline(services: ServicesDep, alert_id: str, token: ResponderToken) -> ResponderView:
    return await services.responder.act(alert_id, token, "decline")


@router.post("/{alert_id}/en-route", response_model=ResponderView, **LINK)
async def en_route(services: ServicesDep, alert_id: str, token: ResponderToken) -> ResponderView:
    return await services.responder.act(alert_id, token, "en_route")


@router.post("/{alert_id}/on-scene", response_model=ResponderView, **LINK)
async def on_scene(services: ServicesDep, alert_id: str, token: ResponderToken) -> ResponderView:
    return await services.responder.act(alert_id, token, "on_scene")


@router.post("/{alert_id}/resolve", response_model=ResponderView, **LINK)
async def resolve(services: ServicesDep, alert_id: str, body: ResolveRequest,
                  token: ResponderToken) -> ResponderView:
    return await services.responder.act(alert_id, token, "resolve", body)


@router.get("/{alert_id}/key-safe", response_model=KeySafe, **LINK)
async def key_safe(services: ServicesDep, alert_id: str, token: ResponderToken) -> KeySafe:
    return await services.responder.key_safe(alert_id, token)
