"""The deals service's use cases: commands on pipelines, deals and targets, and reactions to other services.

Each command loads its stream, decides with the pure domain and appends with the expected version
(``shared.store.commands.execute``). Reactions derive the ids of what they create from the triggering event, so
running one twice changes nothing; they append inside the projection runner's transaction.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import structlog

from services.deals import domain
from services.deals.domain import Deal, Pipeline
from services.deals.events import Contact, DealContactErased, DealEvent, deal_id_for_lead
from services.directory.events import CustomerLinked
from services.leads.events import LeadConverted
from services.production.events import (
    MaterialShortageReported,
    OrderDelivered,
    OrderShipped,
    ProductionOrderPutOnHold,
    PromisedDateChanged,
)
from shared.core.events import registry
from shared.core.money import Money
from shared.messaging.envelope import CloudEvent
from shared.privacy.pii import KeyStore, keys_of
from shared.store import ConcurrencyError, DuplicateEventError, EventStore
from shared.store.commands import (
    CommandResult,
    Context,
    Created,
    Current,
    Loaded,
    Step,
    current,
    execute,
    execute_new,
    load,
)

log = structlog.get_logger(__name__)
Clock = Callable[[], datetime]

# Ids of what reactions create derive from what caused them (uuid5 in these namespaces; a client may not choose
# such an id: shared.core.ids). A converted lead's deal: NS_DEAL_FROM_LEAD, deal_id_for_lead (the event contract's).
# An order's satisfaction check: NS_FOLLOW_UP_FROM_ORDER, one per order however many parts it ships in (until
# issue 23 it was one per shipment, in NS 6f1f3c8e-2f4e-5b7a-9d0c-1a2b3c4d5e02: ``_order_follow_up`` finds those).
NS_FOLLOW_UP_FROM_ORDER = uuid.UUID("6f1f3c8e-2f4e-5b7a-9d0c-1a2b3c4d5e04")
FOLLOW_UP_AFTER_SHIPMENT = timedelta(days=3)
FOLLOW_UP_AFTER_DELIVERY = timedelta(days=7)
REACTIONS_ACTOR = "system:deals-reactions"


def deal_stream(deal_id: uuid.UUID) -> str:
    return f"deal-{deal_id}"


def pipeline_stream(pipeline_id: str) -> str:
    return f"pipeline-{pipeline_id}"


def target_stream(target_id: uuid.UUID) -> str:
    return f"sales-target-{target_id}"


def follow_up_id_for_order(order_id: uuid.UUID) -> uuid.UUID:
    """The satisfaction check a shipped order opens on its deal: one per order (DOMAIN.md §1.3 S15, after-sales
    follow-up "to ensure satisfaction"), not one per shipment of an order shipped in parts."""
    return uuid.uuid5(NS_FOLLOW_UP_FROM_ORDER, str(order_id))


class Deals:
    def __init__(self, store: EventStore, clock: Clock, keys: KeyStore | None = None, *, tz: tzinfo = UTC) -> None:
        """``keys``: the personal-data key store ``erase_contact`` destroys a key in (default: the store's); ``tz``:
        the business time zone dates are judged in."""
        self.store = store
        self.clock = clock
        self.keys = keys if keys is not None else keys_of(store)
        self.tz = tz

    def using(self, store: EventStore) -> Deals:
        return Deals(store, self.clock, self.keys, tz=self.tz)

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
        ctx.check_time(now)  # before a contact's key is destroyed: not in the future, within the caller's limit
        if isinstance(cmd, domain.EraseContact):
            await self._destroy_contact_key(deal_id, cmd, ctx, now, check)
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
            at = ctx.at(now)
            if ctx.backdated and deal.opened_at is not None and at < deal.opened_at:
                raise domain.DealRuleError("before_opening", f"the deal was opened at {deal.opened_at}")
            return domain.decide(deal, cmd, pipeline, at, deal_id, tz=self.tz)

        return await execute(
            self.store, deal_stream(deal_id), domain.deal_decider, decide, check=check, **self._options(ctx)
        )

    async def import_deal(
        self,
        deal_id: uuid.UUID,
        facts: Sequence[tuple[datetime, domain.Command]],
        metadata: dict[str, Any],
        *,
        dry_run: bool = False,
        resolve: Callable[[list[domain.Command]], Awaitable[list[domain.Command]]] | None = None,
    ) -> Created[Deal] | None:
        """An imported deal's history (issue 26): its opening, then commands on it, each decided as ``handle``
        decides it, at its occurred time, all in one append; None: it was imported before (nothing appended).
        ``resolve(commands)`` runs once the deal is known to be new: it checks what the commands name and gives
        them back as decided (an organisation merged since: the one it reads as)."""
        commands = [command for _, command in facts]
        pipelines: dict[str, Pipeline] = {}

        async def checks() -> None:
            if resolve is not None:
                commands[:] = await resolve(commands)
            opening = commands[0]
            pipeline_id = (opening.pipeline_id if isinstance(opening, domain.OpenDeal) else None) or (
                domain.DEFAULT_PIPELINE_ID
            )
            # this process's cached pipeline, unchecked (a row is one of many: not a read each), else read
            there = await current(self.store, pipeline_stream(pipeline_id), domain.pipeline_decider, read=False)
            pipelines["deal"] = there.state

        def step(i: int, at: datetime) -> Step[Deal]:
            return Step(at, lambda deal: domain.decide(deal, commands[i], pipelines["deal"], at, deal_id, tz=self.tz))

        return await execute_new(
            self.store,
            deal_stream(deal_id),
            domain.deal_decider,
            [step(i, at) for i, (at, _) in enumerate(facts)],
            metadata=metadata,
            dry_run=dry_run,
            checks=checks,
        )

    async def _destroy_contact_key(
        self,
        deal_id: uuid.UUID,
        cmd: domain.EraseContact,
        ctx: Context,
        now: datetime,
        check: Callable[[Deal, int], None] | None,
    ) -> None:
        """Before ``DealContactErased`` is appended: the command is decided (a refusal destroys nothing), then the
        contact's key is destroyed and the erasure recorded in the key store. A crash in between leaves the person
        forgotten and the command to be sent again, never a recorded erasure with the key still there. A retried
        request (its idempotency key) or a stale If-Match is left to ``execute`` to answer."""
        if self.keys is None:
            raise RuntimeError("these deals have no key store: they cannot erase a contact")
        if ctx.idempotency is not None and await self.store.idempotent_result(ctx.idempotency) is not None:
            return
        latest = await self.latest(deal_id)
        if check is not None:
            check(latest.state, latest.version)
        if ctx.expected_version is not None and ctx.expected_version != latest.version:
            return
        (erased,) = domain.decide(latest.state, cmd, Pipeline(), now, deal_id)
        assert isinstance(erased, DealContactErased)
        await self.keys.erase(erased.contact_id, reason=cmd.reason)

    def _options(self, ctx: Context) -> dict[str, Any]:
        return ctx.options(self.clock())  # business time comes from the clock, not the database

    # ------------------------------------------------------------------ reactions
    async def react(self, envelope: CloudEvent, data: dict[str, Any]) -> None:
        """Apply another service's event (``data``: its opened data) to the deal it concerns."""
        event = registry.parse(envelope.type, envelope.schemaversion, data)
        ctx = Context.reacting_to(envelope, REACTIONS_ACTOR)
        match event:
            case LeadConverted():
                await self._open_from_lead(event, ctx)
            case CustomerLinked():
                await self._link_from_conversion(event, ctx)
            case OrderShipped() if event.deal_id:  # the first part shipped starts it, the next find it started
                await self._on_deal(
                    event.deal_id,
                    domain.StartFollowUp(
                        follow_up_id=await self._order_follow_up(event.deal_id, event.order_id),
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
                    domain.RescheduleFollowUp(  # a week after the last part arrived
                        follow_up_id=await self._order_follow_up(event.deal_id, event.order_id),
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

    async def _order_follow_up(self, deal_id: uuid.UUID, order_id: uuid.UUID) -> uuid.UUID:
        """The id of the order's satisfaction check: the one the deal has for this order (started before issue 23
        under a shipment's id), else the one derived from the order."""
        deal = (await self.latest(deal_id)).state
        for f in deal.follow_ups.values():
            if f.order_id == order_id and f.kind == "satisfaction_check":
                return f.follow_up_id
        return follow_up_id_for_order(order_id)

    async def _open_from_lead(self, event: LeadConverted, ctx: Context) -> None:
        """Open the deal of a converted lead under the id derived from the lead. A deal already there that a
        conversion of this lead opened is this reaction done before (a replay, a rebuild, a lead converted again):
        nothing to do. Any other deal there was not opened by the conversion and the reaction cannot resolve it:
        ``ReactionConflictError``, logged as an error and dead-lettered with its reason (docs/OPERATIONS.md)."""
        deal_id = deal_id_for_lead(event.lead_id)
        try:
            await self.handle(deal_id, open_from_lead(event), ctx)
        except DuplicateEventError:
            return  # this event opened it before
        except domain.DealRuleError as refused:
            if refused.rule != "deal_exists":
                raise
            there = await self.deal(deal_id)  # its opening: after a conversion's link that came first, if any
            opened = next(e for e in there.events if e.event_type == "pipelines.deals.DealOpened")
            if opened.metadata.get("actor") == REACTIONS_ACTOR and opened.data.get("source_lead_id") == str(
                event.lead_id
            ):
                log.info("deals.reaction_refused", deal_id=str(deal_id), command="open_deal", rule=refused.rule)
                return
            log.error(
                "deals.reaction_conflict",
                deal_id=str(deal_id),
                lead_id=str(event.lead_id),
                opened_by=str(opened.metadata.get("actor")),
                opened_event=str(opened.event_id),
            )
            raise ReactionConflictError(
                f"the deal {deal_id} the conversion of lead {event.lead_id} opens exists and was not opened by a "
                f"conversion of that lead (event {opened.event_id} by {opened.metadata.get('actor')})"
            ) from None

    async def _link_from_conversion(self, event: CustomerLinked, ctx: Context) -> None:
        """The directory linked a converted lead's customer: recorded on the lead's deal, opened or not yet (the
        two services' topics come in no set order: the opening restates a link that came first). Once per link:
        the event ids derive from the directory's event, the same link again changes nothing."""
        people = (event.person_id,) if event.person_id is not None else ()

        def decide(deal: Deal) -> list[DealEvent]:
            return domain.link_conversion(
                deal, event.organisation_id, people, event.lead_id, event.matched_by, event.deal_id, event.reason
            )

        with contextlib.suppress(DuplicateEventError):  # this event linked it before (a replay, a rebuild)
            await execute(self.store, deal_stream(event.deal_id), domain.deal_decider, decide, **self._options(ctx))

    async def _on_deal(self, deal_id: uuid.UUID, cmd: domain.Command, ctx: Context) -> None:
        try:
            await self.handle(deal_id, cmd, ctx)
        except DuplicateEventError:
            pass  # this event caused its change before (a replay or a rebuild of the reactions)
        except domain.DealRuleError as refused:
            log.info("deals.reaction_refused", deal_id=str(deal_id), command=cmd.name, rule=refused.rule)
            # e.g. a shipment for a deal reopened meanwhile: recorded in the logs, not retried forever
            if refused.rule not in (
                "deal_not_won",
                "deal_closed",
                "deal_not_found",
                "unknown_follow_up",
                "follow_up_completed",
            ):
                raise


class ReactionConflictError(Exception):
    """A reaction met something it cannot resolve (e.g. the id it derives taken by something it did not make): the
    projection runner dead-letters the event with this reason, and the reaction logs it as an error."""


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
