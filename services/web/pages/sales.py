"""The sales page: the deals board, the forecast, stage analytics, velocity, the scorecard and the target plan."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

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
    "p_board",
    "deals",
    "/board",
    kind="kanban",
    rows="stages",
    columns=(
        C("name", "c_stage"),
        C("count", "c_count", "int"),
        C("stuck_count", "c_stuck", "int"),
        C("no_next_step_count", "c_no_next_step", "int"),
        C("overdue_count", "c_overdue", "int"),
        C("value", "c_value", "money"),
        C("weighted_value", "c_weighted", "money"),
    ),
    cards="deals",
    card_columns=(
        C("title", "c_title"),
        C("customer", "c_customer"),
        C("owner_id", "c_owner"),
        C("value", "c_value", "money"),
        C("weighted_value", "c_weighted", "money"),
        C("days_in_stage", "c_days_in_stage", "int"),
        C("stuck", "c_stuck", "bool"),
        C("next_step.title", "c_next_step"),  # the agenda's next activity on the deal (issue 25)
        C("next_step.due_at", "c_next_due", "datetime"),
        C("no_next_step", "c_no_next_step", "bool"),
        C("overdue", "c_overdue", "bool"),
        C("delivery_risk", "c_risk"),
        C("expected_close_date", "c_close"),
    ),
    params=lambda f, p: {"owner_id": f.owner} if f.owner else {},
    highlight="stuck",
    waits=True,
    link="deal_id",
    wide=True,
)


def forecast(tz: ZoneInfo) -> Panel:
    """The forecast as it stood at the end of the chosen day, in the business's time zone."""
    return Panel(
        "forecast",
        "p_forecast",
        "deals",
        "/forecast",
        rows="rows",
        columns=(
            C("period", "c_month"),
            C("owner_id", "c_owner"),
            C("won", "c_won", "money"),
            C("open_count", "c_open", "int"),
            C("potential", "c_potential", "money"),
            C("weighted", "c_weighted", "money"),
            C("expected", "c_expected", "money"),
            C("currency", "c_currency"),
        ),
        params=lambda f, p: (
            ({"as_of": end_of_day(f.as_of, tz)} if f.as_of else {}) | ({"team_id": f.team} if f.team else {})
        ),
    )


STAGES = Panel(
    "stages",
    "p_stages",
    "deals",
    "/analytics/stages",
    rows="stages",
    columns=(
        C("name", "c_stage"),
        C("entered", "c_entered", "int"),
        C("advanced", "c_advanced", "int"),
        C("lost", "c_lost", "int"),
        C("still_open", "c_still_open", "int"),
        C("conversion_rate", "c_conversion", "pct"),
        C("median_days", "c_median_days", "days"),
        C("p90_days", "c_p90_days", "days"),
        C("backward_moves", "c_backward", "int"),
        C("skipped", "c_skipped", "int"),
    ),
    params=window,
)


VELOCITY = Panel(
    "velocity",
    "p_velocity",
    "deals",
    "/analytics/stages",
    kind="kpis",
    rows=None,
    columns=(
        C("won", "c_won", "int"),
        C("lost", "c_lost", "int"),
        C("win_rate", "c_win_rate", "pct"),
        C("won_value", "c_won_value", "money"),
        C("average_deal_size", "c_avg_deal", "money"),
        C("mean_cycle_days", "c_cycle_days", "days"),
        C("open_now", "c_open_now", "int"),
        C("velocity_per_day", "c_velocity", "money"),
    ),
    params=window,
)


SCORECARD = Panel(
    "scorecard",
    "p_scorecard",
    "deals",
    "/analytics/scorecard",
    columns=(
        C("owner_id", "c_owner"),
        C("opened", "c_opened", "int"),
        C("won", "c_won", "int"),
        C("lost", "c_lost", "int"),
        C("win_rate", "c_win_rate", "pct"),
        C("won_value", "c_won_value", "money"),
        C("average_deal_size", "c_avg_deal", "money"),
        C("mean_cycle_days", "c_cycle_days", "days"),
        C("open_now", "c_open_now", "int"),
        C("weighted_pipeline_now", "c_weighted_now", "money"),
        C("stuck_now", "c_stuck_now", "int"),
        C("target", "c_target", "money"),
        C("attainment", "c_attainment", "pct"),
    ),
    params=lambda f, p: {"period": f.period} | ({"team_id": f.team} if f.team else {}),
    wide=True,
)


TARGET = Panel(
    "target",
    "p_target_kpis",
    "deals",
    "/analytics/target-plan",
    kind="kpis",
    rows=None,
    columns=(
        C("period", "c_month"),
        C("target", "c_target", "money"),
        C("won_so_far", "c_won_so_far", "money"),
        C("average_deal_size", "c_avg_deal", "money"),
        C("wins_needed", "c_wins_needed", "int"),
        C("expected_wins_from_open", "c_expected_wins", "ratio"),
        C("gap", "c_gap", "ratio"),
    ),
    params=target_scope,
)


TARGET_STAGES = Panel(
    "target_stages",
    "p_target",
    "deals",
    "/analytics/target-plan",
    rows="stages",
    columns=(
        C("stage_id", "c_stage"),
        C("p_win", "c_p_win", "pct"),
        C("open_now", "c_open_now", "int"),
        C("new_entries_needed", "c_needed", "int"),
    ),
    params=target_scope,
)


def sales_page(tz: ZoneInfo) -> Page:
    return Page(
        "sales",
        "sales",
        filters=("from", "to", "period", "as_of", "team", "owner"),
        panels=(SALES_BOARD, forecast(tz), STAGES, VELOCITY, SCORECARD, TARGET, TARGET_STAGES),
    )
