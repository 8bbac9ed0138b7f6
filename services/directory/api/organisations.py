"""Organisations: ``POST /organisations`` registers one (its id chosen by the server), ``PUT /organisations/{id}``
replaces its details, ``…/reassign`` gives it to another owner and team, ``…/merge`` marks it a duplicate of
another (both histories kept; it reads as the other from then on); ``GET /organisations/{id}`` (a merged one
answers the one it was merged into, ``read_from`` saying which was asked) and its audit trail (``/history``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from services.directory.api.answers import OrganisationView
from services.directory.api.common import Service, customers
from services.directory.api.customer_rights import Merger, Reader, Seller, check_place, visible, writable
from services.directory.api.customer_views import organisation_view
from services.directory.customers import ORGANISATION_STREAM, Customers
from services.directory.domain import customer_commands as c
from services.directory.domain.organisation import Organisation
from shared.core.decider import NotVisibleError
from shared.edge.auth import Principal
from shared.edge.commands import CommandAnswer, IdempotencyKey, IfMatch, OccurredAt, run_command
from shared.edge.problems import ERRORS as COMMON_ERRORS
from shared.edge.problems import not_found
from shared.edge.queries import Cursor, HistoryPage, Limit, decode_cursor, history_page
from shared.store.commands import Loaded

ERRORS = COMMON_ERRORS | not_found("no such organisation (or not one the caller may see)")
router = APIRouter(responses=ERRORS, tags=["organisations"])
OrganisationId = Annotated[uuid.UUID, Path(description="the organisation's id")]
MAX_MERGE_HOPS = 20


async def readable(svc: Customers, p: Principal, organisation_id: uuid.UUID) -> tuple[Loaded[Organisation], uuid.UUID]:
    """The organisation as the caller reads it: a merged one as the one it was merged into (followed), 404 for
    none they may see."""
    loaded = await svc.organisation(organisation_id)
    for _ in range(MAX_MERGE_HOPS):
        if loaded.state.merged_into is None:
            break
        organisation_id = loaded.state.merged_into
        loaded = await svc.organisation(organisation_id)
    visible(p, "organisation", loaded.state, loaded.version)
    return loaded, organisation_id


def _located(result: Any) -> str:
    return str(result.stream_id).removeprefix(ORGANISATION_STREAM)


@router.post("/organisations", status_code=201, response_model=CommandAnswer, summary="register an organisation")
async def register(
    request: Request,
    body: c.RegisterOrganisation,
    svc: Service,
    p: Seller,
    idempotency_key: IdempotencyKey = None,
    x_occurred_at: OccurredAt = None,
) -> Response:
    check_place(p, body.owner_id, body.team_id)
    return await run_command(
        request,
        p.user_id,
        lambda ctx: customers(svc).register_organisation(body, ctx),
        aggregate_id=lambda r: _located(r),
        idempotency_key=idempotency_key,
        occurred_at=x_occurred_at,
        created=True,
        location="/organisations/{id}",
    )


async def _run(
    request: Request,
    svc: Service,
    p: Principal,
    organisation_id: uuid.UUID,
    cmd: c.OrganisationCommand,
    if_match: str | None,
    key: str | None,
    occurred_at: str | None = None,
) -> Response:
    place = (cmd.owner_id, cmd.team_id) if isinstance(cmd, c.ReassignOrganisation) else None
    check = writable(p, "organisation", merge=isinstance(cmd, c.MergeOrganisation), place=place)
    loaded = await customers(svc).organisation(organisation_id)
    check(loaded.state, loaded.version)  # 404 / 403 before anything the command names is looked at
    return await run_command(
        request,
        p.user_id,
        lambda ctx: customers(svc).handle_organisation(organisation_id, cmd, ctx, check),
        aggregate_id=str(organisation_id),
        if_match=if_match,
        idempotency_key=key,
        occurred_at=occurred_at,
    )


@router.put("/organisations/{organisation_id}", response_model=CommandAnswer, summary="replace its details")
async def change(
    request: Request,
    organisation_id: OrganisationId,
    body: c.ChangeOrganisation,
    svc: Service,
    p: Seller,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
    x_occurred_at: OccurredAt = None,
) -> Response:
    return await _run(request, svc, p, organisation_id, body, if_match, idempotency_key, x_occurred_at)


@router.post(
    "/organisations/{organisation_id}/reassign", response_model=CommandAnswer, summary="give it another owner and team"
)
async def reassign(
    request: Request,
    organisation_id: OrganisationId,
    body: c.ReassignOrganisation,
    svc: Service,
    p: Seller,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
    x_occurred_at: OccurredAt = None,
) -> Response:
    return await _run(request, svc, p, organisation_id, body, if_match, idempotency_key, x_occurred_at)


@router.post(
    "/organisations/{organisation_id}/merge",
    response_model=CommandAnswer,
    summary="mark it a duplicate of `into`: it reads as that one from now on, both histories kept",
)
async def merge(
    request: Request,
    organisation_id: OrganisationId,
    body: c.MergeOrganisation,
    svc: Service,
    p: Merger,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
    x_occurred_at: OccurredAt = None,
) -> Response:
    target = await customers(svc).organisation(body.into)
    if target.version and not writable_target(p, target.state):
        raise NotVisibleError(f"no organisation {body.into}")
    return await _run(request, svc, p, organisation_id, body, if_match, idempotency_key, x_occurred_at)


def writable_target(p: Principal, target: Organisation) -> bool:
    try:
        writable(p, "organisation", merge=True)(target, 1)
    except NotVisibleError:
        return False
    return True


@router.get(
    "/organisations/{organisation_id}",
    summary="an organisation (a merged one: the one it reads as)",
    response_model=OrganisationView,
)
async def get_organisation(
    organisation_id: OrganisationId, svc: Service, p: Reader, response: Response
) -> dict[str, Any]:
    loaded, read_as = await readable(customers(svc), p, organisation_id)
    response.headers["ETag"] = f'"{loaded.version}"'
    return organisation_view(loaded.state, loaded.version) | {
        "read_from": str(organisation_id) if read_as != organisation_id else None
    }


@router.get("/organisations/{organisation_id}/history", summary="its audit trail: every change, who and why")
async def history(
    organisation_id: OrganisationId, svc: Service, p: Reader, limit: Limit = 100, cursor: Cursor = None
) -> HistoryPage:
    loaded = await customers(svc).organisation(organisation_id)
    visible(p, "organisation", loaded.state, loaded.version)
    return await history_page(
        loaded.events, svc.personal_data, personal=False, offset=decode_cursor(cursor), limit=limit
    )
