"""A deactivated user's open deals and leads are handed to the user the admin named (decision 0017), as
reactions: ``system:<svc>-reactions``, a reason naming the deactivation, and nothing more on a second delivery,
a replay under another cause, or a deal or lead no longer open or no longer theirs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from services.deals import domain as deals_domain
from services.deals import handovers as deal_handovers
from services.deals.events import DealLost, DealOpened, DealReassigned, DealReopened
from services.deals.handlers import Deals, deal_stream
from services.directory.replica import Owned
from services.leads import domain as leads_domain
from services.leads import handovers as lead_handovers
from services.leads.handlers import InMemoryDedupe, Leads, lead_stream
from shared.messaging.envelope import CloudEvent
from shared.store.commands import Context
from shared.store.memory import InMemoryEventStore

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
REASON = "u-binh deactivated, handed to u-lan: left the company"


def cause(n: int = 1) -> CloudEvent:
    """The directory's UserDeactivated as the reaction receives it."""
    return CloudEvent(
        id=str(uuid.UUID(int=n)),
        source="/pipelines/directory",
        type="pipelines.directory.UserDeactivated",
        subject="directory-user-u-binh",
        time=NOW,
        data={},
        streamid="directory-user-u-binh",
        streamversion=2,
        position=9,
        schemaversion=1,
        recordedtime=NOW,
        correlationid="c",
        causationid="c",
    )


async def test_open_deals_go_to_the_named_user_once() -> None:
    store = InMemoryEventStore()
    deals = Deals(store, lambda: NOW)
    await deals.ensure_default_pipeline()
    ctx = Context(actor="u-mai")
    opened, closed = uuid.uuid4(), uuid.uuid4()
    for d in (opened, closed):
        await deals.handle(d, deals_domain.OpenDeal(title="t", customer="c", owner_id="u-binh", team_id="north"), ctx)
    await deals.handle(closed, deals_domain.LoseDeal(reason="price"), ctx)

    for d in (opened, closed):
        await deal_handovers.hand_over(deals, str(d), "u-binh", "u-lan", REASON, cause())
    deal = (await deals.deal(opened)).state
    assert (deal.owner_id, deal.team_id) == ("u-lan", "north")  # the deal keeps its team
    last = (await store.read_stream(deal_stream(opened)))[-1]
    assert last.event_type == DealReassigned.event_type
    assert (last.metadata["actor"], last.metadata["reason"], last.data["reason"]) == (
        "system:deals-reactions",
        REASON,
        REASON,
    )
    assert (await deals.deal(closed)).state.owner_id == "u-binh"  # lost: not handed over
    versions = [await store.stream_version(deal_stream(d)) for d in (opened, closed)]
    # a second delivery, and a replay under another cause (a rebuild): the deal is no longer u-binh's
    await deal_handovers.hand_over(deals, str(opened), "u-binh", "u-lan", REASON, cause())
    await deal_handovers.hand_over(deals, str(opened), "u-binh", "u-lan", REASON, cause(2))
    assert [await store.stream_version(deal_stream(d)) for d in (opened, closed)] == versions


def test_what_each_deal_event_says_of_its_owner() -> None:
    d = uuid.uuid4()
    opened = DealOpened.model_construct(deal_id=d, owner_id="u-binh")
    assert deal_handovers.ownership(opened) == Owned(str(d), "u-binh", True)
    moved = DealReassigned.model_construct(deal_id=d, to_owner_id="u-lan")
    assert deal_handovers.ownership(moved) == Owned(str(d), "u-lan", None)
    assert deal_handovers.ownership(DealLost.model_construct(deal_id=d)) == Owned(str(d), None, False)
    assert deal_handovers.ownership(DealReopened.model_construct(deal_id=d)) == Owned(str(d), None, True)


async def test_open_leads_go_to_the_named_user_once_and_closed_ones_stay() -> None:
    store = InMemoryEventStore()
    leads = Leads(store, store.personal_data, lambda: NOW, InMemoryDedupe(), b"d" * 32)
    ctx = Context(actor="u-mkt")
    ids = []
    for phone in ("0912345678", "0987654321"):
        body = {"source": "manual", "contact": {"name": "Trần Bích", "phone": phone}}
        captured = await leads.capture(leads_domain.CaptureLead.model_validate(body), ctx)
        lead_id = uuid.UUID(captured.result.append.stream_id.removeprefix("lead-"))
        await leads.handle(lead_id, leads_domain.Assign(owner_id="u-binh", team_id="north"), ctx)
        ids.append(lead_id)
    await leads.handle(ids[1], leads_domain.Disqualify(reason="spam"), ctx)

    for lead_id in ids:
        await lead_handovers.hand_over(leads, str(lead_id), "u-binh", "u-lan", REASON, cause())
    lead = (await leads.lead(ids[0])).state
    assert (lead.owner_id, lead.team_id) == ("u-lan", "north")
    last = (await store.read_stream(lead_stream(ids[0])))[-1]
    assert (last.data["rule"], last.metadata["actor"], last.metadata["reason"]) == (
        "handover",
        "system:leads-reactions",
        REASON,
    )
    assert (await leads.lead(ids[1])).state.owner_id == "u-binh"  # disqualified: not handed over
    version = await store.stream_version(lead_stream(ids[0]))
    await lead_handovers.hand_over(leads, str(ids[0]), "u-binh", "u-lan", REASON, cause())
    await lead_handovers.hand_over(leads, str(ids[0]), "u-binh", "u-lan", REASON, cause(2))
    assert await store.stream_version(lead_stream(ids[0])) == version
