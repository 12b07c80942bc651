"""The API behind a responder's phone page: the signed link is the credential."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query

from eldercare_cloud.api.deps import ServicesDep, public
from eldercare_cloud.care.models import ResolveRequest
from eldercare_cloud.care.responder import ResponderView
from eldercare_cloud.errors import AuthenticationError
from eldercare_cloud.registry.models import KeySafe

router = APIRouter(prefix="/respond", tags=["responder"])
LINK = public("a signed, expiring responder link scoped to one alert and one contact")


def _token(query: str | None, header: str | None) -> str:
    token = header or query
    if not token:
        raise AuthenticationError("a responder link token is required")
    return token


TokenQ = Annotated[str | None, Query(alias="token", max_length=2048)]
TokenH = Annotated[str | None, Header(alias="X-Responder-Token", max_length=2048)]


@router.get("/{alert_id}", response_model=ResponderView, **LINK)
async def view(services: ServicesDep, alert_id: str, token: TokenQ = None,
               x_token: TokenH = None) -> ResponderView:
    return await services.responder.view(alert_id, _token(token, x_token))


@router.post("/{alert_id}/accept", response_model=ResponderView, **LINK)
async def accept(services: ServicesDep, alert_id: str, token: TokenQ = None,
                 x_token: TokenH = None) -> ResponderView:
    return await services.responder.act(alert_id, _token(token, x_token), "accept")


@router.post("/{alert_id}/decline", response_model=ResponderView, **LINK)
async def decline(services: ServicesDep, alert_id: str, token: TokenQ = None,
                  x_token: TokenH = None) -> ResponderView:
    return await services.responder.act(alert_id, _token(token, x_token), "decline")


@router.post("/{alert_id}/en-route", response_model=ResponderView, **LINK)
async def en_route(services: ServicesDep, alert_id: str, token: TokenQ = None,
                   x_token: TokenH = None) -> ResponderView:
    return await services.responder.act(alert_id, _token(token, x_token), "en_route")


@router.post("/{alert_id}/on-scene", response_model=ResponderView, **LINK)
async def on_scene(services: ServicesDep, alert_id: str, token: TokenQ = None,
                   x_token: TokenH = None) -> ResponderView:
    return await services.responder.act(alert_id, _token(token, x_token), "on_scene")


@router.post("/{alert_id}/resolve", response_model=ResponderView, **LINK)
async def resolve(services: ServicesDep, alert_id: str, body: ResolveRequest,
                  token: TokenQ = None, x_token: TokenH = None) -> ResponderView:
    return await services.responder.act(alert_id, _token(token, x_token), "resolve", body)


@router.get("/{alert_id}/key-safe", response_model=KeySafe, **LINK)
async def key_safe(services: ServicesDep, alert_id: str, token: TokenQ = None,
                   x_token: TokenH = None) -> KeySafe:
    return await services.responder.key_safe(alert_id, _token(token, x_token))
