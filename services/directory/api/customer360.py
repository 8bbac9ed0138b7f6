"""The customer 360 and the customer analytics (issue 24 item 4), from the ``customer360`` read model
(``services.directory.projections.customer360``: the directory's projector over its own topic and the deals' and
production's). ``GET /organisations/{id}/360``: one organisation's deals (open, won, lost), orders and shipments,
follow-ups and satisfaction, activities, lifetime revenue, first and last purchase, repeat-purchase share and last
contact, with every organisation merged into it; a merged one answers for the one it was merged into. Seen as the
organisation is (``customer_rights``: another team's is 404). ``GET /analytics/customers/repeat-revenue``: revenue
from new and repeat customers per month (seed S6); ``GET /analytics/customers/segments``: customers by industry and
by value class — both over the caller's teams' customers (every team's for those who see all)."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query

from services.directory.api.common import Service, customers, read_models
from services.directory.api.customer_answers import Customer360, CustomerSegments, RepeatRevenue
from services.directory.api.customer_rights import Reader, customer_teams
from services.directory.api.organisations import ERRORS, OrganisationId, readable
from services.directory.projections import customer360_queries as q
from services.directory.projections.customer360 import NAME
from shared.core.limits import DAY_RANGE, Day

router = APIRouter(responses=ERRORS)
Currency = Annotated[str, Query(pattern=r"^[A-Z]{3}$", description="deals keep their currency: one at a time")]
From = Annotated[Day, Query(alias="from", description=DAY_RANGE)]
To = Annotated[Day, Query(alias="to", description=DAY_RANGE)]


@router.get(
    "/organisations/{organisation_id}/360",
    tags=["organisations"],
    summary="the customer 360",
    response_model=Customer360,
)
async def get_360(organisation_id: OrganisationId, svc: Service, p: Reader) -> dict[str, Any]:
    _, seen_as = await readable(customers(svc), p, organisation_id)
    async with read_models(svc).connection(NAME) as conn:
        body = await q.customer_360(conn, seen_as)
    return {"asked": str(organisation_id), **body}


def _window(start: date, end: date, zone: str) -> tuple[datetime, datetime]:
    """``from``/``to`` as the business time zone's midnights."""
    if end <= start:
        raise HTTPException(422, detail="`to` must be after `from`")
    tz = ZoneInfo(zone)
    return datetime.combine(start, time(), tz), datetime.combine(end, time(), tz)


@router.get(
    "/analytics/customers/repeat-revenue",
    tags=["customer analytics"],
    summary="revenue from repeat customers and from new ones, per month (seed S6)",
    response_model=list[RepeatRevenue],
)
async def get_repeat_revenue(
    svc: Service, p: Reader, start: From, end: To, currency: Currency = "VND"
) -> list[dict[str, Any]]:
    lo, hi = _window(start, end, svc.timezone)
    async with read_models(svc).connection(NAME) as conn:
        return await q.repeat_revenue(
            conn, start=lo, end=hi, tz=svc.timezone, currency=currency, teams=customer_teams(p)
        )


@router.get(
    "/analytics/customers/segments",
    tags=["customer analytics"],
    summary="customers by segment (industry) and by value class (ABC on lifetime revenue)",
    response_model=CustomerSegments,
)
async def get_segments(svc: Service, p: Reader, currency: Currency = "VND") -> dict[str, Any]:
    async with read_models(svc).connection(NAME) as conn:
        return await q.segments(conn, currency=currency, teams=customer_teams(p))
