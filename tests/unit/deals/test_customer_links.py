"""A deal's customer in the directory (issue 24 item 3, decision 0017): the link as events (given events, a
command, the events it decides), the reaction to the directory's conversion link in either order with the deal's
opening, and the route's checks against the replica (unknown: 422 naming the field; another team's: 404; a merged
organisation followed)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from services.deals import domain
from services.deals.api import DealsAPI, create_app
from services.deals.events import DealCustomerLinked, DealOpened, deal_id_for_lead
from services.deals.handlers import Deals
from services.directory.events import CustomerLinked
from services.directory.replica import MemoryReplica
from services.directory.replica_customers import OrganisationRef, PersonRef
from services.leads.events import Attribution, LeadConverted
from shared.core.money import Money
from shared.edge.auth import TokenVerifier, issue_token
from shared.store.memory import InMemoryEventStore
from testkit.services import TEST_KEYS
from tests.unit.deals.test_reactions import deliver, envelope
from tests.unit.deals.test_rules import OPENED, PIPELINE, build, run

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
ORG = uuid.UUID("00000000-0000-0000-0000-00000000a001")
ORG_SOUTH = uuid.UUID("00000000-0000-0000-0000-00000000a002")
ORG_DUP = uuid.UUID("00000000-0000-0000-0000-00000000a003")  # merged into ORG
PERSON = uuid.UUID("00000000-0000-0000-0000-00000000b001")
PERSON_SOUTH = uuid.UUID("00000000-0000-0000-0000-00000000b002")


# ---------------------------------------------------------------------------------------------- the rules
def test_opening_with_an_organisation_records_the_link_after_the_opening() -> None:
    events = run(domain.Deal(), OPENED.model_copy(update={"organisation_id": ORG, "person_ids": (PERSON,)}))
    assert [type(e) for e in events] == [DealOpened, DealCustomerLinked]
    assert (events[1].organisation_id, events[1].person_ids) == (ORG, (PERSON,))


def test_a_link_replaces_the_last_and_the_same_link_again_changes_nothing() -> None:
    deal = build(OPENED, domain.LinkCustomer(organisation_id=ORG))
    assert deal.organisation_id == ORG
    assert run(deal, domain.LinkCustomer(organisation_id=ORG)) == []
    (moved,) = run(deal, domain.LinkCustomer(organisation_id=ORG_SOUTH, person_ids=(PERSON_SOUTH,), reason="typo"))
    assert (moved.organisation_id, moved.person_ids, moved.reason) == (ORG_SOUTH, (PERSON_SOUTH,), "typo")
    with pytest.raises(domain.InvalidCommandError) as refused:
        run(deal, domain.LinkCustomer(organisation_id=ORG, person_ids=(PERSON, PERSON)))
    assert refused.value.rule == "duplicate_person"


def test_people_need_their_organisation() -> None:
    with pytest.raises(ValueError, match="person_ids need the organisation_id"):
        domain.OpenDeal(title="t", customer="c", owner_id="u", person_ids=(PERSON,))


def test_a_conversion_link_before_the_opening_is_restated_by_it() -> None:
    d = uuid.uuid4()
    (early,) = domain.link_conversion(domain.Deal(), ORG, (PERSON,), uuid.uuid4(), "email", d)
    state = domain.deal_decider.fold([early], domain.Deal())
    assert state.status is domain.Status.NONE and state.organisation_id == ORG
    opened, restated = domain.decide(state, OPENED, PIPELINE, NOW, d)
    assert isinstance(opened, DealOpened) and isinstance(restated, DealCustomerLinked)
    assert (restated.organisation_id, restated.person_ids) == (ORG, (PERSON,))
    after = domain.deal_decider.fold([opened, restated], state)
    assert (after.status, after.organisation_id, after.person_ids) == (domain.Status.OPEN, ORG, (PERSON,))
    assert domain.link_conversion(after, ORG, (PERSON,), None, "email", d) == []


# ---------------------------------------------------------------------------------------------- the reaction
def converted(lead: uuid.UUID) -> LeadConverted:
    return LeadConverted(
        lead_id=lead,
        customer="Nhà hàng Sen",
        owner_id="u-lan",
        team_id="north",
        title="Tủ mát",
        contact=None,
        estimated_value=Money.of(40_000_000),
        attribution=Attribution(source="website_form"),
    )


def linked(lead: uuid.UUID) -> CustomerLinked:
    return CustomerLinked(
        lead_id=lead,
        deal_id=deal_id_for_lead(lead),
        organisation_id=ORG,
        person_id=PERSON,
        matched_by="phone",
        team_id="north",
        linked_at=NOW,
    )


@pytest.mark.parametrize("link_first", [False, True], ids=["opened-then-linked", "linked-then-opened"])
async def test_the_conversion_link_reaches_the_deal_in_either_order_once(link_first: bool) -> None:
    store = InMemoryEventStore()
    deals = Deals(store, lambda: NOW)
    await deals.ensure_default_pipeline()
    other = InMemoryEventStore(store.personal_data)
    lead = uuid.uuid4()
    conversion = await envelope(other, f"lead-{lead}", converted(lead))
    link = await envelope(other, f"directory-conversion-{lead}", linked(lead))
    order = [link, conversion] if link_first else [conversion, link]
    for e in [*order, *order]:  # each delivered twice
        await deliver(deals, other, e)
    loaded = await deals.deal(deal_id_for_lead(lead))
    assert (loaded.state.status, loaded.state.organisation_id, loaded.state.person_ids) == (
        domain.Status.OPEN,
        ORG,
        (PERSON,),
    )
    types = [e.event_type.rsplit(".", 1)[1] for e in loaded.events]
    if link_first:  # the link, the opening, the link restated for the read models
        assert types == ["DealCustomerLinked", "DealOpened", "DealCustomerLinked"]
    else:
        assert types == ["DealOpened", "DealCustomerLinked"]
    assert loaded.events[-1].metadata["actor"] == "system:deals-reactions"


# ---------------------------------------------------------------------------------------------- the route
def auth(user: str, *roles: str, team: str | None = "north") -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_token(TEST_KEYS, user_id=user, roles=roles, team=team)}


LAN = auth("u-lan", "sales")
BINH = auth("u-binh", "sales")
DIRECTOR = auth("u-dir", "sales_director", team=None)
DEAL = {"title": "Tủ mát", "customer": "Nhà hàng Sen", "owner_id": "u-lan", "team_id": "north"}


@pytest.fixture
def client() -> Iterator[TestClient]:
    store = InMemoryEventStore()
    replica = MemoryReplica().seed(("u-lan", "north"), ("u-binh", "north"), ("u-tuan", "south"))
    replica.organisations.update(
        {
            ORG: OrganisationRef(ORG, "north", "u-lan"),
            ORG_SOUTH: OrganisationRef(ORG_SOUTH, "south", "u-tuan"),
            ORG_DUP: OrganisationRef(ORG_DUP, "north", "u-lan", merged_into=ORG),
        }
    )
    replica.people.update(
        {PERSON: PersonRef(PERSON, ORG_DUP, "north"), PERSON_SOUTH: PersonRef(PERSON_SOUTH, ORG_SOUTH, "south")}
    )

    async def ready() -> dict[str, str]:
        return {"store": "ok"}

    deals = Deals(store, lambda: NOW)
    api = DealsAPI(deals, store, None, store.personal_data, "Asia/Ho_Chi_Minh", ready, replica)
    with TestClient(create_app(api, TokenVerifier(TEST_KEYS.public(), issuer="pipelines", audience="pipelines"))) as c:
        c.portal.call(deals.ensure_default_pipeline)
        yield c


def test_the_link_route_checks_the_customer_against_the_replica(client: TestClient) -> None:
    opened = client.post("/deals", json=DEAL, headers=LAN)
    assert opened.status_code == 201, opened.text
    deal = opened.json()["id"]
    link = f"/deals/{deal}/link-customer"

    unknown = client.post(link, json={"organisation_id": str(uuid.uuid4())}, headers=LAN)
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["loc"] == ["body", "organisation_id"]
    assert client.post(link, json={"organisation_id": str(ORG_SOUTH)}, headers=LAN).status_code == 404
    stranger = client.post(link, json={"organisation_id": str(ORG), "person_ids": [str(PERSON_SOUTH)]}, headers=LAN)
    assert stranger.status_code == 422
    assert stranger.json()["errors"][0]["loc"] == ["body", "person_ids"]
    assert client.post(link, json={"organisation_id": str(ORG)}, headers=BINH).status_code == 404  # not his deal
    assert client.post(link, json={"organisation_id": "not-a-uuid"}, headers=LAN).status_code == 422

    # the duplicate merged into ORG: the link names ORG (its person was the duplicate's: one of ORG's now)
    done = client.post(link, json={"organisation_id": str(ORG_DUP), "person_ids": [str(PERSON)]}, headers=LAN)
    assert done.status_code == 200, done.text
    state = client.get(f"/deals/{deal}", headers=LAN).json()
    assert (state["organisation_id"], state["person_ids"]) == (str(ORG), [str(PERSON)])
    stale = client.post(link, json={"organisation_id": str(ORG)}, headers=LAN | {"If-Match": '"1"'})
    assert stale.status_code == 412


def test_opening_with_an_organisation_is_checked_and_a_director_links_any_team(client: TestClient) -> None:
    south = DEAL | {"organisation_id": str(ORG_SOUTH)}
    assert client.post("/deals", json=south, headers=LAN).status_code == 404
    bad = client.post("/deals", json=DEAL | {"organisation_id": str(uuid.uuid4())}, headers=LAN)
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["body", "organisation_id"]
    lonely = client.post("/deals", json=DEAL | {"person_ids": [str(PERSON)]}, headers=LAN)
    assert lonely.status_code == 422
    opened = client.post("/deals", json=DEAL | {"organisation_id": str(ORG)}, headers=LAN)
    assert opened.status_code == 201 and opened.json()["version"] == 2
    deal = opened.json()["id"]
    moved = client.post(f"/deals/{deal}/link-customer", json={"organisation_id": str(ORG_SOUTH)}, headers=DIRECTOR)
    assert moved.status_code == 200, moved.text
    assert client.get(f"/deals/{deal}", headers=LAN).json()["organisation_id"] == str(ORG_SOUTH)


@pytest.mark.parametrize(
    "path",
    [
        "/deals",
        "/board",
        "/forecast",
        "/analytics/scorecard?period=2026-11",
        "/analytics/success-factors",
        "/analytics/next-steps",
    ],
)
def test_a_filter_by_organisation_is_checked_before_any_read(client: TestClient, path: str) -> None:
    manager = auth("u-mai", "sales_manager")
    sep = "&" if "?" in path else "?"
    unknown = client.get(f"{path}{sep}organisation_id={uuid.uuid4()}", headers=manager)
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["loc"] == ["query", "organisation_id"]
    assert client.get(f"{path}{sep}organisation_id={ORG_SOUTH}", headers=manager).status_code == 404
    assert client.get(f"{path}{sep}organisation_id=x", headers=manager).status_code == 422
    # known and the caller's (or merged into theirs): on to the read model, which this app has not (503)
    assert client.get(f"{path}{sep}organisation_id={ORG_DUP}", headers=manager).status_code == 503
