"""Organisations and people as the API answers them: JSON, a person's sealed details opened for the answer only
(null once erased)."""

from __future__ import annotations

from typing import Any

from services.directory.domain.organisation import Organisation
from services.directory.domain.person import Person
from services.directory.domain.provinces import PROVINCES
from services.directory.events import Address
from shared.privacy.pii import PersonalData
from shared.store import RecordedEvent

DETAILS_EVENTS = ("pipelines.directory.PersonRegistered", "pipelines.directory.PersonChanged")
SEALED = ("name", "title", "phones", "emails", "zalo_id")


def address_view(a: Address) -> dict[str, Any]:
    return a.model_dump() | {"province_name": PROVINCES.get(a.province)}


def organisation_view(o: Organisation, version: int) -> dict[str, Any]:
    return {
        "organisation_id": str(o.organisation_id),
        "name": o.name,
        "tax_code": o.tax_code,
        "addresses": [address_view(a) for a in o.addresses],
        "industry": o.industry,
        "owner_id": o.owner_id,
        "team_id": o.team_id,
        "merged_into": str(o.merged_into) if o.merged_into else None,
        "merged_from": [str(m) for m in o.merged_from],
        "version": version,
    }


async def person_view(
    p: Person, events: list[RecordedEvent], version: int, personal_data: PersonalData
) -> dict[str, Any]:
    """A person from their stream: the details of the last event that gave them, opened now."""
    last = next((e for e in reversed(events) if e.event_type in DETAILS_EVENTS), None)
    data = last.data if last else {}
    (opened,) = await personal_data.open([{k: data.get(k) for k in SEALED}])
    return {
        "person_id": str(p.person_id),
        "organisation_id": str(p.organisation_id) if p.organisation_id else None,
        **{k: list(opened[k]) if k in ("phones", "emails") and opened[k] is not None else opened[k] for k in SEALED},
        "consent": data.get("consent"),
        "owner_id": p.owner_id,
        "team_id": p.team_id,
        "erased": p.erased,
        "merged_into": str(p.merged_into) if p.merged_into else None,
        "merged_from": [str(m) for m in p.merged_from],
        "version": version,
    }
