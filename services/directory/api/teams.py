"""Teams read: one team from its stream, the list from the read model (within the caller's scope, with each
team's active users), and a team's audit trail."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from services.directory import projections
from services.directory.api.answers import TeamPage, TeamView
from services.directory.api.common import ERRORS, Service, TeamIdParam, existing_team, read_models
from services.directory.api.rights import Auditor, Reader, check_team_visible, visible_teams
from services.directory.api.views import team_view
from shared.edge.queries import Cursor, HistoryPage, Limit, WaitFor, decode_cursor, history_page, page, wait_target

router = APIRouter(responses=ERRORS, tags=["teams"])


@router.get("/teams", summary="the teams the caller may see, by id", response_model=TeamPage)
async def list_teams(
    svc: Service,
    p: Reader,
    active: bool | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    position: WaitFor = None,
) -> Any:
    offset = decode_cursor(cursor)
    wait_for = await wait_target(svc.directory.store, position)
    async with read_models(svc).connection("directory", wait_for=wait_for) as conn:
        rows = await projections.list_teams(conn, active=active, teams=visible_teams(p), offset=offset, limit=limit)
    items = [{**r, "created_at": r["created_at"].isoformat()} for r in rows]
    return page(items, offset, limit)


@router.get("/teams/{team_id}", summary="a team (404: none the caller may see)", response_model=TeamView)
async def get_team(team_id: TeamIdParam, svc: Service, p: Reader, response: Response) -> dict[str, Any]:
    check_team_visible(p, team_id)
    loaded = await existing_team(svc, team_id)
    response.headers["ETag"] = f'"{loaded.version}"'
    return team_view(loaded.state, loaded.version)


@router.get("/teams/{team_id}/history", summary="a team's audit trail")
async def history(
    team_id: TeamIdParam, svc: Service, p: Auditor, limit: Limit = 100, cursor: Cursor = None
) -> HistoryPage:
    loaded = await existing_team(svc, team_id)
    return await history_page(
        loaded.events, svc.personal_data, personal=False, offset=decode_cursor(cursor), limit=limit
    )
