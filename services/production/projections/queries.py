"""The queries over the floor and demand read models: the board, cycle times, quality, delivery, demand against
the plans, and the orders at risk of being late (an alert's check). What depends on ``now`` is derived here."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from services.alerts.scanner import Condition
from services.production.domain import STAGES
from shared.store.db import Conn


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


LEAD_TIME_BINS = (0, 7, 14, 21, 28, 42, 56, 84)  # days; the last bin is open-ended


async def lead_time_histogram(conn: Conn, *, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The orders completed in the window by their lead time (created to completed), in ``LEAD_TIME_BINS``:
    ``from_days`` <= lead time < ``to_days`` (null: no upper bound); every bin, the empty ones too."""
    rows = await conn.fetch(
        """SELECT b.lo, b.hi, count(o.order_id) AS orders
           FROM unnest($3::float8[], $4::float8[]) AS b(lo, hi)
           LEFT JOIN orders o ON o.completed_at >= $1 AND o.completed_at < $2
                AND extract(epoch FROM o.completed_at - o.created_at) / 86400 >= b.lo
                AND (b.hi IS NULL OR extract(epoch FROM o.completed_at - o.created_at) / 86400 < b.hi)
           GROUP BY b.lo, b.hi ORDER BY b.lo""",
        start,
        end,
        [float(b) for b in LEAD_TIME_BINS],
        [float(b) for b in LEAD_TIME_BINS[1:]] + [None],
    )
    return [
        {"from_days": int(r["lo"]), "to_days": None if r["hi"] is None else int(r["hi"]), "orders": r["orders"]}
        for r in rows
    ]


FLOW_POINTS = 60  # at most; the window's weeks, or a wider step for a long window


async def flow(conn: Conn, *, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The cumulative flow diagram's points: how many orders were in each stage (``STAGES``) at ``at``, the
    window's start and every week after it (a wider step past ``FLOW_POINTS`` weeks), and its end."""
    step = timedelta(days=7 * max(1, -(-(end - start).days // (7 * FLOW_POINTS))))
    points = [start + k * step for k in range(int((end - start) / step) + 1) if start + k * step < end] + [end]
    rows = await conn.fetch(
        """SELECT t.at, v.stage, count(*) AS orders FROM unnest($1::timestamptz[]) AS t(at)
           JOIN stage_visits v ON v.entered_at <= t.at AND (v.exited_at IS NULL OR v.exited_at > t.at)
           GROUP BY t.at, v.stage""",
        points,
    )
    counts = {(r["at"], r["stage"]): r["orders"] for r in rows}
    return [{"at": at.isoformat(), **{s: counts.get((at, s), 0) for s in STAGES}} for at in points]


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
        "lead_time_histogram": await lead_time_histogram(conn, start=start, end=end),  # its distribution
        "flow": await flow(conn, start=start, end=end),  # the cumulative flow diagram's points
    }


async def quality(conn: Conn, *, start: datetime, end: datetime) -> dict[str, Any]:
    """First-pass yield over units, as DOMAIN.md §2.5 defines it: "units passing their first inspection without
    rework or scrap / units inspected". Of the orders first inspected in the window: ``inspected`` = the units
    their first inspection covered, ``first_pass`` = those of a passed one (a failed one sends its units to
    rework: ``reworked``), ``scrapped_before_inspection`` = the units the order scrapped before it (made, never
    inspected: they did not pass without scrap). FPY = first_pass / (inspected + scrapped_before_inspection);
    rework rate = reworked / inspected."""
    r = await conn.fetchrow(
        """WITH first AS (SELECT order_id, passed, quantity, at FROM inspections
                          WHERE attempt = 1 AND at >= $1 AND at < $2)
           SELECT coalesce(sum(quantity), 0) AS inspected,
                  coalesce(sum(quantity) FILTER (WHERE passed), 0) AS first_pass,
                  coalesce(sum(quantity) FILTER (WHERE NOT passed), 0) AS reworked,
                  (SELECT coalesce(sum(o.scrapped), 0) FROM first f
                   JOIN output o ON o.order_id = f.order_id AND o.at < f.at) AS scrapped_before
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
    entered = Decimal(r["inspected"]) + Decimal(r["scrapped_before"])
    return {
        "inspected": format(r["inspected"], "f"),
        "first_pass": format(r["first_pass"], "f"),
        "scrapped_before_inspection": format(r["scrapped_before"], "f"),
        "fpy": _ratio(r["first_pass"], entered),
        "reworked": format(r["reworked"], "f"),
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


async def pipeline_demand(demand_conn: Conn) -> list[Any]:
    """Per product and month, the quantity the sales pipeline implies (won deals whole, open ones weighted)."""
    return await demand_conn.fetch(
        """SELECT l.product, to_char(CASE WHEN o.status = 'won' THEN o.won_on ELSE o.expected_close END, 'YYYY-MM')
                      AS period,
                  sum(l.quantity * CASE WHEN o.status = 'won' THEN 1 ELSE coalesce(o.override, o.stage_probability) END)
                      AS demand
           FROM deal_lines l JOIN deal_outlook o USING (deal_id)
           WHERE o.status IN ('open', 'won') AND (o.status = 'won' OR o.expected_close IS NOT NULL)
           GROUP BY 1, 2"""
    )


async def demand_vs_plan(floor_conn: Conn, pipeline: list[Any], *, tz: str) -> list[dict[str, Any]]:
    """Per product and month: the demand the pipeline implies (``pipeline_demand``, read first on a connection of
    its own read model), the recorded forecast, the plan, what was made."""
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
            details={"stage": r["stage"], "due_date": r["due_date"].isoformat(), "customer": r["customer"] or ""},
        )
        for r in rows
    ]
