"""Commands on orders: ``POST /orders`` creates one (orders from won deals are created by the service itself), and
``POST /orders/{order_id}/<command>`` runs each other command, all through the kernel's command helper
(``shared.edge.commands``): context from the request, the command executed, the answer with ETag and position."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field

from services.production import domain
from services.production.api.common import ERRORS, Service, existing, service
from services.production.api.rights import CHANGE, Changer
from services.production.domain import Order
from shared.edge.auth import Principal, require
from shared.edge.commands import CommandAnswer, IdempotencyKey, OccurredAt, command_routes, run_command
from shared.store.commands import CommandResult, Context

router = APIRouter(responses=ERRORS)


class ShipRequest(domain.Ship):
    """A shipment as a request gives it: without an id, it is a new shipment and the API gives it one (the
    domain takes ids as arguments); with one, a retry of the same shipment is recorded once."""

    shipment_id: uuid.UUID = Field(default_factory=uuid.uuid4)


# The bodies of the per-command routes: the domain's commands, a request form where the edge fills in an id.
COMMANDS: list[type[domain.Command]] = [
    ShipRequest if cmd is domain.Ship else cmd
    for cmd in domain.Command.__subclasses__()
    if cmd is not domain.CreateOrder
]


@router.post(
    "/orders",
    status_code=201,
    response_model=CommandAnswer,
    tags=["orders"],
    summary="create an order directly (orders from won deals are created by the service itself)",
)
async def create_order(
    request: Request,
    body: domain.CreateOrder,
    svc: Service,
    p: Changer,
    idempotency_key: IdempotencyKey = None,
    x_occurred_at: OccurredAt = None,
) -> Response:
    order_id = uuid.uuid4()
    return await run_command(
        request,
        p.user_id,
        lambda ctx: svc.production.handle(order_id, body, ctx),
        aggregate_id=lambda append: append.stream_id.removeprefix("production-order-"),  # a retry: the first one
        idempotency_key=idempotency_key,
        occurred_at=x_occurred_at,
        created=True,
        location="/orders/{id}",
    )


async def handle_order_command(
    request: Request, order_id: uuid.UUID, command: domain.Command, p: Principal, ctx: Context
) -> CommandResult[Order]:
    """A command on an order that exists (else 404); the roles were checked by the route."""
    svc = service(request)
    await existing(svc, order_id)
    return await svc.production.handle(order_id, command, ctx)


# ``POST /orders/{order_id}/<command>`` for each command but create.
command_routes(
    router,
    COMMANDS,
    prefix="/orders/{order_id}",
    id_param="order_id",
    principal=Depends(require(*CHANGE)),
    handle=handle_order_command,
    tags=["order commands"],
    occurred_at=True,
)
