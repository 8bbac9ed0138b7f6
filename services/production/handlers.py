"""The production service's use cases: commands on orders and demand plans, and the reaction to won deals.

A won deal makes exactly one order: its id is uuid5 of the deal, and the events of a reaction derive their ids
from the event that caused them, so a ``DealWon`` delivered twice or replayed adds nothing. A won deal reopened
cancels its order when nothing has left the factory yet.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from services.deals.events import DealReopened, DealWon
from services.production import domain
from services.production.domain import DemandPlan, Order, PlanCommand, decide_plan, plan_decider
from services.production.events import DeliveryAddress, OrderContactErased, OrderLine
from shared.core.events import registry
from shared.messaging.envelope import CloudEvent
from shared.privacy.pii import KeyStore, keys_of
from shared.store import DuplicateEventError, EventStore
from shared.store.commands import CommandResult, Context, Created, Loaded, Step, execute, execute_new, load

log = structlog.get_logger(__name__)
Clock = Callable[[], datetime]
NS_ORDER_FROM_DEAL = uuid.UUID("5e0c7b1a-7d39-5f0b-9a44-3a3e9c1d0001")
DEFAULT_LEAD_TIME = timedelta(days=30)
REACTIONS_ACTOR = "system:production-reactions"


def order_stream(order_id: uuid.UUID) -> str:
    return f"production-order-{order_id}"


def order_id_for_deal(deal_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(NS_ORDER_FROM_DEAL, str(deal_id))


def plan_stream(product: str, period: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", product.lower()).strip("-") or "product"
    return f"demand-plan-{slug}-{uuid.uuid5(NS_ORDER_FROM_DEAL, product).hex[:8]}-{period}"


# ---------------------------------------------------------------------------------------------- use cases
class Production:
    def __init__(
        self, store: EventStore, clock: Clock, timezone: str = "Asia/Ho_Chi_Minh", keys: KeyStore | None = None
    ) -> None:
        """``keys``: the personal-data key store ``erase_contact`` destroys a key in (default: the store's)."""
        self.store = store
        self.clock = clock
        self.timezone = timezone
        self.tz = ZoneInfo(timezone)
        self.keys = keys if keys is not None else keys_of(store)

    def using(self, store: EventStore) -> Production:
        return Production(store, self.clock, self.timezone, self.keys)

    async def order(self, order_id: uuid.UUID, **read: Any) -> Loaded[Order]:
        return await load(self.store, order_stream(order_id), domain.order_decider, **read)

    async def handle(self, order_id: uuid.UUID, cmd: domain.Command, ctx: Context) -> CommandResult[Order]:
        now = self.clock()
        ctx.check_time(now)  # before a contact's key is destroyed: not in the future, within the caller's limit
        at = ctx.at(now)  # the fact's time (X-Occurred-At, an import, a reaction's cause): "in the past" checks too
        if isinstance(cmd, domain.EraseContact):
            await self._destroy_contact_key(order_id, cmd, at, ctx)
        return await execute(
            self.store,
            order_stream(order_id),
            domain.order_decider,
            lambda state: domain.decide(state, cmd, at, order_id, actor=ctx.actor, tz=self.tz),
            **ctx.options(now),
        )

    async def import_order(
        self,
        order_id: uuid.UUID,
        facts: Sequence[tuple[datetime, domain.Command]],
        metadata: dict[str, Any],
        *,
        dry_run: bool = False,
    ) -> Created[Order] | None:
        """An imported order's history (issue 26): its creation, then its steps, each decided as ``handle`` decides
        it, at its occurred time, all in one append; None: it was imported before (nothing appended)."""
        actor = str(metadata.get("actor", ""))

        def step(at: datetime, cmd: domain.Command) -> Step[Order]:
            return Step(at, lambda state: domain.decide(state, cmd, at, order_id, actor=actor, tz=self.tz))

        steps = [step(at, cmd) for at, cmd in facts]
        return await execute_new(
            self.store, order_stream(order_id), domain.order_decider, steps, metadata=metadata, dry_run=dry_run
        )

    async def _destroy_contact_key(
        self, order_id: uuid.UUID, cmd: domain.EraseContact, now: datetime, ctx: Context
    ) -> None:
        """Before ``OrderContactErased`` is appended: the command is decided (a refusal destroys nothing), then the
        contact's key is destroyed and the erasure recorded in the key store. A crash in between leaves the person
        forgotten and the command to be sent again, never a recorded erasure with the key still there. A retried
        request (its idempotency key) or a stale If-Match is left to ``execute`` to answer."""
        if self.keys is None:
            raise RuntimeError("this production service has no key store: it cannot erase a contact")
        if ctx.idempotency is not None and await self.store.idempotent_result(ctx.idempotency) is not None:
            return  # a retried request: execute answers its first result
        loaded = await self.order(order_id)
        if ctx.expected_version is not None and ctx.expected_version != loaded.version:
            return  # a stale If-Match: execute refuses it
        (erased,) = domain.decide(loaded.state, cmd, now, order_id, actor=ctx.actor, tz=self.tz)
        assert isinstance(erased, OrderContactErased)
        await self.keys.erase(erased.contact_id, reason=cmd.reason)

    async def plan(self, product: str, period: str, cmd: PlanCommand, ctx: Context) -> CommandResult[DemandPlan]:
        return await execute(
            self.store,
            plan_stream(product, period),
            plan_decider,
            lambda state: decide_plan(state, cmd, product, period, ctx.actor),
            **ctx.options(self.clock()),
        )

    async def react(self, envelope: CloudEvent, data: dict[str, Any]) -> None:
        event = registry.parse(envelope.type, envelope.schemaversion, data)
        ctx = Context.reacting_to(envelope, REACTIONS_ACTOR)
        match event:
            case DealWon():
                due = event.requested_delivery_date or (event.won_at + DEFAULT_LEAD_TIME).astimezone(self.tz).date()
                address = (
                    DeliveryAddress.model_validate(event.delivery_address.model_dump())
                    if event.delivery_address
                    else None
                )
                cmd: domain.Command = domain.CreateOrder(
                    customer=event.customer,
                    deal_id=event.deal_id,
                    due_date=due,
                    contact_id=event.contact_id,
                    delivery_address=address if event.contact_id else None,
                    lines=tuple(OrderLine(product=x.product, quantity=x.quantity, unit=x.unit) for x in event.lines),
                )
                order_id = order_id_for_deal(event.deal_id)
            case DealReopened(was="won"):
                cmd, order_id = (
                    # the reopen's reason may be longer than a cancellation's: the order keeps its start
                    domain.Cancel(reason=f"the deal was reopened: {event.reason}"[:500]),
                    order_id_for_deal(event.deal_id),
                )
            case _:
                return
        try:
            await self.handle(order_id, cmd, ctx)
        except DuplicateEventError:
            pass  # this event made its change before (a replay)
        except domain.OrderRuleError as refused:
            log.info("production.reaction_refused", order_id=str(order_id), rule=refused.rule)
