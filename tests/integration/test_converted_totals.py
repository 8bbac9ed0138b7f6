"""Totals across currencies on PostgreSQL (issue 26 item 3): the deals' revenue and the campaigns' spend and revenue
converted to VND at the rate in effect on each fact's day, across a rate change (a hand-computed oracle); a currency
without a rate listed, not converted, and named."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import asyncpg
import pytest

from services.deals.analytics import DDL as DEALS_DDL
from services.deals.analytics.converted import converted_totals
from services.leads.marketing_model import DDL as MARKETING_DDL
from services.leads.roi import converted_campaigns
from shared.core.rates import RateTable

pytestmark = pytest.mark.pg
TZ = "Asia/Ho_Chi_Minh"
RATES = RateTable.of(
    [("USD", date(2026, 1, 1), Decimal("25000")), ("USD", date(2026, 3, 1), Decimal("25400.5"))]
)  # no EUR rate


def at(day: int, month: int, hour: int = 3) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=UTC)


async def test_won_revenue_is_converted_on_each_won_day_and_velocity_in_vnd(pg_conn: asyncpg.Connection) -> None:
    await pg_conn.execute(DEALS_DDL)

    async def deal(status: str, value: str, currency: str, opened: datetime, won: datetime | None = None) -> None:
        await pg_conn.execute(
            """INSERT INTO deals (deal_id, owner_id, pipeline_id, status, value, currency, stage_id, stage_order,
                                  stage_probability, entered_stage_at, opened_at, won_at)
               VALUES ($1, 'u-lan', 'default', $2, $3, $4, 's', 1, 0.5, $5, $5, $6)""",
            uuid.uuid4(), status, Decimal(value), currency, opened, won,
        )  # fmt: skip

    await deal("won", "1000", "USD", at(1, 2), at(28, 2, 16))  # 28 Feb, 23:00 local: 1000 × 25,000 = 25,000,000
    await deal("won", "1000", "USD", at(1, 2), at(28, 2, 17))  # 1 Mar, 00:00 local: 1000 × 25,400.5 = 25,400,500
    await deal("won", "10000000", "VND", at(11, 2), at(1, 3))  # 10,000,000
    await deal("open", "200.25", "USD", at(1, 3))  # today's rate (25,400.5): 5,086,450.125
    await deal("open", "50", "EUR", at(1, 3))  # no EUR rate
    got = await converted_totals(
        pg_conn, start=at(1, 1), end=at(1, 4), now=at(10, 3), tz=TZ, rates=RATES, pipeline_id="default"
    )
    assert got["revenue"] == {
        "currency": "VND",
        "total": "60400500",
        "by_currency": {
            "USD": {"amount": "2000.00", "vnd": "50400500"},
            "VND": {"amount": "10000000", "vnd": "10000000"},
        },
        "unconverted": [],
    }
    assert got["pipeline_value"]["total"] == "5086450"  # .125 rounds down
    assert got["pipeline_value"]["unconverted"] == ["EUR"]
    assert got["pipeline_value"]["by_currency"]["EUR"] == {"amount": "50.00", "vnd": None}
    # average size 60,400,500 / 3 = 20,133,500; win rate 3 / 3; cycle: 27 d 13 h, 27 d 14 h and 18 d (mean 24.375);
    # velocity = 2 open × 20,133,500 × 1 / 24.375 = 1,651,979.48… → 1,651,979
    assert got["average_deal_size"] == "20133500"
    assert got["velocity_per_day"] == "1651979"


async def test_campaign_spend_and_revenue_in_vnd_give_roi_only_when_all_converted(pg_conn: asyncpg.Connection) -> None:
    await pg_conn.execute(MARKETING_DDL)
    usd, vnd = uuid.uuid4(), uuid.uuid4()
    for cid, code, currency in ((usd, "us", "USD"), (vnd, "vn", "VND")):
        await pg_conn.execute(
            "INSERT INTO campaigns VALUES ($1, $2, 'ads', $3, 1000000, $4, 'active')", cid, code, code, currency
        )
    spend = [(usd, date(2026, 2, 28), "100"), (usd, date(2026, 3, 1), "100"), (vnd, date(2026, 3, 1), "1000000")]
    for cid, day, amount in spend:
        await pg_conn.execute("INSERT INTO spend VALUES ($1, $2, $3, 0, 0)", cid, day, Decimal(amount))
    won = [("us", "VND", "15000000", at(2, 3)), ("vn", "EUR", "40", at(2, 3))]
    for code, currency, value, when in won:
        await pg_conn.execute(
            """INSERT INTO leads (lead_id, source, campaign_code, captured_at, status, won_at, won_value, won_currency)
               VALUES ($1, 'ads', $2, $3, 'converted', $3, $4, $5)""",
            uuid.uuid4(), code, when, Decimal(value), currency,
        )  # fmt: skip
    got = await converted_campaigns(pg_conn, start=at(1, 1), end=at(1, 4), tz=TZ, rates=RATES)
    # USD campaign: spend 100 × 25,000 + 100 × 25,400.5 = 5,040,050; revenue 15,000,000 VND;
    # ROI = (15,000,000 − 5,040,050) / 5,040,050 × 100 = 197.6161…; ROAS = 2.97616…
    us = got[str(usd)]
    assert us["spend"]["total"] == "5040050" and us["revenue"]["total"] == "15000000"
    assert us["roi_pct"] == 197.6161 and us["roas"] == 2.9762
    vn = got[str(vnd)]  # its revenue is in EUR, which has no rate: listed, named, no ROI
    assert vn["revenue"]["unconverted"] == ["EUR"] and vn["revenue"]["by_currency"]["EUR"]["vnd"] is None
    assert vn["roi_pct"] is None and vn["roas"] is None
