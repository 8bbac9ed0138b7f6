"""The pipeline's totals across currencies, converted to VND (issue 26, decision 0021; shared.core.rates).

The per-currency figures (``pipeline.pipeline_totals``) stay as they are; this adds, over every currency at once:
- revenue = the won value of deals won in the window, each converted at the rate in effect on its won day (the
  business time zone's day);
- pipeline value = the open deals' value now, converted at the rate in effect today (an open deal's value is a
  fact of now, not of its opening);
- average deal size = revenue / deals won in the currencies converted; velocity = open deals (every currency) ×
  average size × win rate (every currency) / mean cycle days (every currency).
A currency with no rate on a fact's day is listed, not converted, and named in ``unconverted``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from shared.core.rates import BASE, ROUNDING, Converted, RateTable
from shared.store.db import Conn

_SCOPE = """pipeline_id = $1 AND ($2::text IS NULL OR owner_id = $2) AND ($3::text IS NULL OR team_id = $3)
             AND ($4::uuid[] IS NULL OR organisation_id = ANY($4))"""
_WON = f"""SELECT currency, (won_at AT TIME ZONE $7)::date AS day, sum(value) AS value, count(*) AS n
           FROM deals WHERE {_SCOPE} AND won_at >= $5 AND won_at < $6 GROUP BY 1, 2 ORDER BY 1, 2"""
_COUNTS = f"""SELECT count(*) FILTER (WHERE won_at >= $5 AND won_at < $6) AS won,
                     count(*) FILTER (WHERE lost_at >= $5 AND lost_at < $6) AS lost,
                     avg(extract(epoch FROM won_at - opened_at) / 86400) FILTER (WHERE won_at >= $5 AND won_at < $6)
                         AS mean_cycle_days
              FROM deals WHERE {_SCOPE}"""
_OPEN = f"""SELECT currency, sum(value) AS value, count(*) AS n FROM deals WHERE {_SCOPE} AND status = 'open'
            GROUP BY 1 ORDER BY 1"""


def _vnd(v: Decimal | None) -> str | None:
    return None if v is None else format(v.quantize(Decimal(1), ROUND_HALF_EVEN), "f")


async def converted_totals(
    conn: Conn,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    tz: str,
    rates: RateTable,
    pipeline_id: str = "default",
    owner_id: str | None = None,
    team_id: str | None = None,
    organisations: list[uuid.UUID] | None = None,
) -> dict[str, Any]:
    scope = (pipeline_id, owner_id, team_id, organisations, start, end)
    revenue, won_by_currency = Converted(), dict[str, int]()
    for r in await conn.fetch(_WON, *scope, tz):
        revenue.add(Decimal(r["value"]), r["currency"], r["day"], rates)
        won_by_currency[r["currency"]] = won_by_currency.get(r["currency"], 0) + r["n"]
    won_converted = sum(n for c, n in won_by_currency.items() if c not in revenue.unconverted)
    pipeline, open_now = Converted(), 0
    today = now.astimezone(ZoneInfo(tz)).date()
    for r in await conn.fetch(_OPEN, *scope[:4]):
        pipeline.add(Decimal(r["value"]), r["currency"], today, rates)
        open_now += r["n"]
    counts = await conn.fetchrow(_COUNTS, *scope)
    assert counts is not None  # an aggregate answers one row
    avg_size = revenue.vnd / won_converted if won_converted else None
    resolved = counts["won"] + counts["lost"]
    velocity = None
    if avg_size is not None and resolved and counts["mean_cycle_days"]:
        win_rate = Decimal(counts["won"]) / resolved
        velocity = Decimal(open_now) * avg_size * win_rate / Decimal(counts["mean_cycle_days"])
    return {
        "currency": BASE,
        "rounding": ROUNDING,
        "revenue": revenue.as_json(),
        "pipeline_value": {**pipeline.as_json(), "rate_day": today.isoformat()},
        "average_deal_size": _vnd(avg_size),
        "velocity_per_day": _vnd(velocity),
    }
