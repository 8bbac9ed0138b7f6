"""Who may do what with deals, in one place. A salesperson (``sales``) sees and changes their own deals and opens
them in their own team (or none); a ``sales_manager`` does the same for every deal of their team (the token's
``team``: a manager without one has no team's, only their own deals); a ``sales_director`` for every team, and
defines pipelines; an ``auditor`` reads everything and changes nothing; ``admin`` does anything. Numbers (forecast,
analytics, targets) follow the same scopes.

The checks raise the kernel's refusals, outside any retry loop: ``NotVisibleError`` (404, as if the deal did not
exist) and ``ForbiddenError`` (403); shared.edge.problems maps them to those statuses."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from services.deals.domain import Command, Deal, Reassign
from shared.core.decider import ForbiddenError, NotVisibleError
from shared.edge.auth import Principal

SALES_ROLES = ("sales", "sales_manager", "sales_director")
READ_ROLES = ("sales", "sales_manager", "sales_director", "auditor")
COMPANY_WIDE = frozenset({"admin", "sales_director"})  # every team's deals, numbers, targets and pipelines
PLACES = "a salesperson's own deals, in their team; a manager's team's; a director's anywhere"


def company_wide(p: Principal) -> bool:
    """A director or an admin: every team's sales."""
    return bool(p.roles & COMPANY_WIDE)


def sees_all(p: Principal) -> bool:
    return company_wide(p) or "auditor" in p.roles


def managed_team(p: Principal) -> str | None:
    """The team whose deals a manager sees and changes: their token's team. A manager without a team manages none
    (they see their own deals, as a salesperson does); a salesperson sees only their own."""
    return p.team if "sales_manager" in p.roles and p.team else None


def can_read(p: Principal, deal: Deal) -> bool:
    return sees_all(p) or can_write(p, deal)


def can_write(p: Principal, deal: Deal) -> bool:
    if company_wide(p):
        return True
    team = managed_team(p)
    if team is not None and deal.team_id == team:
        return True
    return bool(p.roles & set(SALES_ROLES)) and deal.owner_id == p.user_id


def may_place(p: Principal, owner_id: str, team_id: str | None) -> bool:
    """Whether the caller may put a deal of ``owner_id`` in ``team_id`` (opening it, or reassigning one they
    change): a director or an admin anywhere; a manager anyone's in their team; anyone of the sales roles their own
    in their own team or in none. Handing a deal to someone else is their manager's (or a director's) call."""
    if company_wide(p):
        return True
    team = managed_team(p)
    if team is not None and team_id == team:
        return True
    return bool(p.roles & set(SALES_ROLES)) and owner_id == p.user_id and team_id in (None, p.team)


def may_open(p: Principal, owner_id: str, team_id: str | None) -> None:
    if not may_place(p, owner_id, team_id):
        raise ForbiddenError(f"a deal is opened where the caller may put it: {PLACES}")


def writable(deal_id: uuid.UUID, p: Principal, command: Command | None = None) -> Callable[[Deal, int], None]:
    """The rights check a command runs on the deal it decides on: 404 for a deal the caller cannot see, 403 for one
    they cannot change (or cannot reassign where the command puts it)."""

    def check(deal: Deal, version: int) -> None:
        if version == 0 or not can_read(p, deal):
            raise NotVisibleError(f"no deal {deal_id}")
        if not can_write(p, deal):
            raise ForbiddenError("only the deal's owner, their team's manager, a director or an admin change it")
        if isinstance(command, Reassign) and not may_place(p, command.owner_id, command.team_id):
            raise ForbiddenError(f"a deal is reassigned where its new place is the caller's: {PLACES}")

    return check


def may_see_contact(p: Principal, deal: Deal) -> None:
    if not can_write(p, deal):
        raise ForbiddenError("contact details are shown to those who work the deal")


def numbers_scope(p: Principal, owner_id: str | None, team_id: str | None) -> tuple[str | None, str | None]:
    """The owner and team whose numbers the caller reads: salespeople (and managers without a team) their own,
    managers their team's, directors, auditors and admins anyone's."""
    if sees_all(p):
        return owner_id, team_id
    team = managed_team(p)
    if team is not None:
        if team_id not in (None, team):
            raise ForbiddenError("a manager sees their own team's numbers")
        return owner_id, team
    if owner_id not in (None, p.user_id):
        raise ForbiddenError("a salesperson sees their own numbers")
    return p.user_id, None


def may_read_plan(p: Principal, owner_id: str | None, team_id: str | None) -> None:
    """A target is an owner's or a team's: a salesperson reads their own plan, a manager their team's."""
    if not sees_all(p) and (owner_id not in (None, p.user_id) or team_id not in (None, managed_team(p))):
        raise ForbiddenError("a salesperson reads their own plan, a manager their team's")


def learning_team(p: Principal) -> str | None:
    """The team whose deals success factors are learnt from: a manager's; every team's (None) for those who see
    all."""
    if sees_all(p):
        return None
    team = managed_team(p)
    if team is None:
        raise ForbiddenError("a manager without a team has no team's deals to learn from")
    return team


def may_set_target(p: Principal, team_id: str | None) -> None:
    """A target keeps its team or owner (target_scope_fixed), so the body's is the target's."""
    if not company_wide(p) and (team_id is None or team_id != managed_team(p)):
        raise ForbiddenError("a manager sets their own team's target; a director any team's or owner's")
