"""The production service's HTTP API: orders from planning to delivery, demand plans, and the floor's read models.

Roles: ``production`` and ``admin`` change things and see delivery addresses; ``auditor``, ``sales_manager`` and
``sales_director`` read, without personal data.
"""

# No `from __future__ import annotations` here: FastAPI reads the command routes' body types at runtime.

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, Response

from services.production import domain, projections
from services.production.handlers import PlanCommand, Production, order_id_for_deal
from shared.alerts import add_alerts_route
from shared.core.limits import DAY_RANGE, Day
from shared.edge.auth import Principal, TokenVerifier, require
from shared.edge.commands import CommandAnswer, IdempotencyKey, IfMatch, answer, command_context
from shared.edge.http import install_common
from shared.edge.problems import ERRORS as COMMON_ERRORS
from shared.edge.problems import Problem
from shared.edge.queries import Cursor, Limit, WaitFor, decode_cursor, history_page, page, wait_target
from shared.messaging.projections import ReadModels
from shared.privacy.pii import PersonalData

CHANGE = ("production",)
READ = ("production", "auditor", "sales_manager", "sales_director")
ERRORS = COMMON_ERRORS | {404: {"model": Problem, "description": "no such order"}}
Period = Annotated[str, Path(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", examples=["2026-12"])]


@dataclass
class ProductionAPI:
    production: Production
    read_models: ReadModels | None
    personal_data: PersonalData
    timezone: str
    readiness: Callable[[], Awaitable[dict[str, str]]]


def create_app(svc: ProductionAPI, verifier: TokenVerifier) -> FastAPI:
    app = FastAPI(
        title="Pipelines — production",
        version="1.0.0",
        description="The production pipeline: from won deal to delivered order. " + (__doc__ or ""),
    )
    app.state.token_verifier = verifier
    install_common(app, svc.readiness, "production")
    tz = ZoneInfo(svc.timezone)

    router = APIRouter(responses=ERRORS)

    context = command_context

    async def existing(order_id: uuid.UUID) -> Any:
        loaded = await svc.production.order(order_id)
        if loaded.version == 0:
            raise HTTPException(404, detail=f"no order {order_id}")
        return loaded

    def sees_personal_data(p: Principal) -> bool:
        return bool(p.roles & {"admin", "production"})

    @router.post(
        "/orders",
        status_code=201,
        response_model=CommandAnswer,
        tags=["orders"],
        summary="create an order directly (orders from won deals are created by the service itself)",
    )
    async def create(
        request: Request,
        body: domain.CreateOrder,
        p: Annotated[Principal, Depends(require(*CHANGE))],
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        order_id = uuid.uuid4()
        result = await svc.production.handle(order_id, body, await context(request, p.user_id, key=idempotency_key))
        oid = result.append.stream_id.removeprefix("production-order-")
        return answer(oid, result.append, created=True, location=f"/orders/{oid}")

    def command_route(cmd: type[domain.Command]) -> None:
        async def run(
            order_id: uuid.UUID,
            request: Request,
            body: cmd,  # type: ignore[valid-type]  # a class chosen at runtime, one route per command
            p: Annotated[Principal, Depends(require(*CHANGE))],
            if_match: IfMatch = None,
            idempotency_key: IdempotencyKey = None,
        ) -> Response:
            await existing(order_id)
            command: domain.Command = body
            result = await svc.production.handle(
                order_id, command, await context(request, p.user_id, if_match, idempotency_key)
            )
            return answer(str(order_id), result.append)

        router.add_api_route(
            "/orders/{order_id}/" + cmd.name.replace("_", "-"),
            run,
            methods=["POST"],
            response_model=CommandAnswer,
            tags=["order commands"],
            summary=cmd.name.replace("_", " "),
        )

    for cmd in domain.Command.__subclasses__():
        if cmd is not domain.CreateOrder:
            command_route(cmd)

    @router.get("/orders/{order_id}", tags=["orders"])
    async def get_order(
        order_id: uuid.UUID, p: Annotated[Principal, Depends(require(*READ))], response: Response
    ) -> dict[str, Any]:
        return await order_body(await existing(order_id), p, response)

    @router.get("/orders/for-deal/{deal_id}", tags=["orders"], summary="the order a won deal made (404: none yet)")
    async def get_order_for_deal(
        deal_id: uuid.UUID, p: Annotated[Principal, Depends(require(*READ))], response: Response
    ) -> dict[str, Any]:
        return await order_body(await existing(order_id_for_deal(deal_id)), p, response)

    async def order_body(loaded: Any, p: Principal, response: Response) -> dict[str, Any]:
        body = domain.state_as_json(loaded.state)
        body["version"] = loaded.version
        if sees_personal_data(p):
            created = loaded.events[0].data
            body["delivery_address"] = (await svc.personal_data.open([created]))[0].get("delivery_address")
        response.headers["ETag"] = f'"{loaded.version}"'
        return body

    @router.get("/orders/{order_id}/history", tags=["orders"])
    async def history(
        order_id: uuid.UUID, p: Annotated[Principal, Depends(require(*READ))], limit: Limit = 100, cursor: Cursor = None
    ) -> Any:
        loaded = await existing(order_id)
        return await history_page(
            loaded.events, svc.personal_data, personal=sees_personal_data(p), offset=decode_cursor(cursor), limit=limit
        )

    # ------------------------------------------------------------------ demand plans
    @router.put(
        "/plans/{product}/{period}",
        response_model=CommandAnswer,
        tags=["demand plans"],
        summary="record a forecast, approve the plan, or revise it",
    )
    async def put_plan(
        product: Annotated[str, Path(min_length=1, max_length=200)],
        period: Period,
        request: Request,
        body: PlanCommand,
        p: Annotated[Principal, Depends(require(*CHANGE))],
    ) -> Response:
        result = await svc.production.plan(product, period, body, await context(request, p.user_id))
        return answer(f"{product}/{period}", result.append)

    @router.post(
        "/plans/{period}/propose",
        tags=["demand plans"],
        summary="record the weighted sales pipeline's demand as each product's forecast for a month",
    )
    async def propose(
        period: Period, request: Request, p: Annotated[Principal, Depends(require(*CHANGE))]
    ) -> dict[str, Any]:
        async with read_models().connection("demand") as dconn, read_models().connection("floor") as fconn:
            rows = await projections.demand_vs_plan(fconn, dconn, tz=svc.timezone)
        proposed = {}
        for r in rows:
            if r["period"] == period and r["pipeline_demand"] is not None:
                # the service's own sum, not a request's input: as precise as the sales pipeline makes it
                cmd = PlanCommand.model_construct(
                    action="forecast", quantity=Decimal(r["pipeline_demand"]), method="pipeline_weighted", reason=None
                )
                await svc.production.plan(r["product"], period, cmd, await context(request, p.user_id))
                proposed[r["product"]] = r["pipeline_demand"]
        return {"period": period, "forecasts": proposed}

    # ------------------------------------------------------------------ read models
    def read_models() -> ReadModels:
        if svc.read_models is None:
            raise HTTPException(503, detail="this process serves no read models")
        return svc.read_models

    def window(start: date, end: date) -> tuple[datetime, datetime]:
        if end <= start:
            raise HTTPException(422, detail="`to` must be after `from`")
        return datetime.combine(start, time(), tz), datetime.combine(end, time(), tz)

    From = Annotated[Day, Query(alias="from", description=DAY_RANGE)]  # noqa: N806
    To = Annotated[Day, Query(alias="to", description=DAY_RANGE)]  # noqa: N806

    async def waited(position: int | None) -> tuple[str, int] | None:
        return await wait_target(svc.production.store, position)

    @router.get("/board", tags=["read models"], summary="open orders per stage: WIP, age, late")
    async def get_board(p: Annotated[Principal, Depends(require(*READ))], position: WaitFor = None) -> dict[str, Any]:
        async with read_models().connection("floor", wait_for=await waited(position)) as conn:
            return await projections.board(conn, now=svc.production.clock(), tz=svc.timezone)

    @router.get("/analytics/cycle-times", tags=["read models"], summary="time in stage and order lead time")
    async def get_cycle(p: Annotated[Principal, Depends(require(*READ))], start: From, end: To) -> dict[str, Any]:
        lo, hi = window(start, end)
        async with read_models().connection("floor") as conn:
            return await projections.cycle_times(conn, start=lo, end=hi)

    @router.get("/analytics/quality", tags=["read models"], summary="first-pass yield, rework and scrap rates")
    async def get_quality(p: Annotated[Principal, Depends(require(*READ))], start: From, end: To) -> dict[str, Any]:
        lo, hi = window(start, end)
        async with read_models().connection("floor") as conn:
            return await projections.quality(conn, start=lo, end=hi)

    @router.get("/analytics/delivery", tags=["read models"], summary="on-time delivery and OTIF")
    async def get_delivery(p: Annotated[Principal, Depends(require(*READ))], start: From, end: To) -> dict[str, Any]:
        lo, hi = window(start, end)
        async with read_models().connection("floor") as conn:
            return await projections.delivery(conn, start=lo, end=hi, tz=svc.timezone)

    @router.get("/demand", tags=["read models"], summary="demand forecast vs plan vs actual per product and month")
    async def get_demand(p: Annotated[Principal, Depends(require(*READ))]) -> list[dict[str, Any]]:
        async with read_models().connection("demand") as dconn, read_models().connection("floor") as fconn:
            return await projections.demand_vs_plan(fconn, dconn, tz=svc.timezone)

    @router.get("/orders", tags=["read models"], summary="open orders, soonest due first")
    async def list_orders(
        p: Annotated[Principal, Depends(require(*READ))],
        limit: Limit = 50,
        cursor: Cursor = None,
        position: WaitFor = None,
    ) -> Any:
        offset = decode_cursor(cursor)
        async with read_models().connection("floor", wait_for=await waited(position)) as conn:
            b = await projections.board(conn, now=svc.production.clock(), tz=svc.timezone)
        items = sorted((o for s in b["stages"] for o in s["items"]), key=lambda o: (o["due_date"], o["order_id"]))
        return page(items[offset : offset + limit + 1], offset, limit)

    add_alerts_route(router, "production", read_models, require(*READ))
    app.include_router(router)
    return app
