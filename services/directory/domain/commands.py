"""The directory's commands, as a request sends them: every field bounded (shared.core.limits), a bad value 422
naming the field. Time zones are IANA names this Python knows (zoneinfo); roles are checked against the roles
tokens may carry by the handler (the domain knows no tokens)."""

from __future__ import annotations

import functools
import re
from datetime import time
from typing import Annotated, Literal
from zoneinfo import available_timezones

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, WithJsonSchema
from pydantic_core import PydanticCustomError

from services.directory.events import QuietHours
from shared.core.limits import MAX_CODE_CHARS, MAX_ID_CHARS, MAX_NAME_CHARS, Email, ValidatedAs

# a user id is the token's ``sub`` and appears in clear (stream ids, read models, logs, other services' records):
# opaque, never an email address (no ``@``), so that it is no personal data of its own
USER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:|+-]*$"
TEAM_ID_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
UserId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS, pattern=USER_ID_PATTERN)]
TeamId = Annotated[str, Field(min_length=1, max_length=MAX_CODE_CHARS, pattern=TEAM_ID_PATTERN)]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)]
Reason = Annotated[str, Field(min_length=1, max_length=500)]
Role = Annotated[str, Field(min_length=1, max_length=MAX_CODE_CHARS)]
Language = Literal["en", "vi"]


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def iana_zone(value: str) -> str:
    """An IANA time zone name (``Asia/Ho_Chi_Minh``) that zoneinfo knows: not an offset, an abbreviation or a path."""
    if value not in _zones():
        raise ValueError(f"{value[:40]!r} is not an IANA time zone (e.g. Asia/Ho_Chi_Minh)")
    return value


TimeZone = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(iana_zone)]


def quiet_hours(value: QuietHours | None) -> QuietHours | None:
    if value is not None and value.start == value.end:
        raise ValueError("quiet hours must start and end at different times (none: null)")
    return value


HH_MM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


def _hh_mm(value: object) -> object:
    """A local time written HH:MM (24 hours), nothing longer: quiet hours are to the minute."""
    if not isinstance(value, str) or not re.fullmatch(HH_MM, value):
        raise PydanticCustomError("time_format", "Time should be written HH:MM (00:00 to 23:59)")
    return value


HourMinute = Annotated[
    time, BeforeValidator(_hh_mm), WithJsonSchema({"type": "string", "pattern": HH_MM, "maxLength": 5})
]


class QuietHoursInput(QuietHours):
    """Quiet hours as a request gives them: ``{"start": "21:30", "end": "07:00"}``."""

    start: HourMinute
    end: HourMinute


Quiet = Annotated[Annotated[QuietHours, ValidatedAs(QuietHoursInput)] | None, AfterValidator(quiet_hours)]
# how reminders reach the user (issue 25): each as it falls due, or gathered in a digest at ``digest_at`` local time
Reminders = Literal["immediate", "digest"]
DEFAULT_DIGEST_AT = time(7, 30)


def digest_time(value: time | None, info: ValidationInfo) -> time | None:
    """A digest goes at a local time (07:30 unless given); an immediate user's reminders have none."""
    reminders = info.data.get("reminders", "immediate")
    if reminders == "immediate" and value is not None:
        raise ValueError("only a digest user's reminders go at a set time (reminders: digest)")
    return DEFAULT_DIGEST_AT if reminders == "digest" and value is None else value


DigestAt = Annotated[HourMinute | None, AfterValidator(digest_time), Field(validate_default=True)]
Roles = Annotated[tuple[Role, ...], Field(max_length=10)]


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=2000)


class UserCommand(Command):
    """A command on a user."""


class RegisterUser(UserCommand):
    user_id: UserId = Field(description="the `sub` the user's tokens carry")
    name: Name
    email: Email
    language: Language = "vi"
    time_zone: TimeZone = "Asia/Ho_Chi_Minh"
    quiet_hours: Quiet = None
    reminders: Reminders = "immediate"
    digest_at: DigestAt = None
    team_id: TeamId
    roles: Roles = ()
    reason: Reason | None = None


class ChangeProfile(UserCommand):
    """The whole profile as it is to be (PUT): name, email, language, time zone, quiet hours, reminders."""

    name: Name
    email: Email
    language: Language = "vi"
    time_zone: TimeZone = "Asia/Ho_Chi_Minh"
    quiet_hours: Quiet = None
    reminders: Reminders = "immediate"
    digest_at: DigestAt = None
    reason: Reason


class ChangeRoles(UserCommand):
    roles: Roles
    reason: Reason


class MoveToTeam(UserCommand):
    team_id: TeamId
    reason: Reason


class Deactivate(UserCommand):
    handed_to: UserId = Field(description="the active user who takes over what this one owned")
    reason: Reason


class Reactivate(UserCommand):
    reason: Reason


class EraseUser(UserCommand):
    """Forget the user's name and email (their key is destroyed); the user stays, by id. Only a user already
    deactivated can be erased."""

    reason: Reason


class TeamCommand(Command):
    """A command on a team."""


class CreateTeam(TeamCommand):
    team_id: TeamId
    name: Name
    reason: Reason | None = None


class RenameTeam(TeamCommand):
    name: Name
    reason: Reason


class CloseTeam(TeamCommand):
    reason: Reason
