"""The ``activities`` read model: each activity as the agenda and the lists read it, its notes and outcome kept
as their sealed tokens (opened at query time for whoever may read them: an erasure leaves them unreadable here
too). Indexed for the agenda: ``(owner_id, status, due_at)`` and ``(team_id, status, due_at)``. A batch's rows are read
once, folded in order and written once (``shared.messaging.rows``); ``version`` guards the updates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.agenda import events as ev
from shared.messaging.projections import Fact, Projection
from shared.messaging.rows import Row, Table
from shared.store.db import Conn

NAME = "activities"
DDL = """
CREATE TABLE IF NOT EXISTS activities (
    activity_id uuid PRIMARY KEY, kind text NOT NULL, subject_type text NOT NULL, subject_ref uuid NOT NULL,
    owner_id text NOT NULL, team_id text NOT NULL, title text NOT NULL, notes_token text, outcome_token text,
    data_subject text NOT NULL, due_at timestamptz NOT NULL, duration_minutes integer NOT NULL,
    status text NOT NULL, scheduled_at timestamptz NOT NULL, completed_at timestamptz, cancelled_at timestamptz,
    notes_erased boolean NOT NULL DEFAULT false, version integer NOT NULL);
CREATE INDEX IF NOT EXISTS activities_agenda ON activities (owner_id, status, due_at);
CREATE INDEX IF NOT EXISTS activities_team ON activities (team_id, status, due_at);
CREATE INDEX IF NOT EXISTS activities_subject ON activities (subject_ref, due_at);
CREATE INDEX IF NOT EXISTS activities_due ON activities (due_at) WHERE status = 'scheduled';  -- the notifier's poll
"""
ACTIVITIES = Table(
    "activities",
    {
        "activity_id": "uuid",
        "kind": "text",
        "subject_type": "text",
        "subject_ref": "uuid",
        "owner_id": "text",
        "team_id": "text",
        "title": "text",
        "notes_token": "text",
        "outcome_token": "text",
        "data_subject": "text",
        "due_at": "timestamptz",
        "duration_minutes": "integer",
        "status": "text",
        "scheduled_at": "timestamptz",
        "completed_at": "timestamptz",
        "cancelled_at": "timestamptz",
        "notes_erased": "boolean",
        "version": "integer",
    },
    defaults={"notes_erased": False},
)


def _scheduled(fact: Fact, e: ev.ActivityScheduled) -> Row:
    return ACTIVITIES.new(
        activity_id=e.activity_id,
        kind=e.kind,
        subject_type=e.subject_type,
        subject_ref=e.subject_ref,
        owner_id=e.owner_id,
        team_id=e.team_id,
        title=e.title,
        notes_token=fact.envelope.data.get("notes"),  # the sealed token, opened at query time
        data_subject=e.data_subject,
        due_at=e.due_at,
        duration_minutes=e.duration_minutes,
        status="scheduled",
        scheduled_at=e.scheduled_at,
        version=fact.envelope.streamversion,
    )


def _changes(fact: Fact) -> dict[str, Any]:
    """What a later event of an activity sets on its row."""
    match fact.event:
        case ev.ActivityRescheduled() as e:
            return {"due_at": e.due_at, "duration_minutes": e.duration_minutes}
        case ev.ActivityCompleted() as e:
            return {
                "status": "done",
                "completed_at": e.completed_at,
                "outcome_token": fact.envelope.data.get("outcome"),
            }
        case ev.ActivityCancelled() as e:
            return {"status": "cancelled", "cancelled_at": e.cancelled_at}
        case ev.ActivityReassigned() as e:
            return {"owner_id": e.owner_id, "team_id": e.team_id}
        case ev.ActivityNotesErased():
            return {"notes_erased": True, "notes_token": None, "outcome_token": None}
    return {}


async def apply(conn: Conn, facts: Sequence[Fact]) -> None:
    """A batch in order: the activities' rows read once, folded, written once. A row changes only for an event of
    a later version than its own (a replay changes nothing)."""
    rows = await ACTIVITIES.rows(conn, {f.event.activity_id for f in facts if isinstance(f.event, ev.ActivityEvent)})
    for fact in facts:
        v = fact.envelope.streamversion
        if isinstance(fact.event, ev.ActivityScheduled):
            rows.insert(_scheduled(fact, fact.event))
        elif isinstance(fact.event, ev.ActivityEvent) and (changes := _changes(fact)):
            row = rows.get(fact.event.activity_id)
            if row is not None and row["version"] < v:
                rows.update(fact.event.activity_id, **changes, version=v)
    await rows.flush(conn)


async def apply_one(conn: Conn, fact: Fact) -> None:
    """One event (a batch of one)."""
    await apply(conn, [fact])


def activities(topic: str) -> Projection:
    return Projection(
        name=NAME,
        topics=(topic,),
        ddl=DDL,
        apply=apply,
        accepts=("pipelines.agenda.Activity",),
        tables=("activities",),
    )
