"""Users read: one user from their stream (``GET /users/{id}``), the list from the read model (``GET /users``,
within the caller's scope, read-your-writes with ``position``), a user's audit trail (``/history``), and the users
holding an exact email (``POST /users/lookup``, admin only: what the sign-in service asks; the email in the body,
never in a URL or a log line)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict

from services.directory import projections
from services.directory.api.answers import UserPage, UserView
from services.directory.api.common import ERRORS, Service, UserIdParam, existing_user, read_models
from services.directory.api.rights import Admin, Auditor, Reader, check_user_visible, visible_teams
from services.directory.api.views import user_rows, user_view
from services.directory.domain.commands import TEAM_ID_PATTERN
from services.directory.projections.user_emails import email_key, users_with_email
from shared.core import normalize
from shared.core.limits import MAX_CODE_CHARS, Email
from shared.edge.queries import Cursor, HistoryPage, Limit, WaitFor, decode_cursor, history_page, page, wait_target

router = APIRouter(responses=ERRORS, tags=["users"])
TeamFilter = Annotated[str | None, Query(max_length=MAX_CODE_CHARS, pattern=TEAM_ID_PATTERN)]


@router.get("/users", summary="the users the caller may see, by id", response_model=UserPage)
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


@router.get("/users/{user_id}", summary="a user (404: none the caller may see)", response_model=UserView)
async def get_user(user_id: UserIdParam, svc: Service, p: Reader, response: Response) -> dict[str, Any]:
    loaded = await existing_user(svc, user_id)
    check_user_visible(p, user_id, loaded.state.team_id)
    response.headers["ETag"] = f'"{loaded.version}"'
    return await user_view(loaded.state, loaded.events, loaded.version, svc.personal_data)


@router.get("/users/{user_id}/history", summary="a user's audit trail: every change, who made it and why")
async def history(
    user_id: UserIdParam, svc: Service, p: Auditor, limit: Limit = 100, cursor: Cursor = None
) -> HistoryPage:
    loaded = await existing_user(svc, user_id)
    return await history_page(
        loaded.events, svc.personal_data, personal=True, offset=decode_cursor(cursor), limit=limit
    )


class EmailLookup(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email


@router.post("/users/lookup", summary="the users whose email is exactly this one (admin: the sign-in service)")
async def lookup(body: EmailLookup, svc: Service, p: Admin) -> dict[str, Any]:
    key = email_key(svc.index_key, body.email)
    if key is None:
        return {"items": []}
    async with read_models(svc).connection("user_emails") as conn:
        ids = await users_with_email(conn, key)
    items = []
    for user_id in ids:  # from the stream: as the user is now, their email checked opened (the index may lag)
        loaded = await svc.directory.user(user_id)
        if loaded.version == 0:
            continue
        view = await user_view(loaded.state, loaded.events, loaded.version, svc.personal_data)
        if normalize.email(view["email"]) == normalize.email(body.email):
            items.append({k: view[k] for k in ("user_id", "name", "email", "team_id", "roles", "active")})
    return {"items": items}
