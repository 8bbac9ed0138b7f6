"""``POST /imports/batches``: production orders imported from another system's export (issue 26, decision 0021;
the request, the answer and the runner: shared.edge.imports). A row of kind ``order`` is its creation
(``POST /orders``'s body) and its steps after it (``POST /orders/{id}/<command>``'s bodies), each at its occurred
time, decided by the same rules (``Production.import_order``): an order's history, late, reworked or scrapped as it
was. A contact is erased by its own route: not imported. The importer role (and admin) import."""

# No `from __future__ import annotations` here: FastAPI reads the routes' body types at runtime.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from services.production import domain
from services.production.api.common import ERRORS, ProductionAPI, Service
from services.production.api.order_commands import COMMANDS
from shared.edge.auth import Principal, require
from shared.edge.imports import Batch, BatchAnswer, BatchRequest, ImportRow, Kind
from shared.store.commands import Context, Created

router = APIRouter(responses=ERRORS)
Importer = Annotated[Principal, Depends(require("importer"))]
THEN = {cmd.name: cmd for cmd in COMMANDS if cmd.name != "erase_contact"}


async def _run(svc: ProductionAPI, row: ImportRow) -> Created[Any] | None:
    facts = [(f.occurred_at, f.command) for f in row.facts]
    created = await svc.production.import_order(
        row.id,
        facts,  # type: ignore[arg-type]  # the kind's commands are production's (CreateOrder, THEN)
        row.metadata,
        dry_run=row.dry_run,
    )
    return created


@router.post(
    "/imports/batches",
    response_model=BatchAnswer,
    tags=["imports"],
    summary="import a batch of orders (each its creation and steps, back-dated): created, exists or refused per row",
)
async def import_batch(request: Request, body: BatchRequest, svc: Service, p: Importer) -> BatchAnswer:
    ctx = Context(actor=p.user_id, correlation_id=request.state.correlation_id)
    batch = Batch({"order": Kind(first={"create": domain.CreateOrder}, then=THEN, run=lambda r: _run(svc, r))})
    return await batch.run(body, svc.production.clock(), ctx.metadata())
