"""A team: a slug id, a name, open or closed. Users belong to one; a closed team takes no users.

Rules: a team id is created once (409 ``team_exists``); renaming to the same name is refused (409 ``unchanged``);
a team closes only without active users (the handler counts them and passes the count: 409 ``team_not_empty``),
and once (409 ``team_closed``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.directory.domain import commands as c
from services.directory.domain.errors import DirectoryRuleError, NotFoundError
from services.directory.events import TeamClosed, TeamCreated, TeamEvent, TeamRenamed
from shared.core.decider import Decider, replace
from shared.core.events import DomainEvent


@dataclass(frozen=True)
class Team:
    team_id: str | None = None  # None: not created
    name: str = ""
    active: bool = False


def evolve(t: Team, e: DomainEvent) -> Team:
    match e:
        case TeamCreated():
            return Team(e.team_id, e.name, active=True)
        case TeamRenamed():
            return replace(t, name=e.new)
        case TeamClosed():
            return replace(t, active=False)
    return t


team_decider: Decider[Team] = Decider(Team(), evolve)


def decide_team(
    t: Team, cmd: c.TeamCommand, now: datetime, team_id: str, *, active_members: int = 0
) -> list[TeamEvent]:
    """What ``cmd`` does to team ``team_id``; ``active_members``: its active users now (for closing)."""
    if isinstance(cmd, c.CreateTeam):
        if t.team_id is not None:
            raise DirectoryRuleError("team_exists", f"a team {team_id} exists already")
        return [TeamCreated(team_id=team_id, name=cmd.name, created_at=now, reason=cmd.reason)]
    if t.team_id is None:
        raise NotFoundError("not_found", f"no team {team_id}")
    if not t.active:
        raise DirectoryRuleError("team_closed", f"team {team_id} is closed")
    match cmd:
        case c.RenameTeam():
            if cmd.name == t.name:
                raise DirectoryRuleError("unchanged", f"team {team_id} is already named so")
            return [TeamRenamed(team_id=team_id, old=t.name, new=cmd.name, reason=cmd.reason)]
        case c.CloseTeam():
            if active_members:
                raise DirectoryRuleError(
                    "team_not_empty", f"team {team_id} has {active_members} active users: move them first"
                )
            return [TeamClosed(team_id=team_id, reason=cmd.reason, closed_at=now)]
    raise TypeError(f"not a team command: {type(cmd).__name__}")
