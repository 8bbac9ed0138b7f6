"""The production read models: the floor (orders, stage visits, inspections, output, deliveries) and the demand
the sales pipeline implies, with the queries that read them.

Stored: facts. Derived at query time from ``now``: age, days in stage, late.

Formulas (DOMAIN.md §2.5):
- time in stage over stage visits that ended in the window: median and p90 (days); order lead time = the
  delivery completing the order − its creation, over orders completed in the window;
- first-pass yield = orders whose first inspection (in the window) passed / orders first inspected in it;
  rework rate = of those, orders that failed at least once; scrap rate = units scrapped / units made (good +
  scrapped) in the window;
- for orders completed in the window: on time = the completing delivery on or before the promised date;
  OTIF = the first delivery on time and carrying the whole quantity; average days late over the late ones;
- demand per product and month = Σ open deal lines × the deal's probability (expected close month) + the
  quantities of deals won in that month; planned = the approved plan; produced = good units made in the month.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from services.deals import events as deals
from services.production import events as ev
from shared.alerts import Condition
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
    PRIMARY KEY (order_id, attempt));
CREATE TABLE IF NOT EXISTS output (
    order_id uuid NOT NULL, seq integer NOT NULL, product text NOT NULL, good numeric NOT NULL, scrapped numeric NOT NULL,
    at timestamptz NOT NULL, PRIMARY KEY (order_id, seq));
CREATE TABLE IF NOT EXISTS plans (
    product text NOT NULL, period text NOT NULL, forecast numeric, planned numeric, PRIMARY KEY (product, period));
"""


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


async def apply_floor(conn: Conn, fact: Fact) -> None:
    e, event = fact.envelope, fact.event
    if isinstance(event, ev.DemandPlanEvent):
        column, value = {
            ev.DemandForecastRecorded: ("forecast", getattr(event, "quantity", None)),
            ev.ProductionPlanApproved: ("planned", getattr(event, "quantity", None)),
            ev.ProductionPlanRevised: ("planned", getattr(event, "new", None)),
        }[type(event)]
        await conn.execute(
            f"""INSERT INTO plans (product, period, {column}) VALUES ($1, $2, $3)
                ON CONFLICT (product, period) DO UPDATE SET {column} = EXCLUDED.{column}""",
            event.product,
            event.period,
            value,
        )
        return
    if not isinstance(event, ev.OrderEvent):
        return
    o = event.order_id
    match event:
        case ev.ProductionOrderCreated():
            await conn.execute(
                """INSERT INTO orders (order_id, deal_id, customer, products, quantity, stage, entered_stage_at,
                       created_at, due_date) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8) ON CONFLICT DO NOTHING""",
                o,
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
                o,
                event.stage_after,
                event.created_at,
            )
            return
        case ev.ProductionOrderPutOnHold():
            await conn.execute("UPDATE orders SET hold_reason = $2 WHERE order_id = $1", o, event.reason)
        case ev.ProductionOrderResumed():
            await conn.execute("UPDATE orders SET hold_reason = NULL WHERE order_id = $1", o)
        case ev.MaterialShortageReported():
            await conn.execute("UPDATE orders SET shortage = $2 WHERE order_id = $1", o, event.component)
        case ev.MaterialsReceived() if event.complete:
            await conn.execute("UPDATE orders SET shortage = NULL WHERE order_id = $1", o)
        case ev.PromisedDateChanged():
            await conn.execute("UPDATE orders SET due_date = $2 WHERE order_id = $1", o, event.new)
        case ev.UnitsProduced() | ev.UnitsScrapped():
            good = event.quantity if isinstance(event, ev.UnitsProduced) else -event.quantity
            scrapped = event.quantity if isinstance(event, ev.UnitsScrapped) else Decimal(0)
            await conn.execute(
                "UPDATE orders SET produced = produced + $2, scrapped = scrapped + $3 WHERE order_id = $1",
                o,
                good,
                scrapped,
            )
            await conn.execute(
                """INSERT INTO output SELECT $1, coalesce(max(seq), 0) + 1, $2, $3, $4, $5 FROM output
                   WHERE order_id = $1""",
                o,
                event.product,
                good,
                scrapped,
                e.time,
            )
        case ev.QualityInspectionPassed() | ev.QualityInspectionFailed():
            await conn.execute(
                "INSERT INTO inspections VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                o,
                event.attempt,
                isinstance(event, ev.QualityInspectionPassed),
                event.at,
            )
        case ev.OrderDelivered():
            await conn.execute(
                """UPDATE orders SET delivered = delivered + $2,
                       first_delivery_at = coalesce(first_delivery_at, $3),
                       first_delivery_qty = coalesce(first_delivery_qty, $2),
                       completed_at = CASE WHEN $4 THEN $3 ELSE completed_at END WHERE order_id = $1""",
                o,
                event.quantity,
                event.delivered_at,
                event.stage_after == "delivered",
            )
    await _stage(conn, e, o, event.stage_after)


def floor(production_topic: str) -> Projection:
    return Projection(
        name="floor",
        topics=(production_topic,),
        ddl=FLOOR_DDL,
        apply=one_by_one(apply_floor),
        accepts=("pipelines.production.",),
        tables=("orders", "stage_visits", "inspections", "output", "plans"),
    )


DEMAND_DDL = """
CREATE TABLE IF NOT EXISTS deal_lines (
    deal_id uuid NOT NULL, line integer NOT NULL, product text NOT NULL, quantity numeric NOT NULL,
    PRIMARY KEY (deal_id, line));
CREATE TABLE IF NOT EXISTS deal_outlook (
    deal_id uuid PRIMARY KEY, status text NOT NULL, stage_probability numeric NOT NULL, override numeric,
    expected_close date, won_on date);
"""


async def _lines(conn: Conn, deal_id: uuid.UUID, lines: tuple[deals.ProductLine, ...]) -> None:
    await conn.execute("DELETE FROM deal_lines WHERE deal_id = $1", deal_id)
    await conn.executemany(
        "INSERT INTO deal_lines VALUES ($1, $2, $3, $4)",
        [(deal_id, i, x.product, x.quantity) for i, x in enumerate(lines)],
    )


async def apply_demand(conn: Conn, fact: Fact, tz: str = "Asia/Ho_Chi_Minh") -> None:
    event = fact.event
    if not isinstance(event, deals.DealEvent):
        return
    d = event.deal_id
    match event:
        case deals.DealOpened():
            await conn.execute(
                "INSERT INTO deal_outlook VALUES ($1, 'open', $2, NULL, $3, NULL) ON CONFLICT DO NOTHING",
                d,
                event.stage.probability,
                event.expected_close_date,
            )
            await _lines(conn, d, event.lines)
        case deals.StageChanged():
            await conn.execute(
                "UPDATE deal_outlook SET stage_probability = $2 WHERE deal_id = $1", d, event.to_stage.probability
            )
        case deals.DealReopened():
            await conn.execute(
                "UPDATE deal_outlook SET status = 'open', won_on = NULL, stage_probability = $2 WHERE deal_id = $1",
                d,
                event.to_stage.probability,
            )
        case deals.DealLinesChanged():
            await _lines(conn, d, event.lines)
        case deals.ExpectedCloseDateChanged():
            await conn.execute("UPDATE deal_outlook SET expected_close = $2 WHERE deal_id = $1", d, event.new)
        case deals.DealProbabilityOverridden():
            await conn.execute("UPDATE deal_outlook SET override = $2 WHERE deal_id = $1", d, event.probability)
        case deals.DealProbabilityOverrideCleared():
            await conn.execute("UPDATE deal_outlook SET override = NULL WHERE deal_id = $1", d)
        case deals.DealWon():
            await conn.execute(
                "UPDATE deal_outlook SET status = 'won', won_on = ($2::timestamptz AT TIME ZONE $3)::date "
                "WHERE deal_id = $1",
                d,
                event.won_at,
                tz,
            )
            await _lines(conn, d, event.lines)
        case deals.DealLost():
            await conn.execute("UPDATE deal_outlook SET status = 'lost' WHERE deal_id = $1", d)


def demand(deals_topic: str, tz: str) -> Projection:
    async def apply(conn: Conn, fact: Fact) -> None:
        await apply_demand(conn, fact, tz)

    return Projection(
        name="demand",
        topics=(deals_topic,),
        ddl=DEMAND_DDL,
        apply=one_by_one(apply),
        accepts=("pipelines.deals.",),
        tables=("deal_lines", "deal_outlook"),
    )


# ---------------------------------------------------------------------------------------------- queries
def _plain(v: Any) -> Any:
    if isinstance(v, Decimal):
        return format(v, "f")
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, uuid.UUID):
        return str(v)
    return v


def _round(v: Any, places: int = 4) -> float | None:
    return None if v is None else round(float(v), places)


def _ratio(a: Any, b: Any) -> float | None:
    return round(float(a) / float(b), 6) if b else None


async def board(conn: Conn, *, now: datetime, tz: str) -> dict[str, Any]:
    rows = await conn.fetch(
        """SELECT order_id, deal_id, customer, products, quantity, stage, due_date, hold_reason, shortage, produced,
                  delivered, created_at, entered_stage_at,
                  floor(extract(epoch FROM $1::timestamptz - created_at) / 86400)::int AS age_days,
                  floor(extract(epoch FROM $1::timestamptz - entered_stage_at) / 86400)::int AS days_in_stage,
                  (stage NOT IN ('delivered', 'cancelled') AND due_date < ($1::timestamptz AT TIME ZONE $2)::date)
                      AS late
           FROM orders WHERE stage NOT IN ('delivered', 'cancelled') ORDER BY due_date, order_id""",
        now,
        tz,
    )
    orders = [{k: _plain(v) for k, v in dict(r).items()} for r in rows]
    stages: dict[str, dict[str, Any]] = {}
    for o in orders:
        s = stages.setdefault(
            o["stage"],
            {"stage": o["stage"], "orders": 0, "quantity": Decimal(0), "late": 0, "oldest_age_days": 0, "items": []},
        )
        s["orders"] += 1
        s["quantity"] += Decimal(o["quantity"])
        s["late"] += o["late"]
        s["oldest_age_days"] = max(s["oldest_age_days"], o["age_days"])
        s["items"].append(o)
    from services.production.domain import STAGES

    order = [*STAGES, "on_hold"]
    columns = [
        dict(v, quantity=format(v["quantity"], "f"))
        for k, v in sorted(stages.items(), key=lambda kv: order.index(kv[0]))
    ]
    wip = sum(1 for o in orders if o["stage"] not in ("new", "planned"))
    return {
        "as_of": now.isoformat(),
        "stages": columns,
        "open_orders": len(orders),
        "wip": wip,
        "late": sum(o["late"] for o in orders),
    }


async def cycle_times(conn: Conn, *, start: datetime, end: datetime) -> dict[str, Any]:
    stages = await conn.fetch(
        """SELECT stage, count(*) AS visits,
                  percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM exited_at - entered_at) / 86400)
                      AS median_days,
                  percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM exited_at - entered_at) / 86400)
                      AS p90_days
           FROM stage_visits WHERE exited_at >= $1 AND exited_at < $2 GROUP BY stage ORDER BY stage""",
        start,
        end,
    )
    lead = await conn.fetchrow(
        """SELECT count(*) AS orders,
                  percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at) / 86400)
                      AS median_days,
                  percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at) / 86400)
                      AS p90_days
           FROM orders WHERE completed_at >= $1 AND completed_at < $2""",
        start,
        end,
    )
    assert lead is not None
    return {
        "stages": [
            {
                "stage": r["stage"],
                "visits": r["visits"],
                "median_days": _round(r["median_days"]),
                "p90_days": _round(r["p90_days"]),
            }
            for r in stages
        ],
        "lead_time": {
            "orders": lead["orders"],
            "median_days": _round(lead["median_days"]),
            "p90_days": _round(lead["p90_days"]),
        },
    }


async def quality(conn: Conn, *, start: datetime, end: datetime) -> dict[str, Any]:
    r = await conn.fetchrow(
        """WITH first AS (SELECT order_id, passed FROM inspections WHERE attempt = 1 AND at >= $1 AND at < $2)
           SELECT count(*) AS inspected, count(*) FILTER (WHERE passed) AS first_pass,
                  count(*) FILTER (WHERE EXISTS (SELECT 1 FROM inspections i WHERE i.order_id = first.order_id
                                                   AND NOT i.passed)) AS reworked
           FROM first""",
        start,
        end,
    )
    units = await conn.fetchrow(
        """SELECT coalesce(sum(good), 0) AS good, coalesce(sum(scrapped), 0) AS scrapped FROM output
           WHERE at >= $1 AND at < $2""",
        start,
        end,
    )
    assert r is not None and units is not None
    made = Decimal(units["good"]) + Decimal(units["scrapped"])  # good is net of scrap: made = good + scrapped
    return {
        "inspected": r["inspected"],
        "first_pass": r["first_pass"],
        "fpy": _ratio(r["first_pass"], r["inspected"]),
        "reworked": r["reworked"],
        "rework_rate": _ratio(r["reworked"], r["inspected"]),
        "units_made": format(made, "f"),
        "units_scrapped": format(units["scrapped"], "f"),
        "scrap_rate": _ratio(units["scrapped"], made),
    }


async def delivery(conn: Conn, *, start: datetime, end: datetime, tz: str) -> dict[str, Any]:
    r = await conn.fetchrow(
        """SELECT count(*) AS completed,
                  count(*) FILTER (WHERE (completed_at AT TIME ZONE $3)::date <= due_date) AS on_time,
                  count(*) FILTER (WHERE (first_delivery_at AT TIME ZONE $3)::date <= due_date
                                     AND first_delivery_qty >= quantity) AS otif,
                  avg((completed_at AT TIME ZONE $3)::date - due_date)
                      FILTER (WHERE (completed_at AT TIME ZONE $3)::date > due_date) AS avg_days_late
           FROM orders WHERE completed_at >= $1 AND completed_at < $2""",
        start,
        end,
        tz,
    )
    assert r is not None
    return {
        "completed": r["completed"],
        "on_time": r["on_time"],
        "otd": _ratio(r["on_time"], r["completed"]),
        "otif_orders": r["otif"],
        "otif": _ratio(r["otif"], r["completed"]),
        "avg_days_late": _round(r["avg_days_late"]),
    }


async def demand_vs_plan(floor_conn: Conn, demand_conn: Conn, *, tz: str) -> list[dict[str, Any]]:
    """Per product and month: the demand the pipeline implies, the recorded forecast, the plan, what was made."""
    pipeline = await demand_conn.fetch(
        """SELECT l.product, to_char(CASE WHEN o.status = 'won' THEN o.won_on ELSE o.expected_close END, 'YYYY-MM')
                      AS period,
                  sum(l.quantity * CASE WHEN o.status = 'won' THEN 1 ELSE coalesce(o.override, o.stage_probability) END)
                      AS demand
           FROM deal_lines l JOIN deal_outlook o USING (deal_id)
           WHERE o.status IN ('open', 'won') AND (o.status = 'won' OR o.expected_close IS NOT NULL)
           GROUP BY 1, 2"""
    )
    plans = await floor_conn.fetch("SELECT product, period, forecast, planned FROM plans")
    made = await floor_conn.fetch(
        "SELECT product, to_char(at AT TIME ZONE $1, 'YYYY-MM') AS period, sum(good) AS produced FROM output GROUP BY 1, 2",
        tz,
    )
    rows: dict[tuple[str, str], dict[str, Any]] = {}

    def row(product: str, period: str) -> dict[str, Any]:
        return rows.setdefault(
            (product, period),
            {
                "product": product,
                "period": period,
                "pipeline_demand": None,
                "forecast": None,
                "planned": None,
                "produced": "0",
            },
        )

    for r in pipeline:
        row(r["product"], r["period"])["pipeline_demand"] = format(r["demand"], "f")
    for r in plans:
        x = row(r["product"], r["period"])
        x["forecast"] = _plain(r["forecast"])
        x["planned"] = _plain(r["planned"])
    for r in made:
        row(r["product"], r["period"])["produced"] = format(r["produced"], "f")
    for x in rows.values():
        x["plan_attainment"] = _ratio(Decimal(x["produced"]), Decimal(x["planned"])) if x["planned"] else None
    return [rows[k] for k in sorted(rows)]


RISK_DAYS = 2  # not yet ready to ship this close to the promised date: it will most likely be late


async def orders_at_risk(conn: Conn, now: datetime, tz: str) -> list[Condition]:
    """Orders not ready to ship within two days of their promised date (or past it): one alert per promise."""
    rows = await conn.fetch(
        """SELECT order_id, customer, stage, due_date FROM orders
           WHERE stage NOT IN ('ready_to_ship', 'shipped', 'delivered', 'cancelled')
             AND due_date <= ($1::timestamptz AT TIME ZONE $2)::date + $3::int""",
        now,
        tz,
        RISK_DAYS,
    )
    return [
        Condition(
            kind="order_at_risk",
            entity=f"production-order-{r['order_id']}",
            occurrence=r["due_date"].isoformat(),
            summary=f"{r['customer']}: still {r['stage']} with delivery promised for {r['due_date']}",
            details={"stage": r["stage"], "due_date": r["due_date"].isoformat()},
        )
        for r in rows
    ]
