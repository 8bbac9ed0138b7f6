"""The ``alerts`` read model: every alert raised, with when it was cleared; and its query."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from services.alerts.events import ALERTS_PREFIX, AlertCleared, AlertRaised
from shared.messaging.projections import Fact, Projection
from shared.messaging.rows import Row, insert_sql, update_sql, write
from shared.store.db import Conn

ALERTS_DDL = """
CREATE TABLE IF NOT EXISTS alerts (
    alert_id uuid PRIMARY KEY, service text NOT NULL, kind text NOT NULL, entity text NOT NULL, summary text NOT NULL,
    details jsonb NOT NULL, raised_at timestamptz NOT NULL, cleared_at timestamptz);
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS concerns text[] NOT NULL DEFAULT '{}';
"""


ALERTS = {
    "alert_id": "uuid",
    "service": "text",
    "kind": "text",
    "entity": "text",
    "summary": "text",
    "details": "jsonb",
    "raised_at": "timestamptz",
    "cleared_at": "timestamptz",
    "concerns": "text[]",
}
_INSERT = insert_sql("alerts", ALERTS)
_CLEAR = update_sql("alerts", {"alert_id": "uuid", "cleared_at": "timestamptz"})


async def apply_alerts(conn: Conn, facts: Sequence[Fact]) -> None:
    """The alerts after a batch of alerts' events in order (decision 0030): the stored ones it names are looked up
    in one statement; an alert raised twice keeps its first row, a clearing of an alert not raised changes nothing;
    the new rows are inserted in one statement and the stored ones cleared in one."""
    events = [f.event for f in facts if isinstance(f.event, AlertRaised | AlertCleared)]
    ids = list({e.alert_id for e in events})
    stored = {r[0] for r in await conn.fetch("SELECT alert_id FROM alerts WHERE alert_id = ANY($1::uuid[])", ids)}
    new: dict[uuid.UUID, Row] = {}
    cleared: dict[uuid.UUID, Row] = {}
    for e in events:
        if isinstance(e, AlertRaised):
            if e.alert_id not in stored and e.alert_id not in new:
                values = (e.alert_id, e.service, e.kind, e.entity, e.summary, e.details, e.raised_at, None, e.concerns)
                new[e.alert_id] = dict(zip(ALERTS, values, strict=True))
        elif e.alert_id in new:
            new[e.alert_id]["cleared_at"] = e.cleared_at
        elif e.alert_id in stored:
            cleared[e.alert_id] = {"alert_id": e.alert_id, "cleared_at": e.cleared_at}
    await write(conn, _INSERT, ALERTS, new.values())
    await write(conn, _CLEAR, {"alert_id": "uuid", "cleared_at": "timestamptz"}, cleared.values())


def alerts_projection(alerts_topic: str) -> Projection:
    return Projection(
        name="alerts",
        topics=(alerts_topic,),
        ddl=ALERTS_DDL,
        apply=apply_alerts,
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
