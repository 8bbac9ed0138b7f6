"""Conversion links by reaction, on the in-memory store: a converted lead's contact matched against the blind
index (email, then phone, within the lead's team), else an organisation and person registered with ids derived
from the lead; the link names the deal the deals service opens; a replay links nothing again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from services.deals.events import deal_id_for_lead
from services.directory import search_keys
from services.directory.conversions import (
    CONVERSION_STREAM,
    Conversions,
    organisation_id_for_lead,
    person_id_for_lead,
)
from services.directory.events import CustomerLinked, OrganisationRegistered, PersonRegistered
from services.leads.events import Attribution, LeadContact, LeadConverted, LeadPersonalDataErased
from shared.messaging.envelope import CloudEvent
from shared.store import NewEvent
from shared.store.memory import InMemoryEventStore

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
SECRET = b"s" * 32
MAI, MAI_ORG = uuid.uuid4(), uuid.uuid4()


class Index:
    """The blind index as the ``customers`` read model would answer: key and team → (person, organisation)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], tuple[uuid.UUID, uuid.UUID | None]] = {}

    def add(self, kind: str, value: str, team: str, person: uuid.UUID, organisation: uuid.UUID | None) -> None:
        self.rows[(search_keys.key(SECRET, kind, value), team)] = (person, organisation)

    async def person(self, key: str, team_id: str) -> tuple[uuid.UUID, uuid.UUID | None] | None:
        return self.rows.get((key, team_id))


async def team_of(user_id: str) -> str | None:
    return {"u-lan": "north"}.get(user_id)


async def converted(leads: InMemoryEventStore, contact: LeadContact | None, team: str | None = "north") -> CloudEvent:
    lead = uuid.uuid4()
    event = LeadConverted(
        lead_id=lead,
        customer="Quán Cà Phê Mộc",
        contact=contact,
        owner_id="u-lan",
        team_id=team,
        title="Máy pha",
        attribution=Attribution(source="manual"),
    )
    await leads.append(f"lead-{lead}", [NewEvent(event, occurred_at=NOW)], expected_version=0)
    return CloudEvent.from_recorded((await leads.read_stream(f"lead-{lead}"))[-1], "leads")


async def react(store: InMemoryEventStore, leads: InMemoryEventStore, index: Index, e: CloudEvent) -> CustomerLinked:
    (data,) = await leads.personal_data.open([e.data])
    await Conversions(SECRET, team_of).react(store, index, e, data)
    (link,) = await store.read_stream(CONVERSION_STREAM + str(data["lead_id"]))
    event = link.to_event()
    assert isinstance(event, CustomerLinked)
    return event


def stores() -> tuple[InMemoryEventStore, InMemoryEventStore]:
    directory = InMemoryEventStore()
    return directory, InMemoryEventStore(directory.personal_data)  # one key store, as the services share one


async def test_nobody_matching_registers_the_customer_under_ids_derived_from_the_lead() -> None:
    store, leads = stores()
    e = await converted(leads, LeadContact(name="Võ Minh", email="Minh@Moc.vn", phone="0912 345 678"))
    link = await react(store, leads, Index(), e)
    lead = link.lead_id
    assert link == CustomerLinked(
        lead_id=lead,
        deal_id=deal_id_for_lead(lead),
        organisation_id=organisation_id_for_lead(lead),
        person_id=person_id_for_lead(lead),
        matched_by="created",
        team_id="north",
        linked_at=NOW,
    )
    (org,) = await store.read_stream(f"directory-organisation-{organisation_id_for_lead(lead)}")
    assert org.to_event() == OrganisationRegistered(
        organisation_id=organisation_id_for_lead(lead),
        name="Quán Cà Phê Mộc",
        tax_code=None,
        owner_id="u-lan",
        team_id="north",
        registered_at=NOW,
        reason=f"lead {lead} converted",
    )
    (person,) = await store.read_stream(f"directory-person-{person_id_for_lead(lead)}")
    (opened,) = await store.personal_data.open([person.data])
    assert (opened["name"], opened["emails"], opened["phones"]) == ("Võ Minh", ["minh@moc.vn"], ["+84912345678"])
    assert person.metadata["actor"] == "system:directory-conversions" and person.causation_id == e.id
    # a replay of the leads' topic links nothing again
    before = len(await store.read_all(limit=100))
    assert await react(store, leads, Index(), e) == link
    assert len(await store.read_all(limit=100)) == before


async def test_the_email_matches_first_then_the_phone_and_only_within_the_leads_team() -> None:
    store, leads = stores()
    index = Index()
    index.add("phone", "+84912345678", "north", MAI, MAI_ORG)
    index.add("email", "mai@moc.vn", "south", uuid.uuid4(), uuid.uuid4())  # another team's: not this one's
    link = await react(store, leads, index, await converted(leads, LeadContact(email="mai@moc.vn", phone="0912345678")))
    assert (link.matched_by, link.person_id, link.organisation_id) == ("phone", MAI, MAI_ORG)
    assert [r.stream_id for r in await store.read_all(limit=10)] == [CONVERSION_STREAM + str(link.lead_id)]
    index.add("email", "mai@moc.vn", "north", MAI, MAI_ORG)
    link = await react(store, leads, index, await converted(leads, LeadContact(email="MAI@moc.vn")))
    assert (link.matched_by, link.person_id) == ("email", MAI)


async def test_a_matched_person_without_an_organisation_links_a_new_one_and_a_lead_without_team_the_owners() -> None:
    store, leads = stores()
    index = Index()
    index.add("email", "mai@moc.vn", "north", MAI, None)
    link = await react(store, leads, index, await converted(leads, LeadContact(email="mai@moc.vn"), team=None))
    assert (link.matched_by, link.person_id, link.team_id) == ("email", MAI, "north")
    assert link.organisation_id == organisation_id_for_lead(link.lead_id)
    assert not await store.read_stream(f"directory-person-{person_id_for_lead(link.lead_id)}")
    link = await react(store, leads, index, await converted(leads, None))  # no contact at all: an organisation only
    assert (link.matched_by, link.person_id) == ("created", None)
    registered = [r.to_event() for r in await store.read_all(limit=20)]
    assert sum(isinstance(e, PersonRegistered) for e in registered) == 0


async def test_erasing_the_lead_erases_the_person_registered_from_it_and_only_that_person() -> None:
    store, leads = stores()
    index = Index()
    contact = LeadContact(name="Võ Minh", phone="0912 345 678")
    link = await react(store, leads, index, await converted(leads, contact))
    lead, person = link.lead_id, link.person_id
    assert person == person_id_for_lead(lead)
    erased = LeadPersonalDataErased(lead_id=lead, requested_by="u-admin", reason="asked")
    await leads.append(f"lead-{lead}", [NewEvent(erased, occurred_at=NOW)], expected_version=1)
    e = CloudEvent.from_recorded((await leads.read_stream(f"lead-{lead}"))[-1], "leads")
    conversions = Conversions(SECRET, team_of, store.personal_data.keys)
    for _ in range(2):  # a replay erases nothing more
        await conversions.react(store, index, e, e.data)
    stream = await store.read_stream(f"directory-person-{person}")
    assert [r.event_type.rsplit(".", 1)[1] for r in stream] == ["PersonRegistered", "PersonPersonalDataErased"]
    (opened,) = await store.personal_data.open([stream[0].data])
    assert (opened["name"], opened["phones"]) == (None, None)
    assert await store.personal_data.keys.is_erased(f"person:{person}")
