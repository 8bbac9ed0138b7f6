"""A user of the directory: who they are (name and email, sealed), how to reach them (language, time zone, quiet
hours), where they work (team, roles) and whether they may (active). Pure: the handler loads the team and the
user taking over, and passes what it found.

Rules: a user id is registered once (409 ``user_exists``); roles are those tokens may carry (422 naming
``roles``); a change to what already is (the same roles, the same team) is refused (409 ``unchanged``), so each
event in a user's history changed something: a client retrying a command sends its Idempotency-Key. A profile is
replaced whole and always recorded: its name and email are sealed and the domain never sees them to compare.
A user deactivated hands over to another active user (checked by the handler); only an inactive user is erased.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, time

from services.directory.domain import commands as c
from services.directory.domain.errors import DirectoryRuleError, InvalidReferenceError, NotFoundError
from services.directory.events import (
    SUBJECT_PREFIX,
    QuietHours,
    UserDeactivated,
    UserEvent,
    UserMovedToTeam,
    UserPersonalDataErased,
    UserProfileChanged,
    UserReactivated,
    UserRegistered,
    UserRolesChanged,
)
from shared.core.decider import Decider, replace
from shared.core.events import DomainEvent


@dataclass(frozen=True)
class User:
    user_id: str | None = None  # None: not registered
    team_id: str = ""
    roles: tuple[str, ...] = ()
    language: str = "vi"
    time_zone: str = "Asia/Ho_Chi_Minh"
    quiet_hours: QuietHours | None = None
    reminders: str = "immediate"
    digest_at: time | None = None
    active: bool = False
    erased: bool = False


def subject_of(user_id: str) -> str:
    """The data subject a user's name and email are sealed under."""
    return SUBJECT_PREFIX + user_id


def evolve(u: User, e: DomainEvent) -> User:
    match e:
        case UserRegistered():
            return User(
                e.user_id, e.team_id, e.roles, e.language, e.time_zone, e.quiet_hours, e.reminders, e.digest_at, True
            )
        case UserProfileChanged():
            return replace(
                u,
                language=e.language,
                time_zone=e.time_zone,
                quiet_hours=e.quiet_hours,
                reminders=e.reminders,
                digest_at=e.digest_at,
            )
        case UserRolesChanged():
            return replace(u, roles=e.new)
        case UserMovedToTeam():
            return replace(u, team_id=e.new)
        case UserDeactivated():
            return replace(u, active=False)
        case UserReactivated():
            return replace(u, active=True)
        case UserPersonalDataErased():
            return replace(u, erased=True)
    return u


user_decider: Decider[User] = Decider(User(), evolve)


def sorted_roles(roles: Collection[str], known: Collection[str]) -> tuple[str, ...]:
    if unknown := sorted(set(roles) - set(known)):
        raise InvalidReferenceError("unknown_role", f"roles: no such role {', '.join(unknown)[:200]}", "roles")
    return tuple(sorted(set(roles)))


def decide_user(
    u: User, cmd: c.UserCommand, now: datetime, user_id: str, *, known_roles: Collection[str]
) -> list[UserEvent]:
    """What ``cmd`` does to user ``user_id`` (in state ``u``) at ``now``; ``known_roles``: those tokens carry."""
    if isinstance(cmd, c.RegisterUser):
        if u.user_id is not None:
            raise DirectoryRuleError("user_exists", f"a user {user_id} is already registered")
        return [
            UserRegistered(
                user_id=user_id,
                subject=subject_of(user_id),
                name=cmd.name,
                email=cmd.email,
                language=cmd.language,
                time_zone=cmd.time_zone,
                quiet_hours=cmd.quiet_hours,
                reminders=cmd.reminders,
                digest_at=cmd.digest_at,
                team_id=cmd.team_id,
                roles=sorted_roles(cmd.roles, known_roles),
                registered_at=now,
                reason=cmd.reason,
            )
        ]
    if u.user_id is None:
        raise NotFoundError("not_found", f"no user {user_id}")
    return _change(u, cmd, now, user_id, known_roles)


def _change(u: User, cmd: c.UserCommand, now: datetime, user_id: str, known_roles: Collection[str]) -> list[UserEvent]:
    match cmd:
        case c.ChangeProfile():
            if u.erased:
                raise DirectoryRuleError("user_erased", f"user {user_id}'s personal data was erased")
            return [
                UserProfileChanged(
                    user_id=user_id,
                    subject=subject_of(user_id),
                    name=cmd.name,
                    email=cmd.email,
                    language=cmd.language,
                    time_zone=cmd.time_zone,
                    quiet_hours=cmd.quiet_hours,
                    reminders=cmd.reminders,
                    digest_at=cmd.digest_at,
                    reason=cmd.reason,
                )
            ]
        case c.ChangeRoles():
            new = sorted_roles(cmd.roles, known_roles)
            if new == u.roles:
                raise DirectoryRuleError("unchanged", f"user {user_id} already has the roles {list(new)}")
            return [UserRolesChanged(user_id=user_id, old=u.roles, new=new, reason=cmd.reason)]
        case c.MoveToTeam():
            if cmd.team_id == u.team_id:
                raise DirectoryRuleError("unchanged", f"user {user_id} is already in team {u.team_id}")
            return [UserMovedToTeam(user_id=user_id, old=u.team_id, new=cmd.team_id, reason=cmd.reason)]
    return _lifecycle(u, cmd, now, user_id)


def _lifecycle(u: User, cmd: c.UserCommand, now: datetime, user_id: str) -> list[UserEvent]:
    match cmd:
        case c.Deactivate():
            if not u.active:
                raise DirectoryRuleError("not_active", f"user {user_id} is already deactivated")
            if cmd.handed_to == user_id:
                raise InvalidReferenceError(
                    "handed_to_self", "handed_to: a user cannot hand over to themselves", "handed_to"
                )
            return [
                UserDeactivated(
                    user_id=user_id, team_id=u.team_id, handed_to=cmd.handed_to, reason=cmd.reason, deactivated_at=now
                )
            ]
        case c.Reactivate():
            if u.active:
                raise DirectoryRuleError("already_active", f"user {user_id} is active")
            return [UserReactivated(user_id=user_id, team_id=u.team_id, reason=cmd.reason)]
        case c.EraseUser():
            if u.active:
                raise DirectoryRuleError("user_active", f"deactivate user {user_id} before erasing them")
            if u.erased:
                raise DirectoryRuleError("user_erased", f"user {user_id}'s personal data was erased already")
            return [
                UserPersonalDataErased(user_id=user_id, subject=subject_of(user_id), reason=cmd.reason, erased_at=now)
            ]
    raise TypeError(f"not a user command: {type(cmd).__name__}")
