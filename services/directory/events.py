"""The directory service's event contract: the users and teams every pipeline points at (decision 0017).

Streams: ``directory-user-<user id>`` and ``directory-team-<team id>``. A user's id is the ``sub`` their tokens
carry, chosen by the admin who registers them. Each change is an event in the user's (or team's) own stream; who
made it is the event's ``actor`` metadata, and why its ``reason`` (every change must give one; a registration or
a team's creation may).

A user's name and email are personal data, sealed under the user's own key: the data subject ``user:<user id>``
(``subject``), prefixed so that no user shares a key with a lead or a deal's contact, whose subject ids are free
strings too. ``UserPersonalDataErased`` records that this key was destroyed.
"""

from __future__ import annotations

from datetime import time
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.core.events import DomainEvent

Reason = Annotated[str, Field(min_length=1, max_length=500)]
SUBJECT_PREFIX = "user:"


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class QuietHours(_Value):
    """Local times (the user's time zone) between which nobody is notified; ``end`` before ``start`` spans midnight."""

    start: time
    end: time


class UserEvent(DomainEvent):
    user_id: str
    subject_field: ClassVar[str | None] = "subject"
    erased_by: ClassVar[str | None] = "pipelines.directory.UserPersonalDataErased"


class UserRegistered(UserEvent):
    event_type: ClassVar[str] = "pipelines.directory.UserRegistered"
    personal_fields: ClassVar[tuple[str, ...]] = ("name", "email")
    subject: str  # user:<user id>, the key the name and email are sealed under
    name: str | None
    email: str | None
    language: str  # en | vi
    time_zone: str  # IANA
    quiet_hours: QuietHours | None = None
    team_id: str
    roles: tuple[str, ...]
    registered_at: AwareDatetime
    reason: Reason | None = None


class UserProfileChanged(UserEvent):
    """The profile as it is now (every profile field: the name and email cannot be compared while sealed)."""

    event_type: ClassVar[str] = "pipelines.directory.UserProfileChanged"
    personal_fields: ClassVar[tuple[str, ...]] = ("name", "email")
    subject: str
    name: str | None
    email: str | None
    language: str
    time_zone: str
    quiet_hours: QuietHours | None = None
    reason: Reason


class UserRolesChanged(UserEvent):
    event_type: ClassVar[str] = "pipelines.directory.UserRolesChanged"
    old: tuple[str, ...]
    new: tuple[str, ...]
    reason: Reason


class UserMovedToTeam(UserEvent):
    event_type: ClassVar[str] = "pipelines.directory.UserMovedToTeam"
    old: str
    new: str
    reason: Reason


class UserDeactivated(UserEvent):
    """The user may no longer work; ``handed_to`` (an active user, not this one) takes over what they owned:
    the other services reassign their open deals, leads and activities on this event."""

    event_type: ClassVar[str] = "pipelines.directory.UserDeactivated"
    team_id: str
    handed_to: str
    reason: Reason
    deactivated_at: AwareDatetime


class UserReactivated(UserEvent):
    event_type: ClassVar[str] = "pipelines.directory.UserReactivated"
    team_id: str
    reason: Reason


class UserPersonalDataErased(UserEvent):
    """The user's key was destroyed: their name and email read as null from now on (the user stays, by id)."""

    event_type: ClassVar[str] = "pipelines.directory.UserPersonalDataErased"
    erasure: ClassVar[bool] = True
    subject: str
    reason: Reason
    erased_at: AwareDatetime


# ---------------------------------------------------------------------------------------------- teams
class TeamEvent(DomainEvent):
    team_id: str


class TeamCreated(TeamEvent):
    event_type: ClassVar[str] = "pipelines.directory.TeamCreated"
    name: str
    created_at: AwareDatetime
    reason: Reason | None = None


class TeamRenamed(TeamEvent):
    event_type: ClassVar[str] = "pipelines.directory.TeamRenamed"
    old: str
    new: str
    reason: Reason


class TeamClosed(TeamEvent):
    event_type: ClassVar[str] = "pipelines.directory.TeamClosed"
    reason: Reason
    closed_at: AwareDatetime
