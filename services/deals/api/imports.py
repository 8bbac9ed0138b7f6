"""``POST /imports/batches``: deals imported from another CRM's export (issue 26, decision 0021; the request, the
answer and the runner: shared.edge.imports). A row of kind ``deal`` is its opening (``POST /deals``'s body) and the
commands after it (``POST /deals/{id}/<command>``'s bodies), each at its occurred time, decided by the same rules
(``Deals.import_deal``) and checked as those routes check what they name: the owner and team against the directory's
replica (``X-Directory-After`` honoured), the organisation and people (one merged since: the one it reads as). Only
a lead's conversion opens a deal from a lead, and a contact is erased by its own route: neither is imported. The
importer role (and admin) import; the importer sees every team's organisations, as an import is the company's."""

# No `from __future__ import annotations` here: FastAPI reads the routes' body types at runtime.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from services.deals import domain
from services.deals.api.commands import CLIENT_CHOSEN_IDS
from services.deals.api.common import ERRORS, DealsAPI, Service, known
from services.deals.api.forms import COMMAND_BODIES
from shared.core.ids import CLIENT_ID_RULE, is_client_id
from shared.edge.auth import Principal, require
from shared.edge.imports import Batch, BatchAnswer, BatchRequest, ImportRow, Kind, Memo, RowRefusedError, checking
from shared.store.commands import Context, Created

router = APIRouter(responses=ERRORS)
Importer = Annotated[Principal, Depends(require("importer"))]
NOT_IMPORTED = frozenset({"erase_contact"})
THEN = {cmd.name: cmd for cmd in COMMAND_BODIES if cmd.name not in NOT_IMPORTED}


async def _resolved(
    svc: DealsAPI, request: Request, memo: Memo, row: ImportRow, index: int, cmd: domain.Command
) -> domain.Command:
    """What fact ``index`` names, checked as its route checks it; the command as decided."""
    where = f"facts[{index}].body"
    if isinstance(cmd, domain.OpenDeal) and cmd.source_lead_id is not None:
        raise RowRefusedError(f"{where}.source_lead_id", "only a lead's conversion opens a deal from a lead")
    if (name := CLIENT_CHOSEN_IDS.get(cmd.name)) and not is_client_id(getattr(cmd, name)):
        raise RowRefusedError(f"{where}.{name}", f"must be {CLIENT_ID_RULE}")
    if isinstance(cmd, domain.OpenDeal | domain.Reassign):
        owner, team = cmd.owner_id, cmd.team_id
        await memo(("known", owner, team), lambda: known(svc, owner, team, request=request))
    org = cmd.organisation_id if isinstance(cmd, domain.OpenDeal | domain.LinkCustomer) else None
    refs = svc.references
    imported = row.dry_run and any(
        r.split(".")[0] in ("organisation_id", "person_ids") for r in row.facts[index].references
    )
    if org is None or refs is None or imported:  # a dry run: the customer is imported in the same run, not there yet
        return cmd
    found = await refs.organisation(org)
    people = await refs.people_of(found, getattr(cmd, "person_ids", ()))
    return cmd.model_copy(update={"organisation_id": found.organisation_id, "person_ids": people})


async def _run(svc: DealsAPI, request: Request, memo: Memo, row: ImportRow) -> Created[Any] | None:
    async def resolve(commands: list[domain.Command]) -> list[domain.Command]:
        out = []
        for i, cmd in enumerate(commands):
            with checking(i):
                out.append(await _resolved(svc, request, memo, row, i, cmd))
        return out

    facts = [(f.occurred_at, f.command) for f in row.facts]
    created = await svc.deals.import_deal(
        row.id,
        facts,  # type: ignore[arg-type]  # the kinds' commands are the deals' (THEN, OpenDeal)
        row.metadata,
        dry_run=row.dry_run,
        resolve=resolve,
    )
    return created


@router.post(
    "/imports/batches",
    response_model=BatchAnswer,
    tags=["imports"],
    summary="import a batch of deals (each its opening and commands, back-dated): created, exists or refused per row",
)
async def import_batch(request: Request, body: BatchRequest, svc: Service, p: Importer) -> BatchAnswer:
    memo = Memo()  # the owners and teams the batch names, checked once each
    batch = Batch(
        {"deal": Kind(first={"open_deal": domain.OpenDeal}, then=THEN, run=lambda r: _run(svc, request, memo, r))}
    )
    ctx = Context(actor=p.user_id, correlation_id=request.state.correlation_id)
    return await batch.run(body, svc.deals.clock(), ctx.metadata())
