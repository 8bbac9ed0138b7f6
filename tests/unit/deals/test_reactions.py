"""Reactions on the in-memory store: other services' events become deal commands, once each."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from services.deals import domain
from services.deals.events import deal_id_for_lead
from services.deals.handlers import (
    Deals,
    ReactionConflictError,
    follow_up_id_for_order,
)
from services.leads.events import Attribution, LeadContact, LeadConverted
from services.production.events import MaterialShortageReported, OrderDelivered, OrderShipped
from shared.core.money import Money
from shared.messaging.envelope import CloudEvent
from shared.store import NewEvent
from shared.store.commands import Context
from shared.store.memory import InMemoryEventStore

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
LINE = domain.ProductLine(product="Tủ đông", quantity=Decimal(1), unit_price=Money.of(12_000_000))


async def envelope(store: InMemoryEventStore, stream: str, event, correlation: str = "corr-1") -> CloudEvent:
    """The event as another service publishes it: stored (personal data sealed), then enveloped."""
    version = await store.stream_version(stream)
    await store.append(stream, [NewEvent(event, metadata={"correlation_id": correlation})], expected_version=version)
    recorded = (await store.read_stream(stream))[-1]
    return CloudEvent.from_recorded(recorded, stream.split("-")[0])


async def deliver(deals: Deals, other: InMemoryEventStore, e: CloudEvent) -> None:
    (data,) = await other.personal_data.open([e.data])
    await deals.react(e, data)


async def setup() -> tuple[Deals, InMemoryEventStore]:
    store = InMemoryEventStore()
    deals = Deals(store, lambda: NOW)
    await deals.ensure_default_pipeline()
    # the other service shares the key store (one erasure reaches everyone)
    return deals, InMemoryEventStore(store.personal_data)


async def test_a_converted_lead_opens_one_deal_with_its_contact_and_chain() -> None:
    deals, leads = await setup()
    lead = uuid.uuid4()
    converted = LeadConverted(
        lead_id=lead,
        customer="Quán Cà Phê Mộc",
        owner_id="u-lan",
        title="Máy pha",
        contact=LeadContact(name="Võ Minh", email="minh@moc.vn"),
        estimated_value=Money.of(30_000_000),
        attribution=Attribution(source="website_form"),
    )
    e = await envelope(leads, f"lead-{lead}", converted)
    await deliver(deals, leads, e)
    await deliver(deals, leads, e)  # redelivered
    loaded = await deals.deal(deal_id_for_lead(lead))
    assert loaded.version == 1
    assert loaded.state.value == Money.of(30_000_000)
    (opened,) = loaded.events
    assert opened.causation_id == e.id
    assert opened.correlation_id == "corr-1"
    assert isinstance(deals.store, InMemoryEventStore)
    (data,) = await deals.store.personal_data.open([opened.data])
    assert data["contact"]["email"] == "minh@moc.vn"
    assert opened.data["contact"] != data["contact"], "stored sealed"


async def test_shipments_start_follow_ups_and_delivery_moves_them() -> None:
    deals, production = await setup()
    deal_id = uuid.uuid4()
    ctx = Context(actor="u-lan")
    await deals.handle(deal_id, domain.OpenDeal(title="t", customer="c", owner_id="u-lan", lines=(LINE,)), ctx)
    await deals.handle(deal_id, domain.WinDeal(), ctx)
    order, shipment = uuid.uuid4(), uuid.uuid4()
    shipped = await envelope(
        production,
        f"order-{order}",
        OrderShipped(
            order_id=order,
            deal_id=deal_id,
            shipment_id=shipment,
            carrier="GHTK",
            quantity=Decimal(1),
            shipped_at=datetime(2026, 11, 20, 3, 0, tzinfo=UTC),
        ),
    )
    delivered = await envelope(
        production,
        f"order-{order}",
        OrderDelivered(
            order_id=order,
            deal_id=deal_id,
            shipment_id=shipment,
            quantity=Decimal(1),
            delivered_at=datetime(2026, 11, 23, 3, 0, tzinfo=UTC),
            on_time=False,
        ),
    )
    short = await envelope(
        production,
        f"order-{order}",
        MaterialShortageReported(order_id=order, deal_id=deal_id, component="máy nén", quantity_short=Decimal(1)),
    )
    for e in (shipped, delivered, short, shipped, delivered, short):  # each twice
        await deliver(deals, production, e)
    loaded = await deals.deal(deal_id)
    (follow_up,) = loaded.state.follow_ups.values()
    assert follow_up.follow_up_id == follow_up_id_for_order(order)
    assert follow_up.due_on == date(2026, 11, 30)
    assert loaded.state.delivery_risk == "material shortage: máy nén"
    kinds = [e.event_type.rsplit(".", 1)[1] for e in loaded.events]
    assert kinds == ["DealOpened", "DealWon", "FollowUpStarted", "FollowUpDueChanged", "DeliveryRiskFlagged"]


async def test_an_order_shipped_in_two_parts_opens_one_satisfaction_check() -> None:
    """Issue 23, item 4: one satisfaction check per order, not per shipment; it falls a week after the last
    delivery, and every event delivered twice changes nothing more."""
    deals, production = await setup()
    deal_id = uuid.uuid4()
    ctx = Context(actor="u-lan")
    await deals.handle(deal_id, domain.OpenDeal(title="t", customer="c", owner_id="u-lan", lines=(LINE,)), ctx)
    await deals.handle(deal_id, domain.WinDeal(), ctx)
    order, parts = uuid.uuid4(), (uuid.uuid4(), uuid.uuid4())
    stream, events = f"order-{order}", []
    for n, shipment in enumerate(parts):
        shipped = OrderShipped(
            order_id=order,
            deal_id=deal_id,
            shipment_id=shipment,
            carrier="GHTK",
            quantity=Decimal(1),
            shipped_at=datetime(2026, 11, 10 + n, 3, 0, tzinfo=UTC),
        )
        events.append(await envelope(production, stream, shipped))
    for n, shipment in enumerate(parts):
        delivered = OrderDelivered(
            order_id=order,
            deal_id=deal_id,
            shipment_id=shipment,
            quantity=Decimal(1),
            delivered_at=datetime(2026, 11, 14 + 3 * n, 3, 0, tzinfo=UTC),
            on_time=True,
        )
        events.append(await envelope(production, stream, delivered))
    for e in events + events:  # each twice
        await deliver(deals, production, e)
    loaded = await deals.deal(deal_id)
    (follow_up,) = loaded.state.follow_ups.values()
    assert follow_up.follow_up_id == follow_up_id_for_order(order)
    assert (follow_up.kind, follow_up.order_id) == ("satisfaction_check", order)
    assert follow_up.due_on == date(2026, 11, 24), "a week after the second part arrived"
    kinds = [e.event_type.rsplit(".", 1)[1] for e in loaded.events]
    assert kinds == ["DealOpened", "DealWon", "FollowUpStarted", "FollowUpDueChanged", "FollowUpDueChanged"]


async def test_production_events_for_an_unknown_or_open_deal_change_nothing() -> None:
    deals, production = await setup()
    order = uuid.uuid4()
    e = await envelope(
        production,
        f"order-{order}",
        OrderShipped(
            order_id=order,
            deal_id=uuid.uuid4(),
            shipment_id=uuid.uuid4(),
            carrier="x",
            quantity=Decimal(1),
            shipped_at=NOW,
        ),
    )
    await deliver(deals, production, e)  # no such deal: recorded in the logs, not retried forever
    assert all(e.stream_id.startswith("pipeline-") for e in await deals.store.read_all())


async def test_a_conversion_meeting_a_deal_it_did_not_open_is_an_error_the_operator_sees() -> None:
    """Issue 20, item 1: someone opened a deal under the id a lead's conversion derives. The reaction must not take
    it as its own (the deal would stay the other's, in their team, with their title and value): it raises, and the
    projection runner dead-letters the event with that reason; a conversion done before is still nothing."""
    deals, leads = await setup()
    lead, taken = uuid.uuid4(), uuid.uuid4()

    def converted(lead_id: uuid.UUID) -> LeadConverted:
        return LeadConverted(
            lead_id=lead_id,
            customer="Quán Cà Phê Mộc",
            contact=None,
            owner_id="u-lan",
            team_id="north",
            title="Máy pha",
            estimated_value=Money.of(30_000_000),
            attribution=Attribution(source="website_form"),
        )

    hijack = domain.OpenDeal(title="mine", customer="Quán Cà Phê Mộc", owner_id="u-eve", team_id="west")
    await deals.handle(deal_id_for_lead(taken), hijack, Context(actor="u-eve"))
    e = await envelope(leads, f"lead-{taken}", converted(taken))
    with pytest.raises(ReactionConflictError, match="was not opened by a conversion"):
        await deliver(deals, leads, e)
    assert (await deals.deal(deal_id_for_lead(taken))).version == 1, "the other's deal is left as it is"

    e = await envelope(leads, f"lead-{lead}", converted(lead))
    await deliver(deals, leads, e)
    again = await envelope(leads, f"lead-{lead}", converted(lead))  # converted again (after a recycle)
    for each in (e, again):
        await deliver(deals, leads, each)  # a conversion of this lead opened it: nothing to do, no error
    assert (await deals.deal(deal_id_for_lead(lead))).version == 1
