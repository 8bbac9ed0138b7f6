"""People: ``POST /people`` registers one (of an organisation, or none), ``PUT /people/{id}`` replaces their
details, ``…/reassign``, ``…/merge`` (a duplicate of ``into``), ``…/erase`` (admin: their key destroyed, their
details read as null from then on, they stay by id); ``GET /people/{id}`` (details opened for the answer; a merged
person answers the one they were merged into) and their audit trail (``/history``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from services.directory.api.answers import PersonView
from services.directory.api.common import Service, customers
from services.directory.api.customer_rights import (
    Admin,
    Merger,
    Reader,
    Seller,
    can_write,
    may_place,
    visible,
    writable,
)
from services.directory.api.customer_views import person_view
from services.directory.customers import PERSON_STREAM, Customers
from services.directory.domain import customer_commands as c
from services.directory.domain.person import Person
from shared.core.decider import ForbiddenError, NotVisibleError
from shared.edge.auth import Principal
from shared.edge.commands import CommandAnswer, IdempotencyKey, IfMatch, OccurredAt, run_command
from shared.edge.problems import ERRORS as COMMON_ERRORS
from shared.edge.problems import not_found
from shared.edge.queries import Cursor, HistoryPage, Limit, decode_cursor, history_page
from shared.store.commands import Loaded

ERRORS = COMMON_ERRORS | not_found("no such person (or not one the caller may see)")
router = APIRouter(responses=ERRORS, tags=["people"])
PersonId = Annotated[uuid.UUID, Path(description="the person's id")]
MAX_MERGE_HOPS = 20


async def readable(svc: Customers, p: Principal, person_id: uuid.UUID) -> tuple[Loaded[Person], uuid.UUID]:
    loaded = await svc.person(person_id)
    for _ in range(MAX_MERGE_HOPS):
        if loaded.state.merged_into is None:
            break
        person_id = loaded.state.merged_into
        loaded = await svc.person(person_id)
    visible(p, "person", loaded.state, loaded.version)
    return loaded, person_id


async def _may_register(svc: Customers, p: Principal, body: c.RegisterPerson) -> None:
    """A person of an organisation the caller cannot see: 404 (an unknown one: 422, from the handler); placed
    where the caller may put them, or in an organisation the caller changes."""
    org = None
    if body.organisation_id is not None:
        loaded = await svc.organisation(body.organisation_id)
        if not loaded.version:
            return  # no such organisation: 422 naming it, from the handler
        visible(p, "organisation", loaded.state, loaded.version)
        org = loaded.state
    owner = body.owner_id or (org.owner_id if org else "")
    team = body.team_id or (org.team_id if org else "")
    if not may_place(p, owner, team) and not (org and can_write(p, org.team_id, org.owner_id) and team == org.team_id):
        raise ForbiddenError("a person is put where the caller may put them, or in an organisation they change")


@router.post("/people", status_code=201, response_model=CommandAnswer, summary="register a person")
async def register(
    request: Request,
    body: c.RegisterPerson,
    svc: Service,
    p: Seller,
    idempotency_key: IdempotencyKey = None,
    x_occurred_at: OccurredAt = None,
) -> Response:
    await _may_register(customers(svc), p, body)
    return await run_command(
        request,
        p.user_id,
        lambda ctx: customers(svc).register_person(body, ctx),
        aggregate_id=lambda r: str(r.stream_id).removeprefix(PERSON_STREAM),
        idempotency_key=idempotency_key,
        occurred_at=x_occurred_at,
        created=True,
        location="/people/{id}",
    )


async def _run(
    request: Request,
    svc: Service,
    p: Principal,
    person_id: uuid.UUID,
    cmd: c.PersonCommand,
    if_match: str | None,
    key: str | None,
    occurred_at: str | None = None,
) -> Response:
    place = (cmd.owner_id, cmd.team_id) if isinstance(cmd, c.ReassignPerson) else None
    check = writable(p, "person", merge=isinstance(cmd, c.MergePerson), place=place)
    loaded = await customers(svc).person(person_id)
    check(loaded.state, loaded.version)  # 404 / 403 before anything the command names is looked at
    return await run_command(
        request,
        p.user_id,
        lambda ctx: customers(svc).handle_person(person_id, cmd, ctx, check),
        aggregate_id=str(person_id),
        if_match=if_match,
        idempotency_key=key,
        occurred_at=occurred_at,
    )


@router.put("/people/{person_id}", response_model=CommandAnswer, summary="replace their details")
async def change(
    request: Request,
    person_id: PersonId,
    body: c.ChangePerson,
    svc: Service,
    p: Seller,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
    x_occurred_at: OccurredAt = None,
) -> Response:
    if body.organisation_id is not None:
        loaded = await customers(svc).organisation(body.organisation_id)
        if loaded.version:
            visible(p, "organisation", loaded.state, loaded.version)
    return await _run(request, svc, p, person_id, body, if_match, idempotency_key, x_occurred_at)


@router.post("/people/{person_id}/reassign", response_model=CommandAnswer, summary="give them another owner and team")
async def reassign(
    request: Request,
    person_id: PersonId,
    body: c.ReassignPerson,
    svc: Service,
    p: Seller,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
    x_occurred_at: OccurredAt = None,
) -> Response:
    return await _run(request, svc, p, person_id, body, if_match, idempotency_key, x_occurred_at)


@router.post(
    "/people/{person_id}/merge",
    response_model=CommandAnswer,
    summary="mark them a duplicate of `into`: they read as that person from now on, both histories kept",
)
async def merge(
    request: Request,
    person_id: PersonId,
    body: c.MergePerson,
    svc: Service,
    p: Merger,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
    x_occurred_at: OccurredAt = None,
) -> Response:
    target = await customers(svc).person(body.into)
    if target.version:
        try:
            writable(p, "person", merge=True)(target.state, target.version)
        except NotVisibleError:
            raise NotVisibleError(f"no person {body.into}") from None
    return await _run(request, svc, p, person_id, body, if_match, idempotency_key, x_occurred_at)


@router.post(
    "/people/{person_id}/erase",
    response_model=CommandAnswer,
    summary="forget their name, title, phones, emails and Zalo id (their key is destroyed); admin only",
)
async def erase(
    request: Request,
    person_id: PersonId,
    body: c.ErasePerson,
    svc: Service,
    p: Admin,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return await _run(request, svc, p, person_id, body, if_match, idempotency_key)


@router.get(
    "/people/{person_id}",
    summary="a person, details opened (a merged one: the person they read as)",
    response_model=PersonView,
)
async def get_person(person_id: PersonId, svc: Service, p: Reader, response: Response) -> dict[str, Any]:
    loaded, read_as = await readable(customers(svc), p, person_id)
    response.headers["ETag"] = f'"{loaded.version}"'
    view = await person_view(loaded.state, loaded.events, loaded.version, svc.personal_data)
    return view | {"read_from": str(person_id) if read_as != person_id else None}


@router.get("/people/{person_id}/history", summary="their audit trail: every change, who and why")
async def history(
    person_id: PersonId, svc: Service, p: Reader, limit: Limit = 100, cursor: Cursor = None
) -> HistoryPage:
    loaded = await customers(svc).person(person_id)
    visible(p, "person", loaded.state, loaded.version)
    return await history_page(
        loaded.events, svc.personal_data, personal=True, offset=decode_cursor(cursor), limit=limit
    )
