"""Activities read from the ``activities`` read model: ``GET /activities`` (filters, within the caller's scope,
read-your-writes with ``position``) and ``GET /agenda`` (overdue, today and upcoming in the owner's time zone, as
the directory has it; a team's in the business time zone)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Query

from services.agenda.api.answers import ActivityPage, Agenda
from services.agenda.api.common import ERRORS, AgendaAPI, Service, read_models
from services.agenda.api.rights import Reader, check_agenda, scope
from services.agenda.api.views import row_view
from services.agenda.domain.commands import TEAM_ID_PATTERN, USER_ID_PATTERN
from services.agenda.projections import queries
from services.directory.replica import NAME as REPLICA
from services.directory.replica import UnknownReferenceError
from shared.core.limits import MAX_CODE_CHARS, MAX_ID_CHARS, Moment
from shared.edge.auth import Principal
from shared.edge.queries import Cursor, Limit, WaitFor, decode_cursor, page, wait_target
from shared.store.db import Conn

router = APIRouter(responses=ERRORS, tags=["agenda"])
OwnerFilter = Annotated[str | None, Query(min_length=1, max_length=MAX_ID_CHARS, pattern=USER_ID_PATTERN)]
TeamFilter = Annotated[str | None, Query(min_length=1, max_length=MAX_CODE_CHARS, pattern=TEAM_ID_PATTERN)]
MAX_AGENDA_DAYS = 31


@router.get(
    "/activities",
    summary="activities by subject, owner, team, status and due time, within the caller's scope",
    response_model=ActivityPage,
)
async def list_activities(
    svc: Service,
    p: Reader,
    subject_type: Literal["deal", "lead", "organisation", "person"] | None = None,
    subject_id: uuid.UUID | None = None,
    owner_id: OwnerFilter = None,
    team_id: TeamFilter = None,
    status: Literal["scheduled", "done", "cancelled"] | None = None,
    due_from: Annotated[Moment | None, Query(description="due at or after (a time with offset)")] = None,
    due_to: Annotated[Moment | None, Query(description="due before (a time with offset)")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    position: WaitFor = None,
) -> Any:
    offset = decode_cursor(cursor)
    wait_for = await wait_target(svc.agenda.store, position)
    async with read_models(svc).connection("activities", wait_for=wait_for) as conn:
        rows = await queries.list_activities(
            conn,
            subject_type=subject_type,
            subject_id=subject_id,
            owner_id=owner_id,
            team_id=team_id,
            status=status,
            due_from=due_from,
            due_to=due_to,
            scope=scope(p),
            offset=offset,
            limit=limit,
        )
    return page([row_view(r) for r in rows], offset, limit)


async def _whose(
    conn: Conn, replica: str, svc: AgendaAPI, p: Principal, owner_id: str | None, team_id: str | None
) -> tuple[str | None, str | None, str]:
    """Whose agenda is asked, read from the directory's replica (its active schema ``replica``, in the agenda's
    transaction): (the owner, their team, their time zone), or for a team's (no owner named) (None, the team, the
    business time zone). An unknown owner or team named: 422 naming it; the caller themselves, when the replica does
    not know them (yet): their token's team."""
    if owner_id is None and team_id is not None:
        if await conn.fetchval(f"SELECT true FROM {replica}.teams WHERE team_id = $1", team_id) is None:
            raise UnknownReferenceError("unknown_team", f"team_id: no team {team_id}", "team_id", "query")
        return None, team_id, svc.timezone
    asked = owner_id or p.user_id
    row = await conn.fetchrow(f"SELECT team_id, time_zone FROM {replica}.users WHERE user_id = $1", asked)
    if row is None:
        if owner_id is not None:
            raise UnknownReferenceError("unknown_user", f"owner_id: no user {owner_id}", "owner_id", "query")
        return asked, p.team, svc.timezone
    return asked, row["team_id"], row["time_zone"] or svc.timezone


def _zone(name: str, fallback: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(fallback)


@router.get(
    "/agenda",
    summary="overdue, today and upcoming open activities of an owner (default: the caller) or a team",
    response_model=Agenda,
)
async def agenda(
    svc: Service,
    p: Reader,
    owner_id: OwnerFilter = None,
    team_id: TeamFilter = None,
    days: Annotated[int, Query(ge=1, le=MAX_AGENDA_DAYS, description="local days 'upcoming' spans")] = 7,
    limit: Annotated[int, Query(ge=1, le=200, description="activities per bucket, by due time")] = 50,
    at: Annotated[Moment | None, Query(description="the buckets as at this time (default now; with offset)")] = None,
) -> dict[str, Any]:
    """Of ``owner_id`` (default the caller), else of ``team_id``. A salesperson reads their own; a manager their
    team's or one of their people's; a director, an auditor or an admin anyone's. "Today" is the owner's local day
    (the directory's time zone); a team's is the business time zone's."""
    models = read_models(svc)
    async with models.connection("activities") as conn:  # one transaction: the replica's schema read in it
        replica = await models.active_schema(conn, REPLICA)
        owner, team, zone = await _whose(conn, replica, svc, p, owner_id, team_id)
        check_agenda(p, owner, team, team_id)
        now = at or svc.agenda.clock()
        tz = _zone(zone, svc.timezone)
        found = await queries.agenda(conn, owner_id=owner, team_id=team, now=now, tz=tz, days=days, limit=limit)
    return {
        "owner_id": owner,
        "team_id": team,
        "time_zone": tz.key,
        "at": now.isoformat(),
        **{bucket: [row_view(r) for r in rows] for bucket, rows in found.items()},
    }
