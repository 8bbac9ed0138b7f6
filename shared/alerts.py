"""Alerts: time-driven facts ("this deal has been stuck for 20 days") published as events on the alerts topic.

No timer writes into an aggregate. A scanner in the projector process asks the service's read models, with
the clock, which conditions hold now (``Check``s); each occurrence becomes one alert stream
``alert-<uuid5(kind, entity, occurrence)>``: ``AlertRaised`` at version 1 when the condition appears,
``AlertCleared`` at version 2 when it no longer holds. Appending with those expected versions makes raising and
clearing idempotent, whichever scanner process gets there first. The relay routes ``pipelines.alerts.*`` events
to the alerts topic; the ``alerts`` projection keeps them queryable.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

import structlog
from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime

from shared.core.events import DomainEvent
from shared.edge.auth import Principal
from shared.messaging.projections import Fact, Projection, ReadModels, one_by_one
from shared.store import ConcurrencyError, DuplicateEventError, NewEvent
from shared.store.db import Conn
from shared.store.postgres import PostgresEventStore

log = structlog.get_logger(__name__)
NS_ALERTS = uuid.UUID("a1e77000-5e3e-5a1c-8f00-000000000001")
ALERTS_PREFIX = "pipelines.alerts."


class AlertRaised(DomainEvent):
    event_type: ClassVar[str] = "pipelines.alerts.AlertRaised"
    alert_id: uuid.UUID
    service: str
    kind: str  # e.g. deal_stuck, lead_not_contacted, order_at_risk
    entity: str  # the stream the alert is about, e.g. deal-<uuid>
    summary: str
    details: dict[str, str]
    raised_at: AwareDatetime


class AlertCleared(DomainEvent):
    event_type: ClassVar[str] = "pipelines.alerts.AlertCleared"
    alert_id: uuid.UUID
    service: str
    kind: str
    entity: str
    cleared_at: AwareDatetime


@dataclass(frozen=True)
class Condition:
    """One occurrence of a condition that holds now; ``occurrence`` tells a new occurrence from the same one."""

    kind: str
    entity: str
    occurrence: str
    summary: str
    details: dict[str, str]

    @property
    def alert_id(self) -> uuid.UUID:
        return uuid.uuid5(NS_ALERTS, f"{self.kind}:{self.entity}:{self.occurrence}")


Check = Callable[[Conn, datetime], Awaitable[list[Condition]]]


class AlertScanner:
    def __init__(
        self,
        store: PostgresEventStore,
        read_models: ReadModels,
        service: str,
        checks: dict[str, tuple[str, Check]],
        clock: Callable[[], datetime],
        interval_s: float = 30.0,
    ) -> None:
        """``checks``: kind → (the read model it asks, the check)."""
        self.store = store
        self.read_models = read_models
        self.service = service
        self.checks = checks
        self.clock = clock
        self.interval_s = interval_s

    async def scan(self) -> tuple[int, int]:
        """Raise what holds and is not raised, clear what was raised and no longer holds: (raised, cleared)."""
        now = self.clock()
        holding: dict[uuid.UUID, Condition] = {}
        for kind, (projection, check) in self.checks.items():
            async with self.read_models.connection(projection) as conn:
                for c in await check(conn, now):
                    assert c.kind == kind
                    holding[c.alert_id] = c
        raised_before = await self._active()
        raised = cleared = 0
        for alert_id, c in holding.items():
            if alert_id in raised_before:
                continue
            event = AlertRaised(
                alert_id=alert_id,
                service=self.service,
                kind=c.kind,
                entity=c.entity,
                summary=c.summary,
                details=c.details,
                raised_at=now,
            )
            raised += await self._append(alert_id, event, 0)
        for alert_id, (kind, entity) in raised_before.items():
            if alert_id not in holding:
                event2 = AlertCleared(alert_id=alert_id, service=self.service, kind=kind, entity=entity, cleared_at=now)
                cleared += await self._append(alert_id, event2, 1)
        if raised or cleared:
            log.info("alerts.scanned", service=self.service, raised=raised, cleared=cleared)
        return raised, cleared

    async def _append(self, alert_id: uuid.UUID, event: DomainEvent, expected: int) -> int:
        try:
            await self.store.append(
                f"alert-{alert_id}",
                [
                    NewEvent(
                        event,
                        occurred_at=self.clock(),
                        event_id=uuid.uuid5(alert_id, event.event_type),
                        metadata={"actor": f"system:{self.service}-alerts", "correlation_id": str(alert_id)},
                    )
                ],
                expected_version=expected,
            )
        except (ConcurrencyError, DuplicateEventError):
            return 0  # another scanner did it
        return 1

    async def _active(self) -> dict[uuid.UUID, tuple[str, str]]:
        async with self.store.pool.acquire() as conn:
            rows = await conn.fetch(
                f"""SELECT (data->>'alert_id')::uuid AS alert_id, data->>'kind' AS kind, data->>'entity' AS entity
                    FROM {self.store.schema}.events e
                    WHERE e.stream_id LIKE 'alert-%' AND e.version = 1 AND NOT EXISTS (
                        SELECT 1 FROM {self.store.schema}.events c WHERE c.stream_id = e.stream_id AND c.version = 2)"""
            )
        return {r["alert_id"]: (r["kind"], r["entity"]) for r in rows}

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.scan()
            except Exception as exc:  # a read model not there yet, the database restarting: try again later
                log.warning("alerts.scan_failed", service=self.service, error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_s)


ALERTS_DDL = """
CREATE TABLE IF NOT EXISTS alerts (
    alert_id uuid PRIMARY KEY, service text NOT NULL, kind text NOT NULL, entity text NOT NULL, summary text NOT NULL,
    details jsonb NOT NULL, raised_at timestamptz NOT NULL, cleared_at timestamptz);
"""


async def apply_alert(conn: Conn, fact: Fact) -> None:
    event = fact.event
    match event:
        case AlertRaised():
            await conn.execute(
                "INSERT INTO alerts VALUES ($1, $2, $3, $4, $5, $6, $7, NULL) ON CONFLICT DO NOTHING",
                event.alert_id,
                event.service,
                event.kind,
                event.entity,
                event.summary,
                event.details,
                event.raised_at,
            )
        case AlertCleared():
            await conn.execute(
                "UPDATE alerts SET cleared_at = $2 WHERE alert_id = $1", event.alert_id, event.cleared_at
            )


def alerts_projection(alerts_topic: str) -> Projection:
    return Projection(
        name="alerts",
        topics=(alerts_topic,),
        ddl=ALERTS_DDL,
        apply=one_by_one(apply_alert),
        accepts=(ALERTS_PREFIX,),
        tables=("alerts",),
    )


async def list_alerts(
    conn: Conn, *, service: str | None, active_only: bool, limit: int, offset: int = 0
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT alert_id, service, kind, entity, summary, details, raised_at, cleared_at FROM alerts
           WHERE ($1::text IS NULL OR service = $1) AND (NOT $2 OR cleared_at IS NULL)
           ORDER BY raised_at DESC, alert_id LIMIT $3 OFFSET $4""",
        service,
        active_only,
        limit,
        offset,
    )
    return [
        {
            **dict(r),
            "alert_id": str(r["alert_id"]),
            "raised_at": r["raised_at"].isoformat(),
            "cleared_at": r["cleared_at"].isoformat() if r["cleared_at"] else None,
        }
        for r in rows
    ]


Visible = Callable[[Principal, list[dict[str, Any]]], Awaitable[list[dict[str, Any]]]]
ALERTS_BATCH = 500  # alerts read at a time while keeping those a caller may see


def add_alerts_route(
    router: APIRouter,
    service: str,
    read_models: Callable[[], ReadModels],
    allowed: Callable[..., Awaitable[Principal]],
    *,
    visible: Visible | None = None,
) -> None:
    """``GET /alerts``: this service's alerts, active ones by default, newest first. ``visible(principal, alerts)``
    keeps those the caller may see (the alerts of what the service's lists show them: an alert names its entity
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
            async with read_models().connection("alerts") as conn:
                return await list_alerts(conn, service=service, active_only=active, limit=limit)
        shown: list[dict[str, Any]] = []
        offset = 0
        while len(shown) < limit:
            async with read_models().connection("alerts") as conn:
                batch = await list_alerts(conn, service=service, active_only=active, limit=ALERTS_BATCH, offset=offset)
            shown += await visible(p, batch)
            if len(batch) < ALERTS_BATCH:
                break
            offset += ALERTS_BATCH
        return shown[:limit]
