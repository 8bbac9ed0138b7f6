"""Who may do what with activities, as with deals (services.deals.api.rights).

- Seeing an activity: its owner; a ``sales_manager`` every activity of their team (the token's ``team``); a
  ``sales_director``, an ``auditor`` and an ``admin`` every team's. Another's is answered 404, as if it did not
  exist.
- Scheduling: on a subject the caller may see (else 404) — a deal they own (a manager: of their team), a lead,
  organisation or person of their team or theirs; for whom: a salesperson for themselves, a manager for their
  team's people, a director or an admin for anyone (403 otherwise).
- Changing one (complete, reschedule, cancel): its owner, their team's manager, a director, an admin; reassigning
  it also puts it where the caller may put it.
- The agenda: a salesperson's own; a manager's team's (or one of their people's); a director's, an auditor's or
  an admin's anyone's (403 otherwise).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends

from services.agenda.domain import Activity
from services.agenda.subjects import Subject
from shared.core.decider import ForbiddenError, NotVisibleError
from shared.edge.auth import Principal, require

SALES_ROLES = ("sales", "sales_manager", "sales_director")
READ_ROLES = (*SALES_ROLES, "auditor")
COMPANY_WIDE = frozenset({"admin", "sales_director"})
SEE_ALL = COMPANY_WIDE | {"auditor"}
PLACES = "a salesperson's own; a manager's team's people; a director's anyone"
Seller = Annotated[Principal, Depends(require(*SALES_ROLES))]
Reader = Annotated[Principal, Depends(require(*READ_ROLES))]


def company_wide(p: Principal) -> bool:
    return bool(p.roles & COMPANY_WIDE)


def sees_all(p: Principal) -> bool:
    return bool(p.roles & SEE_ALL)


def managed_team(p: Principal) -> str | None:
    return p.team if "sales_manager" in p.roles and p.team else None


def can_write(p: Principal, a: Activity) -> bool:
    if company_wide(p):
        return True
    if (team := managed_team(p)) is not None and a.team_id == team:
        return True
    return bool(p.roles & set(SALES_ROLES)) and a.owner_id == p.user_id


def can_read(p: Principal, a: Activity) -> bool:
    return sees_all(p) or can_write(p, a)


def scope(p: Principal) -> tuple[list[str] | None, str | None]:
    """The teams whose activities ``p`` sees (None: every team) and the owner whose they see besides."""
    if sees_all(p):
        return None, None
    team = managed_team(p)
    return ([team] if team else []), p.user_id


def may_place(p: Principal, owner_id: str, owner_team: str) -> bool:
    """Whether the caller may give an activity to ``owner_id`` (of ``owner_team``)."""
    if company_wide(p):
        return True
    if (team := managed_team(p)) is not None and owner_team == team:
        return True
    return bool(p.roles & set(SALES_ROLES)) and owner_id == p.user_id


def check_place(p: Principal, owner_id: str, owner_team: str) -> None:
    if not may_place(p, owner_id, owner_team):
        raise ForbiddenError(f"an activity is given where the caller may give it: {PLACES}")


def sees_subject(p: Principal, s: Subject) -> bool:
    """A deal as deals show it (its owner, their team's manager); a lead, organisation or person also to the
    salespeople of its team."""
    if sees_all(p) or (s.owner_id is not None and s.owner_id == p.user_id):
        return True
    if s.team_id is None or s.team_id != p.team:
        return False
    return managed_team(p) is not None or s.subject_type != "deal"


def check_subject_visible(p: Principal, s: Subject) -> None:
    if not sees_subject(p, s):
        raise NotVisibleError(f"no {s.subject_type} {s.subject_id}")


def writable(activity_id: uuid.UUID, p: Principal) -> Callable[[Activity, int], None]:
    """The rights check a command runs on the activity it decides on: 404 unseen, 403 unchangeable."""

    def check(a: Activity, version: int) -> None:
        if version == 0 or not can_read(p, a):
            raise NotVisibleError(f"no activity {activity_id}")
        if not can_write(p, a):
            raise ForbiddenError("only the activity's owner, their team's manager, a director or an admin change it")

    return check


def check_agenda(p: Principal, owner_id: str | None, owner_team: str | None, team_id: str | None) -> None:
    """Whose agenda the caller may read: their own; a manager their team's or their people's; those who see all
    anyone's."""
    if sees_all(p) or (owner_id is not None and owner_id == p.user_id):
        return
    team = managed_team(p)
    if team is not None and (team_id == team if owner_id is None else owner_team == team):
        return
    raise ForbiddenError("a salesperson reads their own agenda, a manager their team's")
