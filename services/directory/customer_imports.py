"""Organisations and people imported from another CRM's export (issue 26, decision 0021): each row's registration
and the changes after it, each decided as ``Customers`` decides it, at its occurred time, all in one append
(``execute_new``); None: imported before (nothing appended). What the facts name is checked as the routes check it,
once the stream is known to be new: the owner and team (active, the owner in the team), the tax code (one
organisation per code: claimed, as a registration claims it), a person's organisation (there and not merged). A
merge writes two streams and an erasure destroys a key: neither is an imported fact.

A dry run claims no tax code (it only looks who holds it) and, for a person whose organisation is imported in the
same run (``organisation_unchecked``), does not look for it: it is not there yet."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from services.directory.customers import Customers, organisation_stream, person_stream
from services.directory.domain import customer_commands as c
from services.directory.domain import organisation as org
from services.directory.domain import person as per
from services.directory.domain.errors import DuplicateError
from shared.core.decider import RefusedError
from shared.store.commands import Created, Step, StepRefusedError, execute_new

OrganisationFacts = Sequence[tuple[datetime, c.OrganisationCommand]]
PersonFacts = Sequence[tuple[datetime, c.PersonCommand]]
CheckOwner = Callable[[str, str], Awaitable[None]]


async def import_organisation(
    customers: Customers,
    organisation_id: uuid.UUID,
    facts: OrganisationFacts,
    metadata: dict[str, Any],
    *,
    dry_run: bool = False,
    owners: CheckOwner | None = None,
) -> Created[org.Organisation] | None:
    """``owners``: how an owner and team are checked (default ``customers.references.check_owner``; a batch's
    routes give one that checks each pair once)."""
    check_owner = owners or customers.references.check_owner

    async def checks() -> None:
        for i, (at, cmd) in enumerate(facts):
            try:
                await _organisation_references(customers, check_owner, organisation_id, cmd, at, dry_run)
            except RefusedError as refused:
                raise StepRefusedError(i, refused) from None

    def step(at: datetime, cmd: c.OrganisationCommand) -> Step[org.Organisation]:
        return Step(at, lambda state: org.decide_organisation(state, cmd, at, organisation_id))

    return await execute_new(
        customers.store,
        organisation_stream(organisation_id),
        org.organisation_decider,
        [step(at, cmd) for at, cmd in facts],
        metadata=metadata,
        dry_run=dry_run,
        checks=checks,
    )


async def _organisation_references(
    customers: Customers,
    check_owner: CheckOwner,
    organisation_id: uuid.UUID,
    cmd: c.OrganisationCommand,
    at: datetime,
    dry_run: bool,
) -> None:
    if isinstance(cmd, c.RegisterOrganisation | c.ReassignOrganisation):
        await check_owner(cmd.owner_id, cmd.team_id)
    if isinstance(cmd, c.RegisterOrganisation | c.ChangeOrganisation) and cmd.tax_code:
        if not dry_run:
            await customers._claim(cmd.tax_code, organisation_id, at)
            return
        holder, _ = await customers.tax_code_holder(cmd.tax_code)
        if holder is not None and holder != organisation_id:
            raise DuplicateError(
                "tax_code_taken", f"tax_code: organisation {holder} has the tax code {cmd.tax_code}", str(holder)
            )


async def import_person(
    customers: Customers,
    person_id: uuid.UUID,
    facts: PersonFacts,
    metadata: dict[str, Any],
    *,
    dry_run: bool = False,
    organisation_unchecked: bool = False,
) -> Created[per.Person] | None:
    place: dict[str, str] = {}

    async def checks() -> None:
        for i, (_, cmd) in enumerate(facts):
            try:
                await _person_references(customers, cmd, place, organisation_unchecked and dry_run)
            except RefusedError as refused:
                raise StepRefusedError(i, refused) from None

    def step(at: datetime, cmd: c.PersonCommand) -> Step[per.Person]:
        return Step(
            at,
            lambda state: per.decide_person(
                state, cmd, at, person_id, owner_id=place.get("owner", ""), team_id=place.get("team", "")
            ),
        )

    return await execute_new(
        customers.store,
        person_stream(person_id),
        per.person_decider,
        [step(at, cmd) for at, cmd in facts],
        metadata=metadata,
        dry_run=dry_run,
        checks=checks,
    )


async def _person_references(customers: Customers, cmd: c.PersonCommand, place: dict[str, str], skip: bool) -> None:
    """``skip``: a dry run's person whose organisation is imported in the same run (not there yet)."""
    if isinstance(cmd, c.RegisterPerson):
        if skip:
            place.update(owner=cmd.owner_id or "", team=cmd.team_id or "")
            return
        place["owner"], place["team"] = await customers._place_person(cmd)
    elif isinstance(cmd, c.ChangePerson) and cmd.organisation_id is not None and not skip:
        await customers._live_organisation(cmd.organisation_id, "organisation_id")
    elif isinstance(cmd, c.ReassignPerson):
        await customers.references.check_owner(cmd.owner_id, cmd.team_id)
