"""What each page of the board shows: its panels, each one API query and the columns it shows of the answer.

A panel never computes a figure: it shows the API's answer for its query, cell by cell (``data-value`` holds
the value as the API gave it, the text is only how it is written), so every number on a page equals the API's.
The same definitions make the CSV exports. The filters a page takes (dates, period, team) become the query.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from shared.core.limits import MAX_DAY, MIN_DAY
from shared.edge.auth import Principal

Kind = Literal["table", "kanban", "kpis"]
PERIOD = re.compile(r"^[12]\d{3}-(0[1-9]|1[0-2]|Q[1-4])$")
TEAM = re.compile(r"^[A-Za-z0-9_.@-]{1,80}$")


class FilterError(ValueError):
    """A filter the user typed is not valid; the message names it."""


@dataclass(frozen=True)
class Filters:
    start: date
    end: date
    period: str
    as_of: date | None = None
    team: str | None = None
    owner: str | None = None
    deal: str | None = None

    @classmethod
    def parse(cls, query: dict[str, str], today: date) -> Filters:
        def day(name: str, default: date | None) -> date | None:
            raw = query.get(name, "").strip()
            if not raw:
                return default
            try:
                return date.fromisoformat(raw)
            except ValueError:
                raise FilterError(f"{name}: {raw[:40]!r} is not a date (YYYY-MM-DD)") from None

        start = day("from", today.replace(month=1, day=1)) or today
        end = day("to", today + timedelta(days=1)) or today
        if end <= start:
            raise FilterError("to: must be after from")
        if not (MIN_DAY <= start <= MAX_DAY and MIN_DAY <= end <= MAX_DAY):
            raise FilterError(f"from, to: days {MIN_DAY} to {MAX_DAY}")
        period = query.get("period", "").strip() or f"{today:%Y-%m}"
        if not PERIOD.match(period):
            raise FilterError(f"period: {period[:40]!r} is not a month (2026-12) or a quarter (2027-Q1)")
        as_of = day("as_of", None)
        if as_of is not None and as_of > today:
            raise FilterError("as_of: a date in the future has no recorded forecast yet")
        names = {}
        for name in ("team", "owner"):
            value = query.get(name, "").strip() or None
            if value is not None and not TEAM.match(value):
                raise FilterError(f"{name}: letters, digits and . _ @ - only")
            names[name] = value
        deal = query.get("deal", "").strip() or None
        if deal is not None and not re.fullmatch(r"[0-9a-fA-F-]{36}", deal):
            raise FilterError(f"deal: {deal[:40]!r} is not a deal id")
        return cls(start=start, end=end, period=period, as_of=as_of, deal=deal, **names)

    def window(self) -> dict[str, str]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}

    def as_query(self) -> dict[str, str]:
        """The filters as the page's own query string (for links, refreshes and exports)."""
        q = self.window() | {"period": self.period}
        for name in ("as_of", "team", "owner", "deal"):
            value = getattr(self, name)
            if value is not None:
                q[name] = str(value)
        return q


@dataclass(frozen=True)
class Column:
    key: str  # a dotted path into one row of the answer
    label: str  # a key of i18n.WORDS
    kind: str = "text"  # how fmt writes it: text, int, money, pct, ratio, days, datetime, bool, stage, counts


@dataclass(frozen=True)
class Panel:
    id: str
    title: str
    service: str  # whose API answers
    path: str
    columns: tuple[Column, ...]
    kind: Kind = "table"
    rows: str | None = ""  # "": the answer is the list; a key: its list (or one object); None: the answer is one row
    params: Callable[[Filters, Principal], dict[str, str] | None] = lambda f, p: {}
    cards: str | None = None  # kanban: the key of each column's items
    card_columns: tuple[Column, ...] = ()
    highlight: str | None = None  # a boolean key that marks a row or card (stuck, late)
    trigger: str = ""  # what live update refreshes it: a service's events, or "alerts"; defaults to service
    waits: bool = False  # the API takes `position` and answers only once its read model has applied it
    link: str | None = None  # a card's key that links to the deal's audit page
    wide: bool = False

    @property
    def on(self) -> str:
        return self.trigger or self.service


@dataclass(frozen=True)
class Page:
    id: str
    title: str
    panels: tuple[Panel, ...]
    filters: tuple[str, ...] = ()
    by_id: dict[str, Panel] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self.by_id.update({p.id: p for p in self.panels})


def C(key: str, label: str, kind: str = "text") -> Column:  # noqa: N802 - a short constructor for the tables
    return Column(key, label, kind)


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


def sales_page(tz: ZoneInfo) -> Page:
    stage_window: Callable[[Filters, Principal], dict[str, str]] = lambda f, p: f.window()  # noqa: E731
    return Page(
        "sales",
        "sales",
        filters=("from", "to", "period", "as_of", "team", "owner"),
        panels=(
            Panel(
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
                    C("delivery_risk", "c_risk"),
                    C("expected_close_date", "c_close"),
                ),
                params=lambda f, p: {"owner_id": f.owner} if f.owner else {},
                highlight="stuck",
                waits=True,
                link="deal_id",
                wide=True,
            ),
            Panel(
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
            ),
            Panel(
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
                params=stage_window,
            ),
            Panel(
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
                params=stage_window,
            ),
            Panel(
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
            ),
            Panel(
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
            ),
            Panel(
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
            ),
        ),
    )


FUNNEL = (
    C("captured", "c_captured", "int"),
    C("contacted", "c_contacted", "int"),
    C("mql", "c_mql", "int"),
    C("sql", "c_sql", "int"),
    C("opportunities", "c_opportunities", "int"),
    C("customers", "c_customers", "int"),
    C("revenue", "c_revenue", "money"),
    C("mql_rate", "c_mql", "pct"),
    C("sql_rate", "c_sql", "pct"),
    C("win_rate", "c_win_rate", "pct"),
    C("lead_to_customer", "c_lead_to_customer", "pct"),
    C("median_minutes_to_contact", "c_minutes_to_contact", "days"),
)


def marketing_page() -> Page:
    return Page(
        "marketing",
        "marketing",
        filters=("from", "to"),
        panels=(
            Panel(
                "funnel_source",
                "p_funnel_source",
                "leads",
                "/funnel",
                waits=True,
                columns=(C("source", "c_source"), *FUNNEL),
                params=lambda f, p: f.window() | {"by": "source"},
                wide=True,
            ),
            Panel(
                "funnel_campaign",
                "p_funnel_campaign",
                "leads",
                "/funnel",
                waits=True,
                columns=(C("campaign", "c_campaign"), *FUNNEL),
                params=lambda f, p: f.window() | {"by": "campaign"},
                wide=True,
            ),
            Panel(
                "campaigns",
                "p_campaigns",
                "leads",
                "/campaigns",
                waits=True,
                columns=(
                    C("name", "c_name"),
                    C("channel", "c_channel"),
                    C("status", "c_status"),
                    C("spend", "c_spend", "money"),
                    C("leads", "c_leads", "int"),
                    C("cpl", "c_cpl", "money"),
                    C("customers", "c_customers", "int"),
                    C("cac", "c_cac", "money"),
                    C("revenue", "c_revenue", "money"),
                    C("roi_pct", "c_roi", "ratio"),
                    C("roas", "c_roas", "ratio"),
                    C("currency", "c_currency"),
                ),
                params=lambda f, p: f.window(),
                wide=True,
            ),
            Panel(
                "inbox",
                "p_inbox",
                "leads",
                "/leads",
                waits=True,
                rows="items",
                columns=(
                    C("captured_at", "c_captured_at", "datetime"),
                    C("contact.name", "c_contact"),
                    C("source", "c_source"),
                    C("campaign_code", "c_campaign"),
                    C("status", "c_status"),
                    C("owner_id", "c_owner"),
                    C("score", "c_score"),
                    C("response_minutes", "c_response_minutes", "int"),
                ),
                params=lambda f, p: {"limit": "50"},
                wide=True,
            ),
        ),
    )


def production_page() -> Page:
    return Page(
        "production",
        "production",
        filters=("from", "to"),
        panels=(
            Panel(
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
            ),
            Panel(
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
            ),
            Panel(
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
            ),
            Panel(
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
            ),
            Panel(
                "quality",
                "p_quality",
                "production",
                "/analytics/quality",
                kind="kpis",
                rows=None,
                columns=(
                    C("inspected", "c_inspected", "int"),
                    C("first_pass", "c_first_pass", "int"),
                    C("fpy", "c_fpy", "pct"),
                    C("reworked", "c_reworked", "int"),
                    C("rework_rate", "c_rework_rate", "pct"),
                    C("units_made", "c_units_made", "int"),
                    C("units_scrapped", "c_units_scrapped", "int"),
                    C("scrap_rate", "c_scrap_rate", "pct"),
                ),
                params=lambda f, p: f.window(),
            ),
            Panel(
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
            ),
        ),
    )


ALERT_COLUMNS = (
    C("kind", "c_kind"),
    C("entity", "c_entity"),
    C("summary", "c_summary"),
    C("raised_at", "c_raised_at", "datetime"),
)


def alerts_page() -> Page:
    return Page(
        "alerts",
        "alerts",
        panels=tuple(
            Panel(f"alerts_{s}", f"p_alerts_{s}", s, "/alerts", columns=ALERT_COLUMNS, trigger="alerts", wide=True)
            for s in ("deals", "leads", "production")
        ),
    )


def pages(tz: ZoneInfo) -> dict[str, Page]:
    return {p.id: p for p in (sales_page(tz), marketing_page(), production_page(), alerts_page())}


def value_at(row: Any, key: str) -> Any:
    for part in key.split("."):
        if not isinstance(row, dict):
            return None
        row = row.get(part)
    return row


def rows_of(answer: Any, panel: Panel) -> list[dict[str, Any]]:
    """The rows a panel shows, exactly as the API answered them."""
    found = answer if panel.rows in (None, "") else value_at(answer, panel.rows)
    if isinstance(found, list):
        return [r for r in found if isinstance(r, dict)]
    return [found] if isinstance(found, dict) else []
