"""The organisations and people part of the directory's replica (services.directory.replica): what a pipeline
service keeps of them to check the customer a command names, and to follow a merged organisation to the one it
was merged into (decision 0017, "References are checked against a replica").

Tables (in the replica's generation schema): ``organisations`` (organisation_id, team_id, owner_id, merged_into)
and ``people`` (person_id, organisation_id, team_id, merged_into, erased). No name, tax code or personal field is
kept: a check needs only where a customer belongs. A merge is followed at read time: a deal linked to an
organisation merged since counts for the one it was merged into (``family``), with no event on the deal.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace

from services.directory import events as ev
from shared.core.decider import InvalidError
from shared.core.events import DomainEvent
from shared.messaging.projections import ReadModels
from shared.messaging.rows import Rows, Table
from shared.store.db import Conn

CUSTOMER_TABLES = ("organisations", "people")
CUSTOMERS_DDL = """
CREATE TABLE IF NOT EXISTS organisations (
    organisation_id uuid PRIMARY KEY, team_id text NOT NULL, owner_id text NOT NULL, merged_into uuid);
CREATE INDEX IF NOT EXISTS organisations_merged ON organisations (merged_into) WHERE merged_into IS NOT NULL;
CREATE TABLE IF NOT EXISTS people (
    person_id uuid PRIMARY KEY, organisation_id uuid, team_id text NOT NULL, merged_into uuid,
    erased boolean NOT NULL DEFAULT false);
"""
MAX_HOPS = 16  # merges followed from one organisation (a chain longer than this is a data error)


@dataclass(frozen=True)
class OrganisationRef:
    organisation_id: uuid.UUID
    team_id: str
    owner_id: str
    merged_into: uuid.UUID | None = None


@dataclass(frozen=True)
class PersonRef:
    person_id: uuid.UUID
    organisation_id: uuid.UUID | None
    team_id: str
    merged_into: uuid.UUID | None = None
    erased: bool = False


class UnknownCustomerError(InvalidError):
    """A request names an organisation or person the directory does not have: 422 naming ``field``."""

    def __init__(self, rule: str, message: str, field: str, where: str = "body") -> None:
        super().__init__(rule, message)
        self.field = field
        self.where = where


ORGANISATIONS = Table(
    "organisations", {"organisation_id": "uuid", "team_id": "text", "owner_id": "text", "merged_into": "uuid"}
)
PEOPLE = Table(
    "people",
    {"person_id": "uuid", "organisation_id": "uuid", "team_id": "text", "merged_into": "uuid", "erased": "boolean"},
    defaults={"erased": False},
)


class CustomerRows:
    """The organisations and people rows a batch of directory events touches (``shared.messaging.rows``)."""

    def __init__(self, organisations: Rows, people: Rows) -> None:
        self.organisations = organisations
        self.people = people

    @classmethod
    async def load(cls, conn: Conn, events: Sequence[DomainEvent]) -> CustomerRows:
        orgs = {e.organisation_id for e in events if isinstance(e, ev.OrganisationEvent)}
        people = {e.person_id for e in events if isinstance(e, ev.PersonEvent)}
        return cls(await ORGANISATIONS.rows(conn, orgs), await PEOPLE.rows(conn, people))

    def apply(self, event: DomainEvent) -> None:
        """One directory event on the rows, as the statements did it event by event."""
        orgs, people = self.organisations, self.people
        match event:
            case ev.OrganisationRegistered() as e:
                orgs.insert(
                    ORGANISATIONS.new(organisation_id=e.organisation_id, team_id=e.team_id, owner_id=e.owner_id)
                )
            case ev.OrganisationReassigned() as e:
                orgs.update(e.organisation_id, team_id=e.team_id, owner_id=e.owner_id)
            case ev.OrganisationMerged() as e:
                orgs.update(e.organisation_id, merged_into=e.into)
            case ev.PersonRegistered() as e:
                row = PEOPLE.new(person_id=e.person_id, organisation_id=e.organisation_id, team_id=e.team_id)
                people.insert(row)
            case ev.PersonChanged() as e:
                people.update(e.person_id, organisation_id=e.organisation_id)
            case ev.PersonReassigned() as e:
                people.update(e.person_id, team_id=e.team_id)
            case ev.PersonMerged() as e:
                people.update(e.person_id, merged_into=e.into)
            case ev.PersonPersonalDataErased() as e:
                people.update(e.person_id, erased=True)

    async def flush(self, conn: Conn) -> None:
        await self.organisations.flush(conn)
        await self.people.flush(conn)


async def apply_customers(conn: Conn, event: DomainEvent) -> None:
    """One directory event on the organisations and people tables (a batch: ``CustomerRows``)."""
    rows = await CustomerRows.load(conn, [event])
    rows.apply(event)
    await rows.flush(conn)


class CustomerReferences:
    """The organisations and people of the replica; subclasses read them (``customers``, ``merged_from``)."""

    async def customers(
        self, organisations: Collection[uuid.UUID], people: Collection[uuid.UUID]
    ) -> tuple[dict[uuid.UUID, OrganisationRef], dict[uuid.UUID, PersonRef]]:
        raise NotImplementedError

    async def merged_from(self, organisation_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        """The organisations merged directly into one of these."""
        raise NotImplementedError

    async def organisation(self, organisation_id: uuid.UUID, *, where: str = "body") -> OrganisationRef:
        """The organisation, or the one it was merged into (followed to the end); unknown: 422 naming the field."""
        seen: list[uuid.UUID] = []
        at = organisation_id
        while len(seen) < MAX_HOPS:
            orgs, _ = await self.customers([at], [])
            org = orgs.get(at)
            if org is None:
                raise UnknownCustomerError(
                    "unknown_organisation",
                    f"organisation_id: no organisation {organisation_id}",
                    "organisation_id",
                    where,
                )
            if org.merged_into is None or org.merged_into in seen:
                return org
            seen.append(at)
            at = org.merged_into
        raise UnknownCustomerError(
            "merge_loop", f"organisation_id: {organisation_id} merges too deep", "organisation_id", where
        )

    async def family(self, organisation_id: uuid.UUID) -> list[uuid.UUID]:
        """The organisation and every one merged into it, directly or not: the ids its deals are linked under."""
        found = {organisation_id}
        frontier = {organisation_id}
        for _ in range(MAX_HOPS):
            frontier = await self.merged_from(frontier) - found
            if not frontier:
                break
            found |= frontier
        return sorted(found)

    async def people_of(
        self, organisation: OrganisationRef, person_ids: Collection[uuid.UUID], *, where: str = "body"
    ) -> tuple[uuid.UUID, ...]:
        """The people named, each followed to the one they were merged into; each must exist and be one of the
        organisation's (or of one merged into it): else 422 naming ``person_ids``."""
        if not person_ids:
            return ()
        family = set(await self.family(organisation.organisation_id))
        out: list[uuid.UUID] = []
        for person_id in person_ids:
            person = await self._person(person_id)
            if person is None:
                raise UnknownCustomerError("unknown_person", f"person_ids: no person {person_id}", "person_ids", where)
            if person.organisation_id not in family:
                raise UnknownCustomerError(
                    "not_of_organisation",
                    f"person_ids: {person_id} is not one of organisation {organisation.organisation_id}'s people",
                    "person_ids",
                    where,
                )
            if person.person_id not in out:
                out.append(person.person_id)
        return tuple(out)

    async def _person(self, person_id: uuid.UUID) -> PersonRef | None:
        seen: list[uuid.UUID] = []
        at = person_id
        while len(seen) < MAX_HOPS:
            _, people = await self.customers([], [at])
            person = people.get(at)
            if person is None or person.merged_into is None or person.merged_into in seen:
                return person
            seen.append(at)
            at = person.merged_into
        return None


class PostgresCustomers(CustomerReferences):
    """Reads the ``organisations`` and ``people`` tables of the replica (``read_models``' ``directory``)."""

    read_models: ReadModels

    async def customers(
        self, organisations: Collection[uuid.UUID], people: Collection[uuid.UUID]
    ) -> tuple[dict[uuid.UUID, OrganisationRef], dict[uuid.UUID, PersonRef]]:
        async with self.read_models.connection("directory") as conn:
            o = await conn.fetch(
                "SELECT organisation_id, team_id, owner_id, merged_into FROM organisations "
                "WHERE organisation_id = ANY($1::uuid[])",
                list(organisations),
            )
            p = await conn.fetch(
                "SELECT person_id, organisation_id, team_id, merged_into, erased FROM people "
                "WHERE person_id = ANY($1::uuid[])",
                list(people),
            )
        return (
            {r["organisation_id"]: OrganisationRef(**dict(r)) for r in o},
            {r["person_id"]: PersonRef(**dict(r)) for r in p},
        )

    async def merged_from(self, organisation_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        async with self.read_models.connection("directory") as conn:
            rows = await conn.fetch(
                "SELECT organisation_id FROM organisations WHERE merged_into = ANY($1::uuid[])", list(organisation_ids)
            )
        return {r["organisation_id"] for r in rows}


@dataclass
class MemoryCustomers(CustomerReferences):
    """The organisations and people in memory (the in-memory apps and unit tests): seeded, or fed events."""

    organisations: dict[uuid.UUID, OrganisationRef] = field(default_factory=dict)
    people: dict[uuid.UUID, PersonRef] = field(default_factory=dict)

    def apply_customer(self, event: DomainEvent) -> None:
        """What ``apply_customers`` does to the tables, on the dictionaries."""
        match event:
            case ev.OrganisationRegistered() as e:
                ref = OrganisationRef(e.organisation_id, e.team_id, e.owner_id)
                self.organisations.setdefault(e.organisation_id, ref)
            case ev.OrganisationReassigned() as e if e.organisation_id in self.organisations:
                org = self.organisations[e.organisation_id]
                self.organisations[e.organisation_id] = replace(org, team_id=e.team_id, owner_id=e.owner_id)
            case ev.OrganisationMerged() as e if e.organisation_id in self.organisations:
                org = self.organisations[e.organisation_id]
                self.organisations[e.organisation_id] = replace(org, merged_into=e.into)
            case ev.PersonRegistered() as e:
                self.people.setdefault(e.person_id, PersonRef(e.person_id, e.organisation_id, e.team_id))
            case ev.PersonChanged() as e if e.person_id in self.people:
                self.people[e.person_id] = replace(self.people[e.person_id], organisation_id=e.organisation_id)
            case ev.PersonReassigned() as e if e.person_id in self.people:
                self.people[e.person_id] = replace(self.people[e.person_id], team_id=e.team_id)
            case ev.PersonMerged() as e if e.person_id in self.people:
                self.people[e.person_id] = replace(self.people[e.person_id], merged_into=e.into)
            case ev.PersonPersonalDataErased() as e if e.person_id in self.people:
                self.people[e.person_id] = replace(self.people[e.person_id], erased=True)

    async def customers(
        self, organisations: Collection[uuid.UUID], people: Collection[uuid.UUID]
    ) -> tuple[dict[uuid.UUID, OrganisationRef], dict[uuid.UUID, PersonRef]]:
        return (
            {o: self.organisations[o] for o in organisations if o in self.organisations},
            {p: self.people[p] for p in people if p in self.people},
        )

    async def merged_from(self, organisation_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        return {o.organisation_id for o in self.organisations.values() if o.merged_into in organisation_ids}
