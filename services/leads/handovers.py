"""A deactivated user's open leads go to the user the admin named (``UserDeactivated.handed_to``, decision 0017).

As deals do (services.deals.handovers): the ``handovers`` reaction (services.directory.replica.handovers) keeps
who owns which open lead (new, contacted, nurturing, MQL, SQL) from the leads' own events, and hands over each open
lead of a deactivated user, and a lead assigned to (or recycled for) a user already deactivated. A hand-over is an
``assign`` by ``system:leads-reactions`` with the rule ``handover`` and a reason naming the deactivation; the lead
keeps its team. Its event id derives from the causing event and the lead, and the lead is reloaded first: a
replay, a rebuild or a second delivery changes nothing.
"""

from __future__ import annotations

import dataclasses
import uuid

import structlog

from services.directory.replica import Owned
from services.leads import domain
from services.leads.events import (
    LeadAssigned,
    LeadCaptured,
    LeadConverted,
    LeadDisqualified,
    LeadMergedInto,
    LeadRecycled,
)
from services.leads.handlers import REACTIONS_ACTOR, Leads
from shared.core.events import DomainEvent
from shared.messaging.envelope import CloudEvent
from shared.store import DuplicateEventError
from shared.store.commands import Context

log = structlog.get_logger(__name__)
EVENTS = tuple(
    e.event_type for e in (LeadCaptured, LeadAssigned, LeadConverted, LeadDisqualified, LeadMergedInto, LeadRecycled)
)
RULE = "handover"


def ownership(event: DomainEvent) -> Owned | None:
    """Who owns the lead after this event, and whether it is open."""
    match event:
        case LeadCaptured():
            return Owned(str(event.lead_id), open=True)
        case LeadAssigned():
            return Owned(str(event.lead_id), event.owner_id)
        case LeadConverted() | LeadDisqualified() | LeadMergedInto():
            return Owned(str(event.lead_id), open=False)
        case LeadRecycled():
            return Owned(str(event.lead_id), open=True)
    return None


async def hand_over(leads: Leads, lead: str, from_owner: str, to_owner: str, reason: str, cause: CloudEvent) -> None:
    """Assign the lead to ``to_owner`` if it is still open and still ``from_owner``'s."""
    lead_id = uuid.UUID(lead)
    state = (await leads.lead(lead_id)).state
    if state.status not in domain.ACTIVE or state.owner_id != from_owner:
        return
    ctx = dataclasses.replace(
        Context.reacting_to(cause, REACTIONS_ACTOR), derive_ids_from=f"{cause.id}:{lead}", reason=reason
    )
    try:
        await leads.handle(lead_id, domain.Assign(owner_id=to_owner, team_id=state.team_id, rule=RULE), ctx)
    except DuplicateEventError:
        return  # handed over before (a replay)
    log.info("leads.handed_over", lead_id=lead, from_owner=from_owner, to_owner=to_owner)
