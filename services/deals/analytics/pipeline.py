"""The analytics queries about the pipeline: the forecast (now and as it stood), stage conversion and timing, totals.

The formulas are in the package's docstring (``services.deals.analytics``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from shared.store.db import Conn

# Deals linked to one of the organisations given ({p}: the parameter; NULL: every deal). The forecast's rows
# (deal_versions) are of deals linked now: a link is the customer the deal is for, whenever it was recorded.
ORGANISATIONS = "({p}::uuid[] IS NULL OR deal_id IN (SELECT deal_id FROM deals WHERE organisation_id = ANY({p})))"
Scope = tuple[str, str | None, str | None, list[uuid.UUID] | None]  # pipeline, owner, team, organisations


# ---------------------------------------------------------------------------------------------- helpers
async def _one(conn: Conn, sql: str, *args: Any) -> Any:
    """The single row an aggregate query returns."""
    row = await conn.fetchrow(sql, *args)
    assert row is not None
    return row


def _money(v: Any, currency: str) -> str:
    q = Decimal(1) if currency in ("VND", "JPY", "KRW") else Decimal("0.01")
    return format(Decimal(v or 0).quantize(q), "f")


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 6) if b else None


def month_bounds(period: str, tz: str) -> tuple[datetime, datetime]:
    """A period 'YYYY-MM' or 'YYYY-Qn' as [start, end) instants in the business time zone."""
    year = int(period[:4])
    if period[5] == "Q":
        first = (int(period[6]) - 1) * 3 + 1
        last = first + 3
    else:
        first = int(period[5:7])
        last = first + 1
    zone = ZoneInfo(tz)
    start = datetime(year, first, 1, tzinfo=zone)
    end = datetime(year + (last > 12), (last - 1) % 12 + 1, 1, tzinfo=zone)
    return start, end


# ---------------------------------------------------------------------------------------------- forecast
def valid_at(param: str) -> str:
    """The deal_versions rows in force at a recorded time (a NULL time: the current rows)."""
    return (
        f"(CASE WHEN {param}::timestamptz IS NULL THEN valid_to IS NULL "
        f"ELSE valid_from <= {param} AND (valid_to IS NULL OR valid_to > {param}) END)"
    )


async def forecast(
    conn: Conn,
    *,
    as_of: datetime | None,
    tz: str,
    currency: str = "VND",
    owner_id: str | None = None,
    team_id: str | None = None,
    organisations: list[uuid.UUID] | None = None,
) -> list[dict[str, Any]]:
    """Per month and owner, as recorded at ``as_of`` (None: now): won, open count, potential, weighted, expected
    (``organisations``: of the deals linked to one of these now)."""
    rows = await conn.fetch(
        f"""WITH v AS (
               SELECT * FROM deal_versions WHERE {valid_at("$1")}
                 AND currency = $3 AND ($4::text IS NULL OR owner_id = $4) AND ($5::text IS NULL OR team_id = $5)
                 AND {ORGANISATIONS.format(p="$6")})
           SELECT period, owner_id,
                  sum(CASE WHEN status = 'won' THEN value ELSE 0 END) AS won,
                  count(*) FILTER (WHERE status = 'open') AS open_count,
                  sum(CASE WHEN status = 'open' THEN value ELSE 0 END) AS potential,
                  sum(CASE WHEN status = 'open' THEN value * probability ELSE 0 END) AS weighted
           FROM (SELECT *, CASE
                     WHEN status = 'won' THEN to_char(closed_at AT TIME ZONE $2, 'YYYY-MM')
                     WHEN status = 'open' THEN coalesce(to_char(expected_close_date, 'YYYY-MM'), 'unscheduled')
                 END AS period FROM v) x
           WHERE period IS NOT NULL
           GROUP BY period, owner_id ORDER BY period, owner_id""",
        as_of,
        tz,
        currency,
        owner_id,
        team_id,
        organisations,
    )
    return [
        {
            "period": r["period"],
            "owner_id": r["owner_id"],
            "currency": currency,
            "won": _money(r["won"], currency),
            "open_count": r["open_count"],
            "potential": _money(r["potential"], currency),
            "weighted": _money(r["weighted"], currency),
            "expected": _money(Decimal(r["won"]) + Decimal(r["weighted"]), currency),
        }
        for r in rows
    ]


CHANGE_KINDS = (
    "created",
    "won",
    "lost",
    "reopened",
    "pulled_in",
    "pushed_out",
    "value_up",
    "value_down",
    "reassigned",
)
# Each deal as recorded at $2 (b), as recorded at $1 (a; none if opened since) and as opened (o, for those opened
# since): in scope ($4 owner, $5 team) at either end, so a deal handed over shows for who had it and who has it.
_CHANGES = f"""WITH a AS (SELECT * FROM deal_versions WHERE {valid_at("$1")}),
        b AS (SELECT * FROM deal_versions WHERE {valid_at("$2")}),
        o AS (SELECT DISTINCT ON (deal_id) deal_id, owner_id, team_id FROM deal_versions
              WHERE deal_id IN (SELECT deal_id FROM b) AND deal_id NOT IN (SELECT deal_id FROM a)
              ORDER BY deal_id, version),
        x AS (SELECT b.deal_id, b.owner_id, b.team_id,
                     coalesce(a.owner_id, o.owner_id) AS old_owner, coalesce(a.team_id, o.team_id) AS old_team,
                     a.status AS was, b.status AS now, a.value AS old_value, b.value AS new_value,
                     a.expected_close_date AS old_close, b.expected_close_date AS new_close
              FROM b LEFT JOIN a USING (deal_id) LEFT JOIN o USING (deal_id) WHERE b.currency = $3)
    SELECT *, ($4::text IS NULL OR owner_id = $4) AND ($5::text IS NULL OR team_id IS NOT DISTINCT FROM $5)
              AS in_scope_now
    FROM x
    WHERE ($4::text IS NULL OR owner_id = $4 OR old_owner = $4)
      AND ($5::text IS NULL OR team_id IS NOT DISTINCT FROM $5 OR old_team IS NOT DISTINCT FROM $5)
      AND {ORGANISATIONS.format(p="$6")}
    ORDER BY deal_id"""


def deal_changes(r: Any) -> list[tuple[str, Decimal]]:
    """What moved one deal's part of the forecast between the two times, each with its value; net, as the two
    times' records compare (a deal opened in between is compared with how it was opened)."""
    changes: list[tuple[str, Decimal]] = []
    value = r["new_value"]
    if not r["in_scope_now"]:  # handed over to someone out of scope: only that, for who had it
        return [("reassigned", value)]
    if r["was"] is None:
        changes.append(("created", value))
    if r["now"] != (r["was"] or "open"):
        changes.append(({"won": "won", "lost": "lost", "open": "reopened"}[r["now"]], value))
    if r["was"] is not None:
        if r["old_close"] and r["new_close"] and r["new_close"] != r["old_close"]:
            changes.append(("pulled_in" if r["new_close"] < r["old_close"] else "pushed_out", value))
        if r["new_value"] != r["old_value"]:
            changes.append(("value_up" if r["new_value"] > r["old_value"] else "value_down", value - r["old_value"]))
    if (r["owner_id"], r["team_id"]) != (r["old_owner"], r["old_team"]):
        changes.append(("reassigned", value))
    return changes


async def forecast_changes(
    conn: Conn,
    *,
    since: datetime,
    until: datetime | None,
    currency: str = "VND",
    owner_id: str | None = None,
    team_id: str | None = None,
    organisations: list[uuid.UUID] | None = None,
) -> dict[str, Any]:
    """What moved the forecast between two recorded times (``until`` None: now), deal by deal: a deal opened in
    between is created, and won or lost too if it closed in between; a deal handed over is reassigned."""
    rows = await conn.fetch(_CHANGES, since, until, currency, owner_id, team_id, organisations)
    summary: dict[str, dict[str, Any]] = {k: {"count": 0, "value": Decimal(0)} for k in CHANGE_KINDS}
    deals = []
    for r in rows:
        changes = deal_changes(r)
        for kind, value in changes:
            summary[kind]["count"] += 1
            summary[kind]["value"] += value
        if changes:
            deals.append(
                {
                    "deal_id": str(r["deal_id"]),
                    "owner_id": r["owner_id"],
                    "previous_owner_id": r["old_owner"],
                    "changes": [kind for kind, _ in changes],
                }
            )
    return {
        "since": since.isoformat(),
        "until": until.isoformat() if until else None,
        "currency": currency,
        "summary": {k: {"count": v["count"], "value": _money(v["value"], currency)} for k, v in summary.items()},
        "deals": deals,
    }


# ---------------------------------------------------------------------------------------------- stages
# Each stage's figures at once, set-based (three queries whatever the number of stages): the stages are $1 (ids) with
# their orders $4. The deals whose first entry into a stage falls in [$2, $3), and what became of them by $7.
_COHORT = """WITH s AS (SELECT * FROM unnest($1::text[], $4::int[]) AS s (stage_id, stage_order)),
       first AS (
           SELECT v.stage_id, v.deal_id, d.won_at, d.lost_at, min(v.entered_at) AS entered_at FROM stage_visits v
           JOIN deals d USING (deal_id)
           WHERE v.stage_id = ANY($1) AND d.pipeline_id = $5 AND ($6::text IS NULL OR d.owner_id = $6)
             AND ($8::text IS NULL OR d.team_id = $8) AND ($9::uuid[] IS NULL OR d.organisation_id = ANY($9))
           GROUP BY v.stage_id, v.deal_id, d.won_at, d.lost_at
           HAVING min(v.entered_at) >= $2 AND min(v.entered_at) < $3),
       fate AS (
           SELECT f.stage_id,
                  count(w.deal_id) > 0 OR (f.won_at IS NOT NULL AND f.won_at <= $7) AS advanced,
                  f.lost_at IS NOT NULL AND f.lost_at <= $7 AS lost
           FROM first f JOIN s USING (stage_id)
           LEFT JOIN stage_visits w ON w.deal_id = f.deal_id
               AND w.stage_order > s.stage_order AND w.entered_at > f.entered_at AND w.entered_at <= $7
           GROUP BY f.stage_id, f.deal_id, f.won_at, f.lost_at)
       SELECT stage_id, count(*) AS entered,
              count(*) FILTER (WHERE advanced) AS advanced,
              count(*) FILTER (WHERE NOT advanced AND lost) AS lost,
              count(*) FILTER (WHERE NOT advanced AND NOT lost) AS still_open
       FROM fate GROUP BY stage_id"""
# The visits of each stage of $1 that ended in [$2, $3): how long they took, how many went back.
_TIMING = """SELECT v.stage_id, count(*) AS visits,
              avg(extract(epoch FROM exited_at - entered_at) / 86400) AS mean_days,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM exited_at - entered_at) / 86400)
                  AS median_days,
              percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM exited_at - entered_at) / 86400)
                  AS p90_days,
              count(*) FILTER (WHERE exit_kind = 'regressed') AS backward_moves
       FROM stage_visits v JOIN deals d USING (deal_id)
       WHERE v.stage_id = ANY($1) AND v.exited_at >= $2 AND v.exited_at < $3 AND d.pipeline_id = $4
         AND ($5::text IS NULL OR d.owner_id = $5) AND ($6::text IS NULL OR d.team_id = $6)
         AND ($7::uuid[] IS NULL OR d.organisation_id = ANY($7))
       GROUP BY v.stage_id"""
# The visits that ended in [$2, $3) skipping each stage of $1.
_SKIPPED = """SELECT s.stage_id, count(*) AS n FROM unnest($1::text[]) AS s (stage_id)
       JOIN stage_visits v ON s.stage_id = ANY (v.skipped_stage_ids) JOIN deals d USING (deal_id)
       WHERE v.exited_at >= $2 AND v.exited_at < $3
         AND d.pipeline_id = $4 AND ($5::text IS NULL OR d.owner_id = $5)
         AND ($6::text IS NULL OR d.team_id = $6) AND ($7::uuid[] IS NULL OR d.organisation_id = ANY($7))
       GROUP BY s.stage_id"""


async def stage_analytics(
    conn: Conn,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    pipeline_id: str = "default",
    currency: str = "VND",
    owner_id: str | None = None,
    team_id: str | None = None,
    organisations: list[uuid.UUID] | None = None,
) -> dict[str, Any]:
    """Conversion, time in stage, backward moves and skips per stage; win rate, size, cycle, velocity."""
    stages = await conn.fetch(
        "SELECT stage_id, name, stage_order FROM pipeline_stages WHERE pipeline_id = $1 AND kind = 'open' "
        "ORDER BY stage_order",
        pipeline_id,
    )
    scope = (pipeline_id, owner_id, team_id, organisations)
    per_stage = await _stage_figures(conn, stages, start, end, now, scope)
    totals = await pipeline_totals(
        conn,
        start=start,
        end=end,
        pipeline_id=pipeline_id,
        currency=currency,
        owner_id=owner_id,
        team_id=team_id,
        organisations=organisations,
    )
    return {"pipeline_id": pipeline_id, "from": start.isoformat(), "to": end.isoformat(), "stages": per_stage, **totals}


async def _stage_figures(
    conn: Conn, stages: list[Any], start: datetime, end: datetime, now: datetime, scope: Scope
) -> list[dict[str, Any]]:
    """Each stage's conversion, time in stage, backward moves and skips; ``scope``: pipeline, owner, team,
    organisations."""
    pipeline_id, owner_id, team_id, orgs = scope
    ids, orders = [s["stage_id"] for s in stages], [s["stage_order"] for s in stages]
    cohorts = {
        r["stage_id"]: r
        for r in await conn.fetch(_COHORT, ids, start, end, orders, pipeline_id, owner_id, now, team_id, orgs)
    }
    timings = {
        r["stage_id"]: r for r in await conn.fetch(_TIMING, ids, start, end, pipeline_id, owner_id, team_id, orgs)
    }
    skips = {
        r["stage_id"]: r["n"] for r in await conn.fetch(_SKIPPED, ids, start, end, pipeline_id, owner_id, team_id, orgs)
    }
    none = {"entered": 0, "advanced": 0, "lost": 0, "still_open": 0}
    no_visits = {"visits": 0, "mean_days": None, "median_days": None, "p90_days": None, "backward_moves": 0}
    out = []
    for s in stages:
        cohort, timing = cohorts.get(s["stage_id"], none), timings.get(s["stage_id"], no_visits)
        resolved = cohort["advanced"] + cohort["lost"]
        out.append(
            {
                "stage_id": s["stage_id"],
                "name": s["name"],
                "entered": cohort["entered"],
                "advanced": cohort["advanced"],
                "lost": cohort["lost"],
                "still_open": cohort["still_open"],
                "conversion_rate": _ratio(cohort["advanced"], resolved),
                "visits_ended": timing["visits"],
                "mean_days": _round(timing["mean_days"]),
                "median_days": _round(timing["median_days"]),
                "p90_days": _round(timing["p90_days"]),
                "backward_moves": timing["backward_moves"],
                "skipped": skips.get(s["stage_id"], 0),
            }
        )
    return out


def _round(v: Any, places: int = 4) -> float | None:
    return None if v is None else round(float(v), places)


async def pipeline_totals(
    conn: Conn,
    *,
    start: datetime,
    end: datetime,
    pipeline_id: str,
    currency: str,
    owner_id: str | None,
    team_id: str | None = None,
    organisations: list[uuid.UUID] | None = None,
) -> dict[str, Any]:
    r = await _one(
        conn,
        """SELECT count(*) FILTER (WHERE won_at >= $1 AND won_at < $2) AS won,
                  count(*) FILTER (WHERE lost_at >= $1 AND lost_at < $2) AS lost,
                  sum(value) FILTER (WHERE won_at >= $1 AND won_at < $2) AS won_value,
                  avg(extract(epoch FROM won_at - opened_at) / 86400) FILTER (WHERE won_at >= $1 AND won_at < $2)
                      AS mean_cycle_days,
                  percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM won_at - opened_at) / 86400)
                      FILTER (WHERE won_at >= $1 AND won_at < $2) AS median_cycle_days,
                  count(*) FILTER (WHERE status = 'open') AS open_now
           FROM deals WHERE pipeline_id = $3 AND currency = $4 AND ($5::text IS NULL OR owner_id = $5)
             AND ($6::text IS NULL OR team_id = $6) AND ($7::uuid[] IS NULL OR organisation_id = ANY($7))""",
        start,
        end,
        pipeline_id,
        currency,
        owner_id,
        team_id,
        organisations,
    )
    won, lost = r["won"], r["lost"]
    win_rate = _ratio(won, won + lost)
    avg_size = Decimal(r["won_value"]) / won if won else None
    velocity = None
    if avg_size is not None and win_rate is not None and r["mean_cycle_days"]:
        velocity = Decimal(r["open_now"]) * avg_size * Decimal(str(win_rate)) / Decimal(r["mean_cycle_days"])
    return {
        "currency": currency,
        "won": won,
        "lost": lost,
        "win_rate": win_rate,
        "won_value": _money(r["won_value"], currency),
        "average_deal_size": _money(avg_size, currency) if avg_size is not None else None,
        "mean_cycle_days": _round(r["mean_cycle_days"]),
        "median_cycle_days": _round(r["median_cycle_days"]),
        "open_now": r["open_now"],
        "velocity_per_day": _money(velocity, currency) if velocity is not None else None,
    }
