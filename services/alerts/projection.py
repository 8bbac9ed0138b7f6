"""The ``alerts`` read model: every alert raised, with when it was cleared; and its query."""

from __future__ import annotations

from typing import Any

from services.alerts.events import ALERTS_PREFIX, AlertCleared, AlertRaised
from shared.messaging.projections import Fact, Projection, one_by_one
from shared.store.db import Conn

ALERTS_DDL = """
CREATE TABLE IF NOT EXISTS alerts (
    alert_id uuid PRIMARY KEY, service text NOT NULL, kind text NOT NULL, entity text NOT NULL, summary text NOT NULL,
    details jsonb NOT NULL, raised_at timestamptz NOT NULL, cleared_at timestamptz);
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS concerns text[] NOT NULL DEFAULT '{}';
"""


async def apply_alert(conn: Conn, fact: Fact) -> None:
    event = fact.event
    match event:
        case AlertRaised():
            await conn.execute(
                """INSERT INTO alerts (alert_id, service, kind, entity, summary, details, raised_at, concerns)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING""",
                event.alert_id,
                event.service,
                event.kind,
                event.entity,
                event.summary,
                event.details,
                event.raised_at,
                list(event.concerns),
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
