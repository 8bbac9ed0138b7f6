"""The demand the sales pipeline implies: each open or won deal's lines, its probability (the stage's, or the
override), its expected close month or the day it was won, from the deals' events.

A batch is folded in memory (decision 0030): the outlooks of the deals it names are read in one statement, the
events change them in order (an event of a deal never opened changes none; a second opening keeps the first), and
they are written back in one; a deal's lines are those of its last event in the batch carrying lines (opened, lines
changed, won: they replace the stored ones whether or not the deal has an outlook). The same tables as event by
event for any split (tests/integration/test_production_batches.py)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from services.deals import events as deals
from shared.messaging.projections import Fact, Projection
from shared.messaging.rows import Row, insert_sql, read, read_sql, upsert_sql, write
from shared.store.db import Conn

DEMAND_DDL = """
CREATE TABLE IF NOT EXISTS deal_lines (
    deal_id uuid NOT NULL, line integer NOT NULL, product text NOT NULL, quantity numeric NOT NULL,
    PRIMARY KEY (deal_id, line));
CREATE TABLE IF NOT EXISTS deal_outlook (
    deal_id uuid PRIMARY KEY, status text NOT NULL, stage_probability numeric NOT NULL, override numeric,
    expected_close date, won_on date);
"""


OUTLOOK = {
    "deal_id": "uuid",
    "status": "text",
    "stage_probability": "numeric",
    "override": "numeric",
    "expected_close": "date",
    "won_on": "date",
}
LINES = {"deal_id": "uuid", "line": "integer", "product": "text", "quantity": "numeric"}
_READ, _WRITE = read_sql("deal_outlook", OUTLOOK), upsert_sql("deal_outlook", OUTLOOK)
_INSERT_LINES = insert_sql("deal_lines", LINES)


def _outlook(row: Row, event: deals.DealEvent, tz: ZoneInfo) -> None:
    """A later event of the deal on its outlook."""
    match event:
        case deals.StageChanged():
            row["stage_probability"] = event.to_stage.probability
        case deals.DealReopened():
            row.update(status="open", won_on=None, stage_probability=event.to_stage.probability)
        case deals.ExpectedCloseDateChanged():
            row["expected_close"] = event.new
        case deals.DealProbabilityOverridden():
            row["override"] = event.probability
        case deals.DealProbabilityOverrideCleared():
            row["override"] = None
        case deals.DealWon():
            row.update(status="won", won_on=event.won_at.astimezone(tz).date())
        case deals.DealLost():
            row["status"] = "lost"


async def apply_demand(conn: Conn, facts: Sequence[Fact], tz: str = "Asia/Ho_Chi_Minh") -> None:
    """The deals' outlooks and lines after a batch of deals' events in order."""
    zone = ZoneInfo(tz)
    events = [f.event for f in facts if isinstance(f.event, deals.DealEvent)]
    rows = await read(conn, _READ, {e.deal_id for e in events})
    changed: dict[uuid.UUID, Row] = {}
    lines: dict[uuid.UUID, tuple[deals.ProductLine, ...]] = {}
    for event in events:
        d, row = event.deal_id, rows.get(event.deal_id)
        if isinstance(event, deals.DealOpened):
            if row is None:
                values = (d, "open", event.stage.probability, None, event.expected_close_date, None)
                rows[d] = changed[d] = dict(zip(OUTLOOK, values, strict=True))
        elif row is not None:
            _outlook(row, event, zone)
            changed[d] = row
        if isinstance(event, deals.DealOpened | deals.DealLinesChanged | deals.DealWon):
            lines[d] = event.lines
    await write(conn, _WRITE, OUTLOOK, changed.values())
    if lines:
        await conn.execute("DELETE FROM deal_lines WHERE deal_id = ANY($1::uuid[])", list(lines))
        new = [
            dict(zip(LINES, (d, i, x.product, x.quantity), strict=True))
            for d, ls in lines.items()
            for i, x in enumerate(ls)
        ]
        await write(conn, _INSERT_LINES, LINES, new)


def demand(deals_topic: str, tz: str) -> Projection:
    async def apply(conn: Conn, facts: Sequence[Fact]) -> None:
        await apply_demand(conn, facts, tz)

    return Projection(
        name="demand",
        topics=(deals_topic,),
        ddl=DEMAND_DDL,
        apply=apply,
        accepts=("pipelines.deals.",),
        tables=("deal_lines", "deal_outlook"),
    )
