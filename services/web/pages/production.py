"""The production page: the floor's figures and board, cycle and lead times, quality and delivery."""

from __future__ import annotations

from services.web.panels import C, Page, Panel

FLOOR_KPIS = Panel(
    "floor_kpis",
    "p_floor_kpis",
    "production",
    "/board",
    waits=True,
    kind="kpis",
    rows=None,
    columns=(
        C("open_orders", "c_open_orders", "int"),
        C("wip", "c_wip", "int"),
        C("late", "c_late", "int"),
    ),
)


FLOOR = Panel(
    "floor",
    "p_floor",
    "production",
    "/board",
    waits=True,
    kind="kanban",
    rows="stages",
    columns=(
        C("stage", "c_stage", "stage"),
        C("orders", "c_orders", "int"),
        C("quantity", "c_quantity", "int"),
        C("late", "c_late", "int"),
        C("oldest_age_days", "c_oldest", "int"),
    ),
    cards="items",
    card_columns=(
        C("customer", "c_customer"),
        C("products", "c_products"),
        C("quantity", "c_quantity", "int"),
        C("due_date", "c_due"),
        C("age_days", "c_age", "int"),
        C("days_in_stage", "c_days_in_stage", "int"),
        C("late", "c_late", "bool"),
        C("hold_reason", "c_hold"),
        C("shortage", "c_shortage"),
    ),
    highlight="late",
    link="deal_id",
    wide=True,
)


CYCLE = Panel(
    "cycle",
    "p_cycle",
    "production",
    "/analytics/cycle-times",
    rows="stages",
    columns=(
        C("stage", "c_stage", "stage"),
        C("visits", "c_visits", "int"),
        C("median_days", "c_median_days", "days"),
        C("p90_days", "c_p90_days", "days"),
    ),
    params=lambda f, p: f.window(),
)


LEAD_TIME = Panel(
    "lead_time",
    "p_lead_time",
    "production",
    "/analytics/cycle-times",
    kind="kpis",
    rows="lead_time",
    columns=(
        C("orders", "c_orders", "int"),
        C("median_days", "c_median_days", "days"),
        C("p90_days", "c_p90_days", "days"),
    ),
    params=lambda f, p: f.window(),
)


QUALITY = Panel(
    "quality",
    "p_quality",
    "production",
    "/analytics/quality",
    kind="kpis",
    rows=None,
    columns=(
        C("inspected", "c_inspected", "int"),
        C("first_pass", "c_first_pass", "int"),
        C("scrapped_before_inspection", "c_scrapped_before_inspection", "int"),
        C("fpy", "c_fpy", "pct"),
        C("reworked", "c_reworked", "int"),
        C("rework_rate", "c_rework_rate", "pct"),
        C("units_made", "c_units_made", "int"),
        C("units_scrapped", "c_units_scrapped", "int"),
        C("scrap_rate", "c_scrap_rate", "pct"),
    ),
    params=lambda f, p: f.window(),
)


DELIVERY = Panel(
    "delivery",
    "p_delivery",
    "production",
    "/analytics/delivery",
    kind="kpis",
    rows=None,
    columns=(
        C("completed", "c_completed", "int"),
        C("on_time", "c_on_time", "int"),
        C("otd", "c_otd", "pct"),
        C("otif_orders", "c_otif_orders", "int"),
        C("otif", "c_otif", "pct"),
        C("avg_days_late", "c_avg_days_late", "days"),
    ),
    params=lambda f, p: f.window(),
)


def production_page() -> Page:
    return Page(
        "production",
        "production",
        filters=("from", "to"),
        panels=(FLOOR_KPIS, FLOOR, CYCLE, LEAD_TIME, QUALITY, DELIVERY),
    )
