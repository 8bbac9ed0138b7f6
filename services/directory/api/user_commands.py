"""Commands on users, admin only: ``POST /users`` registers one (its id chosen by the admin: the ``sub`` of the
user's tokens), the others change one, each through the kernel's command helper (``shared.edge.commands``): the
context from the request (who, If-Match, Idempotency-Key), the command run, the answer with ETag and position."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from services.directory import domain
from services.directory.api.common import ERRORS, Service, UserIdParam
from services.directory.api.rights import Admin
from shared.edge.commands import CommandAnswer, IdempotencyKey, IfMatch, run_command

router = APIRouter(responses=ERRORS, tags=["user commands"])


async def _run(
    request: Request,
    svc: Service,
    p: Admin,
    user_id: str,
    cmd: domain.UserCommand,
    if_match: str | None,
    key: str | None,
    *,
    created: bool = False,
) -> Response:
    return await run_command(
        request,
        p.user_id,
        lambda ctx: svc.directory.handle_user(user_id, cmd, ctx),
        aggregate_id=user_id,
        if_match=if_match,
        idempotency_key=key,
        created=created,
        location="/users/{id}" if created else None,
    )


@router.post("/users", status_code=201, response_model=CommandAnswer, summary="register a user")
async def register_user(
    request: Request, body: domain.RegisterUser, svc: Service, p: Admin, idempotency_key: IdempotencyKey = None
) -> Response:
    return await _run(request, svc, p, body.user_id, body, None, idempotency_key, created=True)


@router.put("/users/{user_id}/profile", response_model=CommandAnswer, summary="replace a user's profile")
async def change_profile(
    request: Request,
    user_id: UserIdParam,
    body: domain.ChangeProfile,
    svc: Service,
    p: Admin,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return await _run(request, svc, p, user_id, body, if_match, idempotency_key)


@router.put("/users/{user_id}/roles", response_model=CommandAnswer, summary="set a user's roles")
async def change_roles(
    request: Request,
    user_id: UserIdParam,
    body: domain.ChangeRoles,
    svc: Service,
    p: Admin,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return await _run(request, svc, p, user_id, body, if_match, idempotency_key)


@router.put("/users/{user_id}/team", response_model=CommandAnswer, summary="move a user to another team")
async def move_to_team(
    request: Request,
    user_id: UserIdParam,
    body: domain.MoveToTeam,
    svc: Service,
    p: Admin,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return await _run(request, svc, p, user_id, body, if_match, idempotency_key)


@router.post(
    "/users/{user_id}/deactivate",
    response_model=CommandAnswer,
    summary="deactivate a user, naming the active user who takes over what they owned",
)
async def deactivate(
    request: Request,
    user_id: UserIdParam,
    body: domain.Deactivate,
    svc: Service,
    p: Admin,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return await _run(request, svc, p, user_id, body, if_match, idempotency_key)


@router.post("/users/{user_id}/reactivate", response_model=CommandAnswer, summary="reactivate a user")
async def reactivate(
    request: Request,
    user_id: UserIdParam,
    body: domain.Reactivate,
    svc: Service,
    p: Admin,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return await _run(request, svc, p, user_id, body, if_match, idempotency_key)


@router.post(
    "/users/{user_id}/erase",
    response_model=CommandAnswer,
    summary="forget a deactivated user's name and email (their key is destroyed)",
)
async def erase(
    request: Request,
    user_id: UserIdParam,
    body: domain.EraseUser,
    svc: Service,
    p: Admin,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return await _run(request, svc, p, user_id, body, if_match, idempotency_key)
