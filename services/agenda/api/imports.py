"""``POST /imports/batches``: activities imported from another CRM's export (issue 26, decision 0021; the request,
the answer and the runner: shared.edge.imports). A row of kind ``activity`` is its scheduling (``POST /activities``'s
body: ``schedule``, with its ``owner_id``: the importer is nobody's agenda) and what became of it (``complete``,
``reschedule``, ``cancel``, ``reassign``), each at its occurred time, decided by the same rules
(``Agenda.import_activity``). What it names is checked as the routes check it: the owner an active user (their team
from the directory's replica, ``X-Directory-After`` honoured), the subject known (``X-Subject-After`` honoured; one
imported in the same dry run is not looked for: ``unchecked``). Unlike a scheduling now, an imported one may be on
a subject closed since (a won deal's past meetings): it was open when it was scheduled. The importer role (and
admin) import; the importer sees every subject, as an import is the company's."""

# No `from __future__ import annotations` here: FastAPI reads the routes' body types at runtime.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from services.agenda.api.common import ERRORS, AgendaAPI, Service, owner_team
from services.agenda.domain import Cancel, Complete, InvalidFieldError, Placement, Reassign, Reschedule, Schedule
from services.agenda.subjects import AFTER_HEADER as SUBJECT_AFTER
from services.agenda.subjects import parse_after as parse_subject_after
from shared.edge.auth import Principal, require
from shared.edge.imports import Batch, BatchAnswer, BatchRequest, ImportRow, Kind, Memo, checking
from shared.store.commands import Context, Created

router = APIRouter(responses=ERRORS)
Importer = Annotated[Principal, Depends(require("importer"))]
THEN = {cmd.name: cmd for cmd in (Complete, Reschedule, Cancel, Reassign)}


async def _scheduled(svc: AgendaAPI, request: Request, memo: Memo, row: ImportRow, cmd: Schedule) -> Placement:
    if cmd.owner_id is None:
        raise InvalidFieldError("owner_required", "owner_id: an imported activity names its owner", "owner_id")
    owner = cmd.owner_id
    team = await memo(("owner", owner), lambda: owner_team(svc, owner, request))
    if row.unchecked(0, "subject_id"):
        return Placement(owner_id=cmd.owner_id, team_id=team, data_subject=f"{cmd.subject_type}:{cmd.subject_id}")
    after = parse_subject_after(request.headers.get(SUBJECT_AFTER))
    subject = await svc.subjects.subject(cmd.subject_type, cmd.subject_id, after)
    if subject is None:
        raise InvalidFieldError("unknown_subject", f"subject_id: no {cmd.subject_type} {cmd.subject_id}", "subject_id")
    return Placement(owner_id=cmd.owner_id, team_id=team, data_subject=subject.data_subject)


async def _reassigned(svc: AgendaAPI, request: Request, first: Placement, cmd: Reassign) -> Placement:
    team = await owner_team(svc, cmd.owner_id, request)
    if cmd.team_id is not None and cmd.team_id != team:
        await svc.references.check(owner_id=cmd.owner_id, team_id=cmd.team_id)  # 422 not_in_team
    return Placement(owner_id=cmd.owner_id, team_id=team, data_subject=first.data_subject)


async def _run(svc: AgendaAPI, request: Request, memo: Memo, row: ImportRow) -> Created[Any] | None:
    async def places() -> list[Placement | None]:
        out: list[Placement | None] = []
        for f in row.facts:
            with checking(f.index):
                if isinstance(f.command, Schedule):
                    out.append(await _scheduled(svc, request, memo, row, f.command))
                elif isinstance(f.command, Reassign) and out and out[0] is not None:
                    out.append(await _reassigned(svc, request, out[0], f.command))
                else:
                    out.append(None)
        return out

    facts = [(f.occurred_at, f.command) for f in row.facts]
    return await svc.agenda.import_activity(
        row.id,
        facts,  # type: ignore[arg-type]  # the kind's commands are the agenda's (Schedule, THEN)
        row.metadata,
        places,
        dry_run=row.dry_run,
    )


@router.post(
    "/imports/batches",
    response_model=BatchAnswer,
    tags=["imports"],
    summary="import a batch of activities (each its scheduling and what became of it, back-dated): "
    "created, exists or refused per row",
)
async def import_batch(request: Request, body: BatchRequest, svc: Service, p: Importer) -> BatchAnswer:
    ctx = Context(actor=p.user_id, correlation_id=request.state.correlation_id)
    memo = Memo()  # the owners the batch names, checked once each
    activity = Kind(first={"schedule": Schedule}, then=THEN, run=lambda r: _run(svc, request, memo, r))
    return await Batch({"activity": activity}).run(body, svc.agenda.clock(), ctx.metadata())
