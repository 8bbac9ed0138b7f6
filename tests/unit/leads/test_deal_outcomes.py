"""Deal outcomes recorded back on the lead (issue 20, item 2): only the deal the lead's conversion opened counts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from services.deals.events import DealWon, ProductLine, StageKind, StageSnapshot, deal_id_for_lead
from services.leads import domain
from services.leads.events import LeadContact
from services.leads.handlers import InMemoryDedupe, Leads
from shared.core.money import Money
from shared.messaging.envelope import CloudEvent
from shared.store import NewEvent
from shared.store.commands import Context
from shared.store.memory import InMemoryEventStore

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
STAGE = StageSnapshot(
    stage_id="negotiation", name="Negotiation", order=50, probability=Decimal("0.8"), kind=StageKind.OPEN
)


def won(deal: uuid.UUID, lead: uuid.UUID, amount: int) -> DealWon:
    return DealWon(
        deal_id=deal,
        value=Money.of(amount),
        customer="Quán Yến",
        owner_id="u-eve",
        team_id="west",
        quote_id=None,
        stage_at_win=STAGE,
        opened_at=NOW,
        won_at=NOW,
        lines=(ProductLine(product="Tủ mát", quantity=Decimal(1), unit_price=Money.of(amount)),),
        source_lead_id=lead,
    )


async def deliver(leads: Leads, deals: InMemoryEventStore, event: DealWon) -> None:
    stream = f"deal-{event.deal_id}"
    await deals.append(stream, [NewEvent(event)], expected_version=await deals.stream_version(stream))
    envelope = CloudEvent.from_recorded((await deals.read_stream(stream))[-1], "deals")
    (data,) = await deals.personal_data.open([envelope.data])
    await leads.react(envelope, data)


async def test_only_the_deal_the_conversion_opened_attributes_revenue_to_the_lead() -> None:
    store = InMemoryEventStore()
    deals = InMemoryEventStore(store.personal_data)
    leads = Leads(store, store.personal_data, lambda: NOW, InMemoryDedupe(), b"d" * 32)
    ctx = Context(actor="u-mkt")
    lead = (
        await leads.capture(domain.CaptureLead(source="manual", contact=LeadContact(phone="0905123456")), ctx)
    ).lead_id
    await leads.handle(lead, domain.Assign(owner_id="u-lan", team_id="north"), ctx)
    await leads.handle(lead, domain.Qualify(level="sql"), ctx)
    await leads.handle(lead, domain.Convert(customer="Quán Yến", title="Tủ mát"), ctx)

    # a deal someone opened naming the lead as its source, won for 9,000,000,000 VND: not the lead's
    await deliver(leads, deals, won(uuid.uuid4(), lead, 9_000_000_000))
    assert (await leads.lead(lead)).state.outcome is None
    assert [e.event_type for e in (await leads.lead(lead)).events][-1] == "pipelines.leads.LeadConverted"

    await deliver(leads, deals, won(deal_id_for_lead(lead), lead, 30_000_000))  # the conversion's deal
    loaded = await leads.lead(lead)
    assert loaded.state.outcome == "won"
    assert loaded.events[-1].event_type == "pipelines.leads.LeadBecameCustomer"
    assert loaded.events[-1].data["value"]["amount"] == "30000000"
