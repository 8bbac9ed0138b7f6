"""The production page: the floor's figures and board, cycle and lead times, quality and delivery."""

from __future__ import annotations

from services.web.domain_words import STAGES as STAGE_NAMES
from services.web.i18n import N_
from services.web.panels import C, Page, Panel

FLOOR_KPIS = Panel(
    "floor_kpis",
    N_("Work in progress"),
    "production",
    "/board",
    waits=True,
    kind="kpis",
    rows=None,
    columns=(
        C("open_orders", N_("Open orders"), "int"),
        C("wip", N_("WIP"), "int"),
        C("late", N_("Late"), "int"),
    ),
)


FLOOR = Panel(
    "floor",
    N_("Orders by stage"),
    "production",
    "/board",
    waits=True,
    kind="kanban",
    rows="stages",
    columns=(
        C("stage", N_("Stage"), "stage"),
        C("orders", N_("Orders"), "int"),
        C("quantity", N_("Quantity"), "int"),
        C("late", N_("Late"), "int"),
        C("oldest_age_days", N_("Oldest (days)"), "int"),
    ),
    cards="items",
    card_columns=(
        C("customer", N_("Customer")),
        C("products", N_("Products")),
        C("quantity", N_("Quantity"), "int"),
        C("due_date", N_("Due"), "date"),
        C("age_days", N_("Age (days)"), "int"),
        C("days_in_stage", N_("Days in stage"), "int"),
        C("late", N_("Late"), "bool"),
        C("hold_reason", N_("On hold")),
        C("shortage", N_("Shortage")),
    ),
    highlight="late",
    link="order_id",  # an order's page: its actions and its deal's timeline (services/web/actions/ops.py)
    href="/order/",
    wide=True,
)


CYCLE = Panel(
    "cycle",
    N_("Cycle times"),
    "production",
    "/analytics/cycle-times",
    rows="stages",
    columns=(
        C("stage", N_("Stage"), "stage"),
        C("visits", N_("Visits"), "int"),
        C("median_days", N_("Median days"), "days"),
        C("p90_days", N_("p90 days"), "days"),
    ),
    params=lambda f, p: f.window(),
)


LEAD_TIME = Panel(
    "lead_time",
    N_("Order lead time"),
    "production",
    "/analytics/cycle-times",
    kind="kpis",
    rows="lead_time",
    columns=(
        C("orders", N_("Orders"), "int"),
        C("median_days", N_("Median days"), "days"),
        C("p90_days", N_("p90 days"), "days"),
    ),
    params=lambda f, p: f.window(),
)


LEAD_TIME_HISTOGRAM = Panel(  # the cycle-time distribution (charts.py draws it)
    "lead_time_histogram",
    N_("Lead time distribution"),
    "production",
    "/analytics/cycle-times",
    rows="lead_time_histogram",
    columns=(
        C("from_days", N_("From (days)"), "int"),
        C("to_days", N_("To (days)"), "int"),
        C("orders", N_("Orders"), "int"),
    ),
    params=lambda f, p: f.window(),
)


# the production order's stages as the API names them, in their order (its `flow` rows' keys): production's STAGES,
# which the board may not import (its import contract); tests/unit/web/test_board_unit.py checks they agree
ORDER_STAGES = (
    "new",
    "planned",
    "in_design",
    "procuring",
    "assembling",
    "quality_check",
    "rework",
    "packing",
    "ready_to_ship",
    "shipped",
    "delivered",
)
FLOW = Panel(  # the cumulative flow diagram (charts.py draws it): orders in each stage, week by week
    "flow",
    N_("Cumulative flow"),
    "production",
    "/analytics/cycle-times",
    rows="flow",
    columns=(C("at", N_("Day"), "date"), *(C(s, STAGE_NAMES[s], "int") for s in ORDER_STAGES)),
    params=lambda f, p: f.window(),
    wide=True,
)


QUALITY = Panel(
    "quality",
    N_("Quality: first-pass yield"),
    "production",
    "/analytics/quality",
    kind="kpis",
    rows=None,
    columns=(
        C("inspected", N_("Units inspected"), "int"),
        C("first_pass", N_("Passed first time"), "int"),
        C("scrapped_before_inspection", N_("Scrapped before inspection"), "int"),
        C("fpy", N_("First-pass yield"), "pct"),
        C("reworked", N_("Reworked"), "int"),
        C("rework_rate", N_("Rework rate"), "pct"),
        C("units_made", N_("Units made"), "int"),
        C("units_scrapped", N_("Units scrapped"), "int"),
        C("scrap_rate", N_("Scrap rate"), "pct"),
    ),
    params=lambda f, p: f.window(),
)


DELIVERY = Panel(
    "delivery",
    N_("Delivery: on time, OTIF"),
    "production",
    "/analytics/delivery",
    kind="kpis",
    rows=None,
    columns=(
        C("completed", N_("Delivered orders"), "int"),
        C("on_time", N_("On time"), "int"),
        C("otd", N_("On-time delivery"), "pct"),
        C("otif_orders", N_("OTIF orders"), "int"),
        C("otif", N_("OTIF"), "pct"),
        C("avg_days_late", N_("Average days late"), "days"),
    ),
    params=lambda f, p: f.window(),
)


def production_page() -> Page:
    return Page(
        "production",
        N_("Production"),
        filters=("from", "to"),
        panels=(FLOOR_KPIS, FLOOR, FLOW, CYCLE, LEAD_TIME, LEAD_TIME_HISTOGRAM, QUALITY, DELIVERY),
    )
