"""The agenda's commands, as a request sends them: every field bounded (shared.core.limits), a bad value 422
naming the field."""

from __future__ import annotations

import uuid
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.core.channels import ActivityKind
from shared.core.limits import MAX_CODE_CHARS, MAX_ID_CHARS, MAX_NAME_CHARS, MAX_TEXT_CHARS, AwareMoment

USER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:|+-]*$"  # as the directory's (a token's sub)
TEAM_ID_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
MAX_DURATION_MINUTES = 8 * 60  # a working day: longer work is split into activities
OwnerId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS, pattern=USER_ID_PATTERN)]
TeamId = Annotated[str, Field(min_length=1, max_length=MAX_CODE_CHARS, pattern=TEAM_ID_PATTERN)]
Title = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)]
Notes = Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]
Reason = Annotated[str, Field(min_length=1, max_length=500)]
Duration = Annotated[int, Field(ge=0, le=MAX_DURATION_MINUTES, description="minutes (0: a moment, e.g. a task)")]
SubjectType = Literal["deal", "lead", "organisation", "person"]


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=MAX_TEXT_CHARS)
    name: ClassVar[str]


class Schedule(Command):
    """Schedule an activity on a deal, a lead, an organisation or a person."""

    name: ClassVar[str] = "schedule"
    kind: ActivityKind
    subject_type: SubjectType
    subject_id: uuid.UUID
    owner_id: OwnerId | None = Field(None, description="who does it (default: the caller); an active user")
    title: Title
    notes: Notes | None = Field(None, description="sealed under the subject's data-subject key")
    due_at: AwareMoment = Field(description="not before the command's time (X-Occurred-At, default now)")
    duration_minutes: Duration = 30


class Reschedule(Command):
    """Move it to another time (not before the command's time)."""

    name: ClassVar[str] = "reschedule"
    due_at: AwareMoment
    duration_minutes: Duration | None = Field(None, description="default: as it was")
    reason: Reason | None = None


class Complete(Command):
    """Done, at the command's time (X-Occurred-At for work done earlier), with what came of it."""

    name: ClassVar[str] = "complete"
    outcome: Notes | None = Field(None, description="sealed under the subject's data-subject key")


class Cancel(Command):
    """It will not be done."""

    name: ClassVar[str] = "cancel"
    reason: Reason


class Reassign(Command):
    """Another owner does it (of the team named, default the new owner's)."""

    name: ClassVar[str] = "reassign"
    owner_id: OwnerId
    team_id: TeamId | None = None
    reason: Reason


class EraseNotes(Command):
    """Record that the notes' data subject was erased (its key is gone): reactions only."""

    name: ClassVar[str] = "erase_notes"
    reason: Reason


ActivityCommand = Schedule | Reschedule | Complete | Cancel | Reassign | EraseNotes
