"""The marketing read models (services.leads.projections): the lead inbox, the funnel, campaign performance,
nurture sequences, segments; and this service's alerts. A query may wait for a command's ``position``."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query

from services.alerts.routes import add_alerts_route
from services.leads import projections, roi
from services.leads.api.answers import CampaignPerformance, FunnelRow, InboxPage, NurtureStep, SegmentRow
from services.leads.api.common import (
    ERRORS,
    READ,
    LeadsAPI,
    Reader,
    Service,
    read_models,
    sees_personal_data,
    service,
    waited,
)
from shared.core.limits import DAY_RANGE, Code, Day
from shared.core.rates import RateTable
from shared.edge.auth import require
from shared.edge.queries import Cursor, Limit, WaitFor, decode_cursor, page

router = APIRouter(responses=ERRORS)
From = Annotated[Day, Query(alias="from", description=DAY_RANGE)]
To = Annotated[Day, Query(alias="to", description=DAY_RANGE)]


def window(svc: LeadsAPI, start: date, end: date) -> tuple[datetime, datetime]:
    """The days asked for, as times in the deployment's time zone."""
    if end <= start:
        raise HTTPException(422, detail="`to` must be after `from`")
    tz = ZoneInfo(svc.settings.timezone)
    return datetime.combine(start, time(), tz), datetime.combine(end, time(), tz)


@router.get("/leads", tags=["read models"], summary="the lead inbox, newest first", response_model=InboxPage)
async def get_inbox(
    svc: Service,
    p: Reader,
    status: Code | None = None,
    source: Code | None = None,
    unassigned: bool | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    position: WaitFor = None,
) -> Any:
    offset = decode_cursor(cursor)
    async with read_models(svc).connection("marketing", wait_for=await waited(svc, position)) as conn:
        rows = await projections.inbox(
            conn, status=status, source=source, unassigned=unassigned, offset=offset, limit=limit
        )
    tokens = [{"contact": r.pop("contact_token")} for r in rows]
    allowed = [sees_personal_data(p, r["owner_id"]) for r in rows]
    opened = await svc.leads.personal_data.open(tokens) if any(allowed) else tokens
    for r, o, ok in zip(rows, opened, allowed, strict=True):
        r["contact"] = o["contact"] if ok else None
    return page(rows, offset, limit)


@router.get(
    "/funnel",
    tags=["read models"],
    summary="captured → MQL → SQL → opportunity → customer",
    response_model=list[FunnelRow],
    response_model_exclude_unset=True,  # only the key `by` names
)
async def get_funnel(
    svc: Service,
    p: Reader,
    start: From,
    end: To,
    by: Literal["source", "campaign", "month"] = "source",
    position: WaitFor = None,
) -> list[dict[str, Any]]:
    lo, hi = window(svc, start, end)
    async with read_models(svc).connection("marketing", wait_for=await waited(svc, position)) as conn:
        return await projections.funnel(conn, by=by, start=lo, end=hi, tz=svc.settings.timezone)


@router.get(
    "/campaigns",
    tags=["read models"],
    summary="campaign performance: CPL, CAC, revenue, ROI, ROAS",
    response_model=list[CampaignPerformance],
)
async def get_campaigns(
    svc: Service, p: Reader, start: From, end: To, position: WaitFor = None
) -> list[dict[str, Any]]:
    lo, hi = window(svc, start, end)
    tz = svc.settings.timezone
    rates = await svc.references.rates() if svc.references is not None else RateTable()
    async with read_models(svc).connection("marketing", wait_for=await waited(svc, position)) as conn:
        rows = await projections.campaign_performance(conn, start=lo, end=hi, tz=tz)
        converted = await roi.converted_campaigns(conn, start=lo, end=hi, tz=tz, rates=rates)
    # each campaign's spend and revenue in VND at the rates in effect on their days (issue 26: services.leads.roi)
    return [{**r, "in_vnd": converted.get(r["campaign_id"]) or roi.empty()} for r in rows]


@router.get(
    "/nurture",
    tags=["read models"],
    summary="nurture sequences: sent, opened, clicked, converted",
    response_model=list[NurtureStep],
)
async def get_nurture(svc: Service, p: Reader) -> list[dict[str, Any]]:
    async with read_models(svc).connection("marketing") as conn:
        return await projections.nurture_performance(conn)


@router.get(
    "/segments", tags=["read models"], summary="leads per segment and how far they got", response_model=list[SegmentRow]
)
async def get_segments(svc: Service, p: Reader) -> list[dict[str, Any]]:
    async with read_models(svc).connection("marketing") as conn:
        return await projections.segments(conn)


# ``GET /alerts``: whoever may read leads sees every lead alert.
add_alerts_route(router, "leads", lambda request: read_models(service(request)), require(*READ))
