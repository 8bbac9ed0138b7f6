"""Activities as the API answers them: JSON, the notes and outcome opened for the answer only (null once their
data subject was erased)."""

from __future__ import annotations

from typing import Any

from services.agenda.domain import Activity
from shared.privacy.pii import PersonalData
from shared.store import RecordedEvent

SCHEDULED = "pipelines.agenda.ActivityScheduled"
COMPLETED = "pipelines.agenda.ActivityCompleted"


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


async def activity_view(
    a: Activity, events: list[RecordedEvent], version: int, personal_data: PersonalData, *, personal: bool = True
) -> dict[str, Any]:
    """An activity from its stream: its notes (the scheduling's) and outcome (the completion's), opened now for a
    caller who works it (``personal``); null for the others, as a deal's contact is."""
    notes = next((e.data.get("notes") for e in events if e.event_type == SCHEDULED), None)
    outcome = next((e.data.get("outcome") for e in reversed(events) if e.event_type == COMPLETED), None)
    sealed = {"notes": notes, "outcome": outcome} if personal else {"notes": None, "outcome": None}
    (opened,) = await personal_data.open([sealed])
    return {
        "activity_id": str(a.activity_id),
        "kind": a.kind,
        "subject_type": a.subject_type,
        "subject_id": str(a.subject_id),
        "owner_id": a.owner_id,
        "team_id": a.team_id,
        "title": a.title,
        "notes": opened["notes"],
        "outcome": opened["outcome"],
        "due_at": _iso(a.due_at),
        "duration_minutes": a.duration_minutes,
        "status": a.status,
        "scheduled_at": _iso(a.scheduled_at),
        "completed_at": _iso(a.completed_at),
        "notes_erased": a.notes_erased,
        "version": version,
    }


def row_view(r: dict[str, Any]) -> dict[str, Any]:
    """A row of the ``activities`` read model, without its notes (a list opens no sealed field: the activity's
    own answer does)."""
    return {
        "activity_id": str(r["activity_id"]),
        "kind": r["kind"],
        "subject_type": r["subject_type"],
        "subject_id": str(r["subject_ref"]),
        "owner_id": r["owner_id"],
        "team_id": r["team_id"],
        "title": r["title"],
        "due_at": _iso(r["due_at"]),
        "duration_minutes": r["duration_minutes"],
        "status": r["status"],
        "scheduled_at": _iso(r["scheduled_at"]),
        "completed_at": _iso(r["completed_at"]),
        "version": r["version"],
    }
