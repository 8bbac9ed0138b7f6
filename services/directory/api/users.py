"""Users read: one user from their stream (``GET /users/{id}``), the list from the read model (``GET /users``,
within the caller's scope, read-your-writes with ``position``), and a user's audit trail (``/history``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from services.directory import projections
from services.directory.api.common import ERRORS, Service, UserIdParam, existing_user, read_models
from services.directory.api.rights import Auditor, Reader, check_user_visible, visible_teams
from services.directory.api.views import user_rows, user_view
from services.directory.domain.commands import TEAM_ID_PATTERN
from shared.core.limits import MAX_CODE_CHARS
from shared.edge.queries import Cursor, Limit, WaitFor, decode_cursor, history_page, page, wait_target

router = APIRouter(responses=ERRORS, tags=["users"])
TeamFilter = Annotated[str | None, Query(max_length=MAX_CODE_CHARS, pattern=TEAM_ID_PATTERN)]


@router.get("/users", summary="the users the caller may see, by id")
async def list_users(
    svc: Service,
    p: Reader,
    team: TeamFilter = None,
    active: bool | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    position: WaitFor = None,
) -> Any:
    offset = decode_cursor(cursor)
    wait_for = await wait_target(svc.directory.store, position)
    async with read_models(svc).connection("directory", wait_for=wait_for) as conn:
        rows = await projections.list_users(
            conn, team=team, active=active, teams=visible_teams(p), also=p.user_id, offset=offset, limit=limit
        )
    return page(await user_rows(rows, svc.personal_data), offset, limit)


@router.get("/users/{user_id}", summary="a user (404: none the caller may see)")
async def get_user(user_id: UserIdParam, svc: Service, p: Reader, response: Response) -> dict[str, Any]:
    loaded = await existing_user(svc, user_id)
    check_user_visible(p, user_id, loaded.state.team_id)
    response.headers["ETag"] = f'"{loaded.version}"'
    return await user_view(loaded.state, loaded.events, loaded.version, svc.personal_data)


@router.get("/users/{user_id}/history", summary="a user's audit trail: every change, who made it and why")
async def history(user_id: UserIdParam, svc: Service, p: Auditor, limit: Limit = 100, cursor: Cursor = None) -> Any:
    loaded = await existing_user(svc, user_id)
    return await history_page(
        loaded.events, svc.personal_data, personal=True, offset=decode_cursor(cursor), limit=limit
    )
