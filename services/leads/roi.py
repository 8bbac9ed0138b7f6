"""Campaign spend and revenue across currencies, converted to VND (issue 26, decision 0021; shared.core.rates).

``projections.campaign_performance`` sums each campaign's spend (in the campaign's currency) and its leads' won
value as numbers; a campaign whose leads were won in another currency than its spend cannot be compared so. This
adds to each campaign, in VND: the spend, each day's converted at the rate in effect on that day (the spend's
``day``: its business time); the revenue, each won lead's value at the rate in effect on its won day (the business
time zone's day); and ROI = (revenue − spend) / spend × 100 and ROAS = revenue / spend on those — only when
neither has an unconverted currency (one without a rate on a fact's day: listed, named in ``unconverted``).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.core.rates import BASE, Converted, RateTable
from shared.store.db import Conn

_SPEND = """SELECT s.campaign_id, s.day, c.currency, s.amount FROM spend s JOIN campaigns c USING (campaign_id)
            WHERE s.day >= ($1 AT TIME ZONE $3)::date AND s.day < ($2 AT TIME ZONE $3)::date"""
_REVENUE = """SELECT c.campaign_id, x.won_currency AS currency, (x.won_at AT TIME ZONE $3)::date AS day,
                     sum(x.won_value) AS value
              FROM campaigns c JOIN leads x ON (x.campaign_code = c.code OR x.campaign_code = c.campaign_id::text)
              WHERE x.captured_at >= $1 AND x.captured_at < $2 AND x.status <> 'merged' AND x.won_at IS NOT NULL
                AND x.won_value IS NOT NULL
              GROUP BY 1, 2, 3"""


async def converted_campaigns(
    conn: Conn, *, start: datetime, end: datetime, tz: str, rates: RateTable
) -> dict[str, dict[str, Any]]:
    """campaign id → its spend, revenue, ROI and ROAS in VND (the same window as ``campaign_performance``)."""
    spend: dict[str, Converted] = {}
    revenue: dict[str, Converted] = {}
    for r in await conn.fetch(_SPEND, start, end, tz):
        spend.setdefault(str(r["campaign_id"]), Converted()).add(Decimal(r["amount"]), r["currency"], r["day"], rates)
    for r in await conn.fetch(_REVENUE, start, end, tz):
        currency = r["currency"] or BASE
        revenue.setdefault(str(r["campaign_id"]), Converted()).add(Decimal(r["value"]), currency, r["day"], rates)
    return {cid: _figures(spend.get(cid, Converted()), revenue.get(cid, Converted())) for cid in {*spend, *revenue}}


def _figures(spend: Converted, revenue: Converted) -> dict[str, Any]:
    complete = spend.complete() and revenue.complete()
    s, r = spend.vnd, revenue.vnd
    return {
        "currency": BASE,
        "spend": spend.as_json(),
        "revenue": revenue.as_json(),
        "roi_pct": round(float((r - s) / s * 100), 4) if complete and s else None,
        "roas": round(float(r / s), 4) if complete and s else None,
    }


def empty() -> dict[str, Any]:
    return _figures(Converted(), Converted())
