"""An activity: work to do on a subject, by an owner, at a due time. Pure.

Rules ("in the past" is the command's occurred time ``at``, not the clock: back-dated and imported history keeps
working):

- scheduled once (409 ``activity_exists``); its due time not before ``at`` (422 ``due_in_the_past`` naming
  ``due_at``); a duration of 0 to 8 hours (the command's bounds);
- rescheduled, completed, cancelled or reassigned only once scheduled (404 ``not_found``) and while open: nothing
  after completion or cancellation (409 ``activity_done`` / ``activity_cancelled``);
- rescheduled to a due time not before ``at`` (422 naming ``due_at``) and not to the same time and duration
  (409 ``unchanged``); completed not before it was scheduled (409 ``completed_before_scheduled``);
- reassigned to another owner (409 ``unchanged``);
- its notes erased once (409 ``notes_erased``), whatever its status.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from services.agenda.domain import commands as c
from services.agenda.domain.errors import AgendaRuleError, InvalidFieldError, NotFoundError
from services.agenda.events import (
    ActivityCancelled,
    ActivityCompleted,
    ActivityEvent,
    ActivityNotesErased,
    ActivityReassigned,
    ActivityRescheduled,
    ActivityScheduled,
)
from shared.core.decider import Decider, replace
from shared.core.events import DomainEvent

SCHEDULED, DONE, CANCELLED = "scheduled", "done", "cancelled"


@dataclass(frozen=True)
class Activity:
    activity_id: uuid.UUID | None = None  # None: not scheduled
    kind: str = ""
    subject_type: str = ""
    subject_id: uuid.UUID | None = None
    owner_id: str = ""
    team_id: str = ""
    title: str = ""
    data_subject: str = ""
    due_at: datetime | None = None
    duration_minutes: int = 0
    status: str = ""  # scheduled | done | cancelled
    scheduled_at: datetime | None = None
    completed_at: datetime | None = None
    notes_erased: bool = False

    @property
    def open(self) -> bool:
        return self.status == SCHEDULED


@dataclass(frozen=True)
class Placement:
    """What the handler settled for a scheduling from the replicas: the owner, their team, the subject's data
    subject (the key its notes are sealed under)."""

    owner_id: str
    team_id: str
    data_subject: str


def evolve(a: Activity, e: DomainEvent) -> Activity:
    match e:
        case ActivityScheduled():
            return Activity(
                e.activity_id,
                e.kind,
                e.subject_type,
                e.subject_ref,
                e.owner_id,
                e.team_id,
                e.title,
                e.data_subject,
                e.due_at,
                e.duration_minutes,
                SCHEDULED,
                e.scheduled_at,
            )
        case ActivityRescheduled():
            return replace(a, due_at=e.due_at, duration_minutes=e.duration_minutes)
        case ActivityCompleted():
            return replace(a, status=DONE, completed_at=e.completed_at)
        case ActivityCancelled():
            return replace(a, status=CANCELLED)
        case ActivityReassigned():
            return replace(a, owner_id=e.owner_id, team_id=e.team_id)
        case ActivityNotesErased():
            return replace(a, notes_erased=True)
    return a


activity_decider: Decider[Activity] = Decider(Activity(), evolve)


def _not_before(due_at: datetime, at: datetime) -> None:
    if due_at < at:
        raise InvalidFieldError(
            "due_in_the_past", f"due_at: {due_at.isoformat()} is before the command's time {at.isoformat()}", "due_at"
        )


def _open(a: Activity, activity_id: uuid.UUID) -> Activity:
    if a.activity_id is None:
        raise NotFoundError("not_found", f"no activity {activity_id}")
    if a.status == DONE:
        raise AgendaRuleError("activity_done", f"activity {activity_id} is done")
    if a.status == CANCELLED:
        raise AgendaRuleError("activity_cancelled", f"activity {activity_id} was cancelled")
    return a


def schedule(
    a: Activity, cmd: c.Schedule, at: datetime, activity_id: uuid.UUID, place: Placement
) -> list[ActivityEvent]:
    if a.activity_id is not None:
        raise AgendaRuleError("activity_exists", f"an activity {activity_id} exists already")
    _not_before(cmd.due_at, at)
    return [
        ActivityScheduled(
            activity_id=activity_id,
            kind=cmd.kind.value,
            subject_type=cmd.subject_type,
            subject_ref=cmd.subject_id,
            owner_id=place.owner_id,
            team_id=place.team_id,
            title=cmd.title,
            notes=cmd.notes,
            due_at=cmd.due_at,
            duration_minutes=cmd.duration_minutes,
            data_subject=place.data_subject,
            scheduled_at=at,
        )
    ]


def reschedule(a: Activity, cmd: c.Reschedule, at: datetime, activity_id: uuid.UUID) -> list[ActivityEvent]:
    _open(a, activity_id)
    _not_before(cmd.due_at, at)
    duration = a.duration_minutes if cmd.duration_minutes is None else cmd.duration_minutes
    if a.due_at == cmd.due_at and duration == a.duration_minutes:
        raise AgendaRuleError("unchanged", f"activity {activity_id} is due then already")
    assert a.due_at is not None  # scheduled
    return [
        ActivityRescheduled(
            activity_id=activity_id,
            old_due_at=a.due_at,
            due_at=cmd.due_at,
            duration_minutes=duration,
            reason=cmd.reason,
        )
    ]


def complete(a: Activity, cmd: c.Complete, at: datetime, activity_id: uuid.UUID) -> list[ActivityEvent]:
    _open(a, activity_id)
    if a.scheduled_at is not None and at < a.scheduled_at:
        raise AgendaRuleError(
            "completed_before_scheduled",
            f"activity {activity_id} was scheduled at {a.scheduled_at.isoformat()}, after {at.isoformat()}",
        )
    return [
        ActivityCompleted(activity_id=activity_id, outcome=cmd.outcome, data_subject=a.data_subject, completed_at=at)
    ]


def cancel(a: Activity, cmd: c.Cancel, at: datetime, activity_id: uuid.UUID) -> list[ActivityEvent]:
    _open(a, activity_id)
    return [ActivityCancelled(activity_id=activity_id, reason=cmd.reason, cancelled_at=at)]


def reassign(a: Activity, cmd: c.Reassign, team_id: str, activity_id: uuid.UUID) -> list[ActivityEvent]:
    _open(a, activity_id)
    if cmd.owner_id == a.owner_id and team_id == a.team_id:
        raise AgendaRuleError("unchanged", f"activity {activity_id} is {a.owner_id}'s already")
    return [
        ActivityReassigned(
            activity_id=activity_id, old_owner_id=a.owner_id, owner_id=cmd.owner_id, team_id=team_id, reason=cmd.reason
        )
    ]


def erase_notes(a: Activity, cmd: c.EraseNotes, at: datetime, activity_id: uuid.UUID) -> list[ActivityEvent]:
    if a.activity_id is None:
        raise NotFoundError("not_found", f"no activity {activity_id}")
    if a.notes_erased:
        raise AgendaRuleError("notes_erased", f"activity {activity_id}'s notes were erased already")
    return [ActivityNotesErased(activity_id=activity_id, data_subject=a.data_subject, reason=cmd.reason, erased_at=at)]


def decide(
    a: Activity,
    cmd: c.ActivityCommand,
    at: datetime,
    activity_id: uuid.UUID,
    place: Placement | None = None,
) -> list[ActivityEvent]:
    """What ``cmd`` does to activity ``activity_id`` at the command's time ``at``; ``place``: a scheduling's owner,
    team and data subject, or a reassignment's team, as the handler settled them."""
    match cmd:
        case c.Schedule():
            assert place is not None, "a scheduling is placed by the handler"
            return schedule(a, cmd, at, activity_id, place)
        case c.Reschedule():
            return reschedule(a, cmd, at, activity_id)
        case c.Complete():
            return complete(a, cmd, at, activity_id)
        case c.Cancel():
            return cancel(a, cmd, at, activity_id)
        case c.Reassign():
            return reassign(a, cmd, place.team_id if place else cmd.team_id or a.team_id, activity_id)
        case c.EraseNotes():
            return erase_notes(a, cmd, at, activity_id)
    raise TypeError(f"not an activity command: {type(cmd).__name__}")
