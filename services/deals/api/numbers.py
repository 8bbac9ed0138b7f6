"""The numbers: the forecast (now, or as recorded on a date, and what moved it), stage analytics, each
salesperson's scorecard, lost reasons, the win rate by month, the plan to reach a target, what converting deals did,
and the open deals without a next step or with overdue activities. Each follows the
caller's scope (rights.numbers_scope): a salesperson's own, a manager's team's, anyone's for those who see all;
and all but the target plan (a target is an owner's or a team's) take ``organisation_id``: the deals linked to that
organisation of the directory or to one merged into it (``customers.organisation_filter``)."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query

from services.deals import analytics, domain
from services.deals.analytics.converted import converted_totals
from services.deals.api.common import ERRORS, DealsAPI, Reader, Service, known, read_models
from services.deals.api.customers import OrganisationFilter, organisation_filter
from services.deals.api.figures import Forecast, ForecastChanges, LostReason, StageAnalytics, WinRateMonth
from services.deals.api.people_figures import NextSteps, Scorecard, SuccessFactor, TargetPlan
from services.deals.api.rights import learning_team, may_read_plan, numbers_scope
from shared.core.limits import DAY_RANGE, Day, Identifier, Moment
from shared.core.rates import RateTable
from shared.edge.auth import Principal, require

router = APIRouter(responses=ERRORS)
Currency = Annotated[str, Query(pattern=r"^[A-Z]{3}$")]
Period = Annotated[str, Query(pattern=r"^[12]\d{3}-(0[1-9]|1[0-2]|Q[1-4])$", examples=["2026-12", "2027-Q1"])]
From = Annotated[Day, Query(alias="from", description=DAY_RANGE)]
To = Annotated[Day, Query(alias="to", description=DAY_RANGE)]


def aware(at: datetime | None) -> datetime | None:
    if at is not None and at.tzinfo is None:
        raise HTTPException(422, detail="times need a time zone offset")
    return at


def window(svc: DealsAPI, start: date, end: date) -> tuple[datetime, datetime]:
    """``from``/``to`` as the business time zone's midnights."""
    if end <= start:
        raise HTTPException(422, detail="`to` must be after `from`")
    tz = ZoneInfo(svc.timezone)
    return datetime.combine(start, time(), tz), datetime.combine(end, time(), tz)


@router.get(
    "/forecast",
    tags=["analytics"],
    summary="forecast per month and owner, now or as recorded on a date; per month beside the target",
    response_model=Forecast,
)
async def get_forecast(
    svc: Service,
    p: Reader,
    as_of: Annotated[Moment | None, Query(description="as the system knew it then (with offset)")] = None,
    owner_id: Identifier | None = None,
    team_id: Identifier | None = None,
    organisation_id: OrganisationFilter = None,
    currency: Currency = "VND",
) -> dict[str, Any]:
    asked = owner_id, team_id
    owner_id, team_id = numbers_scope(p, owner_id, team_id)
    await known(svc, *asked, filtering=True)
    orgs = await organisation_filter(svc, p, organisation_id)
    at = aware(as_of)  # None: the forecast as it stands now
    async with read_models(svc).connection("analytics") as conn:
        rows = await analytics.forecast(
            conn,
            as_of=at,
            tz=svc.timezone,
            currency=currency,
            owner_id=owner_id,
            team_id=team_id,
            organisations=orgs,
        )
        targets = (  # a target is an owner's or a team's, of no customer: none beside one customer's forecast
            await analytics.month_targets(conn, currency=currency, owner_id=owner_id, team_id=team_id)
            if orgs is None
            else {}
        )
    months = analytics.forecast_months(rows, targets, currency)  # the rows per month, beside the month's target
    return {"as_of": at.isoformat() if at else None, "rows": rows, "months": months}


@router.get(
    "/forecast/changes",
    tags=["analytics"],
    summary="what moved the forecast between two dates",
    response_model=ForecastChanges,
)
async def get_forecast_changes(
    svc: Service,
    p: Reader,
    since: Moment,
    until: Moment | None = None,
    owner_id: Identifier | None = None,
    organisation_id: OrganisationFilter = None,
    currency: Currency = "VND",
) -> dict[str, Any]:
    asked = owner_id
    owner_id, team_id = numbers_scope(p, owner_id, None)
    await known(svc, asked, None, filtering=True)
    orgs = await organisation_filter(svc, p, organisation_id)
    async with read_models(svc).connection("analytics") as conn:
        return await analytics.forecast_changes(
            conn,
            since=aware(since) or since,
            until=aware(until),
            currency=currency,
            owner_id=owner_id,
            team_id=team_id,
            organisations=orgs,
        )


@router.get(
    "/analytics/stages",
    tags=["analytics"],
    summary="stage conversion, time in stage, backward moves, skips; win rate, size, cycle, velocity",
    response_model=StageAnalytics,
)
async def get_stage_analytics(
    svc: Service,
    p: Reader,
    start: From,
    end: To,
    pipeline_id: Identifier = domain.DEFAULT_PIPELINE_ID,
    owner_id: Identifier | None = None,
    organisation_id: OrganisationFilter = None,
    currency: Currency = "VND",
) -> dict[str, Any]:
    asked = owner_id
    owner_id, team_id = numbers_scope(p, owner_id, None)
    await known(svc, asked, None, filtering=True)
    orgs = await organisation_filter(svc, p, organisation_id)
    lo, hi = window(svc, start, end)
    rates = await svc.references.rates() if svc.references is not None else RateTable()
    async with read_models(svc).connection("analytics") as conn:
        figures = await analytics.stage_analytics(
            conn,
            start=lo,
            end=hi,
            now=svc.deals.clock(),
            pipeline_id=pipeline_id,
            currency=currency,
            owner_id=owner_id,
            team_id=team_id,
            organisations=orgs,
        )
        # every currency at once, in VND at the rates in effect (issue 26: shared.core.rates)
        figures["all_currencies"] = await converted_totals(
            conn,
            start=lo,
            end=hi,
            now=svc.deals.clock(),
            tz=svc.timezone,
            rates=rates,
            pipeline_id=pipeline_id,
            owner_id=owner_id,
            team_id=team_id,
            organisations=orgs,
        )
    return figures


@router.get(
    "/analytics/scorecard", tags=["analytics"], summary="each salesperson's period", response_model=list[Scorecard]
)
async def get_scorecard(
    svc: Service,
    p: Reader,
    period: Period,
    owner_id: Identifier | None = None,
    team_id: Identifier | None = None,
    organisation_id: OrganisationFilter = None,
    currency: Currency = "VND",
) -> list[dict[str, Any]]:
    asked = owner_id, team_id
    owner_id, team_id = numbers_scope(p, owner_id, team_id)
    await known(svc, *asked, filtering=True)
    orgs = await organisation_filter(svc, p, organisation_id)
    async with read_models(svc).connection("analytics") as conn:
        return await analytics.scorecard(
            conn,
            period=period,
            tz=svc.timezone,
            now=svc.deals.clock(),
            currency=currency,
            owner_id=owner_id,
            team_id=team_id,
            organisations=orgs,
        )


@router.get(
    "/analytics/win-rate",
    tags=["analytics"],
    summary="won / (won + lost) by month of close, every deal's",
    response_model=list[WinRateMonth],
)
async def get_win_rate(
    svc: Service,
    p: Reader,
    start: From,
    end: To,
    owner_id: Identifier | None = None,
    team_id: Identifier | None = None,
    organisation_id: OrganisationFilter = None,
    currency: Currency = "VND",
) -> list[dict[str, Any]]:
    asked = owner_id, team_id
    owner_id, team_id = numbers_scope(p, owner_id, team_id)
    await known(svc, *asked, filtering=True)
    orgs = await organisation_filter(svc, p, organisation_id)
    lo, hi = window(svc, start, end)
    async with read_models(svc).connection("analytics") as conn:
        return await analytics.win_rates(
            conn, start=lo, end=hi, tz=svc.timezone, currency=currency, owner_id=owner_id, team_id=team_id,
            organisations=orgs,
        )  # fmt: skip


@router.get(
    "/analytics/lost-reasons",
    tags=["analytics"],
    summary="why deals were lost, where, to whom",
    response_model=list[LostReason],
)
async def get_lost_reasons(
    svc: Service,
    p: Reader,
    start: From,
    end: To,
    owner_id: Identifier | None = None,
    organisation_id: OrganisationFilter = None,
    currency: Currency = "VND",
) -> list[dict[str, Any]]:
    asked = owner_id
    owner_id, team_id = numbers_scope(p, owner_id, None)
    await known(svc, asked, None, filtering=True)
    orgs = await organisation_filter(svc, p, organisation_id)
    lo, hi = window(svc, start, end)
    async with read_models(svc).connection("analytics") as conn:
        return await analytics.lost_reasons(
            conn, start=lo, end=hi, currency=currency, owner_id=owner_id, team_id=team_id, organisations=orgs
        )


@router.get(
    "/analytics/target-plan",
    tags=["analytics"],
    summary="deals still needed at each stage to reach a target (seed S2)",
    response_model=TargetPlan,
)
async def get_target_plan(
    svc: Service,
    p: Reader,
    period: Period,
    owner_id: Identifier | None = None,
    team_id: Identifier | None = None,
    pipeline_id: Identifier = domain.DEFAULT_PIPELINE_ID,
) -> dict[str, Any]:
    if (owner_id is None) == (team_id is None):
        raise HTTPException(422, detail="give owner_id or team_id")
    may_read_plan(p, owner_id, team_id)
    await known(svc, owner_id, team_id, filtering=True)
    async with read_models(svc).connection("analytics") as conn:
        try:
            return await analytics.target_plan(
                conn, period=period, tz=svc.timezone, owner_id=owner_id, team_id=team_id, pipeline_id=pipeline_id
            )
        except LookupError as exc:
            raise HTTPException(404, detail=str(exc)) from None


@router.get(
    "/analytics/next-steps",
    tags=["analytics"],
    summary="open deals without a next step and with overdue activities, per owner, team and stage",
    response_model=NextSteps,
)
async def get_next_steps(
    svc: Service,
    p: Reader,
    pipeline_id: Identifier = domain.DEFAULT_PIPELINE_ID,
    owner_id: Identifier | None = None,
    team_id: Identifier | None = None,
    organisation_id: OrganisationFilter = None,
) -> dict[str, Any]:
    asked = owner_id, team_id
    owner_id, team_id = numbers_scope(p, owner_id, team_id)
    await known(svc, *asked, filtering=True)
    orgs = await organisation_filter(svc, p, organisation_id)
    async with read_models(svc).connection("analytics") as conn:
        return await analytics.next_step_counts(
            conn,
            now=svc.deals.clock(),
            pipeline_id=pipeline_id,
            owner_id=owner_id,
            team_id=team_id,
            organisations=orgs,
        )


@router.get(
    "/analytics/success-factors",
    tags=["analytics"],
    summary="what converting deals did at each stage (seed S3)",
    response_model=list[SuccessFactor],
    response_model_exclude_unset=True,  # activity_type or channel, as asked
)
async def get_success_factors(
    svc: Service,
    p: Annotated[Principal, Depends(require("sales_manager", "sales_director", "auditor"))],
    pipeline_id: Identifier = domain.DEFAULT_PIPELINE_ID,
    by: Literal["activity_type", "channel"] = "activity_type",
    organisation_id: OrganisationFilter = None,
) -> list[dict[str, Any]]:
    team = learning_team(p)
    orgs = await organisation_filter(svc, p, organisation_id)
    async with read_models(svc).connection("analytics") as conn:
        return await analytics.success_factors(conn, pipeline_id=pipeline_id, by=by, team_id=team, organisations=orgs)
