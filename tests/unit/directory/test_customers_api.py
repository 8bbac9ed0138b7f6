"""Organisations and people through the directory API on the in-memory store: owners and teams checked against
the directory (422 naming the field), one organisation per tax code (409 naming the holder), scope as for deals
(another team's: 404), merges kept on both streams and followed by reads, a person sealed and erased."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from services.directory import customers as customers_module
from services.directory.api import DirectoryAPI, create_app
from services.directory.customers import Customers
from services.directory.events import TaxCodeClaimed
from services.directory.handlers import Directory
from shared.edge.auth import ROLES, TokenVerifier, issue_token
from shared.privacy.pii import is_token
from shared.store import NewEvent
from shared.store.memory import InMemoryEventStore
from testkit.services import TEST_KEYS

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)


def auth(user: str, *roles: str, team: str | None = None) -> dict[str, str]:
    token = issue_token(TEST_KEYS, user_id=user, roles=roles, team=team)
    return {"Authorization": f"Bearer {token}"}


ADMIN = auth("u-admin", "admin")
AUDITOR = auth("u-audit", "auditor")
LAN = auth("u-lan", "sales", team="north")  # a salesperson of the north
MINH = auth("u-minh", "sales_manager", team="north")
HOA = auth("u-hoa", "sales", team="south")


@pytest.fixture
def store() -> InMemoryEventStore:
    return InMemoryEventStore()


@pytest.fixture
def client(store: InMemoryEventStore) -> Iterator[TestClient]:
    async def ready() -> dict[str, str]:
        return {"store": "ok"}

    directory = Directory(store, lambda: NOW, ROLES)
    customers = Customers(store, lambda: NOW, directory)
    api = DirectoryAPI(directory, None, store.personal_data, ready, customers)
    with TestClient(create_app(api, TokenVerifier(TEST_KEYS.public(), issuer="pipelines", audience="pipelines"))) as c:
        for team in ("north", "south"):
            assert c.post("/teams", headers=ADMIN, json={"team_id": team, "name": team.title()}).status_code == 201
        for u, team, role in (
            ("u-lan", "north", "sales"),
            ("u-minh", "north", "sales_manager"),
            ("u-hoa", "south", "sales"),
        ):
            body = {"user_id": u, "name": u, "email": f"{u}@example.vn", "team_id": team, "roles": [role]}
            assert c.post("/users", headers=ADMIN, json=body).status_code == 201
        yield c


def organisation(name: str = "Gạch Men Thăng Long", **extra: object) -> dict[str, object]:
    return {
        "name": name,
        "tax_code": "0100109106",
        "addresses": [{"line": "1 Tràng Tiền", "province": "ha-noi", "label": "head office"}],
        "industry": "construction",
        "owner_id": "u-lan",
        "team_id": "north",
    } | extra


def register(client: TestClient, headers: dict[str, str], body: dict[str, object]) -> str:
    r = client.post("/organisations", headers=headers, json=body)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/organisations/{r.json()['id']}"
    return str(r.json()["id"])


def test_owner_team_and_tax_code_are_checked_naming_the_field(client: TestClient) -> None:
    for bad, field, rule in (
        ({"owner_id": "u-ghost"}, "owner_id", "unknown_user"),
        ({"team_id": "east"}, "team_id", "unknown_team"),
        ({"owner_id": "u-hoa"}, "owner_id", "owner_not_in_team"),
    ):
        r = client.post("/organisations", headers=ADMIN, json=organisation(**bad))
        assert (r.status_code, r.json()["rule"], r.json()["errors"][0]["loc"]) == (422, rule, ["body", field]), bad
    r = client.post("/organisations", headers=ADMIN, json=organisation(tax_code="0100109107"))
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "tax_code"]
    r = client.post("/organisations", headers=ADMIN, json=organisation(addresses=[{"line": "x", "province": "hanoi"}]))
    assert r.status_code == 422 and r.json()["errors"][0]["loc"][:4] == ["body", "addresses", 0, "province"]


def test_a_tax_code_is_one_organisations_and_the_refusal_names_the_holder(client: TestClient) -> None:
    first = register(client, LAN, organisation())
    r = client.post("/organisations", headers=MINH, json=organisation("Thang Long Tiles", tax_code="0100.109.106"))
    assert (r.status_code, r.json()["rule"], r.json()["existing"]) == (409, "tax_code_taken", first)
    branch = register(client, LAN, organisation("Thăng Long — Đà Nẵng", tax_code="0100109106-001"))
    r = client.put(f"/organisations/{branch}", headers=LAN, json=organisation(tax_code="0100109106", reason="x"))
    assert r.status_code == 422  # owner/team are not details: the body is refused whole
    details = {"name": "Thăng Long — Đà Nẵng", "tax_code": "0100109106", "reason": "typo"}
    r = client.put(f"/organisations/{branch}", headers=LAN, json=details)
    assert (r.status_code, r.json()["existing"]) == (409, first)
    # the first gives its code up: the branch may take it
    assert (
        client.put(f"/organisations/{first}", headers=LAN, json={"name": "TL", "reason": "no code"}).status_code == 200
    )
    assert client.put(f"/organisations/{branch}", headers=LAN, json=details).status_code == 200
    key = LAN | {"Idempotency-Key": "org-1"}
    once = client.post("/organisations", headers=key, json=organisation("Vinamilk", tax_code="0300588569"))
    again = client.post("/organisations", headers=key, json=organisation("Vinamilk", tax_code="0300588569"))
    assert (once.status_code, again.status_code, once.json()["id"]) == (201, 200, again.json()["id"])


def test_scope_as_for_deals_another_teams_customer_is_not_there(client: TestClient) -> None:
    north = register(client, LAN, organisation())
    assert client.post("/organisations", headers=LAN, json=organisation(owner_id="u-minh")).status_code == 403
    assert client.post("/organisations", headers=HOA, json=organisation(tax_code=None)).status_code == 403
    assert client.get(f"/organisations/{north}", headers=HOA).status_code == 404
    assert client.get(f"/organisations/{north}/history", headers=HOA).status_code == 404
    assert client.get(f"/organisations/{uuid.uuid4()}", headers=AUDITOR).status_code == 404
    r = client.put(f"/organisations/{north}", headers=HOA, json={"name": "mine now", "reason": "x"})
    assert r.status_code == 404
    r = client.post(
        "/people", headers=HOA, json={"name": "X", "organisation_id": north, "owner_id": "u-hoa", "team_id": "south"}
    )
    assert r.status_code == 404
    r = client.post("/people", headers=LAN, json={"name": "X", "organisation_id": str(uuid.uuid4())})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "organisation_id"]
    view = client.get(f"/organisations/{north}", headers=MINH).json()
    assert view["addresses"][0]["province_name"] == "Hà Nội" and view["owner_id"] == "u-lan"
    r = client.post(
        f"/organisations/{north}/reassign", headers=LAN, json={"owner_id": "u-minh", "team_id": "north", "reason": "x"}
    )
    assert r.status_code == 403  # handing it to someone else is the manager's call
    r = client.post(
        f"/organisations/{north}/reassign",
        headers=MINH,
        json={"owner_id": "u-minh", "team_id": "north", "reason": "leave"},
    )
    assert r.status_code == 200
    history = client.get(f"/organisations/{north}/history", headers=LAN).json()["items"]
    assert [(h["type"].rsplit(".", 1)[1], h["actor"], h["reason"]) for h in history] == [
        ("OrganisationRegistered", "u-lan", None),
        ("OrganisationReassigned", "u-minh", "leave"),
    ]


def test_a_merge_keeps_both_histories_and_reads_follow_it(client: TestClient) -> None:
    source = register(client, LAN, organisation("Thang Long", tax_code=None))
    target = register(client, LAN, organisation())
    assert (
        client.post(f"/organisations/{source}/merge", headers=LAN, json={"into": target, "reason": "dup"}).status_code
        == 403
    )
    r = client.post(f"/organisations/{source}/merge", headers=MINH, json={"into": str(uuid.uuid4()), "reason": "dup"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "into"]
    r = client.post(f"/organisations/{source}/merge", headers=MINH, json={"into": target, "reason": "same company"})
    assert r.status_code == 200, r.text
    read = client.get(f"/organisations/{source}", headers=LAN).json()
    assert (read["organisation_id"], read["read_from"], read["merged_from"]) == (target, source, [source])
    r = client.put(f"/organisations/{source}", headers=LAN, json={"name": "again", "reason": "x"})
    assert (r.status_code, r.json()["rule"]) == (409, "merged")
    types = [
        h["type"].rsplit(".", 1)[1] for h in client.get(f"/organisations/{source}/history", headers=LAN).json()["items"]
    ]
    assert types == ["OrganisationRegistered", "OrganisationMerged"]
    types = [
        h["type"].rsplit(".", 1)[1] for h in client.get(f"/organisations/{target}/history", headers=LAN).json()["items"]
    ]
    assert types == ["OrganisationRegistered", "OrganisationAbsorbed"]
    # the source's tax code (none here) and the target's are the target's: taken, naming it
    r = client.post("/organisations", headers=LAN, json=organisation("Copy"))
    assert r.json()["existing"] == target


def test_a_person_is_sealed_merged_and_erased_by_an_admin_only(client: TestClient, store: InMemoryEventStore) -> None:
    org = register(client, LAN, organisation())
    body = {
        "organisation_id": org,
        "name": "Trần Thị Mai",
        "title": "Kế toán trưởng",
        "phones": ["0912 345 678"],
        "emails": ["Mai@ThangLong.VN"],
        "zalo_id": "mai.tran",
        "consent": {"marketing": True},
    }
    r = client.post("/people", headers=LAN, json=body)
    assert r.status_code == 201, r.text
    mai = r.json()["id"]
    dup = client.post("/people", headers=LAN, json=body | {"phones": []}).json()["id"]
    view = client.get(f"/people/{mai}", headers=MINH).json()
    assert (view["name"], view["phones"], view["emails"], view["owner_id"], view["team_id"]) == (
        "Trần Thị Mai",
        ["+84912345678"],
        ["mai@thanglong.vn"],
        "u-lan",
        "north",
    )
    stored = asyncio.run(store.read_stream(f"directory-person-{mai}"))[0].data
    assert all(is_token(stored[f]) for f in ("name", "title", "phones", "emails", "zalo_id")) and "Mai" not in str(
        stored
    )
    assert client.get(f"/people/{mai}", headers=HOA).status_code == 404
    r = client.post(f"/people/{dup}/merge", headers=MINH, json={"into": mai, "reason": "same person"})
    assert r.status_code == 200
    assert client.get(f"/people/{dup}", headers=LAN).json()["person_id"] == mai
    assert client.post(f"/people/{mai}/erase", headers=MINH, json={"reason": "asked"}).status_code == 403
    assert client.post(f"/people/{mai}/erase", headers=ADMIN, json={"reason": "asked"}).status_code == 200
    gone = client.get(f"/people/{mai}", headers=ADMIN).json()
    assert (gone["name"], gone["phones"], gone["erased"], gone["team_id"]) == (None, None, True, "north")
    history = client.get(f"/people/{mai}/history", headers=AUDITOR).json()["items"]
    assert history[0]["data"]["name"] is None and history[-1]["reason"] == "asked"
    r = client.put(f"/people/{mai}", headers=LAN, json={"name": "Mai", "reason": "x"})
    assert r.json()["rule"] == "person_erased"
    assert client.get(f"/people/{dup}", headers=ADMIN).json()["name"] is None  # reads as Mai: erased


def test_a_claim_whose_registration_never_came_holds_the_tax_code_a_minute_only(
    client: TestClient, store: InMemoryEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ghost = uuid.uuid4()  # a registration that crashed between its claim and its event
    claim = NewEvent(TaxCodeClaimed(tax_code="0300588569", organisation_id=ghost))
    asyncio.run(store.append("directory-taxcode-0300588569", [claim], expected_version=0))
    r = client.post("/organisations", headers=LAN, json=organisation("Vinamilk", tax_code="0300588569"))
    assert (r.status_code, r.json()["existing"]) == (409, str(ghost))  # under way, as far as anyone knows
    monkeypatch.setattr(customers_module, "STALE_CLAIM", timedelta(0))
    taken = register(client, LAN, organisation("Vinamilk", tax_code="0300588569"))
    claims = asyncio.run(store.read_stream("directory-taxcode-0300588569"))
    assert [c.data["organisation_id"] for c in claims] == [str(ghost), taken]
