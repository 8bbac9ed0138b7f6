"""``GET /alerts`` for a service's API: the service's alerts from the ``alerts`` read model."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from services.alerts.projection import list_alerts
from shared.edge.auth import Principal
from shared.messaging.projections import ReadModels

Visible = Callable[[Request, Principal, list[dict[str, Any]]], Awaitable[list[dict[str, Any]]]]
ALERTS_BATCH = 500  # alerts read at a time while keeping those a caller may see


def add_alerts_route(
    router: APIRouter,
    service: str,
    read_models: Callable[[Request], ReadModels],
    allowed: Callable[..., Awaitable[Principal]],
    *,
    visible: Visible | None = None,
) -> None:
    """``GET /alerts``: this service's alerts, active ones by default, newest first, from ``read_models(request)``.
    ``visible(request, principal, alerts)`` keeps those the caller may see (the alerts of what the service's lists show them: an alert names its entity
    and often a customer and an owner); without it, whoever may call sees them all."""

    @router.get(
        "/alerts",
        tags=["alerts"],
        dependencies=[Depends(allowed)],
        summary="time-driven alerts: raised once per occurrence, cleared when resolved",
    )
    async def get_alerts(
        request: Request, active: bool = True, limit: int = Query(100, ge=1, le=500)
    ) -> list[dict[str, Any]]:
        p: Principal = request.state.principal  # set by the ``allowed`` dependency (shared.edge.auth)
        if visible is None:
            async with read_models(request).connection("alerts") as conn:
                return await list_alerts(conn, service=service, active_only=active, limit=limit)
        shown: list[dict[str, Any]] = []
        offset = 0
        while len(shown) < limit:
            async with read_models(request).connection("alerts") as conn:
                batch = await list_alerts(conn, service=service, active_only=active, limit=ALERTS_BATCH, offset=offset)
            shown += await visible(request, p, batch)
            if len(batch) < ALERTS_BATCH:
                break
            offset += ALERTS_BATCH
        return shown[:limit]
