"""What the deals routes share: the service they reach (put on ``app.state`` by ``create_app``, read by the
``Service`` dependency), the callers they take, the error answers, and the lookups every route makes."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from services.deals.api.rights import READ_ROLES, SALES_ROLES, can_read
from services.deals.domain import Deal
from services.deals.handlers import Deals
from services.directory.replica import AFTER_HEADER, References, parse_after
from shared.core.decider import NotVisibleError
from shared.edge.auth import Principal, require
from shared.edge.problems import ERRORS as COMMON_ERRORS
from shared.edge.problems import not_found
from shared.edge.queries import wait_target
from shared.messaging.projections import ReadModels
from shared.privacy.pii import PersonalData
from shared.store import EventStore
from shared.store.commands import Loaded

ERRORS = COMMON_ERRORS | not_found("no such deal (or not one the caller may see)")


@dataclass
class DealsAPI:
    deals: Deals
    store: EventStore
    read_models: ReadModels | None
    personal_data: PersonalData
    timezone: str
    readiness: Callable[[], Awaitable[dict[str, str]]]
    # the replica of the directory the users and teams a request names are checked against (None: not checked)
    references: References | None = None


def service(request: Request) -> DealsAPI:
    """The service a route reaches: the one ``create_app`` was given."""
    svc: DealsAPI = request.app.state.deals
    return svc


Service = Annotated[DealsAPI, Depends(service)]
Seller = Annotated[Principal, Depends(require(*SALES_ROLES))]
Reader = Annotated[Principal, Depends(require(*READ_ROLES))]


async def visible_deal(svc: DealsAPI, deal_id: uuid.UUID, p: Principal, **read: Any) -> Loaded[Deal]:
    """The deal, if it exists and the caller may see it; else 404, as if it did not exist."""
    loaded = await svc.deals.deal(deal_id, **read)
    if loaded.version == 0 or loaded.state.opened_at is None or not can_read(p, loaded.state):  # linked, not open
        raise NotVisibleError(f"no deal {deal_id}")
    return loaded


def read_models(svc: DealsAPI) -> ReadModels:
    if svc.read_models is None:
        raise HTTPException(503, detail="this process serves no read models")
    return svc.read_models


async def waited(svc: DealsAPI, position: int | None) -> tuple[str, int] | None:
    """What a read model must have reached before a query answers (``position`` of a command's answer)."""
    return await wait_target(svc.store, position)


async def known(
    svc: DealsAPI,
    owner_id: str | None,
    team_id: str | None,
    *,
    request: Request | None = None,
    filtering: bool = False,
) -> None:
    """The user and team a command (with its ``request``: it may wait for the directory answers it names) or a
    query's filter (``filtering``) names, checked against the directory's replica: 422 naming the field for an
    unknown one (services.directory.replica)."""
    if svc.references is not None and (owner_id is not None or team_id is not None):
        after = parse_after(request.headers.get(AFTER_HEADER)) if request is not None else ()
        where = "query" if filtering else "body"
        await svc.references.check(owner_id=owner_id, team_id=team_id, after=after, where=where, filtering=filtering)
