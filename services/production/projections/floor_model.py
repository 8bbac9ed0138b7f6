"""The floor: each order's row (stage, hold, shortage, output, deliveries), its stage visits, its inspections, its
output, and each product's demand plan for a month. Stored: facts; what depends on ``now`` is derived by the
queries (``queries``). One function per kind of event, ``FLOOR_CHANGES`` naming it; an event that moves the order
opens a new stage visit."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from services.production import events as ev
from shared.messaging.envelope import CloudEvent
from shared.messaging.projections import Fact, Projection, one_by_one
from shared.store.db import Conn

FLOOR_DDL = """
CREATE TABLE IF NOT EXISTS orders (
    order_id uuid PRIMARY KEY, deal_id uuid, customer text NOT NULL, products text NOT NULL, quantity numeric NOT NULL,
    stage text NOT NULL, entered_stage_at timestamptz NOT NULL, created_at timestamptz NOT NULL, due_date date NOT NULL,
    hold_reason text, shortage text, produced numeric NOT NULL DEFAULT 0, scrapped numeric NOT NULL DEFAULT 0,
    delivered numeric NOT NULL DEFAULT 0, completed_at timestamptz, first_delivery_at timestamptz,
    first_delivery_qty numeric);
CREATE TABLE IF NOT EXISTS stage_visits (
    order_id uuid NOT NULL, visit integer NOT NULL, stage text NOT NULL, entered_at timestamptz NOT NULL,
    exited_at timestamptz, PRIMARY KEY (order_id, visit));
CREATE TABLE IF NOT EXISTS inspections (
    order_id uuid NOT NULL, attempt integer NOT NULL, passed boolean NOT NULL, at timestamptz NOT NULL,
    quantity numeric NOT NULL DEFAULT 0, PRIMARY KEY (order_id, attempt));
-- the units inspected (issue 23): a generation made before has its inspections at 0 units until it is rebuilt
ALTER TABLE inspections ADD COLUMN IF NOT EXISTS quantity numeric NOT NULL DEFAULT 0;
CREATE TABLE IF NOT EXISTS output (
    order_id uuid NOT NULL, seq integer NOT NULL, product text NOT NULL, good numeric NOT NULL, scrapped numeric NOT NULL,
    at timestamptz NOT NULL, PRIMARY KEY (order_id, seq));
CREATE TABLE IF NOT EXISTS plans (
    product text NOT NULL, period text NOT NULL, forecast numeric, planned numeric, PRIMARY KEY (product, period));
"""


async def apply_floor(conn: Conn, fact: Fact) -> None:
    """One event on the floor's tables (the runner's batches: ``one_by_one``)."""
    event = fact.event
    if isinstance(event, ev.DemandPlanEvent):
        await plan_changed(conn, event)
    elif isinstance(event, ev.ProductionOrderCreated):
        await order_created(conn, event)
    elif isinstance(event, ev.OrderEvent):
        change = FLOOR_CHANGES.get(type(event))
        if change is not None:
            await change(conn, fact.envelope, event)
        await _stage(conn, fact.envelope, event.order_id, event.stage_after)


def floor(production_topic: str) -> Projection:
    return Projection(
        name="floor",
        topics=(production_topic,),
        ddl=FLOOR_DDL,
        apply=one_by_one(apply_floor),
        accepts=("pipelines.production.",),
        tables=("orders", "stage_visits", "inspections", "output", "plans"),
    )


async def plan_changed(conn: Conn, event: ev.DemandPlanEvent) -> None:
    match event:
        case ev.DemandForecastRecorded():
            column, value = "forecast", event.quantity
        case ev.ProductionPlanApproved():
            column, value = "planned", event.quantity
        case ev.ProductionPlanRevised():
            column, value = "planned", event.new
        case _:
            raise KeyError(type(event))
    await conn.execute(
        f"""INSERT INTO plans (product, period, {column}) VALUES ($1, $2, $3)
            ON CONFLICT (product, period) DO UPDATE SET {column} = EXCLUDED.{column}""",
        event.product,
        event.period,
        value,
    )


async def order_created(conn: Conn, event: ev.ProductionOrderCreated) -> None:
    await conn.execute(
        """INSERT INTO orders (order_id, deal_id, customer, products, quantity, stage, entered_stage_at,
               created_at, due_date) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8) ON CONFLICT DO NOTHING""",
        event.order_id,
        event.deal_id,
        event.customer,
        ", ".join(x.product for x in event.lines),
        sum(x.quantity for x in event.lines),
        event.stage_after,
        event.created_at,
        event.due_date,
    )
    await conn.execute(
        "INSERT INTO stage_visits VALUES ($1, 1, $2, $3) ON CONFLICT DO NOTHING",
        event.order_id,
        event.stage_after,
        event.created_at,
    )


async def put_on_hold(conn: Conn, e: CloudEvent, event: ev.ProductionOrderPutOnHold) -> None:
    await conn.execute("UPDATE orders SET hold_reason = $2 WHERE order_id = $1", event.order_id, event.reason)


async def resumed(conn: Conn, e: CloudEvent, event: ev.ProductionOrderResumed) -> None:
    await conn.execute("UPDATE orders SET hold_reason = NULL WHERE order_id = $1", event.order_id)


async def shortage_reported(conn: Conn, e: CloudEvent, event: ev.MaterialShortageReported) -> None:
    await conn.execute("UPDATE orders SET shortage = $2 WHERE order_id = $1", event.order_id, event.component)


async def materials_received(conn: Conn, e: CloudEvent, event: ev.MaterialsReceived) -> None:
    if event.complete:
        await conn.execute("UPDATE orders SET shortage = NULL WHERE order_id = $1", event.order_id)


async def promised_date_changed(conn: Conn, e: CloudEvent, event: ev.PromisedDateChanged) -> None:
    await conn.execute("UPDATE orders SET due_date = $2 WHERE order_id = $1", event.order_id, event.new)


async def output(conn: Conn, e: CloudEvent, event: ev.UnitsProduced | ev.UnitsScrapped) -> None:
    """Units made (good) or scrapped (taken from the good ones): the order's totals and a row of output."""
    good = event.quantity if isinstance(event, ev.UnitsProduced) else -event.quantity
    scrapped = event.quantity if isinstance(event, ev.UnitsScrapped) else Decimal(0)
    await conn.execute(
        "UPDATE orders SET produced = produced + $2, scrapped = scrapped + $3 WHERE order_id = $1",
        event.order_id,
        good,
        scrapped,
    )
    await conn.execute(
        """INSERT INTO output SELECT $1, coalesce(max(seq), 0) + 1, $2, $3, $4, $5 FROM output
           WHERE order_id = $1""",
        event.order_id,
        event.product,
        good,
        scrapped,
        e.time,
    )


async def inspected(conn: Conn, e: CloudEvent, event: ev.QualityInspectionPassed | ev.QualityInspectionFailed) -> None:
    """An inspection and the units it covered (first-pass yield counts units, not inspections)."""
    await conn.execute(
        """INSERT INTO inspections (order_id, attempt, passed, at, quantity) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT DO NOTHING""",
        event.order_id,
        event.attempt,
        isinstance(event, ev.QualityInspectionPassed),
        event.at,
        event.inspected_quantity,
    )


async def delivered(conn: Conn, e: CloudEvent, event: ev.OrderDelivered) -> None:
    await conn.execute(
        """UPDATE orders SET delivered = delivered + $2,
               first_delivery_at = coalesce(first_delivery_at, $3),
               first_delivery_qty = coalesce(first_delivery_qty, $2),
               completed_at = CASE WHEN $4 THEN $3 ELSE completed_at END WHERE order_id = $1""",
        event.order_id,
        event.quantity,
        event.delivered_at,
        event.stage_after == "delivered",
    )


async def _stage(conn: Conn, e: CloudEvent, order_id: uuid.UUID, stage: str) -> None:
    """Move the order to ``stage`` (a new visit) when the event changed it."""
    current = await conn.fetchval("SELECT stage FROM orders WHERE order_id = $1", order_id)
    if current is None or current == stage or not stage:
        return
    await conn.execute(
        "UPDATE orders SET stage = $2, entered_stage_at = $3 WHERE order_id = $1", order_id, stage, e.time
    )
    await conn.execute(
        "UPDATE stage_visits SET exited_at = $2 WHERE order_id = $1 AND exited_at IS NULL", order_id, e.time
    )
    await conn.execute(
        """INSERT INTO stage_visits (order_id, visit, stage, entered_at)
           SELECT $1, coalesce(max(visit), 0) + 1, $2, $3 FROM stage_visits WHERE order_id = $1""",
        order_id,
        stage,
        e.time,
    )


# What each kind of order event changes besides the stage (the others change the stage only).
FLOOR_CHANGES: dict[type[ev.OrderEvent], Callable[[Conn, CloudEvent, Any], Awaitable[None]]] = {
    ev.ProductionOrderPutOnHold: put_on_hold,
    ev.ProductionOrderResumed: resumed,
    ev.MaterialShortageReported: shortage_reported,
    ev.MaterialsReceived: materials_received,
    ev.PromisedDateChanged: promised_date_changed,
    ev.UnitsProduced: output,
    ev.UnitsScrapped: output,
    ev.QualityInspectionPassed: inspected,
    ev.QualityInspectionFailed: inspected,
    ev.OrderDelivered: delivered,
}
