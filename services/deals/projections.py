"""The deals service's read models: each a projection (DDL + apply) with the queries that read it.

Stored: facts (dates, amounts, stage snapshots). Derived at query time from ``now``: days in stage, stuck,
overdue — so a rebuild always equals the live read model.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from services.deals import events as ev
from shared.alerts import Condition
from shared.messaging.envelope import CloudEvent
from shared.messaging.projections import Fact, Projection
from shared.store.db import Conn

# ---------------------------------------------------------------------------------------------- board
BOARD_DDL = """
CREATE TABLE IF NOT EXISTS pipeline_stages (
    pipeline_id      text NOT NULL,
    stage_id         text NOT NULL,
    name             text NOT NULL,
    stage_order      integer NOT NULL,
    probability      numeric NOT NULL,
    stuck_after_days integer,
    kind             text NOT NULL,
    pipeline_version integer NOT NULL,
    PRIMARY KEY (pipeline_id, stage_id)
);
CREATE TABLE IF NOT EXISTS board (
    deal_id              uuid PRIMARY KEY,
    title                text NOT NULL,
    customer             text NOT NULL,
    owner_id             text NOT NULL,
    team_id              text,
    pipeline_id          text NOT NULL,
    stage_id             text NOT NULL,
    stage_name           text NOT NULL,
    stage_order          integer NOT NULL,
    stage_probability    numeric NOT NULL,
    probability_override numeric,
    status               text NOT NULL,
    value                numeric NOT NULL,
    currency             text NOT NULL,
    expected_close_date  date,
    close_date_pushes    integer NOT NULL DEFAULT 0,
    opened_at            timestamptz NOT NULL,
    entered_stage_at     timestamptz NOT NULL,
    closed_at            timestamptz,
    lost_reason          text,
    competitor           text,
    source               text,
    campaign_id          text,
    source_lead_id       uuid,
    activities           integer NOT NULL DEFAULT 0,
    last_activity_at     timestamptz,
    delivery_risk        text,
    version              integer NOT NULL
);
CREATE INDEX IF NOT EXISTS board_by_stage ON board (pipeline_id, status, stage_order);
CREATE INDEX IF NOT EXISTS board_by_owner ON board (owner_id);
CREATE INDEX IF NOT EXISTS board_by_team ON board (team_id);
CREATE TABLE IF NOT EXISTS follow_ups (
    follow_up_id uuid PRIMARY KEY,
    deal_id      uuid NOT NULL,
    kind         text NOT NULL,
    order_id     uuid,
    due_on       date NOT NULL,
    completed    boolean NOT NULL DEFAULT false,
    contacts     integer NOT NULL DEFAULT 0,
    csat         integer,
    nps          integer,
    outcome      text
);
"""


async def _update(conn: Conn, e: CloudEvent, deal_id: uuid.UUID, sets: str, *args: Any) -> None:
    n = len(args)
    await conn.execute(
        f"UPDATE board SET {sets}, version = ${n + 2} WHERE deal_id = ${n + 1}", *args, deal_id, e.streamversion
    )


async def _touch(conn: Conn, e: CloudEvent, deal_id: uuid.UUID) -> None:
    await conn.execute("UPDATE board SET version = $2 WHERE deal_id = $1", deal_id, e.streamversion)


async def apply_board(conn: Conn, fact: Fact) -> None:
    e, event = fact.envelope, fact.event
    match event:
        case ev.PipelineDefined():
            await conn.execute("DELETE FROM pipeline_stages WHERE pipeline_id = $1", event.pipeline_id)
            await conn.executemany(
                """INSERT INTO pipeline_stages VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
                [
                    (
                        event.pipeline_id,
                        s.stage_id,
                        s.name,
                        s.order,
                        s.probability,
                        s.stuck_after_days,
                        s.kind.value,
                        e.streamversion,
                    )
                    for s in event.stages
                ],
            )
        case ev.DealOpened():
            await conn.execute(
                """INSERT INTO board (deal_id, title, customer, owner_id, team_id, pipeline_id, stage_id, stage_name,
                       stage_order, stage_probability, status, value, currency, expected_close_date, opened_at,
                       entered_stage_at, source, campaign_id, source_lead_id, version)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'open', $11, $12, $13, $14, $14, $15, $16, $17, $18)
                   ON CONFLICT (deal_id) DO NOTHING""",
                event.deal_id,
                event.title,
                event.customer,
                event.owner_id,
                event.team_id,
                event.pipeline_id,
                event.stage.stage_id,
                event.stage.name,
                event.stage.order,
                event.stage.probability,
                event.value.amount,
                event.value.currency,
                event.expected_close_date,
                event.opened_at,
                event.source,
                event.campaign_id,
                event.source_lead_id,
                e.streamversion,
            )
        case ev.StageChanged():
            s = event.to_stage
            await _update(
                conn,
                e,
                event.deal_id,
                "stage_id = $1, stage_name = $2, stage_order = $3, stage_probability = $4, entered_stage_at = $5",
                s.stage_id,
                s.name,
                s.order,
                s.probability,
                event.changed_at,
            )
        case ev.DealValueChanged():
            await _update(conn, e, event.deal_id, "value = $1", event.new.amount)
        case ev.DealLinesChanged():
            await _update(conn, e, event.deal_id, "value = $1", event.value.amount)
        case ev.ExpectedCloseDateChanged():
            await _update(
                conn, e, event.deal_id, "expected_close_date = $1, close_date_pushes = $2", event.new, event.push_count
            )
        case ev.DealProbabilityOverridden():
            await _update(conn, e, event.deal_id, "probability_override = $1", event.probability)
        case ev.DealProbabilityOverrideCleared():
            await _update(conn, e, event.deal_id, "probability_override = NULL")
        case ev.DealReassigned():
            await _update(conn, e, event.deal_id, "owner_id = $1, team_id = $2", event.to_owner_id, event.to_team_id)
        case ev.ActivityLogged():
            await _update(conn, e, event.deal_id, "activities = activities + 1, last_activity_at = $1", e.time)
        case ev.DealWon():
            await _update(
                conn, e, event.deal_id, "status = 'won', closed_at = $1, value = $2", event.won_at, event.value.amount
            )
        case ev.DealLost():
            await _update(
                conn,
                e,
                event.deal_id,
                "status = 'lost', closed_at = $1, lost_reason = $2, competitor = $3",
                event.lost_at,
                event.reason,
                event.competitor,
            )
        case ev.DealReopened():
            s = event.to_stage
            await _update(
                conn,
                e,
                event.deal_id,
                "status = 'open', closed_at = NULL, lost_reason = NULL, competitor = NULL, stage_id = $1, "
                "stage_name = $2, stage_order = $3, stage_probability = $4, entered_stage_at = $5",
                s.stage_id,
                s.name,
                s.order,
                s.probability,
                event.reopened_at,
            )
        case ev.DeliveryRiskFlagged():
            await _update(conn, e, event.deal_id, "delivery_risk = $1", event.reason)
        case ev.FollowUpStarted():
            await conn.execute(
                """INSERT INTO follow_ups (follow_up_id, deal_id, kind, order_id, due_on) VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT DO NOTHING""",
                event.follow_up_id,
                event.deal_id,
                event.kind,
                event.order_id,
                event.due_on,
            )
            await _touch(conn, e, event.deal_id)
        case ev.FollowUpDueChanged():
            await conn.execute(
                "UPDATE follow_ups SET due_on = $2 WHERE follow_up_id = $1", event.follow_up_id, event.due_on
            )
            await _touch(conn, e, event.deal_id)
        case ev.FollowUpContactRecorded():
            await conn.execute(
                "UPDATE follow_ups SET contacts = contacts + 1 WHERE follow_up_id = $1", event.follow_up_id
            )
            await _touch(conn, e, event.deal_id)
        case ev.CustomerFeedbackRecorded():
            await conn.execute(
                "UPDATE follow_ups SET csat = coalesce($2, csat), nps = coalesce($3, nps) WHERE follow_up_id = $1",
                event.follow_up_id,
                event.csat,
                event.nps,
            )
            await _touch(conn, e, event.deal_id)
        case ev.FollowUpCompleted():
            await conn.execute(
                "UPDATE follow_ups SET completed = true, outcome = $2 WHERE follow_up_id = $1",
                event.follow_up_id,
                event.outcome,
            )
            await _touch(conn, e, event.deal_id)
        case ev.DealEvent():
            await _touch(conn, e, event.deal_id)


BOARD_COLUMNS: dict[str, str] = {  # column: its array type for unnest
    "deal_id": "uuid",
    "title": "text",
    "customer": "text",
    "owner_id": "text",
    "team_id": "text",
    "pipeline_id": "text",
    "stage_id": "text",
    "stage_name": "text",
    "stage_order": "integer",
    "stage_probability": "numeric",
    "probability_override": "numeric",
    "status": "text",
    "value": "numeric",
    "currency": "text",
    "expected_close_date": "date",
    "close_date_pushes": "integer",
    "opened_at": "timestamptz",
    "entered_stage_at": "timestamptz",
    "closed_at": "timestamptz",
    "lost_reason": "text",
    "competitor": "text",
    "source": "text",
    "campaign_id": "text",
    "source_lead_id": "uuid",
    "activities": "integer",
    "last_activity_at": "timestamptz",
    "delivery_risk": "text",
    "version": "integer",
}
_COLUMNS = ", ".join(BOARD_COLUMNS)
_WRITE_BOARD = f"""
    INSERT INTO board ({_COLUMNS})
    SELECT * FROM unnest({", ".join(f"${i}::{t}[]" for i, t in enumerate(BOARD_COLUMNS.values(), 1))})
    ON CONFLICT (deal_id) DO UPDATE SET {", ".join(f"{c} = EXCLUDED.{c}" for c in BOARD_COLUMNS if c != "deal_id")}
"""
_FOLLOW_UP_EVENTS = (
    ev.FollowUpStarted,
    ev.FollowUpDueChanged,
    ev.FollowUpContactRecorded,
    ev.CustomerFeedbackRecorded,
    ev.FollowUpCompleted,
)


def _stage(row: dict[str, Any], s: ev.StageSnapshot, at: datetime) -> None:
    row.update(
        stage_id=s.stage_id,
        stage_name=s.name,
        stage_order=s.order,
        stage_probability=s.probability,
        entered_stage_at=at,
    )


def _fold(row: dict[str, Any], e: CloudEvent, event: ev.DealEvent) -> None:
    """``apply_board``'s UPDATE of an existing board row, on the row in memory."""
    match event:
        case ev.StageChanged():
            _stage(row, event.to_stage, event.changed_at)
        case ev.DealValueChanged():
            row["value"] = event.new.amount
        case ev.DealLinesChanged():
            row["value"] = event.value.amount
        case ev.ExpectedCloseDateChanged():
            row.update(expected_close_date=event.new, close_date_pushes=event.push_count)
        case ev.DealProbabilityOverridden():
            row["probability_override"] = event.probability
        case ev.DealProbabilityOverrideCleared():
            row["probability_override"] = None
        case ev.DealReassigned():
            row.update(owner_id=event.to_owner_id, team_id=event.to_team_id)
        case ev.ActivityLogged():
            row.update(activities=row["activities"] + 1, last_activity_at=e.time)
        case ev.DealWon():
            row.update(status="won", closed_at=event.won_at, value=event.value.amount)
        case ev.DealLost():
            row.update(status="lost", closed_at=event.lost_at, lost_reason=event.reason, competitor=event.competitor)
        case ev.DealReopened():
            row.update(status="open", closed_at=None, lost_reason=None, competitor=None)
            _stage(row, event.to_stage, event.reopened_at)
        case ev.DeliveryRiskFlagged():
            row["delivery_risk"] = event.reason
    row["version"] = e.streamversion


def _opened(e: CloudEvent, event: ev.DealOpened) -> dict[str, Any]:
    """``apply_board``'s INSERT of a new board row, in memory."""
    row: dict[str, Any] = dict.fromkeys(BOARD_COLUMNS)
    row.update(
        deal_id=event.deal_id,
        title=event.title,
        customer=event.customer,
        owner_id=event.owner_id,
        team_id=event.team_id,
        pipeline_id=event.pipeline_id,
        status="open",
        value=event.value.amount,
        currency=event.value.currency,
        expected_close_date=event.expected_close_date,
        close_date_pushes=0,
        opened_at=event.opened_at,
        source=event.source,
        campaign_id=event.campaign_id,
        source_lead_id=event.source_lead_id,
        activities=0,
        version=e.streamversion,
    )
    _stage(row, event.stage, event.opened_at)
    return row


async def apply_board_batch(conn: Conn, facts: Sequence[Fact]) -> None:
    """``apply_board`` on each event in order, with the board rows read once, folded in memory, written once.

    Pipeline definitions and follow-ups (rare) go through ``apply_board``; their tables are not the board's.
    """
    typed: list[tuple[CloudEvent, ev.DealEvent]] = []
    for fact in facts:
        e, event = fact.envelope, fact.event
        if isinstance(event, ev.DealEvent):
            typed.append((e, event))
            if isinstance(event, _FOLLOW_UP_EVENTS):
                await apply_board(conn, fact)  # its follow_ups statement; the board row's version is folded below
        elif isinstance(event, ev.PipelineDefined):
            await apply_board(conn, fact)
    if not typed:
        return
    rows = {
        r["deal_id"]: dict(r)
        for r in await conn.fetch(
            f"SELECT {_COLUMNS} FROM board WHERE deal_id = ANY($1::uuid[])", list({ev.deal_id for _, ev in typed})
        )
    }
    changed: dict[uuid.UUID, dict[str, Any]] = {}
    for e, event in typed:
        row = rows.get(event.deal_id)
        if isinstance(event, ev.DealOpened):
            if row is None:  # ON CONFLICT DO NOTHING: a deal opened twice keeps its first row
                rows[event.deal_id] = changed[event.deal_id] = _opened(e, event)
        elif row is not None:  # an UPDATE of a missing row changes nothing
            _fold(row, e, event)
            changed[event.deal_id] = row
    if changed:
        await conn.execute(_WRITE_BOARD, *([r[c] for r in changed.values()] for c in BOARD_COLUMNS))


def board(deals_topic: str) -> Projection:
    return Projection(
        name="board",
        topics=(deals_topic,),
        ddl=BOARD_DDL,
        apply=apply_board_batch,
        accepts=("pipelines.deals.",),
        tables=("pipeline_stages", "board", "follow_ups"),
    )


# Visibility filter shared by the board queries: $1 = user id, $2 = team, $3 = sees everything.
VISIBLE = "($3 OR b.owner_id = $1 OR (b.team_id IS NOT NULL AND b.team_id = $2))"

BOARD_ROW = """
    b.deal_id, b.title, b.customer, b.owner_id, b.team_id, b.pipeline_id, b.stage_id, b.stage_name, b.stage_order,
    b.status, b.value, b.currency, coalesce(b.probability_override, b.stage_probability) AS probability,
    round(b.value * coalesce(b.probability_override, b.stage_probability),
          CASE WHEN b.currency IN ('VND', 'JPY', 'KRW') THEN 0 ELSE 2 END) AS weighted_value,
    b.expected_close_date, b.close_date_pushes, b.opened_at, b.entered_stage_at, b.closed_at, b.lost_reason,
    b.last_activity_at, b.activities, b.delivery_risk, b.source, b.version,
    floor(extract(epoch FROM ($4::timestamptz - b.entered_stage_at)) / 86400)::int AS days_in_stage,
    s.stuck_after_days,
    (b.status = 'open' AND s.stuck_after_days IS NOT NULL
        AND $4::timestamptz - b.entered_stage_at > make_interval(days => s.stuck_after_days)) AS stuck,
    (b.status = 'open' AND b.expected_close_date < ($4::timestamptz AT TIME ZONE $5)::date) AS close_date_past
"""


def _row(r: Any) -> dict[str, Any]:
    out = dict(r)
    for k, v in out.items():
        if isinstance(v, Decimal):
            out[k] = format(v, "f")
        elif isinstance(v, datetime | date):
            out[k] = v.isoformat()
        elif isinstance(v, uuid.UUID):
            out[k] = str(v)
    return out


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
) -> dict[str, Any]:
    """Per open stage: the deals with days in stage and stuck flag, count, value and weighted value per currency."""
    stages = await conn.fetch(
        """SELECT stage_id, name, stage_order, probability, stuck_after_days, kind FROM pipeline_stages
           WHERE pipeline_id = $1 ORDER BY stage_order""",
        pipeline_id,
    )
    rows = await conn.fetch(
        f"""SELECT {BOARD_ROW} FROM board b
            LEFT JOIN pipeline_stages s ON s.pipeline_id = b.pipeline_id AND s.stage_id = b.stage_id
            WHERE b.pipeline_id = $6 AND b.status = 'open' AND {VISIBLE}
              AND ($7::text IS NULL OR b.owner_id = $7)
            ORDER BY b.stage_order, b.entered_stage_at, b.deal_id""",
        user,
        team,
        all_deals,
        now,
        tz,
        pipeline_id,
        owner_id,
    )
    deals = [_row(r) for r in rows]
    columns = []
    for s in stages:
        if s["kind"] != "open":
            continue
        in_stage = [d for d in deals if d["stage_id"] == s["stage_id"]]
        columns.append(
            {
                "stage_id": s["stage_id"],
                "name": s["name"],
                "order": s["stage_order"],
                "probability": format(s["probability"], "f"),
                "stuck_after_days": s["stuck_after_days"],
                "count": len(in_stage),
                "stuck_count": sum(1 for d in in_stage if d["stuck"]),
                "value": _sum_by_currency(in_stage, "value"),
                "weighted_value": _sum_by_currency(in_stage, "weighted_value"),
                "deals": in_stage,
            }
        )
    return {
        "pipeline_id": pipeline_id,
        "as_of": now.isoformat(),
        "stages": columns,
        "value": _sum_by_currency(deals, "value"),
        "weighted_value": _sum_by_currency(deals, "weighted_value"),
    }


def _sum_by_currency(rows: list[dict[str, Any]], key: str) -> dict[str, str]:
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
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""SELECT * FROM (
                SELECT {BOARD_ROW} FROM board b
                LEFT JOIN pipeline_stages s ON s.pipeline_id = b.pipeline_id AND s.stage_id = b.stage_id
                WHERE {VISIBLE}
                  AND ($6::text IS NULL OR b.status = $6) AND ($7::text IS NULL OR b.stage_id = $7)
                  AND ($8::text IS NULL OR b.owner_id = $8)) x
            WHERE ($9::bool IS NULL OR x.stuck = $9)
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
            details={"owner_id": r["owner_id"], "stage_id": r["stage_id"], "days": str(r["days"])},
        )
        for r in rows
    ]
