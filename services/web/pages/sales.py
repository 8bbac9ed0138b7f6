"""The sales page: the deals board, the forecast, stage analytics, velocity, the scorecard and the target plan."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from services.web.i18n import N_
from services.web.panels import C, Filters, Page, Panel
from shared.edge.auth import Principal


def end_of_day(day: date, tz: ZoneInfo) -> str:
    return datetime.combine(day, time(23, 59, 59), tz).isoformat()


def target_scope(f: Filters, p: Principal) -> dict[str, str] | None:
    """Whose target plan: a manager's team, a salesperson's own, or the team or person chosen."""
    if "sales_manager" in p.roles and p.team and not p.roles & {"admin", "auditor"}:
        return {"period": f.period, "team_id": p.team}
    if "sales" in p.roles and not p.roles & {"admin", "auditor", "sales_manager"}:
        return {"period": f.period, "owner_id": p.user_id}
    if f.owner:
        return {"period": f.period, "owner_id": f.owner}
    if f.team:
        return {"period": f.period, "team_id": f.team}
    return None  # nothing chosen yet: the panel asks for a team


def window(f: Filters, p: Principal) -> dict[str, str]:
    return f.window()


SALES_BOARD = Panel(
    "board",
    N_("Deals by stage"),
    "deals",
    "/board",
    kind="kanban",
    rows="stages",
    columns=(
        C("name", N_("Stage"), "stage"),
        C("count", N_("Deals"), "int"),
        C("stuck_count", N_("Stuck"), "int"),
        C("no_next_step_count", N_("No next step"), "int"),
        C("overdue_count", N_("Overdue"), "int"),
        C("value", N_("Value"), "money"),
        C("weighted_value", N_("Weighted"), "money"),
    ),
    cards="deals",
    card_columns=(
        C("title", N_("Deal")),
        C("customer", N_("Customer")),
        C("owner_id", N_("Owner")),
        C("value", N_("Value"), "money"),
        C("weighted_value", N_("Weighted"), "money"),
        C("days_in_stage", N_("Days in stage"), "int"),
        C("stuck", N_("Stuck"), "bool"),
        C("next_step.title", N_("Next step")),  # the agenda's next activity on the deal (issue 25)
        C("next_step.due_at", N_("Next step due"), "datetime"),
        C("no_next_step", N_("No next step"), "bool"),
        C("overdue", N_("Overdue"), "bool"),
        C("delivery_risk", N_("Delivery risk")),
        C("expected_close_date", N_("Expected close"), "date"),
    ),
    params=lambda f, p: {"owner_id": f.owner} if f.owner else {},
    highlight="stuck",
    waits=True,
    link="deal_id",
    wide=True,
    first_cards=True,
)


def forecast(tz: ZoneInfo) -> Panel:
    """The forecast as it stood at the end of the chosen day, in the business's time zone."""
    return Panel(
        "forecast",
        N_("Forecast"),
        "deals",
        "/forecast",
        rows="rows",
        columns=(
            C("period", N_("Month")),
            C("owner_id", N_("Owner")),
            C("won", N_("Won"), "money"),
            C("open_count", N_("Open"), "int"),
            C("potential", N_("Pipeline"), "money"),
            C("weighted", N_("Weighted"), "money"),
            C("expected", N_("Expected"), "money"),
            C("currency", N_("Currency")),
        ),
        params=forecast_params(tz),
    )


def forecast_params(tz: ZoneInfo) -> Callable[[Filters, Principal], dict[str, str]]:
    """The forecast's query: the forecast panel and the forecast against target make the same one (one call)."""
    return lambda f, p: (
        ({"as_of": end_of_day(f.as_of, tz)} if f.as_of else {}) | ({"team_id": f.team} if f.team else {})
    )


def forecast_target(tz: ZoneInfo) -> Panel:
    """The forecast summed per month beside the month's target (the forecast's own query: its ``months``)."""
    return Panel(
        "forecast_target",
        N_("Forecast against target by month"),
        "deals",
        "/forecast",
        rows="months",
        columns=(
            C("period", N_("Month")),
            C("expected", N_("Expected"), "money"),
            C("target", N_("Target"), "money"),
            C("expected_of_target", N_("Expected of target"), "pct"),
            C("won", N_("Won"), "money"),
            C("weighted", N_("Weighted"), "money"),
            C("target_from_quarters", N_("Of it, a quarter's target"), "money"),
        ),
        params=forecast_params(tz),
    )


def owner_window(f: Filters, p: Principal) -> dict[str, str]:
    return f.window() | ({"team_id": f.team} if f.team else {}) | ({"owner_id": f.owner} if f.owner else {})


WIN_RATE = Panel(
    "win_rate",
    N_("Win rate by month of close"),
    "deals",
    "/analytics/win-rate",
    columns=(
        C("month", N_("Month")),
        C("won", N_("Won"), "int"),
        C("lost", N_("Lost"), "int"),
        C("win_rate", N_("Win rate"), "pct"),
        C("won_value", N_("Won value"), "money"),
    ),
    params=owner_window,
)


STAGES = Panel(
    "stages",
    N_("Stage conversion"),
    "deals",
    "/analytics/stages",
    rows="stages",
    columns=(
        C("name", N_("Stage"), "stage"),
        C("entered", N_("Entered"), "int"),
        C("advanced", N_("Advanced"), "int"),
        C("lost", N_("Lost"), "int"),
        C("still_open", N_("Still open"), "int"),
        C("conversion_rate", N_("Conversion"), "pct"),
        C("median_days", N_("Median days"), "days"),
        C("p90_days", N_("p90 days"), "days"),
        C("backward_moves", N_("Moved back"), "int"),
        C("skipped", N_("Skipped"), "int"),
    ),
    params=window,
)


VELOCITY = Panel(
    "velocity",
    N_("Win rate and velocity"),
    "deals",
    "/analytics/stages",
    kind="kpis",
    rows=None,
    columns=(
        C("won", N_("Won"), "int"),
        C("lost", N_("Lost"), "int"),
        C("win_rate", N_("Win rate"), "pct"),
        C("won_value", N_("Won value"), "money"),
        C("average_deal_size", N_("Average deal"), "money"),
        C("mean_cycle_days", N_("Mean cycle (days)"), "days"),
        C("open_now", N_("Open now"), "int"),
        C("velocity_per_day", N_("Velocity per day"), "money"),
    ),
    params=window,
)


SCORECARD = Panel(
    "scorecard",
    N_("Salesperson scorecards"),
    "deals",
    "/analytics/scorecard",
    columns=(
        C("owner_id", N_("Owner")),
        C("opened", N_("Opened"), "int"),
        C("won", N_("Won"), "int"),
        C("lost", N_("Lost"), "int"),
        C("win_rate", N_("Win rate"), "pct"),
        C("won_value", N_("Won value"), "money"),
        C("average_deal_size", N_("Average deal"), "money"),
        C("mean_cycle_days", N_("Mean cycle (days)"), "days"),
        C("open_now", N_("Open now"), "int"),
        C("weighted_pipeline_now", N_("Weighted pipeline"), "money"),
        C("stuck_now", N_("Stuck now"), "int"),
        C("target", N_("Target"), "money"),
        C("attainment", N_("Attainment"), "pct"),
    ),
    params=lambda f, p: {"period": f.period} | ({"team_id": f.team} if f.team else {}),
    wide=True,
)


TARGET = Panel(
    "target",
    N_("Target"),
    "deals",
    "/analytics/target-plan",
    kind="kpis",
    rows=None,
    columns=(
        C("period", N_("Month")),
        C("target", N_("Target"), "money"),
        C("won_so_far", N_("Won so far"), "money"),
        C("average_deal_size", N_("Average deal"), "money"),
        C("wins_needed", N_("Wins needed"), "int"),
        C("expected_wins_from_open", N_("Expected wins from open deals"), "ratio"),
        C("gap", N_("Gap (wins)"), "ratio"),
    ),
    params=target_scope,
)


TARGET_STAGES = Panel(
    "target_stages",
    N_("Deals needed per stage for the target"),
    "deals",
    "/analytics/target-plan",
    rows="stages",
    columns=(
        C("stage_id", N_("Stage"), "stage"),
        C("p_win", N_("Chance to win"), "pct"),
        C("open_now", N_("Open now"), "int"),
        C("new_entries_needed", N_("New deals needed"), "int"),
    ),
    params=target_scope,
)


def sales_page(tz: ZoneInfo) -> Page:
    return Page(
        "sales",
        N_("Sales"),
        filters=("from", "to", "period", "as_of", "team", "owner"),
        panels=(
            SALES_BOARD,
            forecast(tz),
            forecast_target(tz),
            STAGES,
            VELOCITY,
            WIN_RATE,
            SCORECARD,
            TARGET,
            TARGET_STAGES,
        ),
    )
