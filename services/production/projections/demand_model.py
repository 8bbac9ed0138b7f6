"""The demand the sales pipeline implies: each open or won deal's lines, its probability (the stage's, or the
override), its expected close month or the day it was won, from the deals' events."""

from __future__ import annotations

import uuid
from functools import partial

from services.deals import events as deals
from shared.messaging.projections import Fact, Projection, one_by_one
from shared.store.db import Conn

DEMAND_DDL = """
CREATE TABLE IF NOT EXISTS deal_lines (
    deal_id uuid NOT NULL, line integer NOT NULL, product text NOT NULL, quantity numeric NOT NULL,
    PRIMARY KEY (deal_id, line));
CREATE TABLE IF NOT EXISTS deal_outlook (
    deal_id uuid PRIMARY KEY, status text NOT NULL, stage_probability numeric NOT NULL, override numeric,
    expected_close date, won_on date);
"""


async def _lines(conn: Conn, deal_id: uuid.UUID, lines: tuple[deals.ProductLine, ...]) -> None:
    await conn.execute("DELETE FROM deal_lines WHERE deal_id = $1", deal_id)
    await conn.executemany(
        "INSERT INTO deal_lines VALUES ($1, $2, $3, $4)",
        [(deal_id, i, x.product, x.quantity) for i, x in enumerate(lines)],
    )


async def apply_demand(conn: Conn, fact: Fact, tz: str = "Asia/Ho_Chi_Minh") -> None:
    event = fact.event
    if not isinstance(event, deals.DealEvent):
        return
    d = event.deal_id
    match event:
        case deals.DealOpened():
            await conn.execute(
                "INSERT INTO deal_outlook VALUES ($1, 'open', $2, NULL, $3, NULL) ON CONFLICT DO NOTHING",
                d,
                event.stage.probability,
                event.expected_close_date,
            )
            await _lines(conn, d, event.lines)
        case deals.StageChanged():
            await conn.execute(
                "UPDATE deal_outlook SET stage_probability = $2 WHERE deal_id = $1", d, event.to_stage.probability
            )
        case deals.DealReopened():
            await conn.execute(
                "UPDATE deal_outlook SET status = 'open', won_on = NULL, stage_probability = $2 WHERE deal_id = $1",
                d,
                event.to_stage.probability,
            )
        case deals.DealLinesChanged():
            await _lines(conn, d, event.lines)
        case deals.ExpectedCloseDateChanged():
            await conn.execute("UPDATE deal_outlook SET expected_close = $2 WHERE deal_id = $1", d, event.new)
        case deals.DealProbabilityOverridden():
            await conn.execute("UPDATE deal_outlook SET override = $2 WHERE deal_id = $1", d, event.probability)
        case deals.DealProbabilityOverrideCleared():
            await conn.execute("UPDATE deal_outlook SET override = NULL WHERE deal_id = $1", d)
        case deals.DealWon():
            await conn.execute(
                "UPDATE deal_outlook SET status = 'won', won_on = ($2::timestamptz AT TIME ZONE $3)::date "
                "WHERE deal_id = $1",
                d,
                event.won_at,
                tz,
            )
            await _lines(conn, d, event.lines)
        case deals.DealLost():
            await conn.execute("UPDATE deal_outlook SET status = 'lost' WHERE deal_id = $1", d)


def demand(deals_topic: str, tz: str) -> Projection:
    return Projection(
        name="demand",
        topics=(deals_topic,),
        ddl=DEMAND_DDL,
        apply=one_by_one(partial(apply_demand, tz=tz)),
        accepts=("pipelines.deals.",),
        tables=("deal_lines", "deal_outlook"),
    )
