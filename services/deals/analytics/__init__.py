"""The sales analytics read model: one projection of facts, and the queries managers ask of it.

``model``: the tables and the one batch ``apply`` (the ``analytics`` projection); ``pipeline``: the forecast, stage
and totals queries; ``people``: scorecards, lost reasons and planning; ``months``: the forecast beside the month's target, the win rate by month.

Facts kept (no value that depends on today):
- ``deals``: each deal's current facts; ``deal_versions``: the forecast-relevant facts of each deal with the
  recorded time they became known (``valid_from``/``valid_to``), so the forecast can be computed as it stood
  on any past date, and two dates compared;
- ``stage_visits``: one row per visit of a stage (entered, exited, how it left, stages skipped on the way);
- ``activities``: each activity with the stage it happened in; ``targets``; ``pipeline_stages``;
- ``next_steps``: the agenda's activities scheduled on deals (due time, open or not), whence open deals without a
  next step and with an overdue activity at query time (``next_steps.next_step_counts``).

Formulas (DOMAIN.md §2.5), per currency (one currency per query, VND by default):
- effective probability = won 1, lost 0; open: the deal's override, else its stage's probability when it entered
  the stage (the board's lists and the deal's answer weigh a deal's value by it);
- forecast for a month = won value closed in it + Σ open value × probability expected to close in it;
- what moved the forecast between two recorded times, per deal, the two records compared (net): created (opened in
  between; won or lost too if it closed in between), won, lost, reopened, pulled in, pushed out (close date), value
  up or down (by the difference), reassigned (another owner or team than at the start, or than when opened in
  between; for an owner's or a team's figures it shows both for who had it and who has it, and is all that shows
  for who had it); each counted with the deal's value at the end;
- stage conversion: the cohort = deals whose first entry into the stage falls in the window; advanced = those
  that later entered a later stage or were won; lost = those lost without advancing; conversion =
  advanced / (advanced + lost); still-open deals are shown apart (censored);
- time in stage over visits that ended in the window: mean, median and p90 (linear interpolation);
- win rate = won / (won + lost) among deals closed in the window (and by month of close: ``months.win_rates``); average deal size = won value / won;
  cycle = won_at − opened_at in days; velocity = open deals × average size × win rate / mean cycle days;
- deals needed per stage for a target (seed S2): W = ⌈(target − won) / average size⌉, E = Σ_open P(win | stage),
  gap = max(0, W − E), needed at stage k = ⌈gap / P(win | k)⌉ with P(win | k) = won / resolved among deals that
  entered k;
- success factors (seed S3): among resolved deals that entered a stage, conversion with vs without an activity of
  a type logged while in that stage, and the lift.
"""

from services.deals.analytics.model import DDL, analytics, apply
from services.deals.analytics.months import forecast_months, month_targets, win_rates
from services.deals.analytics.next_steps import next_step_counts
from services.deals.analytics.people import (
    local_date,
    lost_reasons,
    scorecard,
    stage_win_probabilities,
    success_factors,
    target_plan,
)
from services.deals.analytics.pipeline import (
    forecast,
    forecast_changes,
    month_bounds,
    pipeline_totals,
    stage_analytics,
    valid_at,
)

__all__ = [
    "DDL",
    "analytics",
    "apply",
    "forecast",
    "forecast_changes",
    "forecast_months",
    "local_date",
    "lost_reasons",
    "month_bounds",
    "month_targets",
    "next_step_counts",
    "pipeline_totals",
    "scorecard",
    "stage_analytics",
    "stage_win_probabilities",
    "success_factors",
    "target_plan",
    "valid_at",
    "win_rates",
]
