"""An organisation a team sells to: its name, tax code, addresses and industry (all in clear: no personal data),
the user who owns it and their team. Pure: the handler checks what the command names (the owner and team, the
organisation merged into, whether the tax code is held by another) and passes nothing the domain would read.

Rules: an organisation is registered once (409 ``organisation_exists``); a change to what already is is refused
(409 ``unchanged``); an organisation merged into another takes no command (409 ``merged``, naming the one it
reads as); it cannot merge into itself (422 naming ``into``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from services.directory.domain import customer_commands as c
from services.directory.domain.errors import DirectoryRuleError, InvalidReferenceError, NotFoundError
from services.directory.events import (
    Address,
    OrganisationAbsorbed,
    OrganisationChanged,
    OrganisationEvent,
    OrganisationMerged,
    OrganisationReassigned,
    OrganisationRegistered,
)
from shared.core.decider import Decider, replace
from shared.core.events import DomainEvent


@dataclass(frozen=True)
class Organisation:
    organisation_id: uuid.UUID | None = None  # None: not registered
    name: str = ""
    tax_code: str | None = None
    addresses: tuple[Address, ...] = ()
    industry: str | None = None
    owner_id: str = ""
    team_id: str = ""
    merged_into: uuid.UUID | None = None
    merged_from: tuple[uuid.UUID, ...] = ()


def evolve(o: Organisation, e: DomainEvent) -> Organisation:
    match e:
        case OrganisationRegistered():
            return Organisation(e.organisation_id, e.name, e.tax_code, e.addresses, e.industry, e.owner_id, e.team_id)
        case OrganisationChanged():
            return replace(o, name=e.name, tax_code=e.tax_code, addresses=e.addresses, industry=e.industry)
        case OrganisationReassigned():
            return replace(o, owner_id=e.owner_id, team_id=e.team_id)
        case OrganisationMerged():
            return replace(o, merged_into=e.into)
        case OrganisationAbsorbed():
            return replace(o, merged_from=(*o.merged_from, e.merged_from))
    return o


organisation_decider: Decider[Organisation] = Decider(Organisation(), evolve)


def live(o: Organisation, organisation_id: uuid.UUID) -> Organisation:
    """``o`` if it is registered and not merged; else the refusal (404, or 409 ``merged``)."""
    if o.organisation_id is None:
        raise NotFoundError("not_found", f"no organisation {organisation_id}")
    if o.merged_into is not None:
        raise DirectoryRuleError(
            "merged", f"organisation {organisation_id} was merged into {o.merged_into}: send commands there"
        )
    return o


def decide_organisation(
    o: Organisation, cmd: c.OrganisationCommand, now: datetime, organisation_id: uuid.UUID
) -> list[OrganisationEvent]:
    """What ``cmd`` does to organisation ``organisation_id`` (in state ``o``) at ``now``."""
    if isinstance(cmd, c.RegisterOrganisation):
        if o.organisation_id is not None:
            raise DirectoryRuleError("organisation_exists", f"an organisation {organisation_id} exists already")
        return [
            OrganisationRegistered(
                organisation_id=organisation_id,
                name=cmd.name,
                tax_code=cmd.tax_code,
                addresses=cmd.addresses,
                industry=cmd.industry,
                owner_id=cmd.owner_id,
                team_id=cmd.team_id,
                registered_at=now,
                reason=cmd.reason,
            )
        ]
    live(o, organisation_id)
    match cmd:
        case c.ChangeOrganisation():
            if (cmd.name, cmd.tax_code, cmd.addresses, cmd.industry) == (o.name, o.tax_code, o.addresses, o.industry):
                raise DirectoryRuleError("unchanged", f"organisation {organisation_id} has these details already")
            return [
                OrganisationChanged(
                    organisation_id=organisation_id,
                    name=cmd.name,
                    tax_code=cmd.tax_code,
                    addresses=cmd.addresses,
                    industry=cmd.industry,
                    reason=cmd.reason,
                )
            ]
        case c.ReassignOrganisation():
            if (cmd.owner_id, cmd.team_id) == (o.owner_id, o.team_id):
                raise DirectoryRuleError("unchanged", f"organisation {organisation_id} is {o.owner_id}'s already")
            return [
                OrganisationReassigned(
                    organisation_id=organisation_id,
                    old_owner_id=o.owner_id,
                    old_team_id=o.team_id,
                    owner_id=cmd.owner_id,
                    team_id=cmd.team_id,
                    reason=cmd.reason,
                )
            ]
        case c.MergeOrganisation():
            if cmd.into == organisation_id:
                raise InvalidReferenceError(
                    "merge_into_itself", "into: an organisation cannot merge into itself", "into"
                )
            return [
                OrganisationMerged(organisation_id=organisation_id, into=cmd.into, reason=cmd.reason, merged_at=now)
            ]
    raise TypeError(f"not an organisation command: {type(cmd).__name__}")


def absorb(
    target: Organisation, target_id: uuid.UUID, source_id: uuid.UUID, reason: str, now: datetime
) -> list[OrganisationEvent]:
    """The target's side of a merge: recorded once (a merge sent again after a crash adds nothing here)."""
    live(target, target_id)
    if source_id in target.merged_from:
        return []
    return [OrganisationAbsorbed(organisation_id=target_id, merged_from=source_id, reason=reason, merged_at=now)]
