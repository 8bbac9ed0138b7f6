"""Organisations and people as lists, within the caller's scope (``customer_rights``), from the ``customers`` read
model (read-your-writes with ``position``): ``GET /organisations`` and ``GET /people``, with ``q`` searching by
name, phone, email, tax code or Zalo id over the blind index (``services.directory.search_keys``: whole name
tokens, diacritics folded); ``GET /customers/duplicates``: customers sharing a tax code, phone or email, to merge."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from services.directory import projections, search_keys
from services.directory.api.answers import DuplicatePage, OrganisationPage, PersonPage
from services.directory.api.common import DirectoryAPI, Service, customers, read_models
from services.directory.api.customer_rights import SALES_ROLES, Reader, customer_teams
from services.directory.domain.customer_commands import TEAM_ID_PATTERN
from services.directory.domain.provinces import PROVINCES
from shared.core.limits import MAX_CODE_CHARS, MAX_NAME_CHARS
from shared.edge.auth import Principal
from shared.edge.problems import ERRORS
from shared.edge.queries import Cursor, Limit, WaitFor, decode_cursor, page, wait_target

router = APIRouter(responses=ERRORS, tags=["customer lists"])
Search = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_NAME_CHARS,
        description="a name (whole words, any case, with or without diacritics), phone, email, tax code or Zalo id",
    ),
]
TeamFilter = Annotated[str | None, Query(max_length=MAX_CODE_CHARS, pattern=TEAM_ID_PATTERN)]
Kind = Literal["tax", "phone", "email"]


def _scope(p: Principal) -> tuple[list[str] | None, str | None]:
    """The teams whose customers ``p`` sees (None: all), and the owner whose own they see besides."""
    return customer_teams(p), (p.user_id if p.roles & set(SALES_ROLES) else None)


def _search(svc: DirectoryAPI, q: str | None) -> tuple[set[str], set[str]] | None:
    return None if q is None else search_keys.query_keys(svc.index_key, q)


@router.get(
    "/organisations",
    summary="the organisations the caller may see, by name; `q` searches",
    response_model=OrganisationPage,
)
async def list_organisations(
    svc: Service,
    p: Reader,
    q: Search = None,
    team: TeamFilter = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    position: WaitFor = None,
) -> Any:
    offset = decode_cursor(cursor)
    teams, owner = _scope(p)
    wait_for = await wait_target(customers(svc).store, position)
    async with read_models(svc).connection("customers", wait_for=wait_for) as conn:
        rows = await projections.list_organisations(
            conn, search=_search(svc, q), teams=teams, owner=owner, team=team, offset=offset, limit=limit
        )
    items = [
        {
            **r,
            "organisation_id": str(r["organisation_id"]),
            "provinces": [{"code": c, "name": PROVINCES.get(c)} for c in r["provinces"]],
        }
        for r in rows
    ]
    return page(items, offset, limit)


@router.get("/people", summary="the people the caller may see, details opened; `q` searches", response_model=PersonPage)
async def list_people(
    svc: Service,
    p: Reader,
    q: Search = None,
    organisation_id: uuid.UUID | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    position: WaitFor = None,
) -> Any:
    offset = decode_cursor(cursor)
    teams, owner = _scope(p)
    wait_for = await wait_target(customers(svc).store, position)
    async with read_models(svc).connection("customers", wait_for=wait_for) as conn:
        rows = await projections.list_people(
            conn,
            search=_search(svc, q),
            teams=teams,
            owner=owner,
            organisation=organisation_id,
            offset=offset,
            limit=limit,
        )
    opened = await svc.personal_data.open([{"name": r["name_token"], "title": r["title_token"]} for r in rows])
    items = [
        {
            "person_id": str(r["person_id"]),
            "organisation_id": str(r["organisation_id"]) if r["organisation_id"] else None,
            "name": o["name"],
            "title": o["title"],
            "owner_id": r["owner_id"],
            "team_id": r["team_id"],
            "erased": r["erased"],
        }
        for r, o in zip(rows, opened, strict=True)
    ]
    return page(items, offset, limit)


@router.get(
    "/customers/duplicates",
    summary="customers the caller may see sharing a tax code, phone or email: candidates for a merge",
    response_model=DuplicatePage,
)
async def duplicates(
    svc: Service,
    p: Reader,
    match: Annotated[list[Kind] | None, Query(max_length=3, description="what they share (default: any)")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    position: WaitFor = None,
) -> Any:
    offset = decode_cursor(cursor)
    teams, owner = _scope(p)
    wait_for = await wait_target(customers(svc).store, position)
    async with read_models(svc).connection("customers", wait_for=wait_for) as conn:
        rows = await projections.duplicates(
            conn,
            kinds=sorted(set(match or search_keys.DUPLICATE_KINDS)),
            teams=teams,
            owner=owner,
            offset=offset,
            limit=limit,
        )
    items = [
        {
            "match": r["match"],
            "organisations": [str(i) for i in r["organisations"] or []],
            "people": [str(i) for i in r["people"] or []],
        }
        for r in rows
    ]
    return page(items, offset, limit)
