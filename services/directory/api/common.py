"""What the directory routes share: the service they reach (put on ``app.state`` by ``create_app``), the path
parameters, the lookups every route makes, and the answer to a reference that names nothing (422 naming the
field)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request
from fastapi.responses import JSONResponse

from services.directory.adoption import Adoptions, Source
from services.directory.customers import Customers
from services.directory.domain import InvalidReferenceError, Team, User
from services.directory.domain.commands import TEAM_ID_PATTERN, USER_ID_PATTERN
from services.directory.domain.errors import DuplicateError
from services.directory.handlers import Directory
from services.directory.import_jobs import ImportJobs
from shared.core.decider import AbsentError
from shared.core.limits import MAX_CODE_CHARS, MAX_ID_CHARS
from shared.edge.problems import ERRORS as COMMON_ERRORS
from shared.edge.problems import not_found, problem
from shared.messaging.projections import ReadModels
from shared.privacy.pii import PersonalData
from shared.store.commands import Loaded

ERRORS = COMMON_ERRORS | not_found("no such user or team (or not one the caller may see)")


@dataclass
class DirectoryAPI:
    directory: Directory
    read_models: ReadModels | None
    personal_data: PersonalData
    readiness: Callable[[], Awaitable[dict[str, str]]]
    customers: Customers | None = None  # organisations and people (services.directory.customers)
    index_key: bytes = b""  # the customers' blind index key (services.directory.search_keys)
    timezone: str = "Asia/Ho_Chi_Minh"  # the business time zone: the months of the customer analytics
    adoptions: Adoptions | None = None  # old deals' customers adopted (services.directory.adoption)
    adoption_source: Source | None = None  # what it reads: the read models (projections.adoption.ReadModelSource)
    imports: ImportJobs | None = None  # the import jobs (POST /imports: services.directory.import_jobs)


def service(request: Request) -> DirectoryAPI:
    svc: DirectoryAPI = request.app.state.directory
    return svc


Service = Annotated[DirectoryAPI, Depends(service)]
UserIdParam = Annotated[str, Path(min_length=1, max_length=MAX_ID_CHARS, pattern=USER_ID_PATTERN)]
TeamIdParam = Annotated[str, Path(min_length=1, max_length=MAX_CODE_CHARS, pattern=TEAM_ID_PATTERN)]


async def existing_user(svc: DirectoryAPI, user_id: str) -> Loaded[User]:
    loaded = await svc.directory.user(user_id)
    if loaded.version == 0:
        raise AbsentError("not_found", f"no user {user_id}")
    return loaded


async def existing_team(svc: DirectoryAPI, team_id: str) -> Loaded[Team]:
    loaded = await svc.directory.team(team_id)
    if loaded.version == 0:
        raise AbsentError("not_found", f"no team {team_id}")
    return loaded


def customers(svc: DirectoryAPI) -> Customers:
    if svc.customers is None:
        raise HTTPException(503, detail="this process serves no customers")
    return svc.customers


def read_models(svc: DirectoryAPI) -> ReadModels:
    if svc.read_models is None:
        raise HTTPException(503, detail="this process serves no read models")
    return svc.read_models


async def unknown_reference(request: Request, exc: Any) -> JSONResponse:
    """A command naming a user or team that is not there (or cannot take it): 422, its rule, and the field."""
    assert isinstance(exc, InvalidReferenceError)
    return problem(
        422,
        exc.message,
        exc.rule,
        correlation_id=getattr(request.state, "correlation_id", None),
        errors=[{"loc": ["body", exc.field], "msg": exc.message, "type": exc.rule}],
    )


async def duplicate(request: Request, exc: Any) -> JSONResponse:
    """What the command gives is another's (a tax code): 409, its rule, and the one holding it (``existing``)."""
    assert isinstance(exc, DuplicateError)
    return problem(
        409, exc.message, exc.rule, correlation_id=getattr(request.state, "correlation_id", None), existing=exc.existing
    )
