"""``GET /alerts`` for a service's API: the service's alerts from the ``alerts`` read model."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from services.alerts.projection import list_alerts
from shared.edge.auth import Principal
from shared.messaging.projections import ReadModels


class AlertView(BaseModel):
    """A time-driven alert: what it is about, raised once per occurrence, cleared when resolved."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "alert_id": "4d5e6f70-8192-4a3b-9c4d-5e6f70819203",
                    "service": "deals",
                    "kind": "deal_stuck",
                    "entity": "deal-6d1f0a52-3c2b-4f7e-9a0d-1b2c3d4e5f60",
                    "summary": "Máy lạnh văn phòng: 21 days in proposal",
                    "details": {"stage_id": "proposal", "days": "21"},
                    "raised_at": "2026-11-24T02:30:00+00:00",
                    "cleared_at": None,
                }
            ]
        },
    )
    alert_id: str = Field(json_schema_extra={"format": "uuid"})
    service: str
    kind: str = Field(description="e.g. deal_stuck, lead_not_contacted, order_at_risk")
    entity: str = Field(description="the stream the alert is about, e.g. deal-<uuid>")
    summary: str
    details: JsonValue
    raised_at: str = Field(json_schema_extra={"format": "date-time"})
    cleared_at: str | None = Field(json_schema_extra={"format": "date-time"})


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
        response_model=list[AlertView],
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
