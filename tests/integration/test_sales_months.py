"""The sales numbers by month (issue 28): the win rate by month of close over every deal, and the forecast beside
the month's target (a quarter's spread over its months; an owner's, a team's, everyone's). Real PostgreSQL, the
analytics projection's ``apply`` called directly on the events the deals service recorded (as
tests/integration/test_deals_by_organisation.py does)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from services.deals import analytics, domain
from services.deals.analytics.months import spread
from services.deals.events import ProductLine
from services.deals.handlers import Deals
from shared.core.money import Money
from shared.store.commands import Context
from shared.store.memory import InMemoryEventStore
from testkit.facts import build, facts_of, schema, use

pytestmark = [pytest.mark.pg]

START = datetime(2026, 9, 10, 2, 0, tzinfo=UTC)
TZ = "Asia/Ho_Chi_Minh"
M = Decimal(1_000_000)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def opening(title: str, value: int, owner: str, team: str, close: date) -> domain.OpenDeal:
    line = ProductLine(product=title, quantity=Decimal(1), unit_price=Money.of(value * M))
    return domain.OpenDeal(
        title=title, customer=title, owner_id=owner, team_id=team, lines=(line,), expected_close_date=close
    )


async def history() -> tuple[InMemoryEventStore, datetime]:
    """u-an (north): A won and B lost in September, E open for December; u-binh (south): C won in October, D lost
    in December (at 23:30 on 31 December in Hanoi: December there, still December in UTC too: 16:30), F open for
    November. Targets: u-an's October 100M and north's Q4 300M, south's November 50M and 2027-Q1 100M (not a third
    of it in đồng)."""
    store, clock = InMemoryEventStore(), Clock()
    deals = Deals(store, clock)
    await deals.ensure_default_pipeline()
    ids = {k: uuid.uuid4() for k in "ABCDEF"}
    an, binh = Context(actor="u-an"), Context(actor="u-binh")
    await deals.handle(ids["A"], opening("A", 30, "u-an", "north", date(2026, 9, 30)), an)
    await deals.handle(ids["B"], opening("B", 20, "u-an", "north", date(2026, 9, 30)), an)
    await deals.handle(ids["C"], opening("C", 40, "u-binh", "south", date(2026, 10, 30)), binh)
    await deals.handle(ids["D"], opening("D", 10, "u-binh", "south", date(2026, 12, 30)), binh)
    await deals.handle(ids["E"], opening("E", 50, "u-an", "north", date(2026, 12, 15)), an)
    await deals.handle(ids["F"], opening("F", 60, "u-binh", "south", date(2026, 11, 15)), binh)
    clock.now += timedelta(days=5)
    await deals.handle(ids["A"], domain.WinDeal(), an)
    await deals.handle(ids["B"], domain.LoseDeal(reason="price"), an)
    clock.now = datetime(2026, 10, 20, 3, 0, tzinfo=UTC)
    await deals.handle(ids["C"], domain.WinDeal(), binh)
    clock.now = datetime(2026, 12, 31, 16, 30, tzinfo=UTC)
    await deals.handle(ids["D"], domain.LoseDeal(reason="price"), binh)
    boss = Context(actor="u-boss")
    targets = [("u-an", None, "2026-10", 100), (None, "north", "2026-Q4", 300), (None, "south", "2026-11", 50)]
    for owner, team, period, amount in targets:
        cmd = domain.SetSalesTarget(owner_id=owner, team_id=team, period=period, amount=Money.of(amount * M))
        await deals.set_target(uuid.uuid4(), cmd, boss)
    quarter = domain.SetSalesTarget(team_id="south", period="2027-Q1", amount=Money.of(Decimal(100_000_000)))
    await deals.set_target(uuid.uuid4(), quarter, boss)
    return store, clock.now + timedelta(days=1)


def test_a_quarters_target_is_spread_over_its_months_adding_up_to_it() -> None:
    parts = spread("2027-Q1", Decimal(100_000_000), "VND")
    assert parts == [
        ("2027-01", Decimal(33_333_333)),
        ("2027-02", Decimal(33_333_333)),
        ("2027-03", Decimal(33_333_334)),
    ]
    usd = spread("2026-Q4", Decimal("100.00"), "USD")
    assert [p for _, p in usd] == [Decimal("33.33"), Decimal("33.33"), Decimal("33.34")]
    assert spread("2026-11", Decimal(7), "VND") == [("2026-11", Decimal(7))]


async def test_win_rate_by_month_and_the_forecast_beside_each_months_target(pg_conn: asyncpg.Connection) -> None:
    store, now = await history()
    facts = await facts_of((store, "deals"))
    async with schema(pg_conn) as analytics_schema:
        await use(pg_conn, analytics_schema)
        await build(pg_conn, analytics.analytics("t"), facts)
        await win_rates(pg_conn, now)
        await targets(pg_conn)


async def win_rates(conn: asyncpg.Connection, now: datetime) -> None:
    window = {"start": datetime(2026, 9, 1, tzinfo=UTC), "end": datetime(2027, 1, 1, tzinfo=UTC)}
    months = await analytics.win_rates(conn, tz=TZ, **window)
    got = [(r["month"], r["won"], r["lost"], r["win_rate"], r["won_value"]) for r in months]
    assert got == [
        ("2026-09", 1, 1, 0.5, "30000000"),
        ("2026-10", 1, 0, 1.0, "40000000"),
        ("2026-11", 0, 0, None, "0"),  # no deal closed: the month is there, with no rate
        ("2026-12", 0, 1, 0.0, "0"),
    ]
    totals = await analytics.stage_analytics(conn, now=now, **window)  # the months add up to the window's figures
    assert (sum(r["won"] for r in months), sum(r["lost"] for r in months)) == (totals["won"], totals["lost"])
    mine = await analytics.win_rates(conn, tz=TZ, owner_id="u-an", **window)  # a salesperson's own
    assert [(r["month"], r["won"], r["lost"]) for r in mine] == [("2026-09", 1, 1)]
    south = await analytics.win_rates(conn, tz=TZ, team_id="south", **window)
    assert [(r["month"], r["won"], r["lost"]) for r in south] == [
        ("2026-10", 1, 0),
        ("2026-11", 0, 0),
        ("2026-12", 0, 1),
    ]
    assert await analytics.win_rates(conn, tz=TZ, currency="USD", **window) == []
    late = {"start": datetime(2026, 12, 31, 17, 0, tzinfo=UTC), "end": datetime(2027, 2, 1, tzinfo=UTC)}
    assert await analytics.win_rates(conn, tz=TZ, **late) == []  # D closed before the window


async def targets(conn: asyncpg.Connection) -> None:
    async def months(**scope: str | None) -> dict[str, tuple[str | None, str | None, str]]:
        rows = await analytics.forecast(conn, as_of=None, tz=TZ, **scope)
        found = await analytics.month_targets(
            conn, currency="VND", owner_id=scope.get("owner_id"), team_id=scope.get("team_id")
        )
        return {
            r["period"]: (r["target"], r["target_from_quarters"], r["expected"])
            for r in analytics.forecast_months(rows, found, "VND")
        }

    everyone = await months()  # the teams' targets; a salesperson's only in a month no team has one (none here)
    assert everyone == {
        "2026-09": (None, None, "30000000"),
        "2026-10": ("100000000", "100000000", "40000000"),  # north's Q4 third, not u-an's October too
        "2026-11": ("150000000", "100000000", "6000000"),  # north's third and south's month; F: 60M at 10 %
        "2026-12": ("100000000", "100000000", "5000000"),  # E: 50M at 10 % (D was lost)
        "2027-01": ("33333333", "33333333", "0"),
        "2027-02": ("33333333", "33333333", "0"),
        "2027-03": ("33333334", "33333334", "0"),
    }
    an = await months(owner_id="u-an")
    assert an["2026-10"][:2] == ("100000000", "0") and an["2026-09"][0] is None
    assert {m: t for m, (t, _, _) in an.items() if t} == {"2026-10": "100000000"}
    north = await months(team_id="north")
    assert {m: (t, q) for m, (t, q, _) in north.items() if t} == dict.fromkeys(
        ("2026-10", "2026-11", "2026-12"), ("100000000", "100000000")
    )
    rows = await analytics.forecast(conn, as_of=None, tz=TZ)
    summed = analytics.forecast_months(rows, {}, "VND")
    for month in summed:  # each month is the sum of the forecast's rows of that month
        mine = [r for r in rows if r["period"] == month["period"]]
        assert Decimal(month["expected"]) == sum(Decimal(r["expected"]) for r in mine)
        assert month["open_count"] == sum(r["open_count"] for r in mine)
