"""Routes: ``/subscriptions`` and ``/subscriptions/{id}/deliveries`` (who may call what: ``app.py``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from services.webhooks.api.answers import DeliveryDetail, DeliveryOut, SubscriptionOut, SubscriptionWithSecret
from services.webhooks.domain.filters import MAX_FILTER_CHARS, MAX_FILTERS
from services.webhooks.handlers import MAX_DESCRIPTION_CHARS, Webhooks, shown
from services.webhooks.resolve import MAX_URL_CHARS
from shared.edge.auth import Principal, require
from shared.edge.problems import ERRORS

router = APIRouter(responses=ERRORS, tags=["webhooks"])
Admin = Annotated[Principal, Depends(require())]
Reader = Annotated[Principal, Depends(require("auditor"))]
SubscriptionId = Annotated[uuid.UUID, Path(description="the subscription's id")]
DeliveryId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the delivery's id")]
NO_STORE = {"Cache-Control": "no-store"}
Url = Annotated[str, Field(min_length=8, max_length=MAX_URL_CHARS, description="https (http only if allow-listed)")]
EventTypes = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=MAX_FILTER_CHARS)]],
    Field(min_length=1, max_length=MAX_FILTERS, description="exact types and prefixes ending in .*"),
]


def webhooks(request: Request) -> Webhooks:
    svc: Webhooks = request.app.state.webhooks
    return svc


Service = Annotated[Webhooks, Depends(webhooks)]


class NewSubscription(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Url
    event_types: EventTypes
    description: str = Field("", max_length=MAX_DESCRIPTION_CHARS)
    enabled: bool = True


class SubscriptionChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Url | None = None
    event_types: EventTypes | None = None
    description: str | None = Field(None, max_length=MAX_DESCRIPTION_CHARS)
    enabled: bool | None = None


@router.post(
    "/subscriptions", status_code=201, response_model=SubscriptionWithSecret, summary="subscribe a URL (admin)"
)
async def create(body: NewSubscription, svc: Service, who: Admin, response: Response) -> dict[str, Any]:
    response.headers.update(NO_STORE)  # the secret is in it
    return await svc.create(body.url, body.event_types, body.description, body.enabled, who.user_id)


@router.get("/subscriptions", response_model=list[SubscriptionOut], summary="every subscription (admin, auditor)")
async def listed(svc: Service, _: Reader) -> list[dict[str, Any]]:
    return [shown(s) for s in await svc.store.all()]


@router.get("/subscriptions/{subscription_id}", response_model=SubscriptionOut, summary="one subscription")
async def one(subscription_id: SubscriptionId, svc: Service, _: Reader) -> dict[str, Any]:
    return shown(await svc.get(subscription_id))


@router.patch("/subscriptions/{subscription_id}", response_model=SubscriptionOut, summary="change or (dis)able it")
async def change(subscription_id: SubscriptionId, body: SubscriptionChange, svc: Service, _: Admin) -> dict[str, Any]:
    return await svc.change(subscription_id, body.model_dump(exclude_none=True))


@router.post(
    "/subscriptions/{subscription_id}/rotate-secret",
    response_model=SubscriptionWithSecret,
    summary="a new secret, shown once",
    description="Until `previous_secret_until` (PIPELINES_WEBHOOKS_ROTATION_OVERLAP_S after the rotation, 24 h by "
    "default) each delivery's `webhook-signature` carries two signatures, `v1,<new> v1,<previous>`, so a receiver "
    "still holding the previous secret verifies; after it only the new secret signs and the previous one is dropped.",
)
async def rotate(subscription_id: SubscriptionId, svc: Service, _: Admin, response: Response) -> dict[str, Any]:
    response.headers.update(NO_STORE)
    return await svc.rotate(subscription_id)


@router.delete("/subscriptions/{subscription_id}", status_code=204, summary="unsubscribe (its deliveries go too)")
async def delete(subscription_id: SubscriptionId, svc: Service, _: Admin) -> Response:
    await svc.delete(subscription_id)
    return Response(status_code=204)


@router.get(
    "/subscriptions/{subscription_id}/deliveries",
    response_model=list[DeliveryOut],
    summary="its deliveries, newest first",
)
async def deliveries(
    subscription_id: SubscriptionId,
    svc: Service,
    _: Reader,
    state: Annotated[Literal["pending", "delivered", "dead", "skipped"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="ids below this (the next page)")] = None,
) -> list[dict[str, Any]]:
    return await svc.deliveries(subscription_id, state, limit, before)


@router.get(
    "/subscriptions/{subscription_id}/deliveries/{delivery_id}",
    response_model=DeliveryDetail,
    summary="one delivery and every attempt (status, latency, response code, error)",
)
async def delivery(subscription_id: SubscriptionId, delivery_id: DeliveryId, svc: Service, _: Reader) -> dict[str, Any]:
    return await svc.delivery(subscription_id, delivery_id)


@router.post(
    "/subscriptions/{subscription_id}/deliveries/{delivery_id}/redrive",
    response_model=DeliveryDetail,
    summary="try a dead-lettered delivery again (its stream stays held until it is delivered)",
)
async def redrive(subscription_id: SubscriptionId, delivery_id: DeliveryId, svc: Service, _: Admin) -> dict[str, Any]:
    return await svc.settle(subscription_id, delivery_id, "redrive")


@router.post(
    "/subscriptions/{subscription_id}/deliveries/{delivery_id}/skip",
    response_model=DeliveryDetail,
    summary="give a dead-lettered delivery up: its stream's later deliveries go on",
)
async def skip(subscription_id: SubscriptionId, delivery_id: DeliveryId, svc: Service, _: Admin) -> dict[str, Any]:
    return await svc.settle(subscription_id, delivery_id, "skip")
