"""The floor: each order's row (stage, hold, shortage, output, deliveries), its stage visits, its inspections, its
output, and each product's demand plan for a month. Stored: facts; what depends on ``now`` is derived by the
queries (``queries``). An event that moves the order (its ``stage_after``) closes the open stage visit and opens
a new one.

A batch is folded in memory (decision 0030): the orders it names, their last visit and output numbers and the
plans it names are read in one statement each; the events change them in order (an event of an order never
created changes no order row, though its inspections and output are kept, as they always were); each table is
written back in one statement (``Floor.write``). The same tables as event by event for any split
(tests/integration/test_production_batches.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from services.production import events as ev
from shared.messaging.envelope import CloudEvent
from shared.messaging.projections import Fact, Projection
from shared.messaging.rows import Row, insert_sql, read, read_sql, update_sql, upsert_sql, write
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


ORDERS = {
    "order_id": "uuid",
    "deal_id": "uuid",
    "customer": "text",
    "products": "text",
    "quantity": "numeric",
    "stage": "text",
    "entered_stage_at": "timestamptz",
    "created_at": "timestamptz",
    "due_date": "date",
    "hold_reason": "text",
    "shortage": "text",
    "produced": "numeric",
    "scrapped": "numeric",
    "delivered": "numeric",
    "completed_at": "timestamptz",
    "first_delivery_at": "timestamptz",
    "first_delivery_qty": "numeric",
}
VISITS = {
    "order_id": "uuid",
    "visit": "integer",
    "stage": "text",
    "entered_at": "timestamptz",
    "exited_at": "timestamptz",
}
INSPECTIONS = {
    "order_id": "uuid",
    "attempt": "integer",
    "passed": "boolean",
    "at": "timestamptz",
    "quantity": "numeric",
}
OUTPUT = {
    "order_id": "uuid",
    "seq": "integer",
    "product": "text",
    "good": "numeric",
    "scrapped": "numeric",
    "at": "timestamptz",
}
PLANS = {"product": "text", "period": "text", "forecast": "numeric", "planned": "numeric"}
_READ_ORDERS, _WRITE_ORDERS = read_sql("orders", ORDERS), upsert_sql("orders", ORDERS)
_CLOSE_VISITS = update_sql("stage_visits", {"order_id": "uuid", "exited_at": "timestamptz"}).replace(
    "WHERE x.order_id = t.order_id", "WHERE x.order_id = t.order_id AND x.exited_at IS NULL"
)
_INSERT_VISITS = insert_sql("stage_visits", VISITS)
_INSERT_INSPECTIONS = insert_sql("inspections", INSPECTIONS, key=("order_id", "attempt"), nothing=True)
_INSERT_OUTPUT = insert_sql("output", OUTPUT)
_WRITE_PLANS = upsert_sql("plans", PLANS, key=("product", "period"))
_LAST = "SELECT order_id, max({n}) FROM {t} WHERE order_id = ANY($1::uuid[]) GROUP BY order_id"
_READ_PLANS = """SELECT product, period, forecast, planned FROM plans
                 WHERE (product, period) IN (SELECT * FROM unnest($1::text[], $2::text[]))"""


@dataclass
class Floor:
    """A batch's changes in memory: the rows it read and the rows it makes."""

    orders: dict[uuid.UUID, Row]
    last_visit: dict[uuid.UUID, int]
    last_output: dict[uuid.UUID, int]
    plans: dict[tuple[str, str], Row]
    changed: dict[uuid.UUID, Row] = field(default_factory=dict)
    close: dict[uuid.UUID, datetime] = field(default_factory=dict)  # stored open visits: closed at
    visits: dict[tuple[uuid.UUID, int], Row] = field(default_factory=dict)  # made by the batch
    inspections: dict[tuple[uuid.UUID, int], Row] = field(default_factory=dict)
    output: list[Row] = field(default_factory=list)
    changed_plans: dict[tuple[str, str], Row] = field(default_factory=dict)

    @classmethod
    async def read(cls, conn: Conn, facts: Sequence[Fact]) -> Floor:
        ids = {f.event.order_id for f in facts if isinstance(f.event, ev.OrderEvent)}
        keys = {(f.event.product, f.event.period) for f in facts if isinstance(f.event, ev.DemandPlanEvent)}
        plans = await conn.fetch(_READ_PLANS, [k[0] for k in keys], [k[1] for k in keys]) if keys else []
        last: dict[str, dict[uuid.UUID, int]] = {}
        for n, t in (("visit", "stage_visits"), ("seq", "output")):
            last[n] = {r[0]: r[1] for r in await conn.fetch(_LAST.format(n=n, t=t), list(ids))} if ids else {}
        return cls(
            orders=await read(conn, _READ_ORDERS, ids),
            last_visit=last["visit"],
            last_output=last["seq"],
            plans={(r["product"], r["period"]): dict(r) for r in plans},
        )

    async def write(self, conn: Conn) -> None:
        await write(conn, _WRITE_ORDERS, ORDERS, self.changed.values())
        closing = [{"order_id": k, "exited_at": v} for k, v in self.close.items()]
        await write(conn, _CLOSE_VISITS, {"order_id": "uuid", "exited_at": "timestamptz"}, closing)
        await write(conn, _INSERT_VISITS, VISITS, self.visits.values())
        await write(conn, _INSERT_INSPECTIONS, INSPECTIONS, self.inspections.values())
        await write(conn, _INSERT_OUTPUT, OUTPUT, self.output)
        await write(conn, _WRITE_PLANS, PLANS, self.changed_plans.values())

    def visit(self, order_id: uuid.UUID, stage: str, at: datetime) -> None:
        """A new visit of the order, closing the open one."""
        number = self.last_visit.get(order_id, 0)
        if (order_id, number) in self.visits:
            self.visits[(order_id, number)]["exited_at"] = at
        elif number:
            self.close.setdefault(order_id, at)  # a stored visit still open: only the first close reaches it
        self.last_visit[order_id] = number + 1
        self.visits[(order_id, number + 1)] = dict(zip(VISITS, (order_id, number + 1, stage, at, None), strict=True))

    def created(self, event: ev.ProductionOrderCreated) -> None:
        if event.order_id in self.orders:
            return
        row: Row = dict.fromkeys(ORDERS)
        row.update(
            order_id=event.order_id,
            deal_id=event.deal_id,
            customer=event.customer,
            products=", ".join(x.product for x in event.lines),
            quantity=sum(x.quantity for x in event.lines),
            stage=event.stage_after,
            entered_stage_at=event.created_at,
            created_at=event.created_at,
            due_date=event.due_date,
            produced=Decimal(0),
            scrapped=Decimal(0),
            delivered=Decimal(0),
        )
        self.orders[event.order_id] = self.changed[event.order_id] = row
        self.last_visit[event.order_id] = 0
        self.visit(event.order_id, event.stage_after, event.created_at)

    def order_event(self, e: CloudEvent, event: ev.OrderEvent) -> None:
        """What the event changes besides the stage, then the stage (a new visit when the event moved it)."""
        row = self.orders.get(event.order_id)
        if isinstance(event, ev.UnitsProduced | ev.UnitsScrapped):
            self.produced(e, event, row)
        elif isinstance(event, ev.QualityInspectionPassed | ev.QualityInspectionFailed):
            passed = isinstance(event, ev.QualityInspectionPassed)
            values = (event.order_id, event.attempt, passed, event.at, event.inspected_quantity)
            self.inspections.setdefault((event.order_id, event.attempt), dict(zip(INSPECTIONS, values, strict=True)))
        elif row is not None and (change := ORDER_CHANGES.get(type(event))) is not None:
            change(row, event)
        if row is None:
            return
        self.changed[event.order_id] = row
        stage = event.stage_after
        if stage and row["stage"] != stage:
            row.update(stage=stage, entered_stage_at=e.time)
            self.visit(event.order_id, stage, e.time)

    def produced(self, e: CloudEvent, event: ev.UnitsProduced | ev.UnitsScrapped, row: Row | None) -> None:
        """Units made (good) or scrapped (taken from the good ones): the order's totals and a row of output."""
        good = event.quantity if isinstance(event, ev.UnitsProduced) else -event.quantity
        scrapped = event.quantity if isinstance(event, ev.UnitsScrapped) else Decimal(0)
        if row is not None:
            row.update(produced=row["produced"] + good, scrapped=row["scrapped"] + scrapped)
        seq = self.last_output[event.order_id] = self.last_output.get(event.order_id, 0) + 1
        self.output.append(dict(zip(OUTPUT, (event.order_id, seq, event.product, good, scrapped, e.time), strict=True)))

    def plan(self, event: ev.DemandPlanEvent) -> None:
        key = (event.product, event.period)
        row = self.plans.setdefault(key, {"product": event.product, "period": event.period})
        row.setdefault("forecast", None)
        row.setdefault("planned", None)
        match event:
            case ev.DemandForecastRecorded():
                row["forecast"] = event.quantity
            case ev.ProductionPlanApproved():
                row["planned"] = event.quantity
            case ev.ProductionPlanRevised():
                row["planned"] = event.new
            case _:
                raise KeyError(type(event))
        self.changed_plans[key] = row


def _delivered(row: Row, event: ev.OrderDelivered) -> None:
    row["delivered"] += event.quantity
    row["first_delivery_at"] = row["first_delivery_at"] or event.delivered_at
    if row["first_delivery_qty"] is None:
        row["first_delivery_qty"] = event.quantity
    if event.stage_after == "delivered":
        row["completed_at"] = event.delivered_at


# What each kind of order event changes on its order's row besides the stage (the others: the stage only).
ORDER_CHANGES: dict[type[ev.OrderEvent], Callable[[Row, Any], None]] = {
    ev.ProductionOrderPutOnHold: lambda row, x: row.update(hold_reason=x.reason),
    ev.ProductionOrderResumed: lambda row, x: row.update(hold_reason=None),
    ev.MaterialShortageReported: lambda row, x: row.update(shortage=x.component),
    ev.MaterialsReceived: lambda row, x: row.update(shortage=None) if x.complete else None,
    ev.PromisedDateChanged: lambda row, x: row.update(due_date=x.new),
    ev.OrderDelivered: _delivered,
}


async def apply_floor(conn: Conn, facts: Sequence[Fact]) -> None:
    """The floor's tables after a batch of production events in order (a batch of one: the per-event path)."""
    floor = await Floor.read(conn, facts)
    for fact in facts:
        event = fact.event
        if isinstance(event, ev.DemandPlanEvent):
            floor.plan(event)
        elif isinstance(event, ev.ProductionOrderCreated):
            floor.created(event)
        elif isinstance(event, ev.OrderEvent):
            floor.order_event(fact.envelope, event)
    await floor.write(conn)


def floor(production_topic: str) -> Projection:
    return Projection(
        name="floor",
        topics=(production_topic,),
        ddl=FLOOR_DDL,
        apply=apply_floor,
        accepts=("pipelines.production.",),
        tables=("orders", "stage_visits", "inspections", "output", "plans"),
    )
