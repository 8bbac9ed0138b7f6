"""Every read model on the right time axis (issue 26 item 1, decision 0021): a history that happened months before
it was recorded — every command back-dated (``Context(occurred_at=…)``), every event recorded within this test's
second — run through the services' handlers on the in-memory store, projected by each read model's own ``apply`` into
real PostgreSQL, and each business figure checked against a value computed here by hand that the recorded axis (all
≈ now: cycle times 0, every month the test's), or the projector's clock, would get wrong. "As recorded on" queries
(the forecast as of a recorded time) stay on recorded time: before the import the system knew nothing.

The read models: the deals' board (days in stage, stuck) and analytics (cycle time, velocity, time in stage, stage
conversion, scorecard, lost reasons, forecast), marketing (funnel by month, minutes to first contact, a campaign's
spend by day, leads not contacted), production's floor (lead time, stage visits, on time, age) and demand (won
month), the directory's customers (registered at) and customer 360 (first purchase, revenue by month, new and
repeat), the agenda's activities (scheduled, done, overdue); and a reaction to a back-dated fact (production's order
for a won deal) occurs when its cause did. Each test runs twice: the handlers deciding on the command's occurred
time with their clock at ``TODAY`` (as an import does), and their clock moved with each fact.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from services.agenda import domain as agenda_domain
from services.agenda.handlers import Agenda
from services.agenda.projections import activities
from services.agenda.projections.queries import agenda, list_activities
from services.deals import analytics as a
from services.deals import domain as deals_domain
from services.deals.analytics import analytics
from services.deals.handlers import Deals
from services.deals.projections import board
from services.deals.projections import board_queries as bq
from services.directory.customers import Customers
from services.directory.domain.customer_commands import RegisterOrganisation
from services.directory.projections.customer360 import customer360
from services.directory.projections.customer360_queries import customer_360, repeat_revenue
from services.directory.projections.customers import customers
from services.leads import domain as leads_domain
from services.leads import projections as marketing
from services.leads.handlers import InMemoryDedupe, Leads
from services.production import domain as production_domain
from services.production.events import Material, OrderLine
from services.production.handlers import DEFAULT_LEAD_TIME, Production
from services.production.projections import board as floor_board
from services.production.projections import cycle_times, delivery, demand, floor, pipeline_demand
from shared.core.money import Money
from shared.messaging.envelope import CloudEvent
from shared.messaging.projections import Fact, Projection
from shared.messaging.runner import ProjectionRunner
from shared.store.commands import Context
from shared.store.memory import InMemoryEventStore

pytestmark = [pytest.mark.pg]

TZ = "Asia/Ho_Chi_Minh"
ZONE = ZoneInfo(TZ)
TODAY = datetime(2026, 10, 1, 2, 0, tzinfo=UTC)  # the queries' now: 09:00 in Hanoi
ORG = uuid.UUID("00000000-0000-4000-8000-00000000c360")
A, B, C, D = (uuid.UUID(int=n) for n in (0xA, 0xB, 0xC, 0xD))
VND_100M, VND_40M = Money.of(100_000_000), Money.of(40_000_000)


def day(month: int, d: int, hour: int = 2) -> datetime:
    """2026-<month>-<d> at ``hour`` UTC (09:00 in Hanoi by default)."""
    return datetime(2026, month, d, hour, 0, tzinfo=UTC)


def local(month: int, year: int = 2026) -> datetime:
    return datetime(year, month, 1, tzinfo=ZONE)


@dataclass
class Clock:
    now: datetime = TODAY

    def __call__(self) -> datetime:
        return self.now


@dataclass
class History:
    """The services' handlers on in-memory stores, each command back-dated to when it happened. ``move_clock``: the
    handlers' clock is moved to each command's time too (the read models alone under test); else it stays at
    ``TODAY`` and the handlers decide on the command's occurred time (``Context.at``), as an import does."""

    move_clock: bool = False
    clock: Clock = field(default_factory=Clock)
    stores: dict[str, InMemoryEventStore] = field(default_factory=dict)

    def store(self, service: str) -> InMemoryEventStore:
        if service not in self.stores:
            first = next(iter(self.stores.values()), None)
            self.stores[service] = InMemoryEventStore(first.personal_data if first else None)
        return self.stores[service]

    def at(self, when: datetime, actor: str = "u-lan") -> Context:
        if self.move_clock:
            self.clock.now = when
        return Context(actor=actor, occurred_at=when)

    async def envelope(self, service: str, stream: str, version: int) -> tuple[CloudEvent, dict[str, Any]]:
        """One recorded event as its service publishes it, and its data opened (as a reaction gets them)."""
        store = self.store(service)
        (recorded,) = await store.read_stream(stream, to_version=version, after_version=version - 1)
        (data,) = await store.personal_data.open([recorded.data])
        return CloudEvent.from_recorded(recorded, service), data

    async def facts(self, projection: Projection) -> list[Fact]:
        """Every recorded event a read model takes, each service's in its order (the topics' order per stream)."""
        out = []
        for service, store in self.stores.items():
            for recorded in await store.read_streams(""):
                envelope = CloudEvent.from_recorded(recorded, service)
                if envelope.type.startswith(projection.accepts):
                    out.append(Fact(envelope, envelope.to_event()))
        return out


class AnyOwner:
    """The directory's users, as the customers' commands check them: every owner is one."""

    async def check_owner(self, owner_id: str, team_id: str) -> None:
        return None


@pytest.fixture(params=[False, True], ids=["decided-on-occurred-time", "clock-moved"])
def h(request: pytest.FixtureRequest) -> History:
    return History(move_clock=request.param)


@contextlib.asynccontextmanager
async def projected(pool: asyncpg.Pool, namespace: str, projection: Projection, history: History) -> AsyncIterator[Any]:
    """The read model built from the whole history in one batch, and a connection reading it."""
    runner = ProjectionRunner(pool, projection, namespace=namespace, bootstrap_servers="x", dead_letter_topic="x")
    await runner.setup()
    facts = await history.facts(projection)
    assert facts, projection.name
    async with pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL search_path TO {runner.schema(1)}, public")
            await projection.apply(conn, facts)
        async with conn.transaction():
            await conn.execute(f"SET LOCAL search_path TO {runner.schema(1)}, public")
            yield conn


# ---------------------------------------------------------------------------------------------- the deals
async def deals_history(h: History) -> datetime:
    """Four deals, and the recorded time just before any was recorded.

    A (the organisation's second purchase): opened 1 June, contacted 11 June, quote sent 21 June (skipping needs
    discussed), won 1 July: cycle 30 days, 10 days in each of its three stages. B: opened 15 June, lost 10 July.
    C: opened 1 August, contacted 1 September, open: 30 days in Contacted on 1 October (stuck after 10).
    D (the organisation's first purchase): opened 20 February, won 10 March."""
    deals = Deals(h.store("deals"), h.clock, tz=ZONE)
    await deals.ensure_default_pipeline()
    before = datetime.now(UTC)

    def opened(title: str, value: Money, **more: Any) -> deals_domain.OpenDeal:
        line = {"product": "Tủ đông 500L", "quantity": "1", "unit_price": value.model_dump(mode="json")}
        body = {"title": title, "customer": "Siêu thị Bình An", "owner_id": "u-lan", "team_id": "north"}
        return deals_domain.OpenDeal.model_validate(body | {"lines": [line]} | more)

    steps: list[tuple[uuid.UUID, datetime, deals_domain.Command]] = [
        (D, day(2, 20), opened("Lần đầu", VND_40M, organisation_id=ORG)),
        (D, day(3, 10), deals_domain.WinDeal()),
        (A, day(6, 1), opened("Kho lạnh", VND_100M, organisation_id=ORG)),
        (A, day(6, 11), deals_domain.MoveStage(stage_id="contacted")),
        (B, day(6, 15), opened("Tủ mát", VND_40M)),
        (A, day(6, 21), deals_domain.MoveStage(stage_id="quote_sent")),
        (A, day(7, 1), deals_domain.WinDeal()),
        (B, day(7, 10), deals_domain.LoseDeal(reason="giá cao", competitor="Rival")),
        (C, day(8, 1), opened("Tủ đông", VND_40M)),
        (C, day(9, 1), deals_domain.MoveStage(stage_id="contacted")),
    ]
    for deal_id, when, command in steps:
        await deals.handle(deal_id, command, h.at(when))
    await agenda_history(h)
    return before


async def agenda_history(h: History) -> tuple[uuid.UUID, uuid.UUID]:
    """On deal C: a call scheduled 1 September for the 5th, done on the 6th; one scheduled 10 September for the
    20th, still open (overdue on 1 October, not on 15 September)."""
    calls = Agenda(h.store("agenda"), h.clock)
    place = agenda_domain.Placement(owner_id="u-lan", team_id="north", data_subject="c-deal-c")

    def call(title: str, due: datetime) -> agenda_domain.Schedule:
        return agenda_domain.Schedule(kind="phone", subject_type="deal", subject_id=C, title=title, due_at=due)

    done = (await calls.schedule(call("Gọi lần đầu", day(9, 5)), place, h.at(day(9, 1)))).state.activity_id
    await calls.handle(done, agenda_domain.Complete(), h.at(day(9, 6)))
    still_open = (await calls.schedule(call("Gọi lại", day(9, 20)), place, h.at(day(9, 10)))).state.activity_id
    assert done is not None and still_open is not None
    return done, still_open


async def test_the_board_counts_days_in_stage_and_stuck_from_when_the_deal_moved(
    pg_pool: asyncpg.Pool, pg_schema: str, h: History
) -> None:
    await deals_history(h)
    async with projected(pg_pool, pg_schema, board("deals", "agenda"), h) as conn:
        view = await bq.board_view(conn, pipeline_id="default", now=TODAY, tz=TZ, user="u", team=None, all_deals=True)
        contacted = next(s for s in view["stages"] if s["stage_id"] == "contacted")
        (c,) = contacted["deals"]
        assert (c["deal_id"], c["days_in_stage"], c["stuck"]) == (str(C), 30, True)
        assert c["entered_stage_at"] == day(9, 1).isoformat() and c["opened_at"] == day(8, 1).isoformat()
        assert contacted["stuck_count"] == 1
        assert (c["overdue"], c["overdue_activities"], c["next_step"]["due_at"]) == (True, 1, day(9, 20).isoformat())
        earlier = await bq.board_view(
            conn, pipeline_id="default", now=day(9, 15), tz=TZ, user="u", team=None, all_deals=True
        )
        (c_then,) = next(s for s in earlier["stages"] if s["stage_id"] == "contacted")["deals"]
        assert (c_then["days_in_stage"], c_then["stuck"], c_then["overdue"]) == (14, True, False)
        (alert,) = await bq.stuck_deals(conn, TODAY)
        assert (alert.entity, alert.occurrence, alert.details["days"]) == (f"deal-{C}", day(9, 1).isoformat(), "30")
        # four days after the move it was not stuck yet: derived at the query's now, from the stored move
        assert await bq.stuck_deals(conn, day(9, 5)) == []
        closed = await bq.list_deals(
            conn,
            now=TODAY,
            tz=TZ,
            user="u",
            team=None,
            all_deals=True,
            status="won",
            stage_id=None,
            owner_id=None,
            stuck=None,
            offset=0,
            limit=10,
        )
        assert [(r["deal_id"], r["closed_at"]) for r in closed] == [
            (str(A), day(7, 1).isoformat()),
            (str(D), day(3, 10).isoformat()),
        ]


async def test_the_analytics_count_cycle_time_in_stage_and_months_on_occurred_time(
    pg_pool: asyncpg.Pool, pg_schema: str, h: History
) -> None:
    before = await deals_history(h)
    async with projected(pg_pool, pg_schema, analytics("deals"), h) as conn:
        july = {"start": local(7), "end": local(8)}
        totals = await a.pipeline_totals(conn, **july, pipeline_id="default", currency="VND", owner_id=None)
        # velocity = open deals × average size × win rate / mean cycle = 1 × 100,000,000 × 0.5 / 30
        assert totals == {
            "currency": "VND",
            "won": 1,
            "lost": 1,
            "win_rate": 0.5,
            "won_value": "100000000",
            "average_deal_size": "100000000",
            "mean_cycle_days": 30.0,
            "median_cycle_days": 30.0,
            "open_now": 1,
            "velocity_per_day": "1666667",
        }
        stages = await a.stage_analytics(conn, start=local(6), end=local(8), now=TODAY)
        by_stage = {s["stage_id"]: s for s in stages["stages"]}
        first = by_stage["target_identified"]  # A 1 → 11 June (10 days), B 15 June → 10 July lost (25 days)
        assert (first["visits_ended"], first["mean_days"], first["median_days"]) == (2, 17.5, 17.5)
        assert (first["entered"], first["advanced"], first["lost"], first["conversion_rate"]) == (2, 1, 1, 0.5)
        assert (by_stage["contacted"]["median_days"], by_stage["quote_sent"]["median_days"]) == (10.0, 10.0)
        assert by_stage["needs_discussed"]["skipped"] == 1
        assert (stages["won"], stages["lost"], stages["mean_cycle_days"]) == (1, 1, 30.0)

        (july_card,) = await a.scorecard(conn, period="2026-07", tz=TZ, now=TODAY)
        assert (july_card["opened"], july_card["won"], july_card["lost"], july_card["mean_cycle_days"]) == (0, 1, 1, 30)
        assert (july_card["won_value"], july_card["stuck_now"]) == ("100000000", 1)
        (june_card,) = await a.scorecard(conn, period="2026-06", tz=TZ, now=TODAY)
        assert (june_card["opened"], june_card["won"]) == (2, 0)
        (march_card,) = await a.scorecard(conn, period="2026-03", tz=TZ, now=TODAY)
        assert (march_card["won"], march_card["mean_cycle_days"]) == (1, 18.0)  # 20 Feb → 10 March
        (lost,) = await a.lost_reasons(conn, **july)
        assert (lost["reason"], lost["count"], lost["stage_at_loss"]) == ("giá cao", 1, "target_identified")

        forecast = await a.forecast(conn, as_of=None, tz=TZ)
        assert {(r["period"], r["won"], r["open_count"]) for r in forecast} == {
            ("2026-03", "40000000", 0),
            ("2026-07", "100000000", 0),
            ("unscheduled", "0", 1),
        }
        # "as recorded on": before the import was recorded the system knew of no deal, whatever they occurred
        assert await a.forecast(conn, as_of=before, tz=TZ) == []
        assert await a.forecast(conn, as_of=datetime.now(UTC), tz=TZ) == forecast


async def test_the_directory_dates_customers_and_their_purchases_by_when_they_happened(
    pg_pool: asyncpg.Pool, pg_schema: str, h: History
) -> None:
    await deals_history(h)
    store = h.store("directory")
    register = RegisterOrganisation(name="Siêu thị Bình An", industry="retail", owner_id="u-lan", team_id="north")
    await Customers(store, h.clock, AnyOwner()).handle_organisation(ORG, register, h.at(day(2, 1)))
    async with projected(pg_pool, pg_schema, customers("directory", store.personal_data, b"s" * 32), h) as conn:
        registered = await conn.fetchval("SELECT registered_at FROM customer_organisations")
        assert registered == day(2, 1)
    async with projected(pg_pool, pg_schema, customer360("directory", "deals", "production"), h) as conn:
        c360 = await customer_360(conn, ORG)
        assert (c360["first_purchase_at"], c360["last_purchase_at"]) == (day(3, 10).isoformat(), day(7, 1).isoformat())
        months = await repeat_revenue(conn, start=local(1), end=local(12), tz=TZ, currency="VND", teams=None)
        assert [(m["period"], m["new_revenue"], m["repeat_revenue"]) for m in months] == [
            ("2026-03", "40000000", "0"),
            ("2026-07", "0", "100000000"),
        ]


# ---------------------------------------------------------------------------------------------- marketing
async def test_marketing_counts_leads_by_capture_month_and_minutes_to_first_contact(
    pg_pool: asyncpg.Pool, pg_schema: str, h: History
) -> None:
    """A campaign spending 2,000,000 on 10 June; a lead from it captured that day at 09:00 Hanoi and called at
    12:00 (180 minutes); a lead captured 5 July nobody called: 88 days waiting on 1 October."""
    store = h.store("leads")
    leads = Leads(store, store.personal_data, h.clock, InMemoryDedupe(), b"d" * 32)
    campaign = uuid.UUID(int=0xCA)
    create = leads_domain.CreateCampaign(
        name="Hè 2026", channel="facebook", code="SUMMER26", budget=Money.of(10_000_000)
    )
    await leads.campaign_command(campaign, create, h.at(day(6, 1)))
    await leads.campaign_command(campaign, leads_domain.ChangeCampaignStatus(status="active"), h.at(day(6, 1)))
    spend = leads_domain.RecordSpend(amount=Money.of(2_000_000), impressions=10_000, clicks=200)
    await leads.campaign_command(campaign, spend, h.at(day(6, 11)), day=date(2026, 6, 10))

    def capture(email: str) -> leads_domain.CaptureLead:
        return leads_domain.CaptureLead.model_validate(
            {
                "source": "facebook_lead_ads",
                "contact": {"name": "Chị Hoa", "email": email},
                "attribution": {"source": "facebook_lead_ads", "campaign_id": "SUMMER26"},
            }
        )

    called = (await leads.capture(capture("hoa@example.vn"), h.at(day(6, 10)))).lead_id
    await leads.handle(called, leads_domain.RecordContact(channel="phone"), h.at(day(6, 10, hour=5)))
    waiting = (await leads.capture(capture("lan@example.vn"), h.at(day(7, 5)))).lead_id

    async with projected(pg_pool, pg_schema, marketing.marketing("leads"), h) as conn:
        funnel = await marketing.funnel(conn, by="month", start=local(6), end=local(8), tz=TZ)
        assert [(r["month"], r["captured"], r["contacted"], r["median_minutes_to_contact"]) for r in funnel] == [
            ("2026-06", 1, 1, 180.0),
            ("2026-07", 1, 0, None),
        ]
        (june,) = await marketing.campaign_performance(conn, start=local(6), end=local(7), tz=TZ)
        assert (june["spend"], june["leads"], june["cpl"], june["clicks"]) == ("2000000", 1, "2000000", 200)
        (july,) = await marketing.campaign_performance(conn, start=local(7), end=local(8), tz=TZ)
        assert (july["spend"], july["leads"]) == ("0", 1)
        inbox = {
            r["lead_id"]: r
            for r in await marketing.inbox(conn, status=None, source=None, unassigned=None, offset=0, limit=10)
        }
        assert inbox[str(called)]["response_minutes"] == 180
        assert inbox[str(waiting)]["captured_at"] == day(7, 5).isoformat()
        (late,) = await marketing.leads_not_contacted(conn, TODAY, 15)
        assert late.entity == f"lead-{waiting}" and "waited 126720 minutes" in late.summary  # 88 days × 1,440
        assert await marketing.leads_not_contacted(conn, day(7, 5) + timedelta(minutes=10), 15) == []


# ---------------------------------------------------------------------------------------------- production
async def test_the_floor_counts_lead_time_stage_visits_lateness_and_age_on_occurred_time(
    pg_pool: asyncpg.Pool, pg_schema: str, h: History
) -> None:
    """Order 1: created 1 June (promised for 20 June), one step a day, delivered 25 June: lead time 24 days, five
    days late. Order 2: created 1 September, promised for 15 September, still new on 1 October: 30 days old, late."""
    production = Production(h.store("production"), h.clock, TZ)
    product, four = "Tủ đông 500L", Decimal(4)
    materials = (Material(component="máy nén", quantity=four),)
    shipment = uuid.UUID(int=0x5)
    lines = (OrderLine(product=product, quantity=four),)
    first, second = uuid.UUID(int=0x01), uuid.UUID(int=0x02)
    d = production_domain
    path: list[d.Command] = [
        d.Plan(planned_start=date(2026, 6, 2), planned_end=date(2026, 6, 18)),
        d.StartDesign(),
        d.ApproveDesign(),
        d.RequestMaterials(materials=materials),
        d.ReceiveMaterials(materials=materials),
        d.StartAssembly(),
        d.RecordOutput(product=product, quantity=four),
        d.CompleteAssembly(),
        d.RecordInspection(passed=True, inspected_quantity=four),
        d.Pack(packages=2),
        d.Ship(shipment_id=shipment, carrier="GHN", quantity=four),
    ]
    create = d.CreateOrder(customer="Siêu thị Bình An", lines=lines, due_date=date(2026, 6, 20))
    await production.handle(first, create, h.at(day(6, 1)))
    for n, command in enumerate(path, 2):
        await production.handle(first, command, h.at(day(6, n)))
    await production.handle(first, d.ConfirmDelivery(shipment_id=shipment), h.at(day(6, 25)))
    late = d.CreateOrder(customer="Quán Mộc", lines=lines, due_date=date(2026, 9, 15))
    await production.handle(second, late, h.at(day(9, 1)))

    async with projected(pg_pool, pg_schema, floor("production"), h) as conn:
        times = await cycle_times(conn, start=local(6), end=local(7))
        assert times["lead_time"] == {"orders": 1, "median_days": 24.0, "p90_days": 24.0}
        # the lead time's distribution: the one order of 24 days in the bin [21, 28), every bin given
        histogram = times["lead_time_histogram"]
        assert [(b["from_days"], b["to_days"]) for b in histogram] == [
            (0, 7),
            (7, 14),
            (14, 21),
            (21, 28),
            (28, 42),
            (42, 56),
            (56, 84),
            (84, None),
        ]
        assert [b["orders"] for b in histogram] == [0, 0, 0, 1, 0, 0, 0, 0]
        # the cumulative flow: June's start and every week after it, then its end; the order in its stage each time
        flow = times["flow"]
        assert [p["at"][:10] for p in flow] == [
            "2026-06-01",
            "2026-06-08",
            "2026-06-15",
            "2026-06-22",
            "2026-06-29",
            "2026-07-01",
        ]
        assert all(sum(p[s] for s in production_domain.STAGES) <= 1 for p in flow), flow
        assert flow[-1]["delivered"] == 1 and flow[2]["delivered"] == 0
        visits = times["stages"]
        assert all(s["median_days"] is not None and s["median_days"] >= 1 for s in visits), visits
        # each visit of the one order lasts whole days, and they add up to its lead time
        assert sum(s["median_days"] * s["visits"] for s in visits) == 24.0
        assert await delivery(conn, start=local(6), end=local(7), tz=TZ) == {
            "completed": 1,
            "on_time": 0,
            "otd": 0.0,
            "otif_orders": 0,
            "otif": 0.0,
            "avg_days_late": 5.0,
        }
        now = await floor_board(conn, now=TODAY, tz=TZ)
        (column,) = now["stages"]
        (open_order,) = column["items"]
        assert (open_order["order_id"], open_order["age_days"], open_order["days_in_stage"]) == (str(second), 30, 30)
        assert (now["open_orders"], now["late"]) == (1, 1)


async def test_demand_counts_a_won_deal_in_the_month_it_was_won(
    pg_pool: asyncpg.Pool, pg_schema: str, h: History
) -> None:
    deals = Deals(h.store("deals"), h.clock, tz=ZONE)
    await deals.ensure_default_pipeline()
    line = {"product": "Tủ đông 500L", "quantity": "3", "unit_price": {"amount": "10000000", "currency": "VND"}}
    opened = deals_domain.OpenDeal.model_validate(
        {"title": "Tủ", "customer": "Quán Mộc", "owner_id": "u-lan", "lines": [line]}
    )
    await deals.handle(A, opened, h.at(day(4, 2)))
    await deals.handle(A, deals_domain.WinDeal(), h.at(day(4, 30, hour=20)))  # 1 May, 03:00 in Hanoi
    async with projected(pg_pool, pg_schema, demand("deals", TZ), h) as conn:
        rows = await pipeline_demand(conn)
        assert [(r["product"], r["period"], r["demand"]) for r in rows] == [("Tủ đông 500L", "2026-05", Decimal(3))]


async def test_the_agenda_keeps_when_activities_were_scheduled_and_done(
    pg_pool: asyncpg.Pool, pg_schema: str, h: History
) -> None:
    done, still_open = await agenda_history(h)
    async with projected(pg_pool, pg_schema, activities("agenda"), h) as conn:
        buckets = await agenda(conn, owner_id="u-lan", team_id=None, now=TODAY, tz=ZONE, days=2, limit=10)
        assert [r["activity_id"] for r in buckets["overdue"]] == [still_open]
        rows = await list_activities(
            conn,
            subject_type="deal",
            subject_id=C,
            owner_id=None,
            team_id=None,
            status=None,
            due_from=None,
            due_to=None,
            scope=(None, None),
            offset=0,
            limit=10,
        )
        assert [(r["activity_id"], r["status"], r["scheduled_at"], r["completed_at"]) for r in rows] == [
            (done, "done", day(9, 1), day(9, 6)),
            (still_open, "scheduled", day(9, 10), None),
        ]


async def test_a_reaction_to_a_back_dated_fact_occurs_when_its_cause_did(
    pg_pool: asyncpg.Pool, pg_schema: str, h: History
) -> None:
    """Deal A won on 1 July (recorded today): the order production opens for it was created on 1 July, so on 1
    October it is 92 days old, not 0, and it is due a lead time after 1 July, not after today."""
    await deals_history(h)
    production = Production(h.store("production"), h.clock, TZ)
    won, data = await h.envelope("deals", f"deal-{A}", 5)  # opened, linked, contacted, quote sent, won
    assert won.type == "pipelines.deals.DealWon"
    await production.react(won, data)
    async with projected(pg_pool, pg_schema, floor("production"), h) as conn:
        now = await floor_board(conn, now=TODAY, tz=TZ)
        (column,) = now["stages"]
        (order,) = column["items"]
        assert (order["deal_id"], order["created_at"], order["age_days"]) == (str(A), day(7, 1).isoformat(), 92)
        assert order["due_date"] == (day(7, 1) + DEFAULT_LEAD_TIME).astimezone(ZONE).date().isoformat()
