"""A deal's customer in the directory (decision 0017): the link a command records (``link_customer``, in the rule
table) and the one a lead's conversion brings by reaction (``link_conversion``, whatever the deal's status, even
before the deal opened). That the organisation and people exist, and are the caller's to see, is the edge's
check against the directory's replica: the domain takes ids as they come."""

from __future__ import annotations

import uuid

from services.deals.domain.commands import LinkCustomer, OpenDeal
from services.deals.domain.deal import Deal
from services.deals.domain.errors import InvalidCommandError
from services.deals.events import DealCustomerLinked, DealEvent


def link_customer(deal: Deal, command: LinkCustomer, d: uuid.UUID) -> list[DealEvent]:
    """The deal's organisation and people; the same link again changes nothing (a retried reaction, a resent
    command). That they exist and are the caller's to see is the edge's check, against the directory's replica."""
    if len(set(command.person_ids)) != len(command.person_ids):
        raise InvalidCommandError("duplicate_person", "each person is named once")
    if (command.organisation_id, command.person_ids) == (deal.organisation_id, deal.person_ids):
        return []
    return [
        DealCustomerLinked(
            deal_id=d, organisation_id=command.organisation_id, person_ids=command.person_ids, reason=command.reason
        )
    ]


def link_conversion(
    deal: Deal,
    organisation_id: uuid.UUID,
    person_ids: tuple[uuid.UUID, ...],
    lead_id: uuid.UUID | None,
    matched_by: str | None,
    d: uuid.UUID,
    reason: str | None = None,
) -> list[DealEvent]:
    """The directory linked a converted lead's customer (a reaction, in no rule table): recorded on the lead's
    deal whatever its status, even before the deal opened (the directory's event may come first: the opening
    restates it); the same link again changes nothing."""
    if (organisation_id, person_ids) == (deal.organisation_id, deal.person_ids):
        return []
    return [
        DealCustomerLinked(
            deal_id=d,
            organisation_id=organisation_id,
            person_ids=person_ids,
            reason=reason or "the lead's conversion linked its customer",  # an adoption's: the admin's reason
            lead_id=lead_id,
            matched_by=matched_by,
        )
    ]


def opening_link(deal: Deal, command: OpenDeal, d: uuid.UUID) -> list[DealEvent]:
    """The link an opening records after itself: the command's organisation, or the one a conversion's link
    recorded before the deal opened (``link_conversion``), restated for the read models, which know a deal from
    its opening on."""
    if command.organisation_id is not None:
        org, people, reason = command.organisation_id, command.person_ids, "opened for this customer"
    elif deal.organisation_id is not None:
        org, people, reason = deal.organisation_id, deal.person_ids, "the conversion's link, before the deal opened"
    else:
        return []
    return [DealCustomerLinked(deal_id=d, organisation_id=org, person_ids=people, reason=reason)]
