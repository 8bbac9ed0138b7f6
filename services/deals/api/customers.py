"""The customer a deal request names: an organisation of the directory (and its people), checked against the
directory's replica the service keeps (services.directory.replica, decision 0017). Unknown: 422 naming the field;
another team's (for a caller who does not see every team's): 404, as a deal they may not see. An organisation
merged into another is followed: a link names the one it was merged into, a filter takes it and every organisation
merged into it (``family``)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query

from services.deals.api.common import DealsAPI
from services.deals.api.rights import sees_all
from services.directory.replica_customers import OrganisationRef
from shared.core.decider import NotVisibleError
from shared.edge.auth import Principal


def _visible(p: Principal, org: OrganisationRef, asked: uuid.UUID) -> None:
    """Those who see every team's deals see every organisation; the others their team's."""
    if not sees_all(p) and org.team_id != p.team:
        raise NotVisibleError(f"no organisation {asked}")


async def customer_of(
    svc: DealsAPI, p: Principal, organisation_id: uuid.UUID, person_ids: tuple[uuid.UUID, ...]
) -> tuple[uuid.UUID, tuple[uuid.UUID, ...]]:
    """The organisation and people a link records: as named, or as merged since (unchecked without a replica)."""
    refs = svc.references
    if refs is None:
        return organisation_id, person_ids
    org = await refs.organisation(organisation_id)
    _visible(p, org, organisation_id)
    return org.organisation_id, await refs.people_of(org, person_ids)


async def organisation_filter(svc: DealsAPI, p: Principal, organisation_id: uuid.UUID | None) -> list[uuid.UUID] | None:
    """The organisations a query's ``organisation_id`` filter takes (None: no filter): it and those merged into it."""
    if organisation_id is None:
        return None
    refs = svc.references
    if refs is None:
        return [organisation_id]
    org = await refs.organisation(organisation_id, where="query")
    _visible(p, org, organisation_id)
    return await refs.family(org.organisation_id)


OrganisationFilter = Annotated[
    uuid.UUID | None,
    Query(description="only the deals linked to this organisation of the directory, or to one merged into it"),
]
