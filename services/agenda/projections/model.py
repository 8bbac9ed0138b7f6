"""The ``activities`` read model: each activity as the agenda and the lists read it, its notes and outcome kept
as their sealed tokens (opened at query time for whoever may read them: an erasure leaves them unreadable here
too). Indexed for the agenda: ``(owner_id, status, due_at)`` and ``(team_id, status, due_at)``. Each statement is
idempotent per event (a replay or a batch applied again changes nothing: ``version`` guards the updates)."""

from __future__ import annotations

from services.agenda import events as ev
from shared.messaging.projections import Fact, Projection, one_by_one
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
_UPDATE = "UPDATE activities SET {} WHERE activity_id = $1 AND version < $2"


async def _scheduled(conn: Conn, fact: Fact, e: ev.ActivityScheduled) -> None:
    await conn.execute(
        """INSERT INTO activities (activity_id, kind, subject_type, subject_ref, owner_id, team_id, title,
               notes_token, data_subject, due_at, duration_minutes, status, scheduled_at, version)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'scheduled', $12, $13) ON CONFLICT DO NOTHING""",
        e.activity_id,
        e.kind,
        e.subject_type,
        e.subject_ref,
        e.owner_id,
        e.team_id,
        e.title,
        fact.envelope.data.get("notes"),  # the sealed token, opened at query time
        e.data_subject,
        e.due_at,
        e.duration_minutes,
        e.scheduled_at,
        fact.envelope.streamversion,
    )


async def apply_one(conn: Conn, fact: Fact) -> None:
    v = fact.envelope.streamversion
    match fact.event:
        case ev.ActivityScheduled() as e:
            await _scheduled(conn, fact, e)
        case ev.ActivityRescheduled() as e:
            sql = _UPDATE.format("due_at = $3, duration_minutes = $4, version = $2")
            await conn.execute(sql, e.activity_id, v, e.due_at, e.duration_minutes)
        case ev.ActivityCompleted() as e:
            sql = _UPDATE.format("status = 'done', completed_at = $3, outcome_token = $4, version = $2")
            await conn.execute(sql, e.activity_id, v, e.completed_at, fact.envelope.data.get("outcome"))
        case ev.ActivityCancelled() as e:
            sql = _UPDATE.format("status = 'cancelled', cancelled_at = $3, version = $2")
            await conn.execute(sql, e.activity_id, v, e.cancelled_at)
        case ev.ActivityReassigned() as e:
            sql = _UPDATE.format("owner_id = $3, team_id = $4, version = $2")
            await conn.execute(sql, e.activity_id, v, e.owner_id, e.team_id)
        case ev.ActivityNotesErased() as e:
            sql = _UPDATE.format("notes_erased = true, notes_token = NULL, outcome_token = NULL, version = $2")
            await conn.execute(sql, e.activity_id, v)


def activities(topic: str) -> Projection:
    return Projection(
        name=NAME,
        topics=(topic,),
        ddl=DDL,
        apply=one_by_one(apply_one),
        accepts=("pipelines.agenda.Activity",),
        tables=("activities",),
    )
