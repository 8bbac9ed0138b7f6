"""Deals read: one deal now (``GET /deals/{deal_id}``), and the board's read model: the sales board, the deals
list, the follow-ups due. Deals a caller may not see answer 404, as if they did not exist, and are not listed."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Response

from services.deals import domain, projections
from services.deals.api.answers import BoardView, DealPage, DealView, FollowUpPage
from services.deals.api.common import ERRORS, Reader, Service, known, read_models, visible_deal, waited
from services.deals.api.customers import OrganisationFilter, organisation_filter
from services.deals.api.rights import managed_team, may_see_contact, sees_all
from services.deals.api.views import state_as_json
from shared.core.limits import Day, Identifier
from shared.edge.queries import Cursor, Limit, WaitFor, decode_cursor, page

router = APIRouter(responses=ERRORS)


@router.get(
    "/deals/{deal_id}",
    tags=["deals"],
    summary="the deal now (or as of a version)",
    response_model=DealView,
    response_model_exclude_unset=True,  # no contact: not there
)
async def get_deal(
    deal_id: uuid.UUID, svc: Service, p: Reader, response: Response, include_contact: bool = False
) -> dict[str, Any]:
    loaded = await visible_deal(svc, deal_id, p)
    body = state_as_json(loaded.state)
    body["version"] = loaded.version
    if include_contact:
        may_see_contact(p, loaded.state)
        opened = next(e for e in loaded.events if e.event_type == "pipelines.deals.DealOpened")
        body["contact"] = (await svc.personal_data.open([opened.data]))[0].get("contact")
    response.headers["ETag"] = f'"{loaded.version}"'
    return body


@router.get(
    "/board",
    tags=["read models"],
    summary="the sales board: per stage the open deals (each with its next step and flags), counts and values",
    response_model=BoardView,
)
async def get_board(
    svc: Service,
    p: Reader,
    pipeline_id: Identifier = domain.DEFAULT_PIPELINE_ID,
    owner_id: Identifier | None = None,
    organisation_id: OrganisationFilter = None,
    position: WaitFor = None,
    cards: Annotated[
        int | None, Query(ge=1, le=1000, description="list each stage's first deals only (counts and values: all)")
    ] = None,
    whole_stage: Annotated[str | None, Query(max_length=80, description="with `cards`: this stage lists all")] = None,
) -> dict[str, Any]:
    await known(svc, owner_id, None, filtering=True)
    orgs = await organisation_filter(svc, p, organisation_id)
    async with read_models(svc).connection("board", wait_for=await waited(svc, position)) as conn:
        return await projections.board_view(
            conn,
            pipeline_id=pipeline_id,
            now=svc.deals.clock(),
            tz=svc.timezone,
            user=p.user_id,
            team=managed_team(p),
            all_deals=sees_all(p),
            owner_id=owner_id,
            organisations=orgs,
            cards=cards,
            whole_stage=whole_stage,
        )


@router.get(
    "/deals",
    tags=["read models"],
    summary="deals, newest first, with days in stage, next step and stuck, no-next-step and overdue flags",
    response_model=DealPage,
)
async def get_deals(
    svc: Service,
    p: Reader,
    deal_status: Annotated[Literal["open", "won", "lost"] | None, Query(alias="status")] = None,
    stage_id: Identifier | None = None,
    owner_id: Identifier | None = None,
    stuck: bool | None = None,
    no_next_step: Annotated[bool | None, Query(description="open deals with no open activity (or with one)")] = None,
    overdue: Annotated[bool | None, Query(description="open deals with an activity past due (or without)")] = None,
    organisation_id: OrganisationFilter = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    position: WaitFor = None,
) -> Any:
    offset = decode_cursor(cursor)
    await known(svc, owner_id, None, filtering=True)
    orgs = await organisation_filter(svc, p, organisation_id)
    async with read_models(svc).connection("board", wait_for=await waited(svc, position)) as conn:
        rows = await projections.list_deals(
            conn,
            now=svc.deals.clock(),
            tz=svc.timezone,
            user=p.user_id,
            team=managed_team(p),
            all_deals=sees_all(p),
            status=deal_status,
            stage_id=stage_id,
            owner_id=owner_id,
            stuck=stuck,
            no_next_step=no_next_step,
            overdue=overdue,
            offset=offset,
            limit=limit,
            organisations=orgs,
        )
    return page(rows, offset, limit)


@router.get(
    "/follow-ups", tags=["read models"], summary="after-sales follow-ups due by a date", response_model=FollowUpPage
)
async def get_follow_ups(
    svc: Service, p: Reader, due_by: Day | None = None, limit: Limit = 50, cursor: Cursor = None
) -> Any:
    offset = decode_cursor(cursor)
    until = due_by or svc.deals.clock().astimezone(ZoneInfo(svc.timezone)).date()
    async with read_models(svc).connection("board") as conn:
        rows = await projections.follow_ups_due(
            conn,
            until=until,
            user=p.user_id,
            team=managed_team(p),
            all_deals=sees_all(p),
            offset=offset,
            limit=limit,
        )
    return page(rows, offset, limit)
