"""The sales board read model: its tables and its one ``apply``, for a batch of events in order.

Stored: facts (dates, amounts, stage snapshots). Derived at query time from ``now``: days in stage, stuck,
overdue — so a rebuild always equals the live read model.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from services.deals import events as ev
from services.deals.projections import next_steps
from shared.messaging.envelope import CloudEvent
from shared.messaging.projections import Fact, Projection
from shared.messaging.rows import Row, read, read_sql, upsert_sql, write
from shared.store.db import Conn

# ---------------------------------------------------------------------------------------------- board
BOARD_DDL = (
    """
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
    version              integer NOT NULL,
    organisation_id      uuid
);
-- the directory's organisation (issue 24): a generation made before has none until it is rebuilt
ALTER TABLE board ADD COLUMN IF NOT EXISTS organisation_id uuid;
CREATE INDEX IF NOT EXISTS board_by_organisation ON board (organisation_id) WHERE organisation_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS board_by_stage ON board (pipeline_id, status, stage_order);
CREATE INDEX IF NOT EXISTS board_by_owner ON board (owner_id);
-- the board's cards, each stage's first in order (board_queries.board_view)
CREATE INDEX IF NOT EXISTS board_cards ON board (pipeline_id, stage_id, stage_order, entered_stage_at, deal_id)
    WHERE status = 'open';
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
    + next_steps.DDL
)  # the agenda's activities on deals: each open deal's next step (issue 25)


# The board is written once, for a batch of events in order (a batch of one is the per-event path): its rows and
# the follow-ups the batch touches are read once, changed in memory event by event, and written back in one
# statement each; a pipeline's definition replaces its stages.
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
    "organisation_id": "uuid",
}
FOLLOW_UP_COLUMNS: dict[str, str] = {
    "follow_up_id": "uuid",
    "deal_id": "uuid",
    "kind": "text",
    "order_id": "uuid",
    "due_on": "date",
    "completed": "boolean",
    "contacts": "integer",
    "csat": "integer",
    "nps": "integer",
    "outcome": "text",
}
_FOLLOW_UP_EVENTS = (
    ev.FollowUpStarted,
    ev.FollowUpDueChanged,
    ev.FollowUpContactRecorded,
    ev.CustomerFeedbackRecorded,
    ev.FollowUpCompleted,
)
FollowUpEvent = (
    ev.FollowUpStarted
    | ev.FollowUpDueChanged
    | ev.FollowUpContactRecorded
    | ev.CustomerFeedbackRecorded
    | ev.FollowUpCompleted
)
_READ_BOARD, _WRITE_BOARD = read_sql("board", BOARD_COLUMNS), upsert_sql("board", BOARD_COLUMNS)
_READ_FOLLOW_UPS = read_sql("follow_ups", FOLLOW_UP_COLUMNS)
_WRITE_FOLLOW_UPS = upsert_sql("follow_ups", FOLLOW_UP_COLUMNS)


def _stage(row: Row, s: ev.StageSnapshot, at: datetime) -> None:
    row.update(
        stage_id=s.stage_id,
        stage_name=s.name,
        stage_order=s.order,
        stage_probability=s.probability,
        entered_stage_at=at,
    )


def _opened(e: CloudEvent, event: ev.DealOpened) -> Row:
    """A deal's new board row."""
    row: Row = dict.fromkeys(BOARD_COLUMNS)
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


def _fold(row: Row, e: CloudEvent, event: ev.DealEvent) -> None:
    """A later event of the deal on its board row; every event of the deal moves its version."""
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
        case ev.DealCustomerLinked():
            row["organisation_id"] = event.organisation_id
    row["version"] = e.streamversion


def _follow_up(row: Row, event: FollowUpEvent) -> None:
    """A later event of a follow-up on its row."""
    match event:
        case ev.FollowUpDueChanged():
            row["due_on"] = event.due_on
        case ev.FollowUpContactRecorded():
            row["contacts"] += 1
        case ev.CustomerFeedbackRecorded():
            row["csat"] = row["csat"] if event.csat is None else event.csat
            row["nps"] = row["nps"] if event.nps is None else event.nps
        case ev.FollowUpCompleted():
            row.update(completed=True, outcome=event.outcome)


def _started(event: ev.FollowUpStarted) -> Row:
    return {
        "follow_up_id": event.follow_up_id,
        "deal_id": event.deal_id,
        "kind": event.kind,
        "order_id": event.order_id,
        "due_on": event.due_on,
        "completed": False,
        "contacts": 0,
        "csat": None,
        "nps": None,
        "outcome": None,
    }


async def _define_pipelines(conn: Conn, definitions: dict[str, tuple[CloudEvent, ev.PipelineDefined]]) -> None:
    """Each pipeline's stages as its last definition in the batch gives them."""
    for pipeline_id, (e, event) in definitions.items():
        await conn.execute("DELETE FROM pipeline_stages WHERE pipeline_id = $1", pipeline_id)
        await conn.executemany(
            "INSERT INTO pipeline_stages VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            [
                (
                    pipeline_id,
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


async def _apply_follow_ups(conn: Conn, events: list[FollowUpEvent]) -> None:
    """A follow-up started twice keeps its first row; an event of a follow-up never started changes nothing."""
    if not events:
        return
    rows = await read(conn, _READ_FOLLOW_UPS, {event.follow_up_id for event in events})
    changed: dict[uuid.UUID, Row] = {}
    for event in events:
        row = rows.get(event.follow_up_id)
        if isinstance(event, ev.FollowUpStarted):
            if row is None:
                rows[event.follow_up_id] = changed[event.follow_up_id] = _started(event)
        elif row is not None:
            _follow_up(row, event)
            changed[event.follow_up_id] = row
    await write(conn, _WRITE_FOLLOW_UPS, FOLLOW_UP_COLUMNS, changed.values())


async def _apply_deals(conn: Conn, events: list[tuple[CloudEvent, ev.DealEvent]]) -> None:
    """A deal opened twice keeps its first row; an event of a deal never opened changes nothing."""
    if not events:
        return
    rows = await read(conn, _READ_BOARD, {event.deal_id for _, event in events})
    changed: dict[uuid.UUID, Row] = {}
    for e, event in events:
        row = rows.get(event.deal_id)
        if isinstance(event, ev.DealOpened):
            if row is None:
                rows[event.deal_id] = changed[event.deal_id] = _opened(e, event)
        elif row is not None:
            _fold(row, e, event)
            changed[event.deal_id] = row
    await write(conn, _WRITE_BOARD, BOARD_COLUMNS, changed.values())


async def apply_board(conn: Conn, facts: Sequence[Fact]) -> None:
    """The sales board, its pipelines' stages, the deals' follow-ups and next steps after a batch of events in
    order."""
    definitions: dict[str, tuple[CloudEvent, ev.PipelineDefined]] = {}
    deals: list[tuple[CloudEvent, ev.DealEvent]] = []
    others: list[Fact] = []
    for fact in facts:
        event = fact.event
        if isinstance(event, ev.PipelineDefined):
            definitions[event.pipeline_id] = (fact.envelope, event)
        elif isinstance(event, ev.DealEvent):
            deals.append((fact.envelope, event))
        else:
            others.append(fact)
    await _define_pipelines(conn, definitions)
    await _apply_follow_ups(conn, [event for _, event in deals if isinstance(event, _FOLLOW_UP_EVENTS)])
    await _apply_deals(conn, deals)
    await next_steps.apply_next_steps(conn, [f for f in others if next_steps.is_agenda(f)])


def board(deals_topic: str, agenda_topic: str | None = None) -> Projection:
    """The board from the deals' topic and (``agenda_topic``) the agenda's activities on deals."""
    agenda = (agenda_topic,) if agenda_topic else ()
    return Projection(
        name="board",
        topics=(deals_topic, *agenda),
        ddl=BOARD_DDL,
        apply=apply_board,
        accepts=("pipelines.deals.", *((next_steps.ACCEPTS,) if agenda else ())),
        tables=("pipeline_stages", "board", "follow_ups", next_steps.TABLE),
    )
