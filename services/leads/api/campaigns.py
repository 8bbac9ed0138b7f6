"""Campaigns: create one, launch, pause or end it, change its budget, record a day's spend, and read it. Only
``marketing`` (and ``admin``) change campaigns."""

# No `from __future__ import annotations` here: FastAPI reads the routes' body types at runtime.

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, Response

from services.leads import domain
from services.leads.api.answers import CampaignView
from services.leads.api.common import ERRORS, Marketer, Reader, Service
from services.leads.api.views import campaign_json
from shared.core.limits import DAY_RANGE, Day
from shared.edge.commands import CommandAnswer, IdempotencyKey, IfMatch, OccurredAt, run_command

router = APIRouter(responses=ERRORS)


@router.post("/campaigns", status_code=201, response_model=CommandAnswer, tags=["campaigns"])
async def create_campaign(
    request: Request,
    body: domain.CreateCampaign,
    svc: Service,
    p: Marketer,
    idempotency_key: IdempotencyKey = None,
    x_occurred_at: OccurredAt = None,
) -> Response:
    campaign_id = uuid.uuid4()
    return await run_command(
        request,
        p.user_id,
        lambda ctx: svc.leads.campaign_command(campaign_id, body, ctx),
        aggregate_id=lambda append: append.stream_id.removeprefix("campaign-"),  # a retry: the one created first
        idempotency_key=idempotency_key,
        occurred_at=x_occurred_at,
        created=True,
        location="/campaigns/{id}",
    )


@router.post(
    "/campaigns/{campaign_id}/status",
    response_model=CommandAnswer,
    tags=["campaigns"],
    summary="launch, pause or end",
)
async def campaign_status(
    campaign_id: uuid.UUID,
    request: Request,
    body: domain.ChangeCampaignStatus,
    svc: Service,
    p: Marketer,
    if_match: IfMatch = None,
    x_occurred_at: OccurredAt = None,
) -> Response:
    return await run_command(
        request,
        p.user_id,
        lambda ctx: svc.leads.campaign_command(campaign_id, body, ctx),
        aggregate_id=str(campaign_id),
        if_match=if_match,
        occurred_at=x_occurred_at,
    )


@router.put("/campaigns/{campaign_id}/budget", response_model=CommandAnswer, tags=["campaigns"])
async def campaign_budget(
    campaign_id: uuid.UUID,
    request: Request,
    body: domain.ChangeBudget,
    svc: Service,
    p: Marketer,
    if_match: IfMatch = None,
    x_occurred_at: OccurredAt = None,
) -> Response:
    return await run_command(
        request,
        p.user_id,
        lambda ctx: svc.leads.campaign_command(campaign_id, body, ctx),
        aggregate_id=str(campaign_id),
        if_match=if_match,
        occurred_at=x_occurred_at,
    )


@router.put(
    "/campaigns/{campaign_id}/spend/{day}",
    response_model=CommandAnswer,
    tags=["campaigns"],
    summary="a day's spend (the same day again changes nothing; a different amount needs a reason)",
)
async def campaign_spend(
    campaign_id: uuid.UUID,
    day: Annotated[Day, Path(description=f"the day of the spend: {DAY_RANGE}")],
    request: Request,
    body: domain.RecordSpend,
    svc: Service,
    p: Marketer,
) -> Response:
    return await run_command(
        request,
        p.user_id,
        lambda ctx: svc.leads.campaign_command(campaign_id, body, ctx, day),
        aggregate_id=str(campaign_id),
    )


@router.get("/campaigns/{campaign_id}", tags=["campaigns"], summary="a campaign", response_model=CampaignView)
async def get_campaign(campaign_id: uuid.UUID, svc: Service, p: Reader) -> dict[str, Any]:
    c = (await svc.leads.campaign(campaign_id)).state
    if c.status == "none":
        raise HTTPException(404, detail=f"no campaign {campaign_id}")
    return campaign_json(campaign_id, c)
