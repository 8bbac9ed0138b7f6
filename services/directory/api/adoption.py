"""``POST /customers/adopt``, admin only: old deals' customer strings and contacts become organisations and people
(``services.directory.adoption``; decision 0017 "Old deals keep working by a command"). The answer counts what the
run did — or, ``dry_run``, would do: a dry run changes nothing. Running it again changes nothing more."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from services.directory.adoption import AdoptionReport, Adoptions, Source
from services.directory.api.common import DirectoryAPI, Service
from services.directory.api.rights import Admin
from services.directory.domain import InvalidReferenceError
from services.directory.domain.customer_commands import Reason, TeamId
from shared.edge.commands import command_context
from shared.edge.problems import ERRORS

router = APIRouter(responses=ERRORS, tags=["customer commands"])


class AdoptCustomers(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: Reason
    team_id: Annotated[TeamId | None, Field(description="one team's deals; none: every team's")] = None
    dry_run: bool = Field(False, description="answer what a run would do, changing nothing")


def adoptions(svc: DirectoryAPI) -> tuple[Adoptions, Source]:
    if svc.adoptions is None or svc.adoption_source is None:
        raise HTTPException(503, detail="this process adopts no customers")
    return svc.adoptions, svc.adoption_source


@router.post(
    "/customers/adopt",
    response_model=AdoptionReport,
    summary="adopt old deals' customer strings and contacts as organisations and people",
)
async def adopt(request: Request, body: AdoptCustomers, svc: Service, p: Admin) -> AdoptionReport:
    run, source = adoptions(svc)
    if body.team_id is not None and (await svc.directory.team(body.team_id)).version == 0:
        raise InvalidReferenceError("unknown_team", f"team_id: no team {body.team_id}", "team_id")
    ctx = await command_context(request, p.user_id)
    try:
        return await run.adopt(source, body.reason, ctx, team_id=body.team_id, dry_run=body.dry_run)
    except LookupError:  # a read model it reads is not built yet: nothing is known to adopt from
        raise HTTPException(503, detail="the read models the adoption reads are not built yet") from None
