"""The analytics queries about people and planning: scorecards, lost reasons, target plans, success factors.

The formulas are in the package's docstring (``services.deals.analytics``).
"""

from __future__ import annotations

import math
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from services.deals.analytics.pipeline import _money, _one, _ratio, _round, month_bounds
from shared.store.db import Conn

# ---------------------------------------------------------------------------------------------- people
# Each salesperson's deals (of owner $1 if given, team $5, organisations $6) in currency $4: results in [$2, $3)
# and pipeline now; set-based, one row an owner (``scorecard``'s owners are those with any deal in the scope).
_RESULTS = """SELECT owner_id,
              count(*) FILTER (WHERE currency = $4 AND opened_at >= $2 AND opened_at < $3) AS opened,
              count(*) FILTER (WHERE currency = $4 AND won_at >= $2 AND won_at < $3) AS won,
              count(*) FILTER (WHERE currency = $4 AND lost_at >= $2 AND lost_at < $3) AS lost,
              coalesce(sum(value) FILTER (WHERE currency = $4 AND won_at >= $2 AND won_at < $3), 0) AS won_value,
              avg(extract(epoch FROM won_at - opened_at) / 86400)
                  FILTER (WHERE currency = $4 AND won_at >= $2 AND won_at < $3) AS cycle_days,
              count(*) FILTER (WHERE currency = $4 AND status = 'open') AS open_now,
              coalesce(sum(value * coalesce(probability_override, stage_probability))
                       FILTER (WHERE currency = $4 AND status = 'open'), 0) AS weighted_now,
              coalesce(avg(close_date_pushes) FILTER (WHERE currency = $4 AND opened_at >= $2 AND opened_at < $3), 0)
                  AS pushes
       FROM deals WHERE ($1::text IS NULL OR owner_id = $1) AND ($5::text IS NULL OR team_id = $5)
         AND ($6::uuid[] IS NULL OR organisation_id = ANY($6))
       GROUP BY owner_id ORDER BY owner_id"""
# Their open deals longer in their stage than its threshold at $2 (any currency, as the board counts them).
_STUCK = """SELECT d.owner_id, count(*) AS n FROM deals d JOIN pipeline_stages s USING (pipeline_id, stage_id)
       WHERE ($1::text IS NULL OR d.owner_id = $1) AND d.status = 'open' AND s.stuck_after_days IS NOT NULL
         AND $2::timestamptz - d.entered_stage_at > make_interval(days => s.stuck_after_days)
         AND ($3::text IS NULL OR d.team_id = $3) AND ($4::uuid[] IS NULL OR d.organisation_id = ANY($4))
       GROUP BY d.owner_id"""
# Their activities in [$2, $3) by type.
_ACTIVITIES = """SELECT a.owner_id, a.activity_type, count(*) AS n FROM activities a
       WHERE ($1::text IS NULL OR a.owner_id = $1) AND a.at >= $2 AND a.at < $3
         AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM deals d WHERE d.deal_id = a.deal_id AND d.team_id = $4))
         AND ($5::uuid[] IS NULL
              OR EXISTS (SELECT 1 FROM deals d WHERE d.deal_id = a.deal_id AND d.organisation_id = ANY($5)))
       GROUP BY a.owner_id, a.activity_type ORDER BY a.owner_id, a.activity_type"""
_TARGETS = """SELECT owner_id, sum(amount) AS amount FROM targets
       WHERE owner_id IS NOT NULL AND ($1::text IS NULL OR owner_id = $1) AND period = $2 AND currency = $3
       GROUP BY owner_id"""


async def scorecard(
    conn: Conn,
    *,
    period: str,
    tz: str,
    now: datetime,
    currency: str = "VND",
    owner_id: str | None = None,
    team_id: str | None = None,
    organisations: list[uuid.UUID] | None = None,
) -> list[dict[str, Any]]:
    """Per salesperson for a period: activity, results, pipeline now, target and attainment (with ``team_id``: each
    counting only their deals in that team; with ``organisations``: only their deals linked to one of these). Four
    queries whatever the number of people (each grouped by owner), not four a person."""
    start, end = month_bounds(period, tz)
    results = await conn.fetch(_RESULTS, owner_id, start, end, currency, team_id, organisations)
    stuck = {r["owner_id"]: r["n"] for r in await conn.fetch(_STUCK, owner_id, now, team_id, organisations)}
    acts: dict[str, dict[str, int]] = {}
    for a in await conn.fetch(_ACTIVITIES, owner_id, start, end, team_id, organisations):
        acts.setdefault(a["owner_id"], {})[a["activity_type"]] = a["n"]
    targets = {r["owner_id"]: r["amount"] for r in await conn.fetch(_TARGETS, owner_id, period, currency)}
    return [
        _card(r, period, currency, stuck.get(r["owner_id"], 0), acts.get(r["owner_id"], {}), targets.get(r["owner_id"]))
        for r in results
    ]


def _card(r: Any, period: str, currency: str, stuck: int, acts: dict[str, int], target: Any) -> dict[str, Any]:
    """One salesperson's scorecard from their rows of the four queries."""
    won, lost = r["won"], r["lost"]
    return {
        "owner_id": r["owner_id"],
        "period": period,
        "currency": currency,
        "opened": r["opened"],
        "won": won,
        "lost": lost,
        "win_rate": _ratio(won, won + lost),
        "won_value": _money(r["won_value"], currency),
        "average_deal_size": _money(Decimal(r["won_value"]) / won, currency) if won else None,
        "mean_cycle_days": _round(r["cycle_days"]),
        "open_now": r["open_now"],
        "weighted_pipeline_now": _money(r["weighted_now"], currency),
        "stuck_now": stuck,
        "activities": acts,
        "avg_close_date_pushes": _round(r["pushes"]),
        "target": _money(target, currency) if target is not None else None,
        "attainment": _ratio(float(r["won_value"]), float(target)) if target else None,
    }


async def lost_reasons(
    conn: Conn,
    *,
    start: datetime,
    end: datetime,
    currency: str = "VND",
    owner_id: str | None = None,
    team_id: str | None = None,
    organisations: list[uuid.UUID] | None = None,
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT lost_reason, stage_at_close, competitor, count(*) AS n, sum(value) AS value FROM deals
           WHERE lost_at >= $1 AND lost_at < $2 AND currency = $3 AND ($4::text IS NULL OR owner_id = $4)
             AND ($5::text IS NULL OR team_id = $5) AND ($6::uuid[] IS NULL OR organisation_id = ANY($6))
           GROUP BY lost_reason, stage_at_close, competitor
           ORDER BY count(*) DESC, lost_reason, stage_at_close, competitor NULLS FIRST""",
        start,
        end,
        currency,
        owner_id,
        team_id,
        organisations,
    )
    return [
        {
            "reason": r["lost_reason"],
            "stage_at_loss": r["stage_at_close"],
            "competitor": r["competitor"],
            "count": r["n"],
            "value": _money(r["value"], currency),
        }
        for r in rows
    ]


# ---------------------------------------------------------------------------------------------- planning (S2, S3)
async def stage_win_probabilities(conn: Conn, pipeline_id: str) -> dict[str, float | None]:
    """P(win | entered stage k) = won / (won + lost) among deals that ever entered k and are closed."""
    rows = await conn.fetch(
        """SELECT s.stage_id,
                  count(DISTINCT d.deal_id) FILTER (WHERE d.status = 'won') AS won,
                  count(DISTINCT d.deal_id) FILTER (WHERE d.status IN ('won', 'lost')) AS resolved
           FROM pipeline_stages s
           LEFT JOIN stage_visits v ON v.stage_id = s.stage_id
           LEFT JOIN deals d ON d.deal_id = v.deal_id AND d.pipeline_id = s.pipeline_id
           WHERE s.pipeline_id = $1 AND s.kind = 'open'
           GROUP BY s.stage_id, s.stage_order ORDER BY s.stage_order""",
        pipeline_id,
    )
    return {r["stage_id"]: _ratio(r["won"], r["resolved"]) for r in rows}


async def target_plan(
    conn: Conn,
    *,
    period: str,
    tz: str,
    owner_id: str | None = None,
    team_id: str | None = None,
    pipeline_id: str = "default",
) -> dict[str, Any]:
    """How many deals must still enter each stage for the period's target (seed S2)."""
    target = await _one(
        conn,
        """SELECT sum(amount) AS amount, min(currency) AS currency FROM targets
           WHERE period = $1 AND owner_id IS NOT DISTINCT FROM $2 AND team_id IS NOT DISTINCT FROM $3""",
        period,
        owner_id,
        team_id,
    )
    if target is None or target["amount"] is None:
        raise LookupError(f"no target for {owner_id or team_id} in {period}")
    currency = target["currency"]
    start, end = month_bounds(period, tz)
    scope = "($1::text IS NULL OR owner_id = $1) AND ($2::text IS NULL OR team_id = $2) AND currency = $3"
    won_so_far = Decimal(
        await conn.fetchval(
            f"SELECT coalesce(sum(value), 0) FROM deals WHERE {scope} AND won_at >= $4 AND won_at < $5",
            owner_id,
            team_id,
            currency,
            start,
            end,
        )
    )
    won_all = await _one(
        conn,
        f"SELECT count(*) AS n, sum(value) AS v FROM deals WHERE {scope} AND status = 'won'",
        owner_id,
        team_id,
        currency,
    )
    avg_size = Decimal(won_all["v"]) / won_all["n"] if won_all["n"] else None
    p_win = await stage_win_probabilities(conn, pipeline_id)
    open_by_stage = {
        r["stage_id"]: r["n"]
        for r in await conn.fetch(
            f"SELECT stage_id, count(*) AS n FROM deals WHERE {scope} AND status = 'open' GROUP BY stage_id",
            owner_id,
            team_id,
            currency,
        )
    }
    remaining = max(Decimal(target["amount"]) - won_so_far, Decimal(0))
    wins_needed = math.ceil(remaining / avg_size) if avg_size and remaining > 0 else 0
    expected_wins = sum(n * (p_win.get(stage) or 0.0) for stage, n in open_by_stage.items())
    gap = max(0.0, wins_needed - expected_wins)
    stages = [
        {
            "stage_id": stage,
            "p_win": p,
            "open_now": open_by_stage.get(stage, 0),
            "new_entries_needed": (math.ceil(round(gap / p, 9)) if p else None) if gap > 0 else 0,
        }
        for stage, p in p_win.items()
    ]
    return {
        "period": period,
        "owner_id": owner_id,
        "team_id": team_id,
        "currency": currency,
        "target": _money(target["amount"], currency),
        "won_so_far": _money(won_so_far, currency),
        "average_deal_size": _money(avg_size, currency) if avg_size else None,
        "wins_needed": wins_needed,
        "expected_wins_from_open": round(expected_wins, 4),
        "gap": round(gap, 4),
        "stages": stages,
    }


async def success_factors(
    conn: Conn,
    *,
    pipeline_id: str = "default",
    by: str = "activity_type",
    team_id: str | None = None,
    organisations: list[uuid.UUID] | None = None,
) -> list[dict[str, Any]]:
    """Per stage and activity type or channel (seed S3): conversion of resolved deals with and without it (of one
    team's deals, or every deal's; of those linked to one of ``organisations``, if given)."""
    if by not in ("activity_type", "channel"):
        raise ValueError("success factors are by activity_type or channel")
    rows = await conn.fetch(
        f"""WITH entered AS (
               SELECT v.deal_id, v.stage_id, s.stage_order, min(v.entered_at) AS entered_at FROM stage_visits v
               JOIN pipeline_stages s ON s.stage_id = v.stage_id AND s.pipeline_id = $1 AND s.kind = 'open'
               GROUP BY v.deal_id, v.stage_id, s.stage_order),
           fate AS (
               SELECT e.deal_id, e.stage_id, e.stage_order,
                      (d.status = 'won' OR EXISTS (SELECT 1 FROM stage_visits w WHERE w.deal_id = e.deal_id
                                 AND w.stage_order > e.stage_order AND w.entered_at > e.entered_at)) AS converted,
                      d.status IN ('won', 'lost') OR EXISTS (SELECT 1 FROM stage_visits w WHERE w.deal_id = e.deal_id
                                 AND w.stage_order > e.stage_order AND w.entered_at > e.entered_at) AS resolved
               FROM entered e JOIN deals d ON d.deal_id = e.deal_id AND d.pipeline_id = $1
                   AND ($2::text IS NULL OR d.team_id = $2) AND ($3::uuid[] IS NULL OR d.organisation_id = ANY($3))),
           types AS (SELECT DISTINCT {by} AS factor FROM activities)
           SELECT f.stage_id, f.stage_order, t.factor,
                  count(*) FILTER (WHERE a.has) AS with_n,
                  count(*) FILTER (WHERE a.has AND f.converted) AS with_converted,
                  count(*) FILTER (WHERE NOT a.has) AS without_n,
                  count(*) FILTER (WHERE NOT a.has AND f.converted) AS without_converted
           FROM fate f CROSS JOIN types t
           CROSS JOIN LATERAL (SELECT EXISTS (SELECT 1 FROM activities x WHERE x.deal_id = f.deal_id
                                 AND x.stage_id = f.stage_id AND x.{by} = t.factor) AS has) a
           WHERE f.resolved
           GROUP BY f.stage_id, f.stage_order, t.factor ORDER BY f.stage_order, t.factor""",
        pipeline_id,
        team_id,
        organisations,
    )
    out = []
    for r in rows:
        with_rate = _ratio(r["with_converted"], r["with_n"])
        without_rate = _ratio(r["without_converted"], r["without_n"])
        out.append(
            {
                "stage_id": r["stage_id"],
                by: r["factor"],
                "deals_with": r["with_n"],
                "conversion_with": with_rate,
                "deals_without": r["without_n"],
                "conversion_without": without_rate,
                "lift": round(with_rate / without_rate, 6) if with_rate is not None and without_rate else None,
            }
        )
    return out


def local_date(at: datetime, tz: str) -> date:
    return at.astimezone(ZoneInfo(tz)).date()
