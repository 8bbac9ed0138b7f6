"""The sales analytics read model: its tables and its one ``apply``, for a batch of events in order.

The deals a batch touches are read once (their row, current forecast row, open stage visits, last visit number),
changed in memory event by event, and written back once: a batch of one is the per-event path. An event the
tables cannot take (a deal opened twice, a stage change of a deal never opened) fails its batch, which the
runner applies again one event at a time to dead-letter that event alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from services.deals import events as ev
from services.deals.projections import next_steps
from shared.messaging.envelope import CloudEvent
from shared.messaging.projections import Fact, Projection
from shared.messaging.rows import Row, insert_sql, read, read_sql, update_sql, upsert_sql, write
from shared.store.db import Conn

DDL = (
    """
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
    competitor text, stage_at_close text, close_date_pushes integer NOT NULL DEFAULT 0, organisation_id uuid);
-- the directory's organisation (issue 24): a generation made before has none until it is rebuilt
ALTER TABLE deals ADD COLUMN IF NOT EXISTS organisation_id uuid;
CREATE INDEX IF NOT EXISTS deals_by_organisation ON deals (organisation_id) WHERE organisation_id IS NOT NULL;
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
    + next_steps.DDL
)  # the agenda's activities on deals: open deals without a next step, with overdue ones

DEAL_COLUMNS = {
    "deal_id": "uuid",
    "owner_id": "text",
    "team_id": "text",
    "pipeline_id": "text",
    "source": "text",
    "status": "text",
    "value": "numeric",
    "currency": "text",
    "stage_id": "text",
    "stage_order": "integer",
    "stage_probability": "numeric",
    "probability_override": "numeric",
    "expected_close_date": "date",
    "entered_stage_at": "timestamptz",
    "opened_at": "timestamptz",
    "won_at": "timestamptz",
    "lost_at": "timestamptz",
    "lost_reason": "text",
    "competitor": "text",
    "stage_at_close": "text",
    "close_date_pushes": "integer",
    "organisation_id": "uuid",
}
# what a forecast row (deal_versions) carries over from the one before it
FORECAST_FACTS = (
    "owner_id",
    "team_id",
    "status",
    "value",
    "currency",
    "probability",
    "expected_close_date",
    "closed_at",
)
VERSION_COLUMNS = {
    "deal_id": "uuid",
    "valid_from": "timestamptz",
    "valid_to": "timestamptz",
    "version": "integer",
    "owner_id": "text",
    "team_id": "text",
    "status": "text",
    "value": "numeric",
    "currency": "text",
    "probability": "numeric",
    "expected_close_date": "date",
    "closed_at": "timestamptz",
}
CLOSED_VERSION_COLUMNS = {"deal_id": "uuid", "version": "integer", "valid_to": "timestamptz"}
VISIT_COLUMNS = {
    "deal_id": "uuid",
    "visit": "integer",
    "stage_id": "text",
    "stage_order": "integer",
    "owner_id": "text",
    "entered_at": "timestamptz",
    "exited_at": "timestamptz",
    "exit_kind": "text",
    "skipped_stage_ids": "text[]",
}
CLOSED_VISIT_COLUMNS = {
    "deal_id": "uuid",
    "visit": "integer",
    "exited_at": "timestamptz",
    "exit_kind": "text",
    "skipped_stage_ids": "text[]",
}
ACTIVITY_COLUMNS = {
    "activity_id": "uuid",
    "deal_id": "uuid",
    "stage_id": "text",
    "owner_id": "text",
    "activity_type": "text",
    "channel": "text",
    "at": "timestamptz",
}
_READ_DEALS, _WRITE_DEALS = read_sql("deals", DEAL_COLUMNS), upsert_sql("deals", DEAL_COLUMNS)
_CLOSE_VERSIONS = update_sql("deal_versions", CLOSED_VERSION_COLUMNS, ("deal_id", "version"))
_INSERT_VERSIONS = insert_sql("deal_versions", VERSION_COLUMNS)
_CLOSE_VISITS = update_sql("stage_visits", CLOSED_VISIT_COLUMNS, ("deal_id", "visit"))
_INSERT_VISITS = insert_sql("stage_visits", VISIT_COLUMNS)
_INSERT_ACTIVITIES = insert_sql("activities", ACTIVITY_COLUMNS, nothing=True)
_READ_VERSIONS = f"""SELECT {", ".join(VERSION_COLUMNS)} FROM deal_versions
                     WHERE deal_id = ANY($1::uuid[]) AND valid_to IS NULL ORDER BY deal_id, version"""
_READ_VISITS = """SELECT deal_id, max(visit) AS last, array_agg(visit ORDER BY visit) FILTER (WHERE exited_at IS NULL)
                      AS open FROM stage_visits WHERE deal_id = ANY($1::uuid[]) GROUP BY deal_id"""


@dataclass
class _Deal:
    """One deal's rows as the batch changes them."""

    row: Row | None = None  # its ``deals`` row
    current: Row | None = None  # its forecast row still valid (valid_to NULL)
    current_is_new: bool = False
    last_visit: int = 0
    open_visits: list[Row] = field(default_factory=list)  # the stage visits not exited; a new one is a whole row


@dataclass
class _Changes:
    """What the batch writes: rows upserted or inserted, and the closing of rows that were there."""

    deals: dict[uuid.UUID, Row] = field(default_factory=dict)
    versions: list[Row] = field(default_factory=list)
    closed_versions: list[Row] = field(default_factory=list)
    visits: list[Row] = field(default_factory=list)
    closed_visits: list[Row] = field(default_factory=list)
    activities: list[Row] = field(default_factory=list)
    seen_activities: set[uuid.UUID] = field(default_factory=set)


class _Fold:
    """The batch's events on the deals they touch, in order."""

    def __init__(self, deals: dict[uuid.UUID, _Deal], seen_activities: set[uuid.UUID]) -> None:
        self.deals = deals
        self.out = _Changes(seen_activities=seen_activities)

    # ----------------------------------------------------------------- the rows of one deal
    def _row(self, deal_id: uuid.UUID) -> Row:
        """The deal's row, to change; an event that needs it for a deal never opened fails."""
        row = self.deals[deal_id].row
        if row is None:
            raise LookupError(f"no deal {deal_id} in the analytics")
        self.out.deals[deal_id] = row
        return row

    def _update(self, deal_id: uuid.UUID, **changes: Any) -> None:
        """The deal's row changed, if there is one (an UPDATE of a missing row changes nothing)."""
        if self.deals[deal_id].row is not None:
            self._row(deal_id).update(changes)

    def _version(self, e: CloudEvent, deal_id: uuid.UUID, **changes: Any) -> None:
        """Close the deal's current forecast row at this event's recorded time and open one with ``changes``."""
        deal = self.deals[deal_id]
        if deal.current is None:
            return
        if deal.current_is_new:
            deal.current["valid_to"] = e.recordedtime
        else:
            closing = {"deal_id": deal_id, "version": deal.current["version"], "valid_to": e.recordedtime}
            self.out.closed_versions.append(closing)
        facts = {k: deal.current[k] for k in FORECAST_FACTS} | changes
        deal.current = {"deal_id": deal_id, "valid_from": e.recordedtime, "valid_to": None, "version": e.streamversion}
        deal.current |= facts
        deal.current_is_new = True
        self.out.versions.append(deal.current)

    def _probability(self, deal_id: uuid.UUID) -> Decimal:
        row = self._row(deal_id)
        return Decimal(
            row["probability_override"] if row["probability_override"] is not None else row["stage_probability"]
        )

    def _close_visits(self, deal_id: uuid.UUID, at: datetime, kind: str, skipped: tuple[str, ...] = ()) -> None:
        for visit in self.deals[deal_id].open_visits:
            if "stage_id" in visit:  # opened in this batch
                visit.update(exited_at=at, exit_kind=kind, skipped_stage_ids=list(skipped))
            else:
                closing = {"deal_id": deal_id, "visit": visit["visit"], "exited_at": at, "exit_kind": kind}
                self.out.closed_visits.append(closing | {"skipped_stage_ids": list(skipped)})
        self.deals[deal_id].open_visits = []

    def _open_visit(self, deal_id: uuid.UUID, stage: ev.StageSnapshot, owner: str | None, at: datetime) -> None:
        if owner is None:
            raise LookupError(f"no deal {deal_id} in the analytics: a stage visit needs its owner")
        deal = self.deals[deal_id]
        deal.last_visit += 1
        visit: Row = {
            "deal_id": deal_id,
            "visit": deal.last_visit,
            "stage_id": stage.stage_id,
            "stage_order": stage.order,
            "owner_id": owner,
            "entered_at": at,
            "exited_at": None,
            "exit_kind": None,
            "skipped_stage_ids": [],
        }
        deal.open_visits.append(visit)
        self.out.visits.append(visit)

    def _owner(self, deal_id: uuid.UUID) -> str | None:
        row = self.deals[deal_id].row
        return None if row is None else str(row["owner_id"])

    # ----------------------------------------------------------------- the events
    def fold(self, e: CloudEvent, event: ev.DealEvent) -> None:
        match event:
            case ev.DealOpened():
                self._opened(e, event)
            case ev.StageChanged():
                self._stage_changed(e, event)
            case ev.DealValueChanged() | ev.DealLinesChanged():
                value = event.new if isinstance(event, ev.DealValueChanged) else event.value
                self._update(event.deal_id, value=value.amount)
                self._version(e, event.deal_id, value=value.amount)
            case ev.ExpectedCloseDateChanged():
                self._update(event.deal_id, expected_close_date=event.new, close_date_pushes=event.push_count)
                self._version(e, event.deal_id, expected_close_date=event.new)
            case ev.DealProbabilityOverridden() | ev.DealProbabilityOverrideCleared():
                override = event.probability if isinstance(event, ev.DealProbabilityOverridden) else None
                self._update(event.deal_id, probability_override=override)
                self._version(e, event.deal_id, probability=self._probability(event.deal_id))
            case ev.DealReassigned():
                self._update(event.deal_id, owner_id=event.to_owner_id, team_id=event.to_team_id)
                self._version(e, event.deal_id, owner_id=event.to_owner_id, team_id=event.to_team_id)
            case ev.ActivityLogged():
                self._activity(e, event)
            case ev.DealWon() | ev.DealLost():
                self._closed(e, event)
            case ev.DealReopened():
                self._reopened(e, event)
            case ev.DealCustomerLinked():  # before the opening (a conversion's link that came first): restated after
                self._update(event.deal_id, organisation_id=event.organisation_id)

    def _opened(self, e: CloudEvent, event: ev.DealOpened) -> None:
        deal = self.deals[event.deal_id]
        if deal.row is not None:
            raise ValueError(f"deal {event.deal_id} opened twice")
        deal.row = dict.fromkeys(DEAL_COLUMNS)
        deal.row.update(
            deal_id=event.deal_id,
            owner_id=event.owner_id,
            team_id=event.team_id,
            pipeline_id=event.pipeline_id,
            source=event.source,
            status="open",
            value=event.value.amount,
            currency=event.value.currency,
            stage_id=event.stage.stage_id,
            stage_order=event.stage.order,
            stage_probability=event.stage.probability,
            expected_close_date=event.expected_close_date,
            entered_stage_at=event.opened_at,
            opened_at=event.opened_at,
            close_date_pushes=0,
        )
        self.out.deals[event.deal_id] = deal.row
        first = {"deal_id": event.deal_id, "valid_from": e.recordedtime, "valid_to": None, "version": e.streamversion}
        deal.current = first | {
            "owner_id": event.owner_id,
            "team_id": event.team_id,
            "status": "open",
            "value": event.value.amount,
            "currency": event.value.currency,
            "probability": event.stage.probability,
            "expected_close_date": event.expected_close_date,
            "closed_at": None,
        }
        deal.current_is_new = True
        self.out.versions.append(deal.current)
        self._open_visit(event.deal_id, event.stage, event.owner_id, event.opened_at)

    def _stage_changed(self, e: CloudEvent, event: ev.StageChanged) -> None:
        s = event.to_stage
        self._update(
            event.deal_id,
            stage_id=s.stage_id,
            stage_order=s.order,
            stage_probability=s.probability,
            entered_stage_at=event.changed_at,
        )
        forward = "skipped_forward" if event.skipped_stage_ids else "advanced"
        kind = forward if event.direction == "forward" else "regressed"
        self._close_visits(event.deal_id, event.changed_at, kind, event.skipped_stage_ids)
        self._open_visit(event.deal_id, s, self._owner(event.deal_id), event.changed_at)
        self._version(e, event.deal_id, probability=self._probability(event.deal_id))

    def _activity(self, e: CloudEvent, event: ev.ActivityLogged) -> None:
        owner = self._owner(event.deal_id)
        if owner is None or event.activity_id in self.out.seen_activities:
            return
        self.out.seen_activities.add(event.activity_id)
        self.out.activities.append(
            {
                "activity_id": event.activity_id,
                "deal_id": event.deal_id,
                "stage_id": event.stage_id,
                "owner_id": owner,
                "activity_type": event.activity_type.value,
                "channel": event.channel.value,
                "at": e.time,
            }
        )

    def _closed(self, e: CloudEvent, event: ev.DealWon | ev.DealLost) -> None:
        if isinstance(event, ev.DealWon):
            at, status = event.won_at, "won"
            self._update(
                event.deal_id,
                status=status,
                won_at=at,
                value=event.value.amount,
                stage_at_close=event.stage_at_win.stage_id,
            )
            changes: dict[str, Any] = {"value": event.value.amount}
        else:
            at, status = event.lost_at, "lost"
            self._update(
                event.deal_id,
                status=status,
                lost_at=at,
                lost_reason=event.reason,
                competitor=event.competitor,
                stage_at_close=event.stage_at_loss.stage_id,
            )
            changes = {}
        self._close_visits(event.deal_id, at, status)
        self._version(e, event.deal_id, status=status, **changes, closed_at=at)

    def _reopened(self, e: CloudEvent, event: ev.DealReopened) -> None:
        s = event.to_stage
        self._update(
            event.deal_id,
            status="open",
            won_at=None,
            lost_at=None,
            lost_reason=None,
            competitor=None,
            stage_at_close=None,
            stage_id=s.stage_id,
            stage_order=s.order,
            stage_probability=s.probability,
            entered_stage_at=event.reopened_at,
        )
        self._open_visit(event.deal_id, s, self._owner(event.deal_id), event.reopened_at)
        self._version(e, event.deal_id, status="open", closed_at=None, probability=self._probability(event.deal_id))


async def _load(conn: Conn, events: Sequence[tuple[CloudEvent, ev.DealEvent]]) -> _Fold:
    """The rows of the deals the events touch, and which of their activities are already there."""
    ids = {event.deal_id for _, event in events}
    deals = {deal_id: _Deal() for deal_id in ids}
    for deal_id, row in (await read(conn, _READ_DEALS, ids)).items():
        deals[deal_id].row = row
    for r in await conn.fetch(_READ_VERSIONS, list(ids)):
        deals[r["deal_id"]].current = dict(r)
    for r in await conn.fetch(_READ_VISITS, list(ids)):
        deal = deals[r["deal_id"]]
        deal.last_visit = r["last"]
        deal.open_visits = [{"visit": v} for v in r["open"] or ()]
    activity_ids = [event.activity_id for _, event in events if isinstance(event, ev.ActivityLogged)]
    seen = await conn.fetch("SELECT activity_id FROM activities WHERE activity_id = ANY($1::uuid[])", activity_ids)
    return _Fold(deals, {r["activity_id"] for r in seen})


async def _write(conn: Conn, out: _Changes) -> None:
    """The batch's rows, one set-based statement a table and kind: the closings before the insertions."""
    await write(conn, _WRITE_DEALS, DEAL_COLUMNS, out.deals.values())
    await write(conn, _CLOSE_VERSIONS, CLOSED_VERSION_COLUMNS, out.closed_versions)
    await write(conn, _INSERT_VERSIONS, VERSION_COLUMNS, out.versions)
    await write(conn, _CLOSE_VISITS, CLOSED_VISIT_COLUMNS, out.closed_visits)
    await write(conn, _INSERT_VISITS, VISIT_COLUMNS, out.visits)
    await write(conn, _INSERT_ACTIVITIES, ACTIVITY_COLUMNS, out.activities)


async def _define(conn: Conn, definitions: dict[str, ev.PipelineDefined], targets: list[ev.SalesTargetSet]) -> None:
    """Each pipeline's stages as its last definition in the batch gives them; the targets set, in order."""
    for pipeline_id, event in definitions.items():
        await conn.execute("DELETE FROM pipeline_stages WHERE pipeline_id = $1", pipeline_id)
        await conn.executemany(
            "INSERT INTO pipeline_stages VALUES ($1, $2, $3, $4, $5, $6, $7)",
            [
                (pipeline_id, s.stage_id, s.name, s.order, s.probability, s.stuck_after_days, s.kind.value)
                for s in event.stages
            ],
        )
    await conn.executemany(
        """INSERT INTO targets VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (target_id) DO UPDATE
           SET amount = EXCLUDED.amount, currency = EXCLUDED.currency""",
        [(t.target_id, t.owner_id, t.team_id, t.period, t.amount.amount, t.amount.currency) for t in targets],
    )


async def apply(conn: Conn, facts: Sequence[Fact]) -> None:
    """The analytics tables after a batch of events in order."""
    definitions: dict[str, ev.PipelineDefined] = {}
    targets: list[ev.SalesTargetSet] = []
    deals: list[tuple[CloudEvent, ev.DealEvent]] = []
    others: list[Fact] = []
    for fact in facts:
        event = fact.event
        if isinstance(event, ev.PipelineDefined):
            definitions[event.pipeline_id] = event
        elif isinstance(event, ev.SalesTargetSet):
            targets.append(event)
        elif isinstance(event, ev.DealEvent):
            deals.append((fact.envelope, event))
        else:
            others.append(fact)
    await _define(conn, definitions, targets)
    if deals:
        fold = await _load(conn, deals)
        for e, event in deals:
            fold.fold(e, event)
        await _write(conn, fold.out)
    await next_steps.apply_next_steps(conn, [f for f in others if next_steps.is_agenda(f)])


def analytics(deals_topic: str, agenda_topic: str | None = None) -> Projection:
    """The analytics from the deals' topic and (``agenda_topic``) the agenda's activities on deals."""
    agenda = (agenda_topic,) if agenda_topic else ()
    return Projection(
        name="analytics",
        topics=(deals_topic, *agenda),
        ddl=DDL,
        apply=apply,
        accepts=("pipelines.deals.", *((next_steps.ACCEPTS,) if agenda else ())),
        tables=("pipeline_stages", "deals", "deal_versions", "stage_visits", "activities", "targets", "next_steps"),
    )
