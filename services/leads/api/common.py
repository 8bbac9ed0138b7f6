"""What the leads routes share: the service they reach (put on ``app.state`` by ``create_app``, read by the
``Service`` dependency), the callers they take, the error answers, and the lookups and answers several routes make."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from services.directory.replica import AFTER_HEADER, References, parse_after
from services.leads import sources
from services.leads.domain import Lead
from services.leads.handlers import Captured, Leads
from shared.edge.auth import Principal, require
from shared.edge.commands import answer
from shared.edge.problems import ERRORS as COMMON_ERRORS
from shared.edge.problems import not_found
from shared.edge.queries import wait_target
from shared.messaging.projections import ReadModels
from shared.ops.settings import Settings
from shared.store.commands import Loaded

CHANGE = ("marketing",)
READ = ("marketing", "auditor", "sales", "sales_manager", "sales_director")
ERRORS = COMMON_ERRORS | not_found("no such lead or campaign")


@dataclass
class LeadsAPI:
    leads: Leads
    read_models: ReadModels | None
    settings: Settings
    graph: sources.FacebookGraph | None
    readiness: Callable[[], Awaitable[dict[str, str]]]
    # the replica of the directory the users and teams a command names are checked against (None: not checked)
    references: References | None = None


def service(request: Request) -> LeadsAPI:
    """The service a route reaches: the one ``create_app`` was given."""
    svc: LeadsAPI = request.app.state.leads
    return svc


Service = Annotated[LeadsAPI, Depends(service)]
Marketer = Annotated[Principal, Depends(require(*CHANGE))]
Reader = Annotated[Principal, Depends(require(*READ))]


def sees_personal_data(p: Principal, owner_id: str | None = None) -> bool:
    return bool(p.roles & {"admin", "marketing"}) or (owner_id is not None and owner_id == p.user_id)


async def existing(svc: LeadsAPI, lead_id: uuid.UUID) -> Loaded[Lead]:
    loaded = await svc.leads.lead(lead_id)
    if loaded.version == 0:
        raise HTTPException(404, detail=f"no lead {lead_id}")
    return loaded


def captured_answer(c: Captured) -> Response:
    """A capture's answer: 201 with the lead (and ``X-Duplicate-Of`` for a person seen before); a delivery captured
    before answers as the first time did."""
    if c.result is None:
        return JSONResponse({"id": str(c.lead_id), "replayed": True}, status_code=200)
    response = answer(str(c.lead_id), c.result.append, created=True, location=f"/leads/{c.lead_id}")
    if c.duplicate_of:
        response.headers["X-Duplicate-Of"] = str(c.duplicate_of)
    return response


def new_lead_id(external_id: str | None) -> uuid.UUID | None:
    """The id of a new lead the edge makes: none for one with an external id (its id derives from it)."""
    return None if external_id else uuid.uuid4()


def read_models(svc: LeadsAPI) -> ReadModels:
    if svc.read_models is None:
        raise HTTPException(503, detail="this process serves no read models")
    return svc.read_models


async def waited(svc: LeadsAPI, position: int | None) -> tuple[str, int] | None:
    """What a read model must have reached before a query answers (``position`` of a command's answer)."""
    return await wait_target(svc.leads.store, position)


async def known(svc: LeadsAPI, request: Request, owner_id: str | None, team_id: str | None) -> None:
    """The user and team a command names, checked against the directory's replica (waiting for the directory
    answers ``X-Directory-After`` names): 422 naming the field for an unknown one (services.directory.replica)."""
    if svc.references is not None and (owner_id is not None or team_id is not None):
        after = parse_after(request.headers.get(AFTER_HEADER))
        await svc.references.check(owner_id=owner_id, team_id=team_id, after=after)
