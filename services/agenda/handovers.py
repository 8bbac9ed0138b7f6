"""A deactivated user's open activities go to the user the admin named (``UserDeactivated.handed_to``, decisions
0017 and 0020), as their deals and leads do (services.deals.handovers, services.leads.handovers).

The ``handovers`` reaction (services.directory.replica.handovers) keeps who owns which open activity from the
agenda's own events and calls ``hand_over`` for each open activity of a deactivated user, and for an activity
scheduled for (or reassigned to) a user already deactivated. A hand-over is a ``reassign`` by
``system:agenda-reactions`` whose reason names the deactivation; the activity keeps its team (the directory's
event does not say the new owner's, and a replay must decide the same). Its event id derives from the causing
event and the activity, and the activity is reloaded first: a replay, a rebuild or a second delivery changes
nothing.
"""

from __future__ import annotations

import dataclasses
import uuid

import structlog

from services.agenda import domain
from services.agenda.events import (
    ActivityCancelled,
    ActivityCompleted,
    ActivityReassigned,
    ActivityScheduled,
)
from services.agenda.handlers import REACTIONS_ACTOR, Agenda
from services.directory.replica import Owned
from shared.core.events import DomainEvent
from shared.messaging.envelope import CloudEvent
from shared.store import DuplicateEventError
from shared.store.commands import Context

log = structlog.get_logger(__name__)
EVENTS = tuple(e.event_type for e in (ActivityScheduled, ActivityReassigned, ActivityCompleted, ActivityCancelled))


def ownership(event: DomainEvent) -> Owned | None:
    """Who owns the activity after this event, and whether it is open."""
    match event:
        case ActivityScheduled():
            return Owned(str(event.activity_id), event.owner_id, True)
        case ActivityReassigned():
            return Owned(str(event.activity_id), event.owner_id)
        case ActivityCompleted() | ActivityCancelled():
            return Owned(str(event.activity_id), open=False)
    return None


async def hand_over(
    agenda: Agenda, activity: str, from_owner: str, to_owner: str, reason: str, cause: CloudEvent
) -> None:
    """Reassign the activity from ``from_owner`` to ``to_owner`` if it is still open and still theirs."""
    activity_id = uuid.UUID(activity)
    state = (await agenda.activity(activity_id)).state
    if not state.open or state.owner_id != from_owner:
        return
    ctx = dataclasses.replace(
        Context.reacting_to(cause, REACTIONS_ACTOR), derive_ids_from=f"{cause.id}:{activity}", reason=reason
    )
    cmd = domain.Reassign(owner_id=to_owner, team_id=state.team_id, reason=reason[:500])
    place = domain.Placement(owner_id=to_owner, team_id=state.team_id, data_subject=state.data_subject)
    try:
        await agenda.handle(activity_id, cmd, ctx, place=place)
    except DuplicateEventError:
        return  # handed over before (a replay)
    log.info("agenda.handed_over", activity_id=activity, from_owner=from_owner, to_owner=to_owner)
