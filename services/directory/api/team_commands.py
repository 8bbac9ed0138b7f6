"""Commands on teams, admin only: ``POST /teams`` creates one (its slug chosen by the admin), ``PUT /teams/{id}``
renames it, ``POST /teams/{id}/close`` closes it (refused while active users are in it)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from services.directory import domain
from services.directory.api.common import ERRORS, Service, TeamIdParam
from services.directory.api.rights import Admin
from shared.edge.commands import CommandAnswer, IdempotencyKey, IfMatch, run_command

router = APIRouter(responses=ERRORS, tags=["team commands"])


async def _run(
    request: Request,
    svc: Service,
    p: Admin,
    team_id: str,
    cmd: domain.TeamCommand,
    if_match: str | None,
    key: str | None,
    *,
    created: bool = False,
) -> Response:
    return await run_command(
        request,
        p.user_id,
        lambda ctx: svc.directory.handle_team(team_id, cmd, ctx),
        aggregate_id=team_id,
        if_match=if_match,
        idempotency_key=key,
        created=created,
        location="/teams/{id}" if created else None,
    )


@router.post("/teams", status_code=201, response_model=CommandAnswer, summary="create a team")
async def create_team(
    request: Request, body: domain.CreateTeam, svc: Service, p: Admin, idempotency_key: IdempotencyKey = None
) -> Response:
    return await _run(request, svc, p, body.team_id, body, None, idempotency_key, created=True)


@router.put("/teams/{team_id}", response_model=CommandAnswer, summary="rename a team")
async def rename_team(
    request: Request,
    team_id: TeamIdParam,
    body: domain.RenameTeam,
    svc: Service,
    p: Admin,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return await _run(request, svc, p, team_id, body, if_match, idempotency_key)


@router.post("/teams/{team_id}/close", response_model=CommandAnswer, summary="close a team without active users")
async def close_team(
    request: Request,
    team_id: TeamIdParam,
    body: domain.CloseTeam,
    svc: Service,
    p: Admin,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return await _run(request, svc, p, team_id, body, if_match, idempotency_key)
