"""Commands on leads, through the kernel's command helper (shared.edge.commands): ``POST /leads`` captures a lead
typed in or imported; ``POST /leads/{lead_id}/<command>`` runs each command of the lifecycle; merge, remap and erase
have routes of their own (``run_command``). Only ``marketing`` (and ``admin``) change leads."""

# No `from __future__ import annotations` here: FastAPI reads the routes' body types at runtime.

import uuid
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field, ValidationError

from services.leads import domain
from services.leads.api.common import (
    CHANGE,
    ERRORS,
    LeadsAPI,
    Marketer,
    Service,
    captured_answer,
    existing,
    known,
    new_lead_id,
    service,
)
from services.leads.api.views import CAPTURE_EXAMPLES
from services.leads.domain import Lead
from shared.core.limits import bounded_errors
from shared.edge.auth import Principal, require
from shared.edge.commands import (
    CommandAnswer,
    IdempotencyKey,
    OccurredAt,
    command_context,
    command_routes,
    occurred_at_header,
    run_command,
)
from shared.store.commands import CommandResult, Context

router = APIRouter(responses=ERRORS)
GENERIC = (
    domain.Assign,
    domain.RecordEngagement,
    domain.Segment,
    domain.Score,
    domain.RecordContact,
    domain.StartNurture,
    domain.StopNurture,
    domain.RecordNurtureEmail,
    domain.ExtendOffer,
    domain.StartTrial,
    domain.Qualify,
    domain.Disqualify,
    domain.Convert,
    domain.Recycle,
    domain.UpdateContact,
)


class MergeBody(BaseModel):
    other_lead_id: uuid.UUID


class EraseBody(BaseModel):
    reason: str = Field(min_length=1, max_length=500, examples=["data subject request of 2026-11-24"])


@router.post(
    "/leads",
    status_code=201,
    response_model=CommandAnswer,
    tags=["capture"],
    summary="capture a lead typed in or imported",
)
async def capture(
    request: Request,
    body: Annotated[domain.CaptureLead, Body(openapi_examples=CAPTURE_EXAMPLES)],
    svc: Service,
    p: Marketer,
    idempotency_key: IdempotencyKey = None,
    x_occurred_at: OccurredAt = None,
) -> Response:
    """Not through ``run_command``: a capture answers a delivery captured before (no append) and a duplicate flag."""
    ctx = await command_context(request, p.user_id, key=idempotency_key, occurred_at=occurred_at_header(x_occurred_at))
    # imported: in a namespace apart from the webhooks' lead ids
    return captured_answer(await svc.leads.capture(body, ctx, new_lead_id(body.external_id), imported=True))


async def handle_lead_command(
    request: Request, lead_id: uuid.UUID, command: domain.Command, p: Principal, ctx: Context
) -> CommandResult[Lead]:
    """A command of the lifecycle on a lead that exists."""
    svc = service(request)
    await existing(svc, lead_id)
    if isinstance(command, domain.Assign | domain.Convert):
        await known(svc, request, command.owner_id, command.team_id)
    return await svc.leads.handle(lead_id, command, ctx)


# ``POST /leads/{lead_id}/<command>`` for each command of the lifecycle.
command_routes(
    router,
    GENERIC,
    prefix="/leads/{lead_id}",
    id_param="lead_id",
    principal=Depends(require(*CHANGE)),
    handle=handle_lead_command,
    tags=["lead commands"],
    occurred_at=True,
)


@router.post(
    "/leads/{lead_id}/merge",
    response_model=CommandAnswer,
    tags=["lead commands"],
    summary="merge another lead (a duplicate) into this one",
)
async def merge(
    lead_id: uuid.UUID,
    request: Request,
    body: MergeBody,
    svc: Service,
    p: Marketer,
    x_occurred_at: OccurredAt = None,
) -> Response:
    await existing(svc, lead_id)
    await existing(svc, body.other_lead_id)
    return await run_command(
        request,
        p.user_id,
        lambda ctx: svc.leads.merge(lead_id, body.other_lead_id, ctx),
        aggregate_id=str(lead_id),
        occurred_at=x_occurred_at,
    )


async def remapped(svc: LeadsAPI, lead_id: uuid.UUID, ctx: Context) -> CommandResult[Lead]:
    try:
        return await svc.leads.remap(lead_id, ctx)
    except ValidationError as exc:  # the kept payload maps to a value over a limit
        raise HTTPException(422, detail=bounded_errors(exc.errors(), prefix=("lead",))) from None


@router.post(
    "/leads/{lead_id}/remap",
    response_model=CommandAnswer,
    tags=["lead commands"],
    summary="run the source's current field mapping again on the kept payload",
)
async def remap(lead_id: uuid.UUID, request: Request, svc: Service, p: Marketer) -> Response:
    await existing(svc, lead_id)
    return await run_command(request, p.user_id, partial(remapped, svc, lead_id), aggregate_id=str(lead_id))


@router.post(
    "/leads/{lead_id}/erase",
    response_model=CommandAnswer,
    tags=["personal data"],
    summary="forget the person: their key is destroyed everywhere",
)
async def erase(lead_id: uuid.UUID, request: Request, body: EraseBody, svc: Service, p: Marketer) -> Response:
    await existing(svc, lead_id)
    return await run_command(
        request, p.user_id, lambda ctx: svc.leads.erase(lead_id, body.reason, ctx), aggregate_id=str(lead_id)
    )
