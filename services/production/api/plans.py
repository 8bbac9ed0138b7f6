"""Demand plans: a product's forecast, plan and revisions for a month (``PUT /plans/{product}/{period}``), the
pipeline's demand proposed as forecasts, and the demand read model against the plans."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from services.production import projections
from services.production.api.answers import DemandRow
from services.production.api.common import ERRORS, Period, ProductionAPI, Service, read_models
from services.production.api.rights import Changer, Reader
from services.production.domain import PlanCommand
from shared.edge.commands import CommandAnswer, command_context, run_command

router = APIRouter(responses=ERRORS)
Product = Annotated[str, Path(min_length=1, max_length=200)]


@router.put(
    "/plans/{product}/{period}",
    response_model=CommandAnswer,
    tags=["demand plans"],
    summary="record a forecast, approve the plan, or revise it",
)
async def put_plan(
    product: Product, period: Period, request: Request, body: PlanCommand, svc: Service, p: Changer
) -> Response:
    return await run_command(
        request,
        p.user_id,
        lambda ctx: svc.production.plan(product, period, body, ctx),
        aggregate_id=f"{product}/{period}",
    )


@router.post(
    "/plans/{period}/propose",
    tags=["demand plans"],
    summary="record the weighted sales pipeline's demand as each product's forecast for a month",
)
async def propose(period: Period, request: Request, svc: Service, p: Changer) -> dict[str, Any]:
    """One forecast command per product with pipeline demand in the month; answers the forecasts recorded."""
    proposed = {}
    for r in await demand_rows(svc):
        if r["period"] == period and r["pipeline_demand"] is not None:
            # the service's own sum, not a request's input: as precise as the sales pipeline makes it
            cmd = PlanCommand.model_construct(
                action="forecast", quantity=Decimal(r["pipeline_demand"]), method="pipeline_weighted", reason=None
            )
            await svc.production.plan(r["product"], period, cmd, await command_context(request, p.user_id))
            proposed[r["product"]] = r["pipeline_demand"]
    return {"period": period, "forecasts": proposed}


@router.get(
    "/demand",
    tags=["read models"],
    summary="demand forecast vs plan vs actual per product and month",
    response_model=list[DemandRow],
)
async def get_demand(svc: Service, p: Reader) -> list[dict[str, Any]]:
    return await demand_rows(svc)


async def demand_rows(svc: ProductionAPI) -> list[dict[str, Any]]:
    """Two read models, read one after the other: a request holding two pool connections at once can wait forever
    for the second while as many others hold the rest."""
    rm = read_models(svc)
    async with rm.connection("demand") as conn:
        pipeline = await projections.pipeline_demand(conn)
    async with rm.connection("floor") as conn:
        return await projections.demand_vs_plan(conn, pipeline, tz=svc.timezone)
