"""The deals service's use cases: commands on pipelines, deals and targets, and reactions to other services.

Each command loads its stream, decides with the pure domain and appends with the expected version
(``shared.decider.execute``). Reactions derive the ids of what they create from the triggering event, so
running one twice changes nothing; they append inside the projection runner's transaction.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import structlog

from services.deals import domain
from services.deals.domain import Deal, Pipeline
from services.deals.events import Contact, DealEvent
from services.leads.events import LeadConverted
from services.production.events import (
    MaterialShortageReported,
    OrderDelivered,
    OrderShipped,
    ProductionOrderPutOnHold,
    PromisedDateChanged,
)
from shared.decider import CommandResult, Context, Current, Loaded, current, execute, load
from shared.envelope import CloudEvent
from shared.events import registry
from shared.eventstore import ConcurrencyError, DuplicateEventError, EventStore
from shared.money import Money

log = structlog.get_logger(__name__)
Clock = Callable[[], datetime]

# Ids of what reactions create derive from what caused them (uuid5 in these namespaces).
NS_DEAL_FROM_LEAD = uuid.UUID("6f1f3c8e-2f4e-5b7a-9d0c-1a2b3c4d5e01")
NS_FOLLOW_UP_FROM_SHIPMENT = uuid.UUID("6f1f3c8e-2f4e-5b7a-9d0c-1a2b3c4d5e02")
FOLLOW_UP_AFTER_SHIPMENT = timedelta(days=3)
FOLLOW_UP_AFTER_DELIVERY = timedelta(days=7)
REACTIONS_ACTOR = "system:deals-reactions"


def deal_stream(deal_id: uuid.UUID) -> str:
    return f"deal-{deal_id}"


def pipeline_stream(pipeline_id: str) -> str:
    return f"pipeline-{pipeline_id}"


def target_stream(target_id: uuid.UUID) -> str:
    return f"sales-target-{target_id}"


def deal_id_for_lead(lead_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(NS_DEAL_FROM_LEAD, str(lead_id))


def follow_up_id_for_shipment(shipment_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(NS_FOLLOW_UP_FROM_SHIPMENT, str(shipment_id))


class Deals:
    def __init__(self, store: EventStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def using(self, store: EventStore) -> Deals:
        return Deals(store, self.clock)

    # ------------------------------------------------------------------ pipelines and targets
    async def ensure_default_pipeline(self) -> None:
        """Define seed 001's pipeline once; a process that loses the race finds it defined."""
        definition = domain.DefinePipeline(
            name="Sales pipeline", stages=domain.DEFAULT_STAGES, reason="the default of seed 001"
        )
        with contextlib.suppress(ConcurrencyError):
            await execute(
                self.store,
                pipeline_stream(domain.DEFAULT_PIPELINE_ID),
                domain.pipeline_decider,
                lambda state: domain.define_pipeline(state, domain.DEFAULT_PIPELINE_ID, definition),
                expected_version=0,
                metadata={"actor": "system:setup", "correlation_id": str(uuid.uuid4())},
            )

    async def pipeline(self, pipeline_id: str, **read: Any) -> Pipeline:
        if not read:  # the latest: from the state cache
            return (await current(self.store, pipeline_stream(pipeline_id), domain.pipeline_decider)).state
        return (await load(self.store, pipeline_stream(pipeline_id), domain.pipeline_decider, **read)).state

    async def define_pipeline(
        self, pipeline_id: str, cmd: domain.DefinePipeline, ctx: Context
    ) -> CommandResult[Pipeline]:
        return await execute(
            self.store,
            pipeline_stream(pipeline_id),
            domain.pipeline_decider,
            lambda state: domain.define_pipeline(state, pipeline_id, cmd),
            **self._options(ctx),
        )

    async def set_target(
        self, target_id: uuid.UUID, cmd: domain.SetSalesTarget, ctx: Context
    ) -> CommandResult[domain.SalesTarget]:
        return await execute(
            self.store,
            target_stream(target_id),
            domain.target_decider,
            lambda state: domain.set_target(state, target_id, cmd),
            **self._options(ctx),
        )

    # ------------------------------------------------------------------ deals
    async def deal(self, deal_id: uuid.UUID, **read: Any) -> Loaded[Deal]:
        """The deal folded from all its events (history, audits, as of a time or version)."""
        return await load(self.store, deal_stream(deal_id), domain.deal_decider, **read)

    async def latest(self, deal_id: uuid.UUID, *, read: bool = True) -> Current[Deal]:
        """The deal's latest state, for deciding (state cache, snapshot, then the events after them)."""
        return await current(self.store, deal_stream(deal_id), domain.deal_decider, read=read)

    async def handle(
        self,
        deal_id: uuid.UUID,
        cmd: domain.Command,
        ctx: Context,
        *,
        check: Callable[[Deal, int], None] | None = None,
    ) -> CommandResult[Deal]:
        """Run one command on one deal; raises DealRuleError (and its 404/422 kinds) or ConcurrencyError.
        ``check(deal, version)`` (the caller's rights) runs on the state the command is decided on."""
        now = self.clock()
        if ctx.occurred_at is not None and ctx.occurred_at > now:
            raise domain.InvalidCommandError("occurred_in_future", "a fact cannot be back-dated into the future")
        pipeline = Pipeline()
        if isinstance(cmd, domain.OpenDeal | domain.MoveStage | domain.ReopenDeal):
            # a deal's pipeline never changes: the cached state names it
            pipeline_id = (
                cmd.pipeline_id
                if isinstance(cmd, domain.OpenDeal)
                else (await self.latest(deal_id, read=False)).state.pipeline_id
            )
            pipeline = await self.pipeline(pipeline_id or domain.DEFAULT_PIPELINE_ID)

        def decide(deal: Deal) -> list[DealEvent]:
            if ctx.occurred_at is not None and deal.opened_at is not None and ctx.occurred_at < deal.opened_at:
                raise domain.DealRuleError("before_opening", f"the deal was opened at {deal.opened_at}")
            return domain.decide(deal, cmd, pipeline, ctx.occurred_at or now, deal_id)

        return await execute(
            self.store, deal_stream(deal_id), domain.deal_decider, decide, check=check, **self._options(ctx)
        )

    def _options(self, ctx: Context) -> dict[str, Any]:
        return ctx.options(self.clock())  # business time comes from the clock, not the database

    # ------------------------------------------------------------------ reactions
    async def react(self, envelope: CloudEvent, data: dict[str, Any]) -> None:
        """Apply another service's event (``data``: its opened data) to the deal it concerns."""
        event = registry.parse(envelope.type, envelope.schemaversion, data)
        ctx = Context.reacting_to(envelope, REACTIONS_ACTOR)
        match event:
            case LeadConverted():
                await self._on_deal(deal_id_for_lead(event.lead_id), open_from_lead(event), ctx)
            case OrderShipped() if event.deal_id:
                await self._on_deal(
                    event.deal_id,
                    domain.StartFollowUp(
                        follow_up_id=follow_up_id_for_shipment(event.shipment_id),
                        kind="satisfaction_check",
                        due_on=(event.shipped_at + FOLLOW_UP_AFTER_SHIPMENT).date(),
                        order_id=event.order_id,
                        shipment_id=event.shipment_id,
                    ),
                    ctx,
                )
            case OrderDelivered() if event.deal_id:
                await self._on_deal(
                    event.deal_id,
                    domain.RescheduleFollowUp(
                        follow_up_id=follow_up_id_for_shipment(event.shipment_id),
                        due_on=(event.delivered_at + FOLLOW_UP_AFTER_DELIVERY).date(),
                        reason="delivered: satisfaction check a week after delivery"
                        + ("" if event.on_time else " (delivered late)"),
                    ),
                    ctx,
                )
            case PromisedDateChanged() if event.deal_id:
                await self._on_deal(
                    event.deal_id,
                    domain.FlagDeliveryRisk(
                        order_id=event.order_id,
                        reason=f"promised date moved to {event.new}: {event.reason}",
                        new_eta=event.new,
                    ),
                    ctx,
                )
            case ProductionOrderPutOnHold() if event.deal_id:
                await self._on_deal(
                    event.deal_id,
                    domain.FlagDeliveryRisk(
                        order_id=event.order_id,
                        reason=f"production on hold: {event.reason}",
                    ),
                    ctx,
                )
            case MaterialShortageReported() if event.deal_id:
                await self._on_deal(
                    event.deal_id,
                    domain.FlagDeliveryRisk(
                        order_id=event.order_id,
                        reason=f"material shortage: {event.component}",
                        new_eta=event.expected_date,
                    ),
                    ctx,
                )

    async def _on_deal(self, deal_id: uuid.UUID, cmd: domain.Command, ctx: Context) -> None:
        try:
            await self.handle(deal_id, cmd, ctx)
        except DuplicateEventError:
            pass  # this event caused its change before (a replay or a rebuild of the reactions)
        except domain.DealRuleError as refused:
            log.info("deals.reaction_refused", deal_id=str(deal_id), command=cmd.name, rule=refused.rule)
            # e.g. a shipment for a deal reopened meanwhile: recorded in the logs, not retried forever
            if refused.rule not in (
                "deal_exists",
                "deal_not_won",
                "deal_closed",
                "deal_not_found",
                "unknown_follow_up",
                "follow_up_completed",
            ):
                raise


def open_from_lead(event: LeadConverted) -> domain.OpenDeal:
    """The deal a converted lead opens: its contact stays under the lead's key (the same person)."""
    contact = None
    if event.contact is not None:
        contact = Contact(name=event.contact.name, email=event.contact.email, phone=event.contact.phone)
    return domain.OpenDeal(
        title=event.title,
        customer=event.customer,
        owner_id=event.owner_id,
        team_id=event.team_id,
        contact_id=str(event.lead_id),
        contact=contact,
        value=event.estimated_value or Money.zero(),
        expected_close_date=event.expected_close_date,
        source_lead_id=event.lead_id,
        source=event.attribution.source,
        campaign_id=event.attribution.campaign_id,
    )
