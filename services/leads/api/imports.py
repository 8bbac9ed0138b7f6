"""``POST /imports/batches``: leads and daily ad spend imported from other systems' exports (issue 26, decision
0021; the request, the answer and the runner: shared.edge.imports). A row of kind ``lead`` is its capture
(``POST /leads``'s body) and the commands of its lifecycle after it (``POST /leads/{id}/<command>``'s bodies), each
at its occurred time, decided by the same rules (``Leads.import_lead``: a person seen before flagged as a duplicate)
and checked as those routes check what they name (owners and teams against the directory's replica,
``X-Directory-After`` honoured). A row of kind ``spend`` is one day's spend of a campaign
(services.leads.spend_import). The importer role (and admin) import."""

# No `from __future__ import annotations` here: FastAPI reads the routes' body types at runtime.

from collections.abc import Sequence
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from services.leads import domain
from services.leads.api.commands import GENERIC
from services.leads.api.common import ERRORS, LeadsAPI, Service, known
from services.leads.spend_import import import_spend_rows
from shared.edge.auth import Principal, require
from shared.edge.imports import Batch, BatchAnswer, BatchRequest, BatchRow, ImportRow, Kind, Memo, checking
from shared.store.commands import Context, Created

router = APIRouter(responses=ERRORS)
Importer = Annotated[Principal, Depends(require("importer"))]
THEN = {cmd.name: cmd for cmd in GENERIC}


async def _run(svc: LeadsAPI, request: Request, memo: Memo, row: ImportRow) -> Created[Any] | None:
    async def resolve(commands: list[domain.Command]) -> list[domain.Command]:
        for i, cmd in enumerate(commands):
            if isinstance(cmd, domain.Assign | domain.Convert):
                owner, team = cmd.owner_id, cmd.team_id
                with checking(i):
                    await memo(("known", owner, team), partial(known, svc, request, owner, team))
        return commands

    facts = [(f.occurred_at, f.command) for f in row.facts]
    created = await svc.leads.import_lead(
        row.id,
        facts,  # type: ignore[arg-type]  # the kind's commands are the leads' (capture, GENERIC)
        row.metadata,
        dry_run=row.dry_run,
        resolve=resolve,
    )
    return created


@router.post(
    "/imports/batches",
    response_model=BatchAnswer,
    tags=["imports"],
    summary="import a batch of leads (each its capture and lifecycle, back-dated) and daily ad spend: "
    "created, exists or refused per row",
)
async def import_batch(request: Request, body: BatchRequest, svc: Service, p: Importer) -> BatchAnswer:
    ctx = Context(actor=p.user_id, correlation_id=request.state.correlation_id)

    async def spend(source: str, rows: Sequence[BatchRow], dry_run: bool) -> list[dict[str, Any]]:
        return await import_spend_rows(svc.leads, source, rows, ctx, dry_run=dry_run)

    memo = Memo()  # the owners and teams the batch names, checked once each
    lead = Kind(first={"capture": domain.CaptureLead}, then=THEN, run=lambda r: _run(svc, request, memo, r))
    batch = Batch({"lead": lead}, batch_kinds={"spend": spend})
    return await batch.run(body, svc.leads.clock(), ctx.metadata())
