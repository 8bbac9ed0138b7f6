"""The next step on every deal (issue 25, decision 0020): the agenda's activities scheduled on deals, kept in the
deals' read models (the board and the analytics) from the agenda's topic.

Stored: facts (each activity on a deal: its kind, title, due time, open or not), one row an activity, whichever
arrives first of the deal and its activities (a rebuild reads the two topics in an order of its own). Derived at
query time from ``now``: the next activity (the open one due first, overdue or not), how many are overdue, and
the two flags Pipedrive's rule asks for: an open deal with no next step, an open deal with an overdue activity.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from services.agenda import events as agenda
from shared.messaging.projections import Fact
from shared.messaging.rows import Row, read, read_sql, upsert_sql, write
from shared.store.db import Conn

ACCEPTS = "pipelines.agenda.Activity"  # the agenda's activity events (its deliveries are not the deals')
TABLE = "next_steps"
DDL = """
CREATE TABLE IF NOT EXISTS next_steps (
    activity_id uuid PRIMARY KEY,
    deal_id     uuid NOT NULL,
    kind        text NOT NULL,
    title       text NOT NULL,
    due_at      timestamptz NOT NULL,
    open        boolean NOT NULL
);
CREATE INDEX IF NOT EXISTS next_steps_by_deal ON next_steps (deal_id, due_at) WHERE open;
"""
COLUMNS: dict[str, str] = {
    "activity_id": "uuid",
    "deal_id": "uuid",
    "kind": "text",
    "title": "text",
    "due_at": "timestamptz",
    "open": "boolean",
}
_READ, _WRITE = read_sql(TABLE, COLUMNS), upsert_sql(TABLE, COLUMNS)


def deal_of(event: agenda.ActivityScheduled) -> uuid.UUID | None:
    """The deal an activity was scheduled on, or None (a lead's, an organisation's, a person's)."""
    return event.subject_ref if event.subject_type == "deal" else None


def is_agenda(fact: Fact) -> bool:
    """An activity event of the agenda's (its deliveries, and the deals' own ``ActivityLogged``, are not)."""
    return fact.envelope.type.startswith(ACCEPTS)


def _scheduled(event: agenda.ActivityScheduled, deal_id: uuid.UUID) -> Row:
    return {
        "activity_id": event.activity_id,
        "deal_id": deal_id,
        "kind": event.kind,
        "title": event.title,
        "due_at": event.due_at,
        "open": True,
    }


def _fold(row: Row, event: agenda.ActivityEvent) -> None:
    match event:
        case agenda.ActivityRescheduled():
            row["due_at"] = event.due_at
        case agenda.ActivityCompleted() | agenda.ActivityCancelled():
            row["open"] = False


async def apply_next_steps(conn: Conn, facts: Sequence[Fact]) -> None:
    """The batch's activity events on ``next_steps``: an activity scheduled twice keeps its first row; an event of
    an activity not on a deal (or never scheduled) changes nothing; a completed or cancelled one stays closed."""
    events = [f.event for f in facts if isinstance(f.event, agenda.ActivityEvent)]
    if not events:
        return
    rows = await read(conn, _READ, {e.activity_id for e in events})
    changed: dict[uuid.UUID, Row] = {}
    for event in events:
        key = event.activity_id
        row = rows.get(key)
        if isinstance(event, agenda.ActivityScheduled):
            deal_id = deal_of(event)
            if row is None and deal_id is not None:
                rows[key] = changed[key] = _scheduled(event, deal_id)
        elif row is not None and row["open"]:
            _fold(row, event)
            changed[key] = row
    await write(conn, _WRITE, COLUMNS, changed.values())


# The next step of the deal ``b`` (its row's alias) at ``{now}`` (a query parameter): how many open activities it
# has, how many are overdue, and the one due first. A LEFT JOIN LATERAL: a deal with none has zeros and NULLs.
def next_step_join(now: str, deal: str = "b") -> str:
    order = "ORDER BY n.due_at, n.activity_id"
    return f"""LEFT JOIN LATERAL (
        SELECT count(*) AS open_activities,
               count(*) FILTER (WHERE n.due_at < {now}::timestamptz) AS overdue_activities,
               (array_agg(n.activity_id {order}))[1] AS next_activity_id,
               (array_agg(n.kind {order}))[1] AS next_kind,
               (array_agg(n.title {order}))[1] AS next_title,
               min(n.due_at) AS next_due_at
        FROM next_steps n WHERE n.deal_id = {deal}.deal_id AND n.open) nx ON true"""


def next_step_columns(deal: str = "b") -> str:
    """The board row's next-step columns (``next_step_join`` gives ``nx``); the flags only for an open deal."""
    return f"""nx.next_activity_id, nx.next_kind, nx.next_title, nx.next_due_at,
        coalesce(nx.overdue_activities, 0)::int AS overdue_activities,
        ({deal}.status = 'open' AND coalesce(nx.open_activities, 0) = 0) AS no_next_step,
        ({deal}.status = 'open' AND coalesce(nx.overdue_activities, 0) > 0) AS overdue"""


def nest(row: dict[str, Any]) -> dict[str, Any]:
    """A row's next-step columns as one ``next_step`` object (None: no open activity)."""
    if "next_activity_id" not in row:
        return row
    step = {k: row.pop(f"next_{k}") for k in ("activity_id", "kind", "title", "due_at")}
    row["next_step"] = step if step["activity_id"] is not None else None
    return row
