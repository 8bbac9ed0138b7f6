"""Who may do what with organisations and people, mirroring deals' rights (services.deals.api.rights).

- Seeing a customer (reads, search, duplicates, history): ``admin``, ``auditor`` and ``sales_director`` every
  team's; a ``sales`` or ``sales_manager`` their own team's (the token's ``team``) and those they own. Another
  team's customer is answered 404, as if it did not exist.
- Registering one: where the caller may put it — a director or an admin anywhere, a manager anyone's in their
  team, a salesperson their own in their own team (403 otherwise).
- Changing one (details, people of it): its owner, their team's manager, a director, an admin; reassigning one
  also puts it where the caller may; merging: a manager (both in their team), a director or an admin.
- Erasing a person: ``admin`` only.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends

from shared.core.decider import ForbiddenError, NotVisibleError
from shared.edge.auth import Principal, require

SALES_ROLES = ("sales", "sales_manager", "sales_director")
READ_ROLES = (*SALES_ROLES, "auditor")
SEE_ALL = frozenset({"admin", "auditor", "sales_director"})
COMPANY_WIDE = frozenset({"admin", "sales_director"})
PLACES = "a salesperson's own, in their team; a manager's team's; a director's anywhere"
Seller = Annotated[Principal, Depends(require(*SALES_ROLES))]
Reader = Annotated[Principal, Depends(require(*READ_ROLES))]
Merger = Annotated[Principal, Depends(require("sales_manager", "sales_director"))]
Admin = Annotated[Principal, Depends(require())]


def sees_all(p: Principal) -> bool:
    return bool(p.roles & SEE_ALL)


def customer_teams(p: Principal) -> list[str] | None:
    """The teams whose customers ``p`` sees (None: every team)."""
    if sees_all(p):
        return None
    return [p.team] if p.team and p.roles & {"sales", "sales_manager"} else []


def can_read(p: Principal, team_id: str, owner_id: str) -> bool:
    teams = customer_teams(p)
    return teams is None or team_id in teams or (owner_id == p.user_id and bool(p.roles & set(SALES_ROLES)))


def can_write(p: Principal, team_id: str, owner_id: str) -> bool:
    if p.roles & COMPANY_WIDE:
        return True
    if "sales_manager" in p.roles and p.team and team_id == p.team:
        return True
    return bool(p.roles & set(SALES_ROLES)) and owner_id == p.user_id


def may_place(p: Principal, owner_id: str, team_id: str) -> bool:
    if p.roles & COMPANY_WIDE:
        return True
    if "sales_manager" in p.roles and p.team and team_id == p.team:
        return True
    return bool(p.roles & set(SALES_ROLES)) and owner_id == p.user_id and team_id == p.team


def check_place(p: Principal, owner_id: str, team_id: str) -> None:
    if not may_place(p, owner_id, team_id):
        raise ForbiddenError(f"a customer is put where the caller may put it: {PLACES}")


def visible(p: Principal, what: str, state: Any, version: int) -> None:
    """404 for a customer the caller may not see (or that is not there)."""
    if version == 0 or not can_read(p, state.team_id, state.owner_id):
        raise NotVisibleError(f"no {what}")


def writable(p: Principal, what: str, *, merge: bool = False, place: tuple[str, str] | None = None) -> Any:
    """The rights check a command runs on the customer it decides on: 404 unseen, 403 unchangeable (or, merging,
    not the caller's to merge; reassigning, put where the caller may not put it: ``place``, (owner, team))."""

    def check(state: Any, version: int) -> None:
        visible(p, what, state, version)
        if not can_write(p, state.team_id, state.owner_id):
            raise ForbiddenError(f"only the {what}'s owner, their team's manager, a director or an admin change it")
        if merge and not (p.roles & COMPANY_WIDE or ("sales_manager" in p.roles and state.team_id == p.team)):
            raise ForbiddenError("a manager merges their team's customers; a director or an admin anyone's")
        if place is not None:
            check_place(p, *place)

    return check
