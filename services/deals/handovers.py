"""A deactivated user's open deals go to the user the admin named (``UserDeactivated.handed_to``, decision 0017).

The ``handovers`` reaction (services.directory.replica.handovers) keeps who owns which open deal from the deals'
own events and calls ``hand_over`` for each open deal of a deactivated user, and for a deal opened (or reopened,
or reassigned) for a user already deactivated: a deal whose opening raced with the deactivation. Each hand-over is
a ``reassign`` by ``system:deals-reactions`` whose reason names the deactivation; the deal keeps its team (the
directory's event does not say the new owner's, and the reaction must decide the same on a replay). Its event id
derives from the causing event and the deal, and the deal is reloaded first: a replay, a rebuild or a second
delivery changes nothing.
"""

from __future__ import annotations

import dataclasses
import uuid

import structlog

from services.deals import domain
from services.deals.events import DealLost, DealOpened, DealReassigned, DealReopened, DealWon
from services.deals.handlers import REACTIONS_ACTOR, Deals
from services.directory.replica import Owned
from shared.core.events import DomainEvent
from shared.messaging.envelope import CloudEvent
from shared.store import DuplicateEventError
from shared.store.commands import Context

log = structlog.get_logger(__name__)
EVENTS = tuple(e.event_type for e in (DealOpened, DealReassigned, DealWon, DealLost, DealReopened))


def ownership(event: DomainEvent) -> Owned | None:
    """Who owns the deal after this event, and whether it is open."""
    match event:
        case DealOpened():
            return Owned(str(event.deal_id), event.owner_id, True)
        case DealReassigned():
            return Owned(str(event.deal_id), event.to_owner_id)
        case DealWon() | DealLost():
            return Owned(str(event.deal_id), open=False)
        case DealReopened():
            return Owned(str(event.deal_id), open=True)
    return None


async def hand_over(deals: Deals, deal: str, from_owner: str, to_owner: str, reason: str, cause: CloudEvent) -> None:
    """Reassign the deal from ``from_owner`` to ``to_owner`` if it is still open and still theirs."""
    deal_id = uuid.UUID(deal)
    state = (await deals.latest(deal_id)).state
    if state.status != domain.Status.OPEN or state.owner_id != from_owner:
        return
    ctx = dataclasses.replace(
        Context.reacting_to(cause, REACTIONS_ACTOR), derive_ids_from=f"{cause.id}:{deal}", reason=reason
    )
    try:
        await deals.handle(deal_id, domain.Reassign(owner_id=to_owner, team_id=state.team_id, reason=reason), ctx)
    except DuplicateEventError:
        return  # handed over before (a replay)
    log.info("deals.handed_over", deal_id=deal, from_owner=from_owner, to_owner=to_owner)
