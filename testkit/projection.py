"""A small read model for the kernel's tests: per stream, the sum of Counted.n and how many were counted."""

from __future__ import annotations

from shared.messaging.projections import Fact, Projection, one_by_one
from shared.store.db import Conn
from testkit.events import Counted

POISON = 13

DDL = """
CREATE TABLE IF NOT EXISTS totals (
    stream_id text PRIMARY KEY,
    total     bigint NOT NULL,
    events    integer NOT NULL
);
"""


async def apply(conn: Conn, fact: Fact) -> None:
    event = fact.event
    assert isinstance(event, Counted)
    if event.n == POISON:
        raise ValueError(f"{POISON} cannot be counted")
    await conn.execute(
        """INSERT INTO totals (stream_id, total, events) VALUES ($1, $2, 1)
           ON CONFLICT (stream_id) DO UPDATE SET total = totals.total + $2, events = totals.events + 1""",
        fact.envelope.streamid,
        event.n,
    )


def totals_projection(topic: str) -> Projection:
    return Projection(
        name="totals",
        topics=(topic,),
        ddl=DDL,
        apply=one_by_one(apply),
        accepts=(Counted.event_type,),
        tables=("totals",),
    )
