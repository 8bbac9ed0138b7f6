"""The production read models: the floor (orders, stage visits, inspections, output, deliveries) and the demand
the sales pipeline implies, with the queries that read them: ``floor_model`` and ``demand_model`` (tables and the function applying events
to them), ``queries``.

Stored: facts. Derived at query time from ``now``: age, days in stage, late.

Formulas (DOMAIN.md §2.5):
- time in stage over stage visits that ended in the window: median and p90 (days); order lead time = the
  delivery completing the order − its creation, over orders completed in the window;
- first-pass yield, over units ("units passing their first inspection without rework or scrap / units
  inspected"): of the orders first inspected in the window, the units of a passed first inspection / (the units
  first inspected + the units those orders scrapped before it); rework rate = units whose first inspection failed
  / units first inspected; scrap rate = units scrapped / units made (good + scrapped) in the window;
- for orders completed in the window: on time = the completing delivery on or before the promised date;
  OTIF = the first delivery on time and carrying the whole quantity; average days late over the late ones;
- demand per product and month = Σ open deal lines × the deal's probability (expected close month) + the
  quantities of deals won in that month; planned = the approved plan; produced = good units made in the month.
"""

from services.production.projections.demand_model import DEMAND_DDL, apply_demand, demand
from services.production.projections.floor_model import FLOOR_DDL, apply_floor, floor
from services.production.projections.queries import (
    RISK_DAYS,
    board,
    cycle_times,
    delivery,
    demand_vs_plan,
    orders_at_risk,
    pipeline_demand,
    quality,
)

__all__ = [
    "DEMAND_DDL",
    "FLOOR_DDL",
    "RISK_DAYS",
    "apply_demand",
    "apply_floor",
    "board",
    "cycle_times",
    "delivery",
    "demand",
    "demand_vs_plan",
    "floor",
    "orders_at_risk",
    "pipeline_demand",
    "quality",
]
