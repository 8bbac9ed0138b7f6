"""The sales analytics read model: one projection of facts, and the queries managers ask of it.

Facts kept (no value that depends on today):
- ``deals``: each deal's current facts; ``deal_versions``: the forecast-relevant facts of each deal with the
  recorded time they became known (``valid_from``/``valid_to``), so the forecast can be computed as it stood
  on any past date, and two dates compared;
- ``stage_visits``: one row per visit of a stage (entered, exited, how it left, stages skipped on the way);
- ``activities``: each activity with the stage it happened in; ``targets``; ``pipeline_stages``.

Formulas (DOMAIN.md §2.5), per currency (one currency per query, VND by default):
- effective probability = the deal's override, else its stage's probability when it entered the stage;
- forecast for a month = won value closed in it + Σ open value × probability expected to close in it;
- stage conversion: the cohort = deals whose first entry into the stage falls in the window; advanced = those
  that later entered a later stage or were won; lost = those lost without advancing; conversion =
  advanced / (advanced + lost); still-open deals are shown apart (censored);
- time in stage over visits that ended in the window: mean, median and p90 (linear interpolation);
- win rate = won / (won + lost) among deals closed in the window; average deal size = won value / won;
  cycle = won_at − opened_at in days; velocity = open deals × average size × win rate / mean cycle days;
- deals needed per stage for a target (seed S2): W = ⌈(target − won) / average size⌉, E = Σ_open P(win | stage),
  gap = max(0, W − E), needed at stage k = ⌈gap / P(win | k)⌉ with P(win | k) = won / resolved among deals that
  entered k;
- success factors (seed S3): among resolved deals that entered a stage, conversion with vs without an activity of
  a type logged while in that stage, and the lift.
"""

from __future__ import annotations

import math
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from services.deals import events as ev
from shared.messaging.envelope import CloudEvent
from shared.messaging.projections import Fact, Projection, one_by_one
from shared.store.db import Conn

DDL = """
CREATE TABLE IF NOT EXISTS pipeline_stages (
    pipeline_id text NOT NULL, stage_id text NOT NULL, name text NOT NULL, stage_order integer NOT NULL,
    probability numeric NOT NULL, stuck_after_days integer, kind text NOT NULL,
    PRIMARY KEY (pipeline_id, stage_id));
CREATE TABLE IF NOT EXISTS deals (
    deal_id uuid PRIMARY KEY, owner_id text NOT NULL, team_id text, pipeline_id text NOT NULL,
    source text, status text NOT NULL, value numeric NOT NULL, currency text NOT NULL,
    stage_id text NOT NULL, stage_order integer NOT NULL, stage_probability numeric NOT NULL,
    probability_override numeric, expected_close_date date, entered_stage_at timestamptz NOT NULL,
    opened_at timestamptz NOT NULL, won_at timestamptz, lost_at timestamptz, lost_reason text,
    competitor text, stage_at_close text, close_date_pushes integer NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS deal_versions (
    deal_id uuid NOT NULL, valid_from timestamptz NOT NULL, valid_to timestamptz, version integer NOT NULL,
    owner_id text NOT NULL, team_id text, status text NOT NULL, value numeric NOT NULL, currency text NOT NULL,
    probability numeric NOT NULL, expected_close_date date, closed_at timestamptz,
    PRIMARY KEY (deal_id, version));
CREATE INDEX IF NOT EXISTS deal_versions_valid ON deal_versions (valid_from, valid_to);
CREATE TABLE IF NOT EXISTS stage_visits (
    deal_id uuid NOT NULL, visit integer NOT NULL, stage_id text NOT NULL, stage_order integer NOT NULL,
    owner_id text NOT NULL, entered_at timestamptz NOT NULL, exited_at timestamptz, exit_kind text,
    skipped_stage_ids text[] NOT NULL DEFAULT '{}', PRIMARY KEY (deal_id, visit));
CREATE TABLE IF NOT EXISTS activities (
    activity_id uuid PRIMARY KEY, deal_id uuid NOT NULL, stage_id text NOT NULL, owner_id text NOT NULL,
    activity_type text NOT NULL, channel text NOT NULL, at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS targets (
    target_id uuid PRIMARY KEY, owner_id text, team_id text, period text NOT NULL, amount numeric NOT NULL,
    currency text NOT NULL);
"""


# ---------------------------------------------------------------------------------------------- apply
async def _version(conn: Conn, e: CloudEvent, deal_id: uuid.UUID, **changes: Any) -> None:
    """Close the deal's current forecast row at this event's recorded time and open one with ``changes``."""
    row = await conn.fetchrow("SELECT * FROM deal_versions WHERE deal_id = $1 AND valid_to IS NULL", deal_id)
    if row is None:
        return
    await conn.execute(
        "UPDATE deal_versions SET valid_to = $3 WHERE deal_id = $1 AND version = $2",
        deal_id,
        row["version"],
        e.recordedtime,
    )
    values = {
        k: row[k]
        for k in (
            "owner_id",
            "team_id",
            "status",
            "value",
            "currency",
            "probability",
            "expected_close_date",
            "closed_at",
        )
    } | changes
    await conn.execute(
        """INSERT INTO deal_versions (deal_id, valid_from, version, owner_id, team_id, status, value, currency,
               probability, expected_close_date, closed_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
        deal_id,
        e.recordedtime,
        e.streamversion,
        values["owner_id"],
        values["team_id"],
        values["status"],
        values["value"],
        values["currency"],
        values["probability"],
        values["expected_close_date"],
        values["closed_at"],
    )


async def _probability(conn: Conn, deal_id: uuid.UUID) -> Decimal:
    p = await conn.fetchval(
        "SELECT coalesce(probability_override, stage_probability) FROM deals WHERE deal_id = $1", deal_id
    )
    return Decimal(p)


async def _close_visit(conn: Conn, deal_id: uuid.UUID, at: datetime, kind: str, skipped: tuple[str, ...] = ()) -> None:
    await conn.execute(
        """UPDATE stage_visits SET exited_at = $2, exit_kind = $3, skipped_stage_ids = $4
           WHERE deal_id = $1 AND exited_at IS NULL""",
        deal_id,
        at,
        kind,
        list(skipped),
    )


async def _open_visit(conn: Conn, deal_id: uuid.UUID, stage: ev.StageSnapshot, owner: str, at: datetime) -> None:
    await conn.execute(
        """INSERT INTO stage_visits (deal_id, visit, stage_id, stage_order, owner_id, entered_at)
           SELECT $1, coalesce(max(visit), 0) + 1, $2, $3, $4, $5 FROM stage_visits WHERE deal_id = $1""",
        deal_id,
        stage.stage_id,
        stage.order,
        owner,
        at,
    )


async def apply(conn: Conn, fact: Fact) -> None:
    e, event = fact.envelope, fact.event
    match event:
        case ev.PipelineDefined():
            await conn.execute("DELETE FROM pipeline_stages WHERE pipeline_id = $1", event.pipeline_id)
            await conn.executemany(
                "INSERT INTO pipeline_stages VALUES ($1, $2, $3, $4, $5, $6, $7)",
                [
                    (event.pipeline_id, s.stage_id, s.name, s.order, s.probability, s.stuck_after_days, s.kind.value)
                    for s in event.stages
                ],
            )
        case ev.SalesTargetSet():
            await conn.execute(
                """INSERT INTO targets VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (target_id) DO UPDATE
                   SET amount = EXCLUDED.amount, currency = EXCLUDED.currency""",
                event.target_id,
                event.owner_id,
                event.team_id,
                event.period,
                event.amount.amount,
                event.amount.currency,
            )
        case ev.DealOpened():
            await conn.execute(
                """INSERT INTO deals (deal_id, owner_id, team_id, pipeline_id, source, status, value, currency,
                       stage_id, stage_order, stage_probability, expected_close_date, entered_stage_at, opened_at)
                   VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, $8, $9, $10, $11, $12, $12)""",
                event.deal_id,
                event.owner_id,
                event.team_id,
                event.pipeline_id,
                event.source,
                event.value.amount,
                event.value.currency,
                event.stage.stage_id,
                event.stage.order,
                event.stage.probability,
                event.expected_close_date,
                event.opened_at,
            )
            await conn.execute(
                """INSERT INTO deal_versions (deal_id, valid_from, version, owner_id, team_id, status, value,
                       currency, probability, expected_close_date)
                   VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, $8, $9)""",
                event.deal_id,
                e.recordedtime,
                e.streamversion,
                event.owner_id,
                event.team_id,
                event.value.amount,
                event.value.currency,
                event.stage.probability,
                event.expected_close_date,
            )
            await _open_visit(conn, event.deal_id, event.stage, event.owner_id, event.opened_at)
        case ev.StageChanged():
            s = event.to_stage
            await conn.execute(
                """UPDATE deals SET stage_id = $2, stage_order = $3, stage_probability = $4, entered_stage_at = $5
                   WHERE deal_id = $1""",
                event.deal_id,
                s.stage_id,
                s.order,
                s.probability,
                event.changed_at,
            )
            kind = (
                ("skipped_forward" if event.skipped_stage_ids else "advanced")
                if event.direction == "forward"
                else "regressed"
            )
            await _close_visit(conn, event.deal_id, event.changed_at, kind, event.skipped_stage_ids)
            owner = await conn.fetchval("SELECT owner_id FROM deals WHERE deal_id = $1", event.deal_id)
            await _open_visit(conn, event.deal_id, s, owner, event.changed_at)
            await _version(conn, e, event.deal_id, probability=await _probability(conn, event.deal_id))
        case ev.DealValueChanged() | ev.DealLinesChanged():
            value = event.new if isinstance(event, ev.DealValueChanged) else event.value
            await conn.execute("UPDATE deals SET value = $2 WHERE deal_id = $1", event.deal_id, value.amount)
            await _version(conn, e, event.deal_id, value=value.amount)
        case ev.ExpectedCloseDateChanged():
            await conn.execute(
                "UPDATE deals SET expected_close_date = $2, close_date_pushes = $3 WHERE deal_id = $1",
                event.deal_id,
                event.new,
                event.push_count,
            )
            await _version(conn, e, event.deal_id, expected_close_date=event.new)
        case ev.DealProbabilityOverridden() | ev.DealProbabilityOverrideCleared():
            override = event.probability if isinstance(event, ev.DealProbabilityOverridden) else None
            await conn.execute("UPDATE deals SET probability_override = $2 WHERE deal_id = $1", event.deal_id, override)
            await _version(conn, e, event.deal_id, probability=await _probability(conn, event.deal_id))
        case ev.DealReassigned():
            await conn.execute(
                "UPDATE deals SET owner_id = $2, team_id = $3 WHERE deal_id = $1",
                event.deal_id,
                event.to_owner_id,
                event.to_team_id,
            )
            await _version(conn, e, event.deal_id, owner_id=event.to_owner_id, team_id=event.to_team_id)
        case ev.ActivityLogged():
            await conn.execute(
                """INSERT INTO activities SELECT $1, $2, $3, owner_id, $4, $5, $6 FROM deals WHERE deal_id = $2
                   ON CONFLICT DO NOTHING""",
                event.activity_id,
                event.deal_id,
                event.stage_id,
                event.activity_type.value,
                event.channel.value,
                e.time,
            )
        case ev.DealWon():
            await conn.execute(
                "UPDATE deals SET status = 'won', won_at = $2, value = $3, stage_at_close = $4 WHERE deal_id = $1",
                event.deal_id,
                event.won_at,
                event.value.amount,
                event.stage_at_win.stage_id,
            )
            await _close_visit(conn, event.deal_id, event.won_at, "won")
            await _version(conn, e, event.deal_id, status="won", value=event.value.amount, closed_at=event.won_at)
        case ev.DealLost():
            await conn.execute(
                """UPDATE deals SET status = 'lost', lost_at = $2, lost_reason = $3, competitor = $4,
                       stage_at_close = $5 WHERE deal_id = $1""",
                event.deal_id,
                event.lost_at,
                event.reason,
                event.competitor,
                event.stage_at_loss.stage_id,
            )
            await _close_visit(conn, event.deal_id, event.lost_at, "lost")
            await _version(conn, e, event.deal_id, status="lost", closed_at=event.lost_at)
        case ev.DealReopened():
            s = event.to_stage
            await conn.execute(
                """UPDATE deals SET status = 'open', won_at = NULL, lost_at = NULL, lost_reason = NULL,
                       competitor = NULL, stage_at_close = NULL, stage_id = $2, stage_order = $3,
                       stage_probability = $4, entered_stage_at = $5 WHERE deal_id = $1""",
                event.deal_id,
                s.stage_id,
                s.order,
                s.probability,
                event.reopened_at,
            )
            owner = await conn.fetchval("SELECT owner_id FROM deals WHERE deal_id = $1", event.deal_id)
            await _open_visit(conn, event.deal_id, s, owner, event.reopened_at)
            await _version(
                conn,
                e,
                event.deal_id,
                status="open",
                closed_at=None,
                probability=await _probability(conn, event.deal_id),
            )


def analytics(deals_topic: str) -> Projection:
    return Projection(
        name="analytics",
        topics=(deals_topic,),
        ddl=DDL,
        apply=one_by_one(apply),
        accepts=("pipelines.deals.",),
        tables=("pipeline_stages", "deals", "deal_versions", "stage_visits", "activities", "targets"),
    )


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
) -> list[dict[str, Any]]:
    """Per month and owner, as recorded at ``as_of`` (None: now): won, open count, potential, weighted, expected."""
    rows = await conn.fetch(
        f"""WITH v AS (
               SELECT * FROM deal_versions WHERE {valid_at("$1")}
                 AND currency = $3 AND ($4::text IS NULL OR owner_id = $4) AND ($5::text IS NULL OR team_id = $5))
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


async def forecast_changes(
    conn: Conn,
    *,
    since: datetime,
    until: datetime | None,
    currency: str = "VND",
    owner_id: str | None = None,
    team_id: str | None = None,
) -> dict[str, Any]:
    """What moved the forecast between two recorded times (``until`` None: now), deal by deal."""
    rows = await conn.fetch(
        f"""WITH a AS (SELECT * FROM deal_versions WHERE {valid_at("$1")}),
                b AS (SELECT * FROM deal_versions WHERE {valid_at("$2")})
           SELECT b.deal_id, b.owner_id, a.status AS was, b.status AS now, a.value AS old_value, b.value AS new_value,
                  a.expected_close_date AS old_close, b.expected_close_date AS new_close
           FROM b LEFT JOIN a USING (deal_id)
           WHERE b.currency = $3 AND ($4::text IS NULL OR b.owner_id = $4) AND ($5::text IS NULL OR b.team_id = $5)
           ORDER BY b.deal_id""",
        since,
        until,
        currency,
        owner_id,
        team_id,
    )
    kinds = ("created", "won", "lost", "reopened", "pulled_in", "pushed_out", "value_up", "value_down")
    summary: dict[str, dict[str, Any]] = {k: {"count": 0, "value": Decimal(0)} for k in kinds}
    deals = []
    for r in rows:
        changes: list[str] = []
        if r["was"] is None:
            changes.append("created")
        else:
            if r["was"] != r["now"]:
                changes.append({"won": "won", "lost": "lost", "open": "reopened"}[r["now"]])
            if r["old_close"] and r["new_close"] and r["new_close"] != r["old_close"]:
                changes.append("pulled_in" if r["new_close"] < r["old_close"] else "pushed_out")
            if r["new_value"] != r["old_value"]:
                changes.append("value_up" if r["new_value"] > r["old_value"] else "value_down")
        for c in changes:
            summary[c]["count"] += 1
            delta = r["new_value"] - r["old_value"] if c.startswith("value_") else r["new_value"]
            summary[c]["value"] += delta
        if changes:
            deals.append({"deal_id": str(r["deal_id"]), "owner_id": r["owner_id"], "changes": changes})
    return {
        "since": since.isoformat(),
        "until": until.isoformat() if until else None,
        "currency": currency,
        "summary": {k: {"count": v["count"], "value": _money(v["value"], currency)} for k, v in summary.items()},
        "deals": deals,
    }


# ---------------------------------------------------------------------------------------------- stages
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
) -> dict[str, Any]:
    """Conversion, time in stage, backward moves and skips per stage; win rate, size, cycle, velocity."""
    stages = await conn.fetch(
        "SELECT stage_id, name, stage_order FROM pipeline_stages WHERE pipeline_id = $1 AND kind = 'open' "
        "ORDER BY stage_order",
        pipeline_id,
    )
    per_stage = []
    for s in stages:
        cohort = await _one(
            conn,
            """WITH first AS (
                   SELECT v.deal_id, min(v.entered_at) AS entered_at FROM stage_visits v
                   JOIN deals d USING (deal_id)
                   WHERE v.stage_id = $1 AND d.pipeline_id = $5 AND ($6::text IS NULL OR d.owner_id = $6)
                     AND ($8::text IS NULL OR d.team_id = $8)
                   GROUP BY v.deal_id HAVING min(v.entered_at) >= $2 AND min(v.entered_at) < $3),
               fate AS (
                   SELECT f.deal_id,
                          EXISTS (SELECT 1 FROM stage_visits w WHERE w.deal_id = f.deal_id
                                    AND w.stage_order > $4 AND w.entered_at > f.entered_at AND w.entered_at <= $7)
                          OR (d.won_at IS NOT NULL AND d.won_at <= $7) AS advanced,
                          d.lost_at IS NOT NULL AND d.lost_at <= $7 AS lost
                   FROM first f JOIN deals d USING (deal_id))
               SELECT count(*) AS entered,
                      count(*) FILTER (WHERE advanced) AS advanced,
                      count(*) FILTER (WHERE NOT advanced AND lost) AS lost,
                      count(*) FILTER (WHERE NOT advanced AND NOT lost) AS still_open
               FROM fate""",
            s["stage_id"],
            start,
            end,
            s["stage_order"],
            pipeline_id,
            owner_id,
            now,
            team_id,
        )
        timing = await _one(
            conn,
            """SELECT count(*) AS visits,
                      avg(extract(epoch FROM exited_at - entered_at) / 86400) AS mean_days,
                      percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM exited_at - entered_at) / 86400)
                          AS median_days,
                      percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM exited_at - entered_at) / 86400)
                          AS p90_days,
                      count(*) FILTER (WHERE exit_kind = 'regressed') AS backward_moves
               FROM stage_visits v JOIN deals d USING (deal_id)
               WHERE v.stage_id = $1 AND v.exited_at >= $2 AND v.exited_at < $3 AND d.pipeline_id = $4
                 AND ($5::text IS NULL OR d.owner_id = $5) AND ($6::text IS NULL OR d.team_id = $6)""",
            s["stage_id"],
            start,
            end,
            pipeline_id,
            owner_id,
            team_id,
        )
        skipped = await conn.fetchval(
            """SELECT count(*) FROM stage_visits v JOIN deals d USING (deal_id)
               WHERE $1 = ANY (v.skipped_stage_ids) AND v.exited_at >= $2 AND v.exited_at < $3
                 AND d.pipeline_id = $4 AND ($5::text IS NULL OR d.owner_id = $5)
                 AND ($6::text IS NULL OR d.team_id = $6)""",
            s["stage_id"],
            start,
            end,
            pipeline_id,
            owner_id,
            team_id,
        )
        resolved = cohort["advanced"] + cohort["lost"]
        per_stage.append(
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
                "skipped": skipped,
            }
        )
    totals = await pipeline_totals(
        conn, start=start, end=end, pipeline_id=pipeline_id, currency=currency, owner_id=owner_id, team_id=team_id
    )
    return {"pipeline_id": pipeline_id, "from": start.isoformat(), "to": end.isoformat(), "stages": per_stage, **totals}


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
             AND ($6::text IS NULL OR team_id = $6)""",
        start,
        end,
        pipeline_id,
        currency,
        owner_id,
        team_id,
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


# ---------------------------------------------------------------------------------------------- people
async def scorecard(
    conn: Conn,
    *,
    period: str,
    tz: str,
    now: datetime,
    currency: str = "VND",
    owner_id: str | None = None,
    team_id: str | None = None,
) -> list[dict[str, Any]]:
    """Per salesperson for a period: activity, results, pipeline now, target and attainment (with ``team_id``: each
    counting only their deals in that team)."""
    start, end = month_bounds(period, tz)
    owners = await conn.fetch(
        """SELECT DISTINCT owner_id FROM deals WHERE ($1::text IS NULL OR owner_id = $1)
             AND ($2::text IS NULL OR team_id = $2) ORDER BY owner_id""",
        owner_id,
        team_id,
    )
    out = []
    for o in owners:
        owner = o["owner_id"]
        r = await _one(
            conn,
            """SELECT count(*) FILTER (WHERE opened_at >= $2 AND opened_at < $3) AS opened,
                      count(*) FILTER (WHERE won_at >= $2 AND won_at < $3) AS won,
                      count(*) FILTER (WHERE lost_at >= $2 AND lost_at < $3) AS lost,
                      coalesce(sum(value) FILTER (WHERE won_at >= $2 AND won_at < $3), 0) AS won_value,
                      avg(extract(epoch FROM won_at - opened_at) / 86400) FILTER (WHERE won_at >= $2 AND won_at < $3)
                          AS cycle_days,
                      count(*) FILTER (WHERE status = 'open') AS open_now,
                      coalesce(sum(value * coalesce(probability_override, stage_probability))
                               FILTER (WHERE status = 'open'), 0) AS weighted_now,
                      coalesce(avg(close_date_pushes) FILTER (WHERE opened_at >= $2 AND opened_at < $3), 0) AS pushes
               FROM deals WHERE owner_id = $1 AND currency = $4 AND ($5::text IS NULL OR team_id = $5)""",
            owner,
            start,
            end,
            currency,
            team_id,
        )
        stuck = await conn.fetchval(
            """SELECT count(*) FROM deals d JOIN pipeline_stages s USING (pipeline_id, stage_id)
               WHERE d.owner_id = $1 AND d.status = 'open' AND s.stuck_after_days IS NOT NULL
                 AND $2::timestamptz - d.entered_stage_at > make_interval(days => s.stuck_after_days)
                 AND ($3::text IS NULL OR d.team_id = $3)""",
            owner,
            now,
            team_id,
        )
        acts = await conn.fetch(
            """SELECT a.activity_type, count(*) AS n FROM activities a
               WHERE a.owner_id = $1 AND a.at >= $2 AND a.at < $3
                 AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM deals d WHERE d.deal_id = a.deal_id AND d.team_id = $4))
               GROUP BY a.activity_type ORDER BY a.activity_type""",
            owner,
            start,
            end,
            team_id,
        )
        target = await conn.fetchval(
            "SELECT sum(amount) FROM targets WHERE owner_id = $1 AND period = $2 AND currency = $3",
            owner,
            period,
            currency,
        )
        won, lost = r["won"], r["lost"]
        out.append(
            {
                "owner_id": owner,
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
                "activities": {a["activity_type"]: a["n"] for a in acts},
                "avg_close_date_pushes": _round(r["pushes"]),
                "target": _money(target, currency) if target is not None else None,
                "attainment": _ratio(float(r["won_value"]), float(target)) if target else None,
            }
        )
    return out


async def lost_reasons(
    conn: Conn,
    *,
    start: datetime,
    end: datetime,
    currency: str = "VND",
    owner_id: str | None = None,
    team_id: str | None = None,
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT lost_reason, stage_at_close, competitor, count(*) AS n, sum(value) AS value FROM deals
           WHERE lost_at >= $1 AND lost_at < $2 AND currency = $3 AND ($4::text IS NULL OR owner_id = $4)
             AND ($5::text IS NULL OR team_id = $5)
           GROUP BY lost_reason, stage_at_close, competitor
           ORDER BY count(*) DESC, lost_reason, stage_at_close, competitor NULLS FIRST""",
        start,
        end,
        currency,
        owner_id,
        team_id,
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
    conn: Conn, *, pipeline_id: str = "default", by: str = "activity_type", team_id: str | None = None
) -> list[dict[str, Any]]:
    """Per stage and activity type or channel (seed S3): conversion of resolved deals with and without it (of one
    team's deals, or every deal's)."""
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
                   AND ($2::text IS NULL OR d.team_id = $2)),
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
