"""Commands on deals, through the kernel's command helper (shared.edge.commands): context from the request, the
command executed with the caller's rights checked on the state it is decided on, the answer with ETag, position
and (for a new deal) Location. ``POST /deals`` opens a deal; ``POST /deals/{deal_id}/<command>`` runs each other
command (their bodies: api.forms). Only a lead's conversion opens a deal from a lead (``source_lead_id``): its
outcome is the only one the lead's revenue counts."""

# No `from __future__ import annotations` here: FastAPI reads the routes' body types at runtime.

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request, Response

from services.deals import domain
from services.deals.api.common import ERRORS, Seller, Service, known, service, visible_deal
from services.deals.api.customers import customer_of
from services.deals.api.forms import COMMAND_BODIES, OPEN_DEAL_EXAMPLES
from services.deals.api.rights import SALES_ROLES, may_open, writable
from services.deals.domain import Deal
from shared.core.ids import CLIENT_ID_RULE, ClientId, is_client_id
from shared.edge.auth import Principal, require
from shared.edge.commands import CommandAnswer, IdempotencyKey, OccurredAt, command_routes, run_command
from shared.store.commands import CommandResult, Context

router = APIRouter(responses=ERRORS)
# Ids a client names for new things of kinds the service also derives ids of (shared.core.ids): a shipment's follow-up.
CLIENT_CHOSEN_IDS = {"start_follow_up": "follow_up_id"}


@router.post("/deals", status_code=201, response_model=CommandAnswer, tags=["deals"], summary="open a deal")
async def open_deal(
    request: Request,
    body: Annotated[domain.OpenDeal, Body(openapi_examples=OPEN_DEAL_EXAMPLES)],
    svc: Service,
    p: Seller,
    idempotency_key: IdempotencyKey = None,
    x_occurred_at: OccurredAt = None,
    deal_id: Annotated[
        ClientId | None,
        Query(
            description="the new deal's id, so that a retry finds it (default: a new one); "
            f"{CLIENT_ID_RULE} (a converted lead's deal, for one)"
        ),
    ] = None,
) -> Response:
    may_open(p, body.owner_id, body.team_id)
    if body.source_lead_id is not None:
        raise HTTPException(
            422,
            detail="source_lead_id is set by a lead's conversion (POST /leads/{id}/convert on the leads "
            "service), which opens the lead's deal; a deal opened here comes from no lead",
        )
    await known(svc, body.owner_id, body.team_id, request=request)
    if body.organisation_id is not None:  # the customer, as the directory's replica has it (merges followed)
        org, people = await customer_of(svc, p, body.organisation_id, body.person_ids)
        body = body.model_copy(update={"organisation_id": org, "person_ids": people})
    new_id = deal_id or uuid.uuid4()
    return await run_command(
        request,
        p.user_id,
        lambda ctx: svc.deals.handle(new_id, body, ctx),
        aggregate_id=lambda append: append.stream_id.removeprefix("deal-"),  # a retry: the deal it opened first
        idempotency_key=idempotency_key,
        occurred_at=x_occurred_at,
        created=True,
        location="/deals/{id}",
    )


async def handle_deal_command(
    request: Request, deal_id: uuid.UUID, command: domain.Command, p: Principal, ctx: Context
) -> CommandResult[Deal]:
    """A command on a deal the caller may change (``writable``, checked on the state it is decided on)."""
    svc = service(request)
    if (field := CLIENT_CHOSEN_IDS.get(command.name)) and not is_client_id(getattr(command, field)):
        raise HTTPException(422, detail=f"{field} must be {CLIENT_ID_RULE}")
    if isinstance(command, domain.Reassign):  # a deal the caller may not see is 404 before its new owner is checked
        there = await visible_deal(svc, deal_id, p)
        writable(deal_id, p, command)(there.state, there.version)  # and 403 where the caller may not put it
        await known(svc, command.owner_id, command.team_id, request=request)
    if isinstance(command, domain.LinkCustomer):  # 404 for a deal the caller may not see, then the customer's check
        there = await visible_deal(svc, deal_id, p)
        writable(deal_id, p, command)(there.state, there.version)
        org, people = await customer_of(svc, p, command.organisation_id, command.person_ids)
        command = command.model_copy(update={"organisation_id": org, "person_ids": people})
    return await svc.deals.handle(deal_id, command, ctx, check=writable(deal_id, p, command))


# ``POST /deals/{deal_id}/<command>`` for each command but opening a deal.
command_routes(
    router,
    COMMAND_BODIES,
    prefix="/deals/{deal_id}",
    id_param="deal_id",
    principal=Depends(require(*SALES_ROLES)),
    handle=handle_deal_command,
    tags=["deal commands"],
    occurred_at=True,
    describe=True,
)
