"""The queries that read the sales board: the board by stage, deal lists, follow-ups due, stuck deals; each
deal's next step and its two flags (no next step, overdue: ``services.deals.projections.next_steps``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from services.alerts.scanner import Condition
from services.deals.projections.next_steps import nest, next_step_columns, next_step_join
from shared.store.db import Conn

# Visibility filter shared by the board queries: $1 = user id, $2 = team, $3 = sees everything.
VISIBLE = "($3 OR b.owner_id = $1 OR (b.team_id IS NOT NULL AND b.team_id = $2))"

# A deal's probability: won 1, lost 0 (a closed deal weighs what it brought), open its override or its stage's.
PROBABILITY = """CASE b.status WHEN 'won' THEN 1 WHEN 'lost' THEN 0
    ELSE coalesce(b.probability_override, b.stage_probability) END"""

BOARD_ROW = f"""
    b.deal_id, b.title, b.customer, b.organisation_id, b.owner_id, b.team_id, b.pipeline_id, b.stage_id, b.stage_name, b.stage_order,
    b.status, b.value, b.currency, {PROBABILITY} AS probability,
    round(b.value * {PROBABILITY}, CASE WHEN b.currency IN ('VND', 'JPY', 'KRW') THEN 0 ELSE 2 END) AS weighted_value,
    b.expected_close_date, b.close_date_pushes, b.opened_at, b.entered_stage_at, b.closed_at, b.lost_reason,
    b.last_activity_at, b.activities, b.delivery_risk, b.source, b.version,
    floor(extract(epoch FROM ($4::timestamptz - b.entered_stage_at)) / 86400)::int AS days_in_stage,
    s.stuck_after_days,
    (b.status = 'open' AND s.stuck_after_days IS NOT NULL
        AND $4::timestamptz - b.entered_stage_at > make_interval(days => s.stuck_after_days)) AS stuck,
    (b.status = 'open' AND b.expected_close_date < ($4::timestamptz AT TIME ZONE $5)::date) AS close_date_past,
    {next_step_columns()}
"""
# the board's rows' FROM: the deal, its stage, its next step at $4 (services.deals.projections.next_steps)
BOARD_FROM = f"""board b
    LEFT JOIN pipeline_stages s ON s.pipeline_id = b.pipeline_id AND s.stage_id = b.stage_id
    {next_step_join("$4")}"""


def _row(r: Any) -> dict[str, Any]:
    out = nest(dict(r))
    for k, v in out.items():
        if isinstance(v, Decimal):
            out[k] = format(v, "f")
        elif isinstance(v, datetime | date):
            out[k] = v.isoformat()
        elif isinstance(v, uuid.UUID):
            out[k] = str(v)
        elif isinstance(v, dict):
            out[k] = _row(v)
    return out


# The board's filter on ``board b``: $1-$3 who sees (VISIBLE), $5 pipeline, $6 owner, $7 organisations (open
# deals); the cards' query shifts the last three by one (its $5 is the time zone).
_BOARD_WHERE = """b.pipeline_id = ${0} AND b.status = 'open' AND {1}
    AND (${2}::text IS NULL OR b.owner_id = ${2}) AND (${3}::uuid[] IS NULL OR b.organisation_id = ANY(${3}))"""
# Per stage and currency, of every deal the board shows: counts, flags and sums, set-based. Each deal's next-step
# flags from its open activities counted once for all (a hash join, not one lookup a deal).
_BOARD_SUMS = f"""SELECT b.stage_id, b.currency, count(*) AS n, sum(b.value) AS value,
           sum(round(b.value * {PROBABILITY}, CASE WHEN b.currency IN ('VND', 'JPY', 'KRW') THEN 0 ELSE 2 END))
               AS weighted_value,
           count(*) FILTER (WHERE s.stuck_after_days IS NOT NULL
               AND $4::timestamptz - b.entered_stage_at > make_interval(days => s.stuck_after_days)) AS stuck,
           count(*) FILTER (WHERE coalesce(nx.open_activities, 0) = 0) AS no_next_step,
           count(*) FILTER (WHERE coalesce(nx.overdue_activities, 0) > 0) AS overdue
    FROM board b LEFT JOIN pipeline_stages s ON s.pipeline_id = b.pipeline_id AND s.stage_id = b.stage_id
    LEFT JOIN (SELECT n.deal_id, count(*) AS open_activities,
                      count(*) FILTER (WHERE n.due_at < $4::timestamptz) AS overdue_activities
               FROM next_steps n WHERE n.open GROUP BY n.deal_id) nx ON nx.deal_id = b.deal_id
    WHERE {_BOARD_WHERE.format(5, VISIBLE, 6, 7)}
    GROUP BY b.stage_id, b.currency ORDER BY b.stage_id, b.currency"""
# The cards: each stage's first $9 deals (NULL: all; all of stage $10), in the board's order, read stage by stage
# along the index ``board_cards`` (no sort of every deal); only those are joined to their next step.
_BOARD_CARDS = f"""SELECT {BOARD_ROW} FROM pipeline_stages ps
    CROSS JOIN LATERAL (
        SELECT * FROM board b WHERE b.stage_id = ps.stage_id AND {_BOARD_WHERE.format(6, VISIBLE, 7, 8)}
        ORDER BY b.stage_order, b.entered_stage_at, b.deal_id
        LIMIT CASE WHEN ps.stage_id = $10 THEN NULL ELSE $9::int END) b
    LEFT JOIN pipeline_stages s ON s.pipeline_id = b.pipeline_id AND s.stage_id = b.stage_id
    {next_step_join("$4")}
    WHERE ps.pipeline_id = $6 AND ps.kind = 'open'
    ORDER BY b.stage_order, b.entered_stage_at, b.deal_id"""


async def board_view(
    conn: Conn,
    *,
    pipeline_id: str,
    now: datetime,
    tz: str,
    user: str,
    team: str | None,
    all_deals: bool,
    owner_id: str | None = None,
    organisations: list[uuid.UUID] | None = None,
    cards: int | None = None,
    whole_stage: str | None = None,
) -> dict[str, Any]:
    """Per open stage: the deals with days in stage and stuck flag, count, value and weighted value per currency
    (``organisations``: only the deals linked to one of these). ``cards``: each stage lists its first deals only
    (all of ``whole_stage``'s), its counts and values still of all (summed by the database, not from the cards)."""
    stages = await conn.fetch(
        """SELECT stage_id, name, stage_order, probability, stuck_after_days, kind FROM pipeline_stages
           WHERE pipeline_id = $1 ORDER BY stage_order""",
        pipeline_id,
    )
    sums = await conn.fetch(_BOARD_SUMS, user, team, all_deals, now, pipeline_id, owner_id, organisations)
    listed = await conn.fetch(
        _BOARD_CARDS, user, team, all_deals, now, tz, pipeline_id, owner_id, organisations, cards, whole_stage
    )
    columns = []
    for s in stages:
        if s["kind"] != "open":
            continue
        mine = [r for r in sums if r["stage_id"] == s["stage_id"]]
        columns.append(
            {
                "stage_id": s["stage_id"],
                "name": s["name"],
                "order": s["stage_order"],
                "probability": format(s["probability"], "f"),
                "stuck_after_days": s["stuck_after_days"],
                "count": sum(r["n"] for r in mine),
                "stuck_count": sum(r["stuck"] for r in mine),
                "no_next_step_count": sum(r["no_next_step"] for r in mine),
                "overdue_count": sum(r["overdue"] for r in mine),
                "value": _sum_by_currency(mine, "value"),
                "weighted_value": _sum_by_currency(mine, "weighted_value"),
                "deals": [_row(d) for d in listed if d["stage_id"] == s["stage_id"]],
            }
        )
    return {
        "pipeline_id": pipeline_id,
        "as_of": now.isoformat(),
        "stages": columns,
        "value": _sum_by_currency(sums, "value"),
        "weighted_value": _sum_by_currency(sums, "weighted_value"),
    }


def _sum_by_currency(rows: Sequence[Any], key: str) -> dict[str, str]:
    sums: dict[str, Decimal] = {}
    for r in rows:
        sums[r["currency"]] = sums.get(r["currency"], Decimal(0)) + Decimal(r[key])
    return {c: format(v, "f") for c, v in sorted(sums.items())}


async def list_deals(
    conn: Conn,
    *,
    now: datetime,
    tz: str,
    user: str,
    team: str | None,
    all_deals: bool,
    status: str | None,
    stage_id: str | None,
    owner_id: str | None,
    stuck: bool | None,
    offset: int,
    limit: int,
    organisations: list[uuid.UUID] | None = None,
    no_next_step: bool | None = None,
    overdue: bool | None = None,
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""SELECT * FROM (
                SELECT {BOARD_ROW} FROM (
                    SELECT * FROM board b WHERE {VISIBLE}
                      AND ($6::text IS NULL OR b.status = $6) AND ($7::text IS NULL OR b.stage_id = $7)
                      AND ($8::text IS NULL OR b.owner_id = $8)
                      AND ($12::uuid[] IS NULL OR b.organisation_id = ANY($12))
                    ORDER BY b.opened_at DESC, b.deal_id
                    -- no filter on a derived flag: only the page's rows are joined to their stage and next step
                    LIMIT CASE WHEN $9::bool IS NULL AND $13::bool IS NULL AND $14::bool IS NULL
                               THEN $10::int + $11::int END) b
                LEFT JOIN pipeline_stages s ON s.pipeline_id = b.pipeline_id AND s.stage_id = b.stage_id
                {next_step_join("$4")}) x
            WHERE ($9::bool IS NULL OR x.stuck = $9)
              AND ($13::bool IS NULL OR x.no_next_step = $13) AND ($14::bool IS NULL OR x.overdue = $14)
            ORDER BY x.opened_at DESC, x.deal_id OFFSET $10 LIMIT $11""",
        user,
        team,
        all_deals,
        now,
        tz,
        status,
        stage_id,
        owner_id,
        stuck,
        offset,
        limit + 1,
        organisations,
        no_next_step,
        overdue,
    )
    return [_row(r) for r in rows]


async def follow_ups_due(
    conn: Conn, *, until: date, user: str, team: str | None, all_deals: bool, offset: int, limit: int
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""SELECT f.follow_up_id, f.deal_id, b.title, b.customer, b.owner_id, f.kind, f.order_id, f.due_on,
                   f.contacts, f.csat, f.nps
            FROM follow_ups f JOIN board b ON b.deal_id = f.deal_id
            WHERE NOT f.completed AND f.due_on <= $4
              AND {VISIBLE}
            ORDER BY f.due_on, f.follow_up_id OFFSET $5 LIMIT $6""",
        user,
        team,
        all_deals,
        until,
        offset,
        limit + 1,
    )
    return [_row(r) for r in rows]


async def visible_deals(conn: Conn, deal_ids: list[uuid.UUID], *, user: str, team: str | None) -> set[str]:
    """Which of these deals the lists show a caller who does not see everything (their alerts, too)."""
    rows = await conn.fetch(
        f"SELECT b.deal_id FROM board b WHERE {VISIBLE} AND b.deal_id = ANY($4::uuid[])", user, team, False, deal_ids
    )
    return {str(r["deal_id"]) for r in rows}


async def stuck_deals(conn: Conn, now: datetime) -> list[Condition]:
    """Open deals longer in their stage than its threshold: one alert per stay in a stage."""
    rows = await conn.fetch(
        """SELECT b.deal_id, b.title, b.owner_id, b.stage_id, b.stage_name, b.entered_stage_at, s.stuck_after_days,
                  floor(extract(epoch FROM $1::timestamptz - b.entered_stage_at) / 86400)::int AS days
           FROM board b JOIN pipeline_stages s ON s.pipeline_id = b.pipeline_id AND s.stage_id = b.stage_id
           WHERE b.status = 'open' AND s.stuck_after_days IS NOT NULL
             AND $1::timestamptz - b.entered_stage_at > make_interval(days => s.stuck_after_days)""",
        now,
    )
    return [
        Condition(
            kind="deal_stuck",
            entity=f"deal-{r['deal_id']}",
            occurrence=r["entered_stage_at"].isoformat(),
            summary=f"{r['title']}: {r['days']} days in {r['stage_name']} (threshold {r['stuck_after_days']})",
            details={"owner_id": r["owner_id"], "stage_id": r["stage_id"], "days": str(r["days"]), "title": r["title"]},
            concerns=(r["owner_id"],),  # the deal's owner is told (the agenda's notifier)
        )
        for r in rows
    ]
