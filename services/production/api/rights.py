"""Who may do what in the production API: ``production`` (and ``admin``) change orders and plans and see delivery
addresses; ``auditor``, ``sales_manager`` and ``sales_director`` read, without personal data. The roles are the
whole policy here: an order has no owner or team to narrow it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from shared.edge.auth import Principal, require

CHANGE = ("production",)
READ = ("production", "auditor", "sales_manager", "sales_director")
Changer = Annotated[Principal, Depends(require(*CHANGE))]
Reader = Annotated[Principal, Depends(require(*READ))]


def sees_personal_data(p: Principal) -> bool:
    return bool(p.roles & {"admin", "production"})
