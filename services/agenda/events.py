"""The agenda service's event contract: activities as work — scheduled on a deal, a lead, an organisation or a
person, then completed, rescheduled, cancelled or handed to another owner (decision 0020).

Stream: ``agenda-activity-<uuid>``. ``kind`` is one of the one channel list (``shared.core.channels``:
``ActivityKind``). ``subject_type`` is ``deal``, ``lead``, ``organisation`` or ``person``; ``subject_ref`` its id.

An activity's ``notes`` and ``outcome`` are personal data, sealed under the subject's own data-subject key
(``data_subject``): a lead's id, a deal's ``contact_id`` (``deal:<id>`` for a deal without a contact),
``person:<id>``, ``organisation:<id>``. Keys are shared (the ``pii`` schema), so erasing the lead, the deal's
contact or the person makes the notes and outcomes unreadable with no event of the agenda's;
``ActivityNotesErased`` records it on an activity when the agenda is told (its ``data_subject``'s key is gone).
The title is no personal data (the board shows it as the deal's next step): write names in the notes.
"""

from __future__ import annotations

import uuid
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, Field

from shared.core.events import DomainEvent

Reason = Annotated[str, Field(min_length=1, max_length=500)]
SUBJECT_TYPES = ("deal", "lead", "organisation", "person")


class ActivityEvent(DomainEvent):
    activity_id: uuid.UUID


class _Sealed(ActivityEvent):
    subject_field: ClassVar[str | None] = "data_subject"
    erased_by: ClassVar[str | None] = "pipelines.agenda.ActivityNotesErased"


class ActivityScheduled(_Sealed):
    """An activity to do: ``due_at`` (never before the command's occurred time) for ``duration_minutes``, by
    ``owner_id`` of ``team_id`` (the owner's team when scheduled)."""

    event_type: ClassVar[str] = "pipelines.agenda.ActivityScheduled"
    personal_fields: ClassVar[tuple[str, ...]] = ("notes",)
    kind: str  # shared.core.channels.ActivityKind
    subject_type: str  # deal | lead | organisation | person
    subject_ref: uuid.UUID  # the subject's id (not `subject_id`: DomainEvent.subject_id() names the data subject)
    owner_id: str
    team_id: str
    title: str
    notes: str | None = None
    due_at: AwareDatetime
    duration_minutes: int
    data_subject: str
    scheduled_at: AwareDatetime


class ActivityRescheduled(ActivityEvent):
    event_type: ClassVar[str] = "pipelines.agenda.ActivityRescheduled"
    old_due_at: AwareDatetime
    due_at: AwareDatetime
    duration_minutes: int
    reason: Reason | None = None


class ActivityCompleted(_Sealed):
    """Done, at ``completed_at`` (the command's occurred time), with what came of it (``outcome``, sealed)."""

    event_type: ClassVar[str] = "pipelines.agenda.ActivityCompleted"
    personal_fields: ClassVar[tuple[str, ...]] = ("outcome",)
    outcome: str | None = None
    data_subject: str
    completed_at: AwareDatetime


class ActivityCancelled(ActivityEvent):
    event_type: ClassVar[str] = "pipelines.agenda.ActivityCancelled"
    reason: Reason
    cancelled_at: AwareDatetime


class ActivityReassigned(ActivityEvent):
    """Another owner does it (a manager's call, or a hand-over when its owner is deactivated)."""

    event_type: ClassVar[str] = "pipelines.agenda.ActivityReassigned"
    old_owner_id: str
    owner_id: str
    team_id: str
    reason: Reason


class ActivityNotesErased(ActivityEvent):
    """The key of the activity's data subject is gone (the lead, the deal's contact or the person was erased): its
    notes and outcome read as null from now on. Carries no personal data."""

    event_type: ClassVar[str] = "pipelines.agenda.ActivityNotesErased"
    subject_field: ClassVar[str | None] = "data_subject"
    erasure: ClassVar[bool] = True
    data_subject: str
    reason: Reason
    erased_at: AwareDatetime


def activity_stream(activity_id: uuid.UUID) -> str:
    return f"agenda-activity-{activity_id}"


# the notifier's deliveries (decision 0020, "Never twice"), on streams ``agenda-delivery-<uuid5>``: defined beside
# their rules in services.agenda.delivery, registered with the agenda's contract by this import
from services.agenda.delivery import DeliveryClaimed, DeliveryFailed, DeliverySent  # noqa: E402

__all__ = ["DeliveryClaimed", "DeliveryFailed", "DeliverySent"]
