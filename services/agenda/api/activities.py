"""Activities: ``POST /activities`` schedules one (on a deal, a lead, an organisation or a person);
``POST /activities/{id}/complete|reschedule|cancel|reassign`` (If-Match, Idempotency-Key, X-Occurred-At);
``GET /activities/{id}`` (notes and outcome opened for the answer) and its audit trail (``/history``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response

from services.agenda.api.answers import ActivityView
from services.agenda.api.common import ERRORS, AgendaAPI, Service, owner_team, service, subject_for, visible_activity
from services.agenda.api.rights import SALES_ROLES, Reader, Seller, can_write, check_place, writable
from services.agenda.api.views import activity_view
from services.agenda.domain import Cancel, Complete, Placement, Reassign, Reschedule, Schedule
from services.agenda.handlers import ACTIVITY_STREAM
from shared.edge.auth import Principal, require
from shared.edge.commands import (
    CommandAnswer,
    IdempotencyKey,
    OccurredAt,
    command_routes,
    run_command,
)
from shared.edge.queries import Cursor, HistoryPage, Limit, decode_cursor, history_page
from shared.store.commands import CommandResult, Context

router = APIRouter(responses=ERRORS, tags=["activities"])
ActivityId = Annotated[uuid.UUID, Path(description="the activity's id")]


@router.post("/activities", status_code=201, response_model=CommandAnswer, summary="schedule an activity")
async def schedule(
    request: Request,
    body: Schedule,
    svc: Service,
    p: Seller,
    idempotency_key: IdempotencyKey = None,
    x_occurred_at: OccurredAt = None,
) -> Response:
    """On a subject the caller may see (unknown: 422 naming `subject_id`; another's: 404), for an active owner
    (default the caller; unknown or deactivated: 422 naming `owner_id`) the caller may give it to (403)."""
    subject = await subject_for(svc, p, body.subject_type, body.subject_id, request)
    owner = body.owner_id or p.user_id
    team = await owner_team(svc, owner, request)
    check_place(p, owner, team)
    place = Placement(owner_id=owner, team_id=team, data_subject=subject.data_subject)
    return await run_command(
        request,
        p.user_id,
        lambda ctx: svc.agenda.schedule(body, place, ctx),
        aggregate_id=lambda r: str(r.stream_id).removeprefix(ACTIVITY_STREAM),
        idempotency_key=idempotency_key,
        occurred_at=x_occurred_at,
        created=True,
        location="/activities/{id}",
    )


async def _handle(request: Request, activity_id: uuid.UUID, cmd: Any, p: Principal, ctx: Context) -> CommandResult[Any]:
    svc: AgendaAPI = service(request)
    check = writable(activity_id, p)
    place = None
    if isinstance(cmd, Reassign):
        loaded = await svc.agenda.activity(activity_id)
        check(loaded.state, loaded.version)  # 404 / 403 before the owner named is looked at
        team = await owner_team(svc, cmd.owner_id, request)
        if cmd.team_id is not None and cmd.team_id != team:
            await svc.references.check(owner_id=cmd.owner_id, team_id=cmd.team_id)  # 422 not_in_team
        check_place(p, cmd.owner_id, team)
        place = Placement(owner_id=cmd.owner_id, team_id=team, data_subject=loaded.state.data_subject)
    return await svc.agenda.handle(activity_id, cmd, ctx, check, place)


command_routes(
    router,
    (Complete, Reschedule, Cancel, Reassign),
    prefix="/activities/{activity_id}",
    id_param="activity_id",
    principal=Depends(require(*SALES_ROLES)),
    handle=_handle,
    tags=["activities"],
    occurred_at=True,
    describe=True,
)


@router.get(
    "/activities/{activity_id}", summary="an activity, its notes and outcome opened", response_model=ActivityView
)
async def get_activity(activity_id: ActivityId, svc: Service, p: Reader, response: Response) -> dict[str, Any]:
    loaded = await visible_activity(svc, activity_id, p)
    response.headers["ETag"] = f'"{loaded.version}"'
    personal = can_write(p, loaded.state)  # notes and outcome: to those who work it (an auditor reads them null)
    return await activity_view(loaded.state, loaded.events, loaded.version, svc.personal_data, personal=personal)


@router.get("/activities/{activity_id}/history", summary="its audit trail: every change, who and why")
async def history(
    activity_id: ActivityId, svc: Service, p: Reader, limit: Limit = 100, cursor: Cursor = None
) -> HistoryPage:
    loaded = await visible_activity(svc, activity_id, p)
    personal = can_write(p, loaded.state)
    return await history_page(
        loaded.events, svc.personal_data, personal=personal, offset=decode_cursor(cursor), limit=limit
    )
