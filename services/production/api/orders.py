"""Orders read: one order's state (``GET /orders/{order_id}``, by its deal), and the floor's read model: the board,
the open orders, cycle times, quality and delivery."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response

from services.production import projections
from services.production.api.answers import CycleTimes, Delivery, FloorBoard, OrderPage, OrderView, Quality
from services.production.api.common import (
    ERRORS,
    From,
    ProductionAPI,
    Service,
    To,
    existing,
    read_models,
    window,
)
from services.production.api.rights import Reader, sees_personal_data
from services.production.api.shapes import state_as_json
from services.production.handlers import order_id_for_deal
from shared.edge.auth import Principal
from shared.edge.queries import Cursor, Limit, WaitFor, decode_cursor, page, wait_target

router = APIRouter(responses=ERRORS)


@router.get(
    "/orders/{order_id}",
    tags=["orders"],
    summary="an order now",
    response_model=OrderView,
    response_model_exclude_unset=True,  # no delivery address: not there
)
async def get_order(order_id: uuid.UUID, svc: Service, p: Reader, response: Response) -> dict[str, Any]:
    return await order_body(svc, order_id, p, response)


@router.get(
    "/orders/for-deal/{deal_id}",
    tags=["orders"],
    summary="the order a won deal made (404: none yet)",
    response_model=OrderView,
    response_model_exclude_unset=True,
)
async def get_order_for_deal(deal_id: uuid.UUID, svc: Service, p: Reader, response: Response) -> dict[str, Any]:
    return await order_body(svc, order_id_for_deal(deal_id), p, response)


async def order_body(svc: ProductionAPI, order_id: uuid.UUID, p: Principal, response: Response) -> dict[str, Any]:
    """The order's state and version (also its ETag); its delivery address for those who may see personal data."""
    loaded = await existing(svc, order_id)
    body = state_as_json(loaded.state)
    body["version"] = loaded.version
    if sees_personal_data(p):
        created = loaded.events[0].data
        body["delivery_address"] = (await svc.personal_data.open([created]))[0].get("delivery_address")
    response.headers["ETag"] = f'"{loaded.version}"'
    return body


# ---------------------------------------------------------------------------------------------- the floor
async def board_now(svc: ProductionAPI, position: int | None) -> dict[str, Any]:
    """The board as of now, once the read model reached ``position`` (when given)."""
    wait_for = await wait_target(svc.production.store, position)
    async with read_models(svc).connection("floor", wait_for=wait_for) as conn:
        return await projections.board(conn, now=svc.production.clock(), tz=svc.timezone)


@router.get("/board", tags=["read models"], summary="open orders per stage: WIP, age, late", response_model=FloorBoard)
async def get_board(svc: Service, p: Reader, position: WaitFor = None) -> dict[str, Any]:
    return await board_now(svc, position)


@router.get("/orders", tags=["read models"], summary="open orders, soonest due first", response_model=OrderPage)
async def list_orders(
    svc: Service, p: Reader, limit: Limit = 50, cursor: Cursor = None, position: WaitFor = None
) -> Any:
    offset = decode_cursor(cursor)
    b = await board_now(svc, position)
    items = sorted((o for s in b["stages"] for o in s["items"]), key=lambda o: (o["due_date"], o["order_id"]))
    return page(items[offset : offset + limit + 1], offset, limit)


@router.get(
    "/analytics/cycle-times",
    tags=["read models"],
    summary="time in stage and order lead time",
    response_model=CycleTimes,
)
async def get_cycle(svc: Service, p: Reader, start: From, end: To) -> dict[str, Any]:
    lo, hi = window(svc, start, end)
    async with read_models(svc).connection("floor") as conn:
        return await projections.cycle_times(conn, start=lo, end=hi)


@router.get(
    "/analytics/quality",
    tags=["read models"],
    summary="first-pass yield, rework and scrap rates",
    response_model=Quality,
)
async def get_quality(svc: Service, p: Reader, start: From, end: To) -> dict[str, Any]:
    lo, hi = window(svc, start, end)
    async with read_models(svc).connection("floor") as conn:
        return await projections.quality(conn, start=lo, end=hi)


@router.get("/analytics/delivery", tags=["read models"], summary="on-time delivery and OTIF", response_model=Delivery)
async def get_delivery(svc: Service, p: Reader, start: From, end: To) -> dict[str, Any]:
    lo, hi = window(svc, start, end)
    async with read_models(svc).connection("floor") as conn:
        return await projections.delivery(conn, start=lo, end=hi, tz=svc.timezone)
