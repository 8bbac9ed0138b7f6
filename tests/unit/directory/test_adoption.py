"""Old deals' customer strings and contacts adopted by an admin's command, on the in-memory store (decision 0017):
each team's strings grouped by a folded key into organisations (reused by folded name, else registered with ids
derived from team and key), each unlinked deal linked by ``CustomerLinked``, its contact a person (an erased contact
a person registered and at once erased); a second run and a dry run change nothing; admins only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.deals.events import DealContactErased
from services.directory.adoption import (
    ADOPTION_STREAM,
    AdoptionReport,
    Adoptions,
    contact_erased,
    customer_key,
    group,
    organisation_id_for,
    person_id_for_contact,
)
from services.directory.api import DirectoryAPI, create_app
from services.directory.conversions import CONVERSION_STREAM
from services.directory.customers import Customers, organisation_stream, person_stream
from services.directory.domain.person import person_subject
from services.directory.events import (
    CustomerLinked,
    OrganisationRegistered,
    PersonPersonalDataErased,
    PersonRegistered,
)
from services.directory.handlers import Directory
from services.directory.projections.adoption import DealRow
from shared.edge.auth import ROLES, TokenVerifier, issue_token
from shared.messaging.envelope import CloudEvent
from shared.privacy.pii import encrypt_value
from shared.store import NewEvent
from shared.store.commands import Context
from shared.store.memory import InMemoryEventStore
from testkit.services import TEST_KEYS

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
ADMIN_CTX = Context(actor="u-admin")
REASON = "issue 24: old deals' customers"


class Source:
    """The read models as dictionaries: the deals not linked yet, each team's organisations."""

    def __init__(self, deals: list[DealRow], organisations: dict[str, list[tuple[uuid.UUID, str]]] | None = None):
        self.deals = deals
        self.orgs = organisations or {}

    async def unlinked_deals(self, team_id: str | None) -> list[DealRow]:
        return [d for d in self.deals if team_id is None or d.team_id in (team_id, None)]

    async def organisations(self, team_id: str) -> list[tuple[uuid.UUID, str]]:
        return self.orgs.get(team_id, [])


async def team_of(user_id: str) -> str | None:
    return {"u-lan": "north", "u-minh": "north", "u-hoa": "south"}.get(user_id)


def deal(customer: str, owner: str = "u-lan", team: str | None = "north", **extra: Any) -> DealRow:
    return DealRow(deal_id=uuid.uuid4(), customer=customer, team_id=team, owner_id=owner, **extra)


async def sealed(store: InMemoryEventStore, contact_id: str, contact: dict[str, Any]) -> str:
    """The contact as the deals service stores it: sealed under its data subject's key (shared key store)."""
    keys = await store.personal_data.keys.keys_for([contact_id], create=True)
    return encrypt_value(contact_id, keys[contact_id], contact)


def adoptions(store: InMemoryEventStore) -> Adoptions:
    return Adoptions(store, lambda: NOW, team_of, store.personal_data)


async def events(store: InMemoryEventStore, stream: str) -> list[Any]:
    return [r.to_event() for r in await store.read_stream(stream)]


async def everything(store: InMemoryEventStore) -> int:
    return len(await store.read_all(limit=100_000))


def test_grouping_folds_case_spaces_and_diacritics_and_picks_the_most_frequent_spelling_and_owner() -> None:
    assert customer_key("  Cà phê   MỘC ") == customer_key("ca phe moc") == "ca phe moc"
    assert customer_key("Đồng Tâm") == "dong tam"
    rows = [
        ("north", deal("Cà phê Mộc", "u-minh")),
        ("north", deal("ca phe  moc", "u-lan")),
        ("north", deal("Cà phê Mộc", "u-lan")),
        ("north", deal("Gạch Thăng Long", "u-minh")),
        ("north", deal("Gạch Thăng Long", "u-lan")),  # owners tie: the smallest id
        ("south", deal("CÀ PHÊ MỘC", "u-hoa")),
    ]
    got = {(g.team_id, g.key): g for g in group(rows)}
    assert sorted(got) == [("north", "ca phe moc"), ("north", "gach thang long"), ("south", "ca phe moc")]
    moc = got[("north", "ca phe moc")]
    assert (moc.name, moc.owner_id, len(moc.deals)) == ("Cà phê Mộc", "u-lan", 3)
    assert got[("north", "gach thang long")].owner_id == "u-lan"
    assert got[("south", "ca phe moc")].name == "CÀ PHÊ MỘC"


async def test_each_teams_strings_become_organisations_and_every_unlinked_deal_is_linked() -> None:
    store = InMemoryEventStore()
    north = [deal("Cà phê Mộc", "u-minh"), deal("ca phe moc", "u-minh"), deal("Gạch Thăng Long")]
    no_team = deal("Cà phê Mộc", "u-lan", team=None)  # its owner's team: the north
    south = deal("Cà phê Mộc", "u-hoa", team="south")
    report = await adoptions(store).adopt(Source([*north, no_team, south]), REASON, ADMIN_CTX)
    assert report.model_dump(exclude={"position"}) == {
        "dry_run": False,
        "organisations_made": 3,
        "organisations_reused": 0,
        "deals_linked": 5,
        "people_made": 0,
        "people_erased": 0,
    }
    moc = organisation_id_for("north", "ca phe moc")
    (registered,) = await events(store, organisation_stream(moc))
    assert registered == OrganisationRegistered(
        organisation_id=moc, name="Cà phê Mộc", tax_code=None, owner_id="u-minh", team_id="north",
        registered_at=NOW, reason=REASON,
    )  # fmt: skip
    (recorded,) = await store.read_stream(organisation_stream(moc))
    assert recorded.metadata["actor"] == "u-admin" and recorded.metadata["reason"] == REASON
    for d, org in [(north[0], moc), (no_team, moc), (south, organisation_id_for("south", "ca phe moc"))]:
        (link,) = await events(store, f"{ADOPTION_STREAM}{d.deal_id}")
        assert link == CustomerLinked(
            lead_id=None, deal_id=d.deal_id, organisation_id=org, person_id=None, matched_by="adopted",
            team_id="south" if d is south else "north", linked_at=NOW, reason=REASON,
        )  # fmt: skip
    assert report.position == (await store.read_all(limit=1000))[-1].position


async def test_an_organisation_of_the_team_with_the_same_folded_name_is_reused_not_another_teams() -> None:
    store = InMemoryEventStore()
    theirs, ours = uuid.uuid4(), uuid.uuid4()
    d_north, d_south = deal("Cà Phê Mộc"), deal("ca phe moc", "u-hoa", team="south")
    source = Source([d_north, d_south], {"north": [(ours, "CA PHE MOC")], "east": [(theirs, "Cà phê Mộc")]})
    report = await adoptions(store).adopt(source, REASON, ADMIN_CTX)
    assert (report.organisations_made, report.organisations_reused, report.deals_linked) == (1, 1, 2)
    (link,) = await events(store, f"{ADOPTION_STREAM}{d_north.deal_id}")
    assert link.organisation_id == ours
    assert await store.stream_version(organisation_stream(organisation_id_for("north", "ca phe moc"))) == 0


async def test_one_team_only_and_deals_a_conversion_links_are_left_to_it() -> None:
    store = InMemoryEventStore()
    lead = uuid.uuid4()
    converted = deal("Mộc", source_lead_id=lead)
    await store.append(f"{CONVERSION_STREAM}{lead}", [NewEvent(_link(lead), occurred_at=NOW)], expected_version=0)
    south = deal("Mộc", "u-hoa", team="south")
    report = await adoptions(store).adopt(Source([converted, south]), REASON, ADMIN_CTX, team_id="north")
    assert report.deals_linked == 0 and report.organisations_made == 0
    assert await store.stream_version(f"{ADOPTION_STREAM}{south.deal_id}") == 0


def _link(lead: uuid.UUID) -> CustomerLinked:
    return CustomerLinked(
        lead_id=lead, deal_id=uuid.uuid4(), organisation_id=uuid.uuid4(), person_id=None, matched_by="created",
        linked_at=NOW,
    )  # fmt: skip


async def test_contacts_become_people_once_per_subject_and_an_erased_contact_stays_erased() -> None:
    store = InMemoryEventStore()
    lan = {"name": "Võ  Minh", "email": "Minh@Moc.vn", "phone": "0912 345 678"}
    a = deal("Mộc", contact_id="c-1", contact=await sealed(store, "c-1", lan))
    b = deal("Mộc", contact_id="c-1", contact=await sealed(store, "c-1", lan))  # the same contact on two deals
    gone = deal("Mộc", contact_id="c-2", contact=await sealed(store, "c-2", {"name": "Hoa"}))
    await store.personal_data.keys.erase("c-2")  # the deal's contact was erased: the token opens as None
    flagged = deal("Mộc", contact_id="c-3", contact_erased=True)  # DealContactErased seen
    report = await adoptions(store).adopt(Source([a, b, gone, flagged]), REASON, ADMIN_CTX)
    assert (report.people_made, report.people_erased, report.deals_linked) == (3, 2, 4)
    minh = person_id_for_contact("c-1")
    (registered,) = await events(store, person_stream(minh))
    (opened,) = await store.personal_data.open([(await store.read_stream(person_stream(minh)))[0].data])
    assert isinstance(registered, PersonRegistered) and registered.organisation_id == organisation_id_for(
        "north", "moc"
    )
    assert (opened["name"], opened["emails"], opened["phones"]) == ("Võ Minh", ["minh@moc.vn"], ["+84912345678"])
    for d in (a, b):
        assert (await events(store, f"{ADOPTION_STREAM}{d.deal_id}"))[0].person_id == minh
    for contact in ("c-2", "c-3"):
        person = person_id_for_contact(contact)
        registered, erased = await events(store, person_stream(person))
        assert isinstance(registered, PersonRegistered) and isinstance(erased, PersonPersonalDataErased)
        assert erased.reason == REASON and await store.personal_data.keys.is_erased(person_subject(person))
        (data,) = await store.personal_data.open([(await store.read_stream(person_stream(person)))[0].data])
        assert data["name"] is None and data["emails"] in (None, [])


async def test_a_second_run_changes_nothing_and_a_dry_run_changes_nothing_but_answers_the_same() -> None:
    store = InMemoryEventStore()
    deals = [
        deal("Mộc", contact_id="c-1", contact=await sealed(store, "c-1", {"name": "Minh"})),
        deal("Mộc", contact_id="c-2", contact_erased=True),
        deal("Sen", "u-hoa", team="south"),
    ]
    before = await everything(store)
    dry = await adoptions(store).adopt(Source(deals), REASON, ADMIN_CTX, dry_run=True)
    assert await everything(store) == before and dry.position == 0
    assert not await store.personal_data.keys.is_erased(person_subject(person_id_for_contact("c-2")))
    done = await adoptions(store).adopt(Source(deals), REASON, ADMIN_CTX)
    assert done.model_dump(exclude={"dry_run", "position"}) == dry.model_dump(exclude={"dry_run", "position"})
    assert (done.organisations_made, done.deals_linked, done.people_made, done.people_erased) == (2, 3, 2, 1)
    after = await everything(store)
    again = await adoptions(store).adopt(Source(deals), REASON, ADMIN_CTX)  # the read model has not caught up
    assert again == AdoptionReport(dry_run=False) and await everything(store) == after


async def test_the_deals_contact_erased_later_erases_the_person_adopted_from_it_once() -> None:
    store = InMemoryEventStore()
    d = deal("Mộc", contact_id="c-1", contact=await sealed(store, "c-1", {"name": "Minh"}))
    await adoptions(store).adopt(Source([d]), REASON, ADMIN_CTX)
    person = person_id_for_contact("c-1")
    deals = InMemoryEventStore(store.personal_data)  # one key store, as the services share one
    erasure = DealContactErased(deal_id=d.deal_id, contact_id="c-1", reason="the customer asked", erased_at=NOW)
    await deals.append(f"deal-{d.deal_id}", [NewEvent(erasure, occurred_at=NOW)], expected_version=0)
    envelope = CloudEvent.from_recorded((await deals.read_stream(f"deal-{d.deal_id}"))[-1], "deals")
    for _ in range(2):  # a second delivery erases nothing more
        await contact_erased(store, store.personal_data.keys, envelope, envelope.data)
    _, erased = await events(store, person_stream(person))
    assert isinstance(erased, PersonPersonalDataErased) and erased.reason == f"the contact of deal {d.deal_id} erased"
    assert await store.personal_data.keys.is_erased(person_subject(person))
    other = dict(envelope.data, contact_id="c-none")  # nobody adopted from that contact: nothing
    await contact_erased(store, store.personal_data.keys, envelope, other)
    assert await store.stream_version(person_stream(person_id_for_contact("c-none"))) == 0


def auth(user: str, *roles: str, team: str | None = None) -> dict[str, str]:
    token = issue_token(TEST_KEYS, user_id=user, roles=roles, team=team)
    return {"Authorization": f"Bearer {token}"}


ADMIN = auth("u-admin", "admin")


@pytest.fixture
def client() -> Iterator[tuple[TestClient, InMemoryEventStore, list[DealRow]]]:
    async def ready() -> dict[str, str]:
        return {"store": "ok"}

    store = InMemoryEventStore()
    directory = Directory(store, lambda: NOW, ROLES)
    deals: list[DealRow] = []
    api = DirectoryAPI(
        directory, None, store.personal_data, ready, Customers(store, lambda: NOW, directory),
        adoptions=adoptions(store), adoption_source=Source(deals),
    )  # fmt: skip
    with TestClient(create_app(api, TokenVerifier(TEST_KEYS.public(), issuer="pipelines", audience="pipelines"))) as c:
        assert c.post("/teams", headers=ADMIN, json={"team_id": "north", "name": "North"}).status_code == 201
        yield c, store, deals


def test_the_route_is_admins_only_checks_its_input_and_answers_what_it_did(
    client: tuple[TestClient, InMemoryEventStore, list[DealRow]],
) -> None:
    c, _, deals = client
    deals += [deal("Mộc"), deal("Sen")]
    body = {"reason": REASON, "team_id": "north"}
    for who in (auth("u-lan", "sales", team="north"), auth("u-minh", "sales_manager", team="north")):
        assert c.post("/customers/adopt", json=body, headers=who).status_code == 403
    assert c.post("/customers/adopt", json=body | {"dry_run": True}, headers=auth("u-a", "auditor")).status_code == 403
    assert c.post("/customers/adopt", json=body).status_code == 401
    for bad, field in [
        ({"team_id": "north"}, "reason"),
        (body | {"reason": ""}, "reason"),
        (body | {"team_id": "North Team"}, "team_id"),
        (body | {"dry_run": "perhaps"}, "dry_run"),
        (body | {"extra": 1}, "extra"),
    ]:
        r = c.post("/customers/adopt", json=bad, headers=ADMIN)
        assert r.status_code == 422 and r.json()["errors"][0]["loc"][-1] == field, r.text
    r = c.post("/customers/adopt", json=body | {"team_id": "nowhere"}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "team_id"], r.text
    dry = c.post("/customers/adopt", json=body | {"dry_run": True}, headers=ADMIN)
    assert dry.status_code == 200 and (dry.json()["organisations_made"], dry.json()["deals_linked"]) == (2, 2)
    done = c.post("/customers/adopt", json=body, headers=ADMIN).json()
    assert (done["dry_run"], done["organisations_made"], done["deals_linked"]) == (False, 2, 2)
    assert done["position"] > 0
    again = c.post("/customers/adopt", json={"reason": REASON}, headers=ADMIN).json()
    assert (again["organisations_made"], again["deals_linked"], again["position"]) == (0, 0, 0)
