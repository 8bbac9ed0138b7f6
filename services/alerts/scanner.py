"""The alert scanner: which conditions hold now, asked of a service's read models with its clock.

Each occurrence of a condition is one alert stream ``alert-<uuid5(kind, entity, occurrence)>``: ``AlertRaised`` at
version 1 when it appears, ``AlertCleared`` at version 2 when it no longer holds; appending with those expected
versions makes raising and clearing idempotent, whichever scanner process gets there first.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import structlog

from services.alerts.events import AlertCleared, AlertRaised
from shared.core.events import DomainEvent
from shared.messaging.projections import ReadModels
from shared.store import ConcurrencyError, DuplicateEventError, NewEvent
from shared.store.db import Conn
from shared.store.postgres import PostgresEventStore

log = structlog.get_logger(__name__)
NS_ALERTS = uuid.UUID("a1e77000-5e3e-5a1c-8f00-000000000001")


@dataclass(frozen=True)
class Condition:
    """One occurrence of a condition that holds now; ``occurrence`` tells a new occurrence from the same one."""

    kind: str
    entity: str
    occurrence: str
    summary: str
    details: dict[str, str]
    concerns: tuple[str, ...] = ()  # the users it concerns (its owner), when the read model knows them

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
                concerns=c.concerns,
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
