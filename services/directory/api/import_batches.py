"""``POST /imports/batches``: organisations and people imported from another CRM's export (issue 26, decision 0021;
the request, the answer and the runner: shared.edge.imports; the rules: services.directory.customer_imports). A
row of kind ``organisation`` is its registration (``POST /organisations``'s body: ``register``) and the changes after
it (``change``: ``PUT /organisations/{id}``'s body, ``reassign``); a row of kind ``person`` the same for a person.
A batch's organisations land before its people, so a person may name an organisation of the same batch
(``{"$import": {"kind": "organisation", "key": …}}``). The importer role (and admin) import; the importer reads no
personal data (it is not answered: only each row's status, id and errors)."""

# No `from __future__ import annotations` here: FastAPI reads the routes' body types at runtime.

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from services.directory import customer_imports
from services.directory.api.common import DirectoryAPI, Service, customers
from services.directory.domain import customer_commands as c
from shared.edge.auth import Principal, require
from shared.edge.imports import Batch, BatchAnswer, BatchRequest, ImportRow, Kind, Memo
from shared.edge.problems import ERRORS
from shared.store.commands import Context, Created

router = APIRouter(responses=ERRORS)
Importer = Annotated[Principal, Depends(require("importer"))]


async def _organisation(svc: DirectoryAPI, memo: Memo, row: ImportRow) -> Created[Any] | None:
    async def owners(owner_id: str, team_id: str) -> None:
        await memo((owner_id, team_id), partial(customers(svc).references.check_owner, owner_id, team_id))

    facts = [(f.occurred_at, f.command) for f in row.facts]
    return await customer_imports.import_organisation(
        customers(svc),
        row.id,
        facts,  # type: ignore[arg-type]  # the kind's commands are the organisations' (ORGANISATION)
        row.metadata,
        dry_run=row.dry_run,
        owners=owners,
    )


async def _person(svc: DirectoryAPI, row: ImportRow) -> Created[Any] | None:
    facts = [(f.occurred_at, f.command) for f in row.facts]
    return await customer_imports.import_person(
        customers(svc),
        row.id,
        facts,  # type: ignore[arg-type]  # the kind's commands are the people's (PERSON)
        row.metadata,
        dry_run=row.dry_run,
        organisation_unchecked=any(r.split(".")[0] == "organisation_id" for f in row.facts for r in f.references),
    )


@router.post(
    "/imports/batches",
    response_model=BatchAnswer,
    tags=["imports"],
    summary="import a batch of organisations and people (each its registration and changes, back-dated): "
    "created, exists or refused per row",
)
async def import_batch(request: Request, body: BatchRequest, svc: Service, p: Importer) -> BatchAnswer:
    ctx = Context(actor=p.user_id, correlation_id=request.state.correlation_id)
    memo = Memo()  # the owners and teams the batch's organisations name, checked once each
    organisation = Kind(
        first={"register": c.RegisterOrganisation},
        then={"change": c.ChangeOrganisation, "reassign": c.ReassignOrganisation},
        run=lambda r: _organisation(svc, memo, r),
    )
    person = Kind(
        first={"register": c.RegisterPerson},
        then={"change": c.ChangePerson, "reassign": c.ReassignPerson},
        run=lambda r: _person(svc, r),
    )
    batch = Batch({"organisation": organisation, "person": person})
    return await batch.run(body, svc.directory.clock(), ctx.metadata())
