"""The directory's domain, pure: a module per aggregate (``user``, ``team``), the commands as requests send them
(``commands``) and the refusals (``errors``)."""

from __future__ import annotations

from services.directory.domain.commands import (
    ChangeProfile,
    ChangeRoles,
    CloseTeam,
    CreateTeam,
    Deactivate,
    EraseUser,
    MoveToTeam,
    Reactivate,
    RegisterUser,
    RenameTeam,
    TeamCommand,
    UserCommand,
)
from services.directory.domain.errors import DirectoryRuleError, InvalidReferenceError, NotFoundError
from services.directory.domain.team import Team, decide_team, team_decider
from services.directory.domain.user import User, decide_user, subject_of, user_decider

__all__ = [
    "ChangeProfile",
    "ChangeRoles",
    "CloseTeam",
    "CreateTeam",
    "Deactivate",
    "DirectoryRuleError",
    "EraseUser",
    "InvalidReferenceError",
    "MoveToTeam",
    "NotFoundError",
    "Reactivate",
    "RegisterUser",
    "RenameTeam",
    "Team",
    "TeamCommand",
    "User",
    "UserCommand",
    "decide_team",
    "decide_user",
    "subject_of",
    "team_decider",
    "user_decider",
]
