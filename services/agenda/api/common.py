"""What the agenda routes share: the service they reach (put on ``app.state`` by ``create_app``), the lookups every
route makes (the activity if the caller may see it; a subject; an owner and their team) and the errors."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from services.agenda.api.rights import can_read, check_subject_visible
from services.agenda.domain import Activity, AgendaRuleError, InvalidFieldError
from services.agenda.handlers import Agenda
from services.agenda.subjects import AFTER_HEADER as SUBJECT_AFTER
from services.agenda.subjects import Subject, Subjects
from services.agenda.subjects import parse_after as parse_subject_after
from services.directory.replica import AFTER_HEADER, References, UnknownReferenceError, parse_after
from shared.core.decider import NotVisibleError
from shared.edge.auth import Principal
from shared.edge.problems import ERRORS as COMMON_ERRORS
from shared.edge.problems import not_found
from shared.messaging.projections import ReadModels
from shared.privacy.pii import PersonalData
from shared.store.commands import Loaded

ERRORS = COMMON_ERRORS | not_found("no such activity (or not one the caller may see)")


@dataclass
class AgendaAPI:
    agenda: Agenda
    read_models: ReadModels | None
    personal_data: PersonalData
    readiness: Callable[[], Awaitable[dict[str, str]]]
    references: References  # the directory's replica: owners and teams (services.directory.replica)
    subjects: Subjects  # deals, leads, organisations, people (services.agenda.subjects)
    timezone: str = "Asia/Ho_Chi_Minh"  # the business time zone: a team's agenda, an owner the replica has none of


def service(request: Request) -> AgendaAPI:
    svc: AgendaAPI = request.app.state.agenda
    return svc


Service = Annotated[AgendaAPI, Depends(service)]


async def visible_activity(svc: AgendaAPI, activity_id: uuid.UUID, p: Principal, **read: Any) -> Loaded[Activity]:
    """The activity, if it exists and the caller may see it; else 404, as if it did not exist."""
    loaded = await svc.agenda.activity(activity_id, **read)
    if loaded.version == 0 or not can_read(p, loaded.state):
        raise NotVisibleError(f"no activity {activity_id}")
    return loaded


async def subject_for(
    svc: AgendaAPI, p: Principal, subject_type: str, subject_id: uuid.UUID, request: Request | None = None
) -> Subject:
    """The subject a scheduling names: unknown → 422 naming ``subject_id``; not the caller's to see → 404; closed
    (a deal won or lost, a lead converted or disqualified, a merged customer) → 409. A deal or lead the client has
    just opened is named in ``X-Subject-After`` (its answer's ``stream_id@version``): the lookup waits for it."""
    after = parse_subject_after(request.headers.get(SUBJECT_AFTER)) if request is not None else ()
    subject = await svc.subjects.subject(subject_type, subject_id, after)
    if subject is None:
        raise InvalidFieldError("unknown_subject", f"subject_id: no {subject_type} {subject_id}", "subject_id")
    check_subject_visible(p, subject)
    if not subject.open:
        raise AgendaRuleError(
            "subject_closed", f"{subject_type} {subject_id} is closed: nothing more is scheduled on it"
        )
    return subject


async def owner_team(svc: AgendaAPI, owner_id: str, request: Request | None, *, where: str = "body") -> str:
    """The team of an active user (a command) or of any known user (a query: ``where`` query); unknown →
    422 naming ``owner_id`` (``X-Directory-After``: wait for the directory answers named)."""
    after = parse_after(request.headers.get(AFTER_HEADER)) if request is not None else ()
    filtering = where == "query"
    await svc.references.check(owner_id=owner_id, after=after, where=where, filtering=filtering)
    users, _ = await svc.references.lookup([owner_id], [], ())
    if owner_id not in users:  # pragma: no cover - the check found them
        raise UnknownReferenceError("unknown_user", f"owner_id: no user {owner_id}", "owner_id", where)
    return users[owner_id].team_id


def read_models(svc: AgendaAPI) -> ReadModels:
    if svc.read_models is None:
        raise HTTPException(503, detail="this process serves no read models")
    return svc.read_models
