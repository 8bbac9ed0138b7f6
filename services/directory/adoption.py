"""Old deals keep working by a command (decision 0017, issue 24 item 3): an admin adopts the customer strings and
contacts typed on deals opened before the directory knew organisations and people.

- *What it reads*: the ``adoption`` read model (``projections.adoption``: each deal's customer string, team, owner,
  contact subject and sealed contact, whether it is linked) and the team's organisations (``customers`` read model).
  A deal with no team is its owner's team's (as a conversion's is).
- *Grouping*: per team, the customer strings of the deals not linked yet, by a folded key (``customer_key``:
  trimmed and single-spaced, lower case, diacritics folded — ``search_keys.fold``). The organisation of a group is
  the one this command registered for it before (``organisation_id_for(team, key)``, followed to the one it reads
  as if merged since), else an organisation of the team with the same folded name (the smallest id, if several),
  else registered: named by the most frequent spelling (ties: the smallest), owned by the most frequent owner of
  those deals (ties: the smallest id), in the team.
- *Linking*: each deal gets a ``CustomerLinked`` (stream ``directory-adoption-<deal id>``, ``lead_id`` None,
  ``matched_by`` ``adopted``) — the path conversions use; the deals service reacts by recording
  ``DealCustomerLinked``. A deal converted from a lead the directory linked (``directory-conversion-<lead>``) is
  left to that link.
- *People*: a deal's contact becomes a person (``person_id_for_contact(contact_id)``: one per data subject, however
  many deals name it) of the group's organisation, owned by the deal's owner. A contact whose key is destroyed
  (erased: it opens as None, or ``DealContactErased`` was seen) becomes a person registered and at once erased, so
  it stays erased; a person adopted before whose contact was erased since is erased. And ``contact_erased`` erases
  the person adopted from a contact when the deal's contact is erased later (``DealContactErased``).
- *Once*: every event goes to a new stream at version 0 (or after the person's last), so a second run — or two at
  once — changes nothing more; a dry run appends nothing and answers what a run would do. Each event carries the
  admin as its actor and the reason they gave.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field

from services.directory import search_keys
from services.directory.conversions import CONVERSION_STREAM, UNASSIGNED_TEAM
from services.directory.customers import organisation_stream, person_stream
from services.directory.domain import organisation as org
from services.directory.domain import person as per
from services.directory.events import (
    CustomerLinked,
    OrganisationRegistered,
    PersonPersonalDataErased,
    PersonRegistered,
)
from services.directory.projections.adoption import DealRow
from shared.core import normalize
from shared.core.events import DomainEvent
from shared.messaging.envelope import CloudEvent
from shared.privacy.pii import KeyStore, PersonalData
from shared.store import ConcurrencyError, EventStore, NewEvent
from shared.store.commands import Context, load

NS_ADOPTED = uuid.UUID("3d0c7f5e-8f7b-5e52-9a61-0c2f4b8d7e03")
ADOPTION_STREAM = "directory-adoption-"
MATCHED_BY = "adopted"
ACTOR = "system:directory-adoptions"  # the reaction erasing an adopted person
TeamOf = Callable[[str], Awaitable[str | None]]


def customer_key(customer: str) -> str:
    """The folded key customer strings are grouped by: ``Cà phê  MỘC`` and ``ca phe moc`` are one."""
    return search_keys.fold(normalize.text(customer) or "")


def organisation_id_for(team_id: str, key: str) -> uuid.UUID:
    return uuid.uuid5(NS_ADOPTED, f"{team_id}|{key}")


def person_id_for_contact(contact_id: str) -> uuid.UUID:
    return uuid.uuid5(NS_ADOPTED, f"contact:{contact_id}")


class Source(Protocol):
    """What the adoption reads: the read models in the service, dictionaries in tests."""

    async def unlinked_deals(self, team_id: str | None) -> list[DealRow]:
        """The deals not linked to an organisation, of ``team_id`` or of no team (None: every deal)."""
        ...

    async def organisations(self, team_id: str) -> list[tuple[uuid.UUID, str]]:
        """The team's organisations not merged away: (id, name)."""
        ...


@dataclasses.dataclass(frozen=True)
class Group:
    team_id: str
    key: str
    name: str
    owner_id: str
    deals: tuple[DealRow, ...]


def most_frequent(values: Iterable[str]) -> str:
    """The value given most often; ties: the smallest."""
    counts = Counter(values)
    return min(counts, key=lambda v: (-counts[v], v))


def group(deals: Iterable[tuple[str, DealRow]]) -> list[Group]:
    """The deals (each with its team) grouped by team and folded customer string, in order of team and key."""
    groups: dict[tuple[str, str], list[DealRow]] = defaultdict(list)
    for team, deal in deals:
        key = customer_key(deal.customer)
        if key:
            groups[(team, key)].append(deal)
    return [
        Group(
            team_id=team,
            key=key,
            name=most_frequent(normalize.text(d.customer) or d.customer for d in members),
            owner_id=most_frequent(d.owner_id for d in members),
            deals=tuple(sorted(members, key=lambda d: d.deal_id)),
        )
        for (team, key), members in sorted(groups.items())
    ]


class AdoptionReport(BaseModel):
    """What an adoption did, or (``dry_run``) would do."""

    dry_run: bool
    organisations_made: int = Field(0, description="organisations registered for a customer string")
    organisations_reused: int = Field(0, description="groups whose organisation existed (by folded name)")
    deals_linked: int = 0
    people_made: int = Field(0, description="people registered from deals' contacts (the erased ones included)")
    people_erased: int = Field(0, description="people erased because their contact's key is destroyed")
    position: int = Field(0, description="global position of the last event appended; queries can wait for it")


@dataclasses.dataclass
class _Run:
    ctx: Context
    now: datetime
    reason: str
    report: AdoptionReport
    people: set[uuid.UUID] = dataclasses.field(default_factory=set)


class Adoptions:
    def __init__(
        self, store: EventStore, clock: Callable[[], datetime], team_of: TeamOf, personal_data: PersonalData
    ) -> None:
        self.store = store
        self.clock = clock
        self.team_of = team_of
        self.personal_data = personal_data

    @property
    def keys(self) -> KeyStore:
        return self.personal_data.keys

    async def adopt(
        self, source: Source, reason: str, ctx: Context, *, team_id: str | None = None, dry_run: bool = False
    ) -> AdoptionReport:
        """Adopt the deals of ``team_id`` (None: every team) not linked yet; the answer counts what changed."""
        deals = []
        for deal in await source.unlinked_deals(team_id):
            team = deal.team_id or await self.team_of(deal.owner_id) or UNASSIGNED_TEAM
            if (team_id is None or team == team_id) and not await self._linked(deal):
                deals.append((team, deal))
        run = _Run(dataclasses.replace(ctx, reason=reason), self.clock(), reason, AdoptionReport(dry_run=dry_run))
        named: dict[str, dict[str, uuid.UUID]] = {}
        for g in group(deals):
            if g.team_id not in named:
                named[g.team_id] = _by_key(await source.organisations(g.team_id))
            organisation_id = await self._organisation(run, g, named[g.team_id].get(g.key))
            for deal in g.deals:
                person_id = await self._person(run, g, organisation_id, deal)
                link = CustomerLinked(
                    lead_id=None,
                    deal_id=deal.deal_id,
                    organisation_id=organisation_id,
                    person_id=person_id,
                    matched_by=MATCHED_BY,
                    team_id=g.team_id,
                    linked_at=run.now,
                    reason=reason,
                )
                if await self._append(run, f"{ADOPTION_STREAM}{deal.deal_id}", link, 0):
                    run.report.deals_linked += 1
        return run.report

    async def _linked(self, deal: DealRow) -> bool:
        """Linked by an earlier run (its deal not told yet), or by the conversion of the lead it came from."""
        if await self.store.stream_version(f"{ADOPTION_STREAM}{deal.deal_id}"):
            return True
        lead = deal.source_lead_id
        return lead is not None and await self.store.stream_version(f"{CONVERSION_STREAM}{lead}") > 0

    async def _organisation(self, run: _Run, g: Group, named: uuid.UUID | None) -> uuid.UUID:
        """The group's organisation: registered by an earlier run (as it reads now), else one of the team by that
        name, else registered now."""
        derived = organisation_id_for(g.team_id, g.key)
        found = (await load(self.store, organisation_stream(derived), org.organisation_decider)).state
        if found.organisation_id is None and named is None:
            registered = OrganisationRegistered(
                organisation_id=derived,
                name=g.name,
                tax_code=None,
                owner_id=g.owner_id,
                team_id=g.team_id,
                registered_at=run.now,
                reason=run.reason,
            )
            if await self._append(run, organisation_stream(derived), registered, 0):
                run.report.organisations_made += 1
            return derived
        run.report.organisations_reused += 1
        if found.organisation_id is None:
            assert named is not None
            return named
        while found.merged_into is not None:  # merged since: the one it reads as
            found = (await load(self.store, organisation_stream(found.merged_into), org.organisation_decider)).state
        assert found.organisation_id is not None
        return found.organisation_id

    async def _person(self, run: _Run, g: Group, organisation_id: uuid.UUID, deal: DealRow) -> uuid.UUID | None:
        """The person the deal's contact is (registered, and erased with their contact), or None: no contact."""
        if deal.contact_id is None or (deal.contact is None and not deal.contact_erased):
            return None
        contact: dict[str, Any] | None = None
        if deal.contact is not None:
            (opened,) = await self.personal_data.open([{"contact": deal.contact}])
            contact = opened["contact"]
        erased = deal.contact_erased or contact is None
        if not erased and not any((contact or {}).get(k) for k in ("name", "email", "phone")):
            return None
        person_id = person_id_for_contact(deal.contact_id)
        if person_id in run.people:
            return person_id
        run.people.add(person_id)
        loaded = await load(self.store, person_stream(person_id), per.person_decider)
        version, done = loaded.version, loaded.state.erased
        if version == 0:
            registered = _registered(person_id, organisation_id, deal, g.team_id, None if erased else contact, run)
            if not await self._append(run, person_stream(person_id), registered, 0):
                return person_id  # registered meanwhile by another run: theirs to finish
            run.report.people_made += 1
            version = 1
        if erased and not done:
            await self._erase(run, person_id, version)
        return person_id

    async def _erase(self, run: _Run, person_id: uuid.UUID, version: int) -> None:
        subject = per.person_subject(person_id)
        erased = PersonPersonalDataErased(person_id=person_id, subject=subject, reason=run.reason, erased_at=run.now)
        if not run.report.dry_run:
            await self.keys.erase(subject, reason=run.reason)
        if await self._append(run, person_stream(person_id), erased, version):
            run.report.people_erased += 1

    async def _append(self, run: _Run, stream: str, event: DomainEvent, version: int) -> bool:
        """The event appended after ``version`` (a dry run: counted only); False when another got there first."""
        if run.report.dry_run:
            return True
        new = NewEvent(event, occurred_at=run.now, metadata=run.ctx.metadata())
        try:
            result = await self.store.append(stream, [new], expected_version=version)
        except ConcurrencyError:
            return False
        run.report.position = max(run.report.position, result.position)
        return True


async def contact_erased(store: EventStore, keys: KeyStore, envelope: CloudEvent, data: dict[str, Any]) -> None:
    """``pipelines.deals.DealContactErased``: the person adopted from that contact erased too (none adopted, or
    erased already: nothing). Its event id derives from the deal's event, so a second delivery appends nothing."""
    person_id = person_id_for_contact(str(data["contact_id"]))
    recorded = await store.read_stream(person_stream(person_id))
    if not recorded or any(r.event_type == PersonPersonalDataErased.event_type for r in recorded):
        return
    subject = per.person_subject(person_id)
    reason = f"the contact of deal {data['deal_id']} erased"
    await keys.erase(subject, reason=reason)
    ctx = dataclasses.replace(Context.reacting_to(envelope, ACTOR), derive_ids_from=f"{envelope.id}:adopted")
    options = ctx.options(envelope.time)
    erased = PersonPersonalDataErased(person_id=person_id, subject=subject, reason=reason, erased_at=envelope.time)
    new = NewEvent(erased, occurred_at=envelope.time, event_id=options["event_ids"](0), metadata=options["metadata"])
    await store.append(person_stream(person_id), [new], expected_version=recorded[-1].version)


def _by_key(organisations: Iterable[tuple[uuid.UUID, str]]) -> dict[str, uuid.UUID]:
    """Each folded name's organisation (the smallest id when several have it)."""
    out: dict[str, uuid.UUID] = {}
    for organisation_id, name in sorted(organisations):
        out.setdefault(customer_key(name), organisation_id)
    return out


def _registered(
    person_id: uuid.UUID,
    organisation_id: uuid.UUID,
    deal: DealRow,
    team_id: str,
    contact: dict[str, Any] | None,
    run: _Run,
) -> PersonRegistered:
    """The person a contact is; an erased contact (None) registers with nothing to seal."""
    contact = contact or {}
    phone, email = normalize.phone(contact.get("phone")), normalize.email(contact.get("email"))
    return PersonRegistered(
        person_id=person_id,
        subject=per.person_subject(person_id),
        organisation_id=organisation_id,
        name=normalize.text(contact.get("name")),
        phones=(phone,) if phone else (),
        emails=(email,) if email else (),
        owner_id=deal.owner_id,
        team_id=team_id,
        registered_at=run.now,
        reason=run.reason,
    )
