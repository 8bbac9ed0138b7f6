"""Who may do what in the directory API.

- Changes: ``admin`` only (every command route).
- Seeing users and teams: ``admin``, ``auditor`` and ``sales_director`` see every user and team; anyone else (a
  ``sales_manager`` included) sees the users of their own team (the token's ``team``) and themselves, and their own
  team. What a caller may not see is answered 404, as if it did not exist.
- The ``importer`` (decision 0021) sees no one: it runs imports and reads no personal data.
- A user's history (who changed what, and why): ``admin``, ``auditor`` and ``sales_director``.
- Names and emails are opened for whoever may see the user (colleagues reach each other), and never kept in
  clear: the store and the read model hold them sealed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from shared.core.decider import NotVisibleError
from shared.edge.auth import ROLES, Principal, require

EVERYONE = ("admin", "auditor", "sales_director")  # see every user and team
Admin = Annotated[Principal, Depends(require())]  # admin only
# every role but the importer, which reads no personal data (decision 0021)
Reader = Annotated[Principal, Depends(require(*sorted(ROLES - {"importer"})))]
Auditor = Annotated[Principal, Depends(require(*EVERYONE))]


def sees_everyone(p: Principal) -> bool:
    return bool(p.roles & set(EVERYONE))


def visible_teams(p: Principal) -> list[str] | None:
    """The teams whose users (and the teams themselves) ``p`` may see; None: all of them."""
    if sees_everyone(p):
        return None
    return [p.team] if p.team else []


def may_see_user(p: Principal, user_id: str, team_id: str) -> bool:
    teams = visible_teams(p)
    return teams is None or team_id in teams or user_id == p.user_id


def check_user_visible(p: Principal, user_id: str, team_id: str) -> None:
    if not may_see_user(p, user_id, team_id):
        raise NotVisibleError(f"no user {user_id}")


def check_team_visible(p: Principal, team_id: str) -> None:
    teams = visible_teams(p)
    if teams is not None and team_id not in teams:
        raise NotVisibleError(f"no team {team_id}")
