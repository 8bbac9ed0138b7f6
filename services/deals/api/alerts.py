"""``GET /alerts`` on the deals API: the kernel's alerts route, showing a caller the alerts of the deals their lists
show them (an alert names its deal and often a customer and an owner)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request

from services.alerts.routes import add_alerts_route
from services.deals import projections
from services.deals.api.common import ERRORS, read_models, service
from services.deals.api.rights import READ_ROLES, managed_team, sees_all
from shared.edge.auth import Principal, require


async def visible_alerts(request: Request, p: Principal, alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The alerts of the deals the caller's lists show them."""
    svc = service(request)
    if sees_all(p):
        return alerts
    about = {a["entity"].removeprefix("deal-") for a in alerts if a["entity"].startswith("deal-")}
    async with read_models(svc).connection("board") as conn:
        seen = await projections.visible_deals(
            conn, [uuid.UUID(d) for d in about], user=p.user_id, team=managed_team(p)
        )
    return [a for a in alerts if a["entity"].removeprefix("deal-") in seen]


router = APIRouter(responses=ERRORS)
add_alerts_route(
    router, "deals", lambda request: read_models(service(request)), require(*READ_ROLES), visible=visible_alerts
)
