"""A deal's audit trail: every event of the deal (``/history``), the deal as of a time or a version (``/state``;
404 before the deal existed, as for a deal that does not exist), and what changed between two (``/diff``).
Recorded time is what the system knew then; occurred time counts back-dated facts (X-Occurred-At) where they
happened."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query

from services.deals import domain
from services.deals.api.answers import DealDiff, DealStateView
from services.deals.api.common import ERRORS, DealsAPI, Reader, Service, visible_deal
from services.deals.api.rights import can_write
from services.deals.api.views import state_as_json
from services.deals.domain import Deal
from services.deals.handlers import deal_stream
from shared.core.decider import NotVisibleError
from shared.core.limits import MAX_VERSION, Moment
from shared.edge.queries import Cursor, HistoryPage, Limit, decode_cursor, history_page
from shared.store.commands import Loaded

router = APIRouter(responses=ERRORS)
Basis = Literal["recorded", "occurred"]


@router.get("/deals/{deal_id}/history", tags=["audit"], summary="every event of the deal, oldest first")
async def history(
    deal_id: uuid.UUID, svc: Service, p: Reader, limit: Limit = 100, cursor: Cursor = None
) -> HistoryPage:
    loaded = await visible_deal(svc, deal_id, p)
    return await history_page(
        loaded.events,
        svc.personal_data,
        personal=can_write(p, loaded.state),
        offset=decode_cursor(cursor),
        limit=limit,
    )


@router.get(
    "/deals/{deal_id}/state",
    tags=["audit"],
    summary="the deal as of a time or a version",
    response_model=DealStateView,
    response_model_exclude_unset=True,  # no contact here
)
async def state_as_of(
    deal_id: uuid.UUID,
    svc: Service,
    p: Reader,
    at: Annotated[Moment | None, Query(description="a time with offset")] = None,
    basis: Annotated[
        Basis,
        Query(
            description="recorded: what the system knew at `at`; occurred: what had happened by `at` "
            "(back-dated facts included)"
        ),
    ] = "recorded",
    version: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
) -> dict[str, Any]:
    await visible_deal(svc, deal_id, p)
    loaded = await as_of(svc, deal_id, at, basis, version)
    if loaded.version == 0:  # before the deal existed: as for a deal that does not exist
        raise NotVisibleError(f"no deal {deal_id} at {at.isoformat() if at else 'that version'}")
    body = state_as_json(loaded.state)
    body["version"] = loaded.version
    body["as_of"] = {"at": at.isoformat() if at else None, "basis": basis, "version": version}
    return body


@router.get(
    "/deals/{deal_id}/diff",
    tags=["audit"],
    summary="what changed between two versions or times",
    response_model=DealDiff,
)
async def diff(
    deal_id: uuid.UUID,
    svc: Service,
    p: Reader,
    from_version: Annotated[int | None, Query(ge=0, le=MAX_VERSION)] = None,
    to_version: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
    from_time: Annotated[Moment | None, Query(alias="from")] = None,
    to_time: Annotated[Moment | None, Query(alias="to")] = None,
    basis: Basis = "recorded",
) -> dict[str, Any]:
    await visible_deal(svc, deal_id, p)
    if from_version is None and from_time is None:
        raise HTTPException(422, detail="give from_version or from")
    before = await as_of(svc, deal_id, from_time, basis, from_version) if from_version != 0 else Loaded(Deal(), 0, [])
    after = await as_of(svc, deal_id, to_time, basis, to_version)
    a, b = state_as_json(before.state), state_as_json(after.state)
    changes = {k: {"from": a[k], "to": b[k]} for k in b if a.get(k) != b[k]}
    between = [e.event_type.rsplit(".", 1)[-1] for e in after.events if e.version > before.version]
    return {"from_version": before.version, "to_version": after.version, "changes": changes, "events": between}


async def as_of(
    svc: DealsAPI, deal_id: uuid.UUID, at: datetime | None, basis: str, version: int | None
) -> Loaded[Deal]:
    """The deal as recorded at ``at`` (or as of ``version``), or with the events that had occurred by ``at``."""
    if at is not None and at.tzinfo is None:
        raise HTTPException(422, detail="`at` needs a time zone offset")
    if at is None or basis == "recorded":
        return await svc.deals.deal(deal_id, to_version=version, as_of=at)
    events = [e for e in await svc.store.read_stream(deal_stream(deal_id), to_version=version) if e.occurred_at <= at]
    state = domain.deal_decider.fold([e.to_event() for e in events])
    return Loaded(state, events[-1].version if events else 0, events)
