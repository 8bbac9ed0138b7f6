"""The customer 360 against a hand-computed oracle (issue 24 item 4): a scripted history of organisations (one
merged into another), deals through the deals service, orders and shipments as production records them; the
``customer360`` read model built on real PostgreSQL from those events (the projection's ``apply`` called
directly; the runner is tested elsewhere), in any batch split and with the directory's events last; every figure
below computed by hand from the script."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from pydantic import TypeAdapter

from services.deals import domain
from services.deals.events import ActivityType, Channel, ProductLine
from services.deals.handlers import Deals
from services.directory import events as dev
from services.directory.api.customer_answers import Customer360, CustomerSegments, RepeatRevenue
from services.directory.projections import customer360 as c360
from services.directory.projections import customer360_queries as q
from services.production import events as pev
from shared.core.money import Money
from shared.store import NewEvent
from shared.store.commands import Context
from shared.store.memory import InMemoryEventStore
from testkit.facts import build, facts_of, schema

pytestmark = [pytest.mark.pg]

TZ = "Asia/Ho_Chi_Minh"
SEN, DUP, MOC, FAR = (uuid.UUID(int=n) for n in (0x5E1, 0xD00, 0x30C, 0xFA2))
M = Decimal(1_000_000)


def at(month: int, day: int) -> datetime:
    return datetime(2026, month, day, 3, 0, tzinfo=UTC)  # 10:00 in Hồ Chí Minh City: the same day there


class Clock:
    now = at(9, 1)

    def __call__(self) -> datetime:
        return self.now


async def append(store: InMemoryEventStore, stream: str, event: Any, when: datetime) -> None:
    version = await store.stream_version(stream)
    await store.append(stream, [NewEvent(event, occurred_at=when)], expected_version=version)


async def organisations(store: InMemoryEventStore) -> None:
    for org, name, industry, team in (
        (SEN, "Nhà hàng Sen", "restaurant", "north"),
        (DUP, "Sen Restaurant (duplicate)", "restaurant", "north"),
        (MOC, "Quán Cà Phê Mộc", "cafe", "north"),
        (FAR, "Khách sạn Xa", "hotel", "south"),
    ):
        registered = dev.OrganisationRegistered(
            organisation_id=org, name=name, tax_code=None, industry=industry, owner_id="u-lan", team_id=team,
            registered_at=at(8, 1),
        )  # fmt: skip
        await append(store, f"directory-organisation-{org}", registered, at(8, 1))
    merged = dev.OrganisationMerged(organisation_id=DUP, into=SEN, reason="same tax code", merged_at=at(11, 2))
    await append(store, f"directory-organisation-{DUP}", merged, at(11, 2))


class Script:
    def __init__(self) -> None:
        self.clock = Clock()
        self.store = InMemoryEventStore()
        self.deals = Deals(self.store, self.clock)
        self.ids: dict[str, uuid.UUID] = {}

    async def do(self, name: str, when: datetime, command: domain.Command) -> None:
        self.clock.now = when
        self.ids.setdefault(name, uuid.uuid4())
        await self.deals.handle(self.ids[name], command, Context(actor="u-lan"))

    async def deal(self, name: str, org: uuid.UUID, opened: datetime, millions: int) -> None:
        line = ProductLine(product=name, quantity=Decimal(1), unit_price=Money.of(millions * M))
        opening = domain.OpenDeal(
            title=name, customer=str(org), owner_id="u-lan", team_id="north", lines=(line,), organisation_id=org
        )
        await self.do(name, opened, opening)


async def sales(s: Script) -> None:
    """D1 Sen won 30M on 5 Sep; D2 (Sen's duplicate) won 20M on 10 Oct; D3 Sen lost on 15 Oct; D4 Sen open 40M;
    D5 Mộc won 15M on 20 Sep; D6 Mộc won 25M on 5 Nov; D7 Xa (south) won 100M on 15 Sep."""
    await s.deals.ensure_default_pipeline()
    await s.deal("D1", SEN, at(9, 1), 30)
    await s.do("D1", at(9, 2), domain.LogActivity(activity_id=uuid.uuid4(), activity_type=ActivityType.CALL,
                                                  channel=Channel.PHONE))  # fmt: skip
    await s.do("D1", at(9, 5), domain.WinDeal())
    await s.deal("D2", DUP, at(9, 3), 20)
    await s.do("D2", at(10, 10), domain.WinDeal())
    await s.deal("D3", SEN, at(10, 1), 10)
    await s.do("D3", at(10, 15), domain.LoseDeal(reason="price"))
    await s.deal("D4", SEN, at(11, 1), 40)
    await s.do("D4", at(11, 3), domain.LogActivity(activity_id=uuid.uuid4(), activity_type=ActivityType.MEETING,
                                                   channel=Channel.MEETING))  # fmt: skip
    await s.deal("D5", MOC, at(9, 10), 15)
    await s.do("D5", at(9, 20), domain.WinDeal())
    await s.deal("D6", MOC, at(10, 2), 25)
    await s.do("D6", at(11, 5), domain.WinDeal())
    await s.deal("D7", FAR, at(9, 1), 100)
    await s.do("D7", at(9, 15), domain.WinDeal())
    f1, f2 = uuid.uuid4(), uuid.uuid4()
    await s.do("D1", at(9, 14), domain.StartFollowUp(follow_up_id=f1, due_on=date(2026, 9, 17)))
    await s.do("D1", at(9, 16), domain.RecordFollowUpContact(follow_up_id=f1, channel=Channel.PHONE))
    await s.do("D1", at(9, 16), domain.RecordFeedback(follow_up_id=f1, csat=4, nps=8))
    await s.do("D1", at(9, 18), domain.CompleteFollowUp(follow_up_id=f1, outcome="happy"))
    await s.do("D2", at(10, 26), domain.StartFollowUp(follow_up_id=f2, due_on=date(2026, 10, 30)))
    await s.do("D2", at(10, 28), domain.RecordFeedback(follow_up_id=f2, csat=5, nps=10))


async def orders(store: InMemoryEventStore, ids: dict[str, uuid.UUID]) -> None:
    """O1 (D1): 3 units, shipped in two parts (10 and 12 Sep), delivered on time; O2 (D2): shipped 20 Oct,
    delivered late; O3: an order from no deal (never anyone's)."""
    lines = (pev.OrderLine(product="Tủ", quantity=Decimal(3)),)
    o1, o2, o3 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for order, deal, when in ((o1, ids["D1"], at(9, 6)), (o2, ids["D2"], at(10, 11)), (o3, None, at(10, 11))):
        created = pev.ProductionOrderCreated(
            order_id=order, deal_id=deal, customer="x", lines=lines, due_date=date(2026, 10, 24), origin="deal",
            created_at=when,
        )  # fmt: skip
        await append(store, f"order-{order}", created, when)
    for order, deal, qty, when in (
        (o1, ids["D1"], 2, at(9, 10)),
        (o1, ids["D1"], 1, at(9, 12)),
        (o2, ids["D2"], 3, at(10, 20)),
    ):
        shipped = pev.OrderShipped(
            order_id=order,
            deal_id=deal,
            shipment_id=uuid.uuid4(),
            carrier="GHN",
            quantity=Decimal(qty),
            shipped_at=when,
        )
        await append(store, f"order-{order}", shipped, when)
    for order, deal, on_time, when in ((o1, ids["D1"], True, at(9, 14)), (o2, ids["D2"], False, at(10, 25))):
        delivered = pev.OrderDelivered(
            order_id=order, deal_id=deal, shipment_id=uuid.uuid4(), delivered_at=when, quantity=Decimal(3),
            on_time=on_time,
        )  # fmt: skip
        await append(store, f"order-{order}", delivered, when)


async def history() -> tuple[list[Any], dict[str, uuid.UUID]]:
    script, directory, production = Script(), InMemoryEventStore(), InMemoryEventStore()
    await organisations(directory)
    await sales(script)
    await orders(production, script.ids)
    facts = await facts_of((script.store, "deals"), (production, "production"))
    return facts + await facts_of((directory, "directory")), script.ids  # the directory's topic read last


def expected_sen(ids: dict[str, uuid.UUID]) -> dict[str, Any]:
    return {
        "organisations": sorted([str(SEN), str(DUP)]),
        "counts": {"open": 1, "won": 2, "lost": 1},
        "lifetime_revenue": {"VND": "50000000"},  # D1 30M + D2 20M
        "purchases": 2,
        "first_purchase_at": at(9, 5).isoformat(),
        "last_purchase_at": at(10, 10).isoformat(),
        "repeat_purchase_share": {"by_count": 0.5, "by_value": {"VND": 0.4}},  # D2: 1 of 2; 20M of 50M
        "orders": (2, 3, 1),  # O1, O2; three shipments; O2 late
        "follow_ups": (2, 1),  # F1 completed, F2 open
        "satisfaction": {"responses": 2, "csat_mean": 4.5, "nps_mean": 9.0},
        "activities": {"count": 2, "by_type": {"call": 1, "meeting": 1}},
        "last_contact_at": at(11, 3).isoformat(),  # D4's meeting, after F2's feedback on 28 Oct
        "lost": [str(ids["D3"])],
    }


def summary(got: dict[str, Any]) -> dict[str, Any]:
    return {
        "organisations": got["organisations"],
        "counts": {k: v["count"] for k, v in got["deals"].items()},
        "lifetime_revenue": got["lifetime_revenue"],
        "purchases": got["purchases"],
        "first_purchase_at": got["first_purchase_at"],
        "last_purchase_at": got["last_purchase_at"],
        "repeat_purchase_share": got["repeat_purchase_share"],
        "orders": (got["orders"]["count"], got["orders"]["shipments"], got["orders"]["late_deliveries"]),
        "follow_ups": (got["follow_ups"]["count"], got["follow_ups"]["open"]),
        "satisfaction": got["satisfaction"],
        "activities": got["activities"],
        "last_contact_at": got["last_contact_at"],
        "lost": [d["deal_id"] for d in got["deals"]["lost"]["listed"]],
    }


def unchanged(model: Any, answer: Any) -> bool:
    """``answer`` serialized through ``model`` (as its route does) is what it was: no field reordered, dropped or
    coerced."""
    through = TypeAdapter(model)
    return through.dump_json(through.validate_python(answer), by_alias=True) == TypeAdapter(Any).dump_json(answer)


async def test_the_360_and_the_customer_analytics_match_the_hand_computed_figures(pg_conn: asyncpg.Connection) -> None:
    facts, ids = await history()
    for batch in (0, 1):  # all at once, and one by one (the runner's isolation)
        async with schema(pg_conn):
            await build(pg_conn, c360.customer360("d", "s", "p"), facts, batch=batch)
            assert summary(await q.customer_360(pg_conn, SEN)) == expected_sen(ids)
            assert (await q.customer_360(pg_conn, DUP))["organisations"] == [str(DUP)]  # as asked: the API follows
            moc = await q.customer_360(pg_conn, MOC)
            assert (moc["lifetime_revenue"], moc["purchases"], moc["orders"]["count"]) == ({"VND": "40000000"}, 2, 0)
            assert moc["repeat_purchase_share"] == {"by_count": 0.5, "by_value": {"VND": 0.625}}  # 25M of 40M
            assert moc["last_contact_at"] is None

            window = {"start": at(9, 1) - timedelta(days=1), "end": at(12, 1), "tz": TZ, "currency": "VND"}
            north = await q.repeat_revenue(pg_conn, teams=["north"], **window)
            assert [(r["period"], r["new_revenue"], r["repeat_revenue"], r["new_customers"], r["repeat_customers"])
                    for r in north] == [
                ("2026-09", "45000000", "0", 2, 0),  # D1 (Sen's first), D5 (Mộc's first)
                ("2026-10", "0", "20000000", 0, 1),  # D2: Sen's second, the duplicate merged into Sen
                ("2026-11", "0", "25000000", 0, 1),  # D6: Mộc's second
            ]  # fmt: skip
            everyone = await q.repeat_revenue(pg_conn, teams=None, **window)
            assert everyone[0]["new_revenue"] == "145000000" and everyone[0]["repeat_share"] == 0.0
            # the routes answer these through their models: byte for byte what the queries made (decision 0029)
            assert unchanged(list[RepeatRevenue], north) and unchanged(Customer360, {"asked": str(MOC), **moc})
            assert unchanged(CustomerSegments, await q.segments(pg_conn, currency="VND", teams=None))

            seg = await q.segments(pg_conn, currency="VND", teams=None)
            assert seg["segments"] == [
                {"industry": "cafe", "customers": 1, "buying": 1, "revenue": "40000000"},
                {"industry": "hotel", "customers": 1, "buying": 1, "revenue": "100000000"},
                {"industry": "restaurant", "customers": 1, "buying": 1, "revenue": "50000000"},
            ]
            # 190M: Xa 100M (52.6 % ≤ 80: A), Sen 50M (78.9 % ≤ 80: A), Mộc 40M (100 %: C)
            assert [(c["class"], c["customers"], c["revenue"]) for c in seg["value_classes"]] == [
                ("A", 2, "150000000"),
                ("B", 0, "0"),
                ("C", 1, "40000000"),
            ]
            south = await q.segments(pg_conn, currency="VND", teams=["south"])
            assert [s["industry"] for s in south["segments"]] == ["hotel"]
