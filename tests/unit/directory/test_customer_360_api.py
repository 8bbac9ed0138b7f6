"""The customer 360's routes on the in-memory directory: rights before any read (another team's organisation 404,
a merged one answered as the one it was merged into), bad input 422 naming the field; the figures themselves are
tests/integration/test_customer_360.py's (the read model lives in PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from services.directory.api import DirectoryAPI, create_app
from services.directory.customers import Customers
from services.directory.handlers import Directory
from shared.edge.auth import ROLES, TokenVerifier
from shared.store.memory import InMemoryEventStore
from testkit.services import TEST_KEYS
from tests.unit.directory.test_customers_api import ADMIN, HOA, LAN, MINH, NOW, auth, organisation, register

MARKETING = auth("u-mkt", "marketing", team="north")


@pytest.fixture
def client() -> Iterator[TestClient]:
    """The directory without read models, its north and south teams and their salespeople registered."""

    async def ready() -> dict[str, str]:
        return {"store": "ok"}

    store = InMemoryEventStore()
    directory = Directory(store, lambda: NOW, ROLES)
    api = DirectoryAPI(directory, None, store.personal_data, ready, Customers(store, lambda: NOW, directory))
    with TestClient(create_app(api, TokenVerifier(TEST_KEYS.public(), issuer="pipelines", audience="pipelines"))) as c:
        for team in ("north", "south"):
            assert c.post("/teams", headers=ADMIN, json={"team_id": team, "name": team.title()}).status_code == 201
        for user, team in (("u-lan", "north"), ("u-hoa", "south")):
            body = {"user_id": user, "name": user, "email": f"{user}@example.vn", "team_id": team, "roles": ["sales"]}
            assert c.post("/users", headers=ADMIN, json=body).status_code == 201
        yield c


def test_the_360_is_seen_as_its_organisation_is(client: TestClient) -> None:
    north = register(client, LAN, organisation("Nhà hàng Sen", tax_code=None))
    assert client.get(f"/organisations/{uuid.uuid4()}/360", headers=LAN).status_code == 404
    assert client.get(f"/organisations/{north}/360", headers=HOA).status_code == 404  # the south's salesperson
    assert client.get(f"/organisations/{north}/360", headers=MARKETING).status_code == 403
    assert client.get("/organisations/not-an-id/360", headers=LAN).status_code == 422
    # seen: on to the read model, which this app has not
    assert client.get(f"/organisations/{north}/360", headers=LAN).status_code == 503
    assert client.get(f"/organisations/{north}/360", headers=ADMIN).status_code == 503


def test_the_customer_analytics_take_bounded_input(client: TestClient) -> None:
    path = "/analytics/customers/repeat-revenue"
    missing = client.get(path, headers=MINH)
    assert missing.status_code == 422 and {e["loc"][-1] for e in missing.json()["errors"]} == {"from", "to"}
    backwards = client.get(path, params={"from": "2026-12-01", "to": "2026-01-01"}, headers=MINH)
    assert backwards.status_code == 422
    bad = client.get("/analytics/customers/segments", params={"currency": "dong"}, headers=MINH)
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["query", "currency"]
    assert client.get("/analytics/customers/segments", headers=MARKETING).status_code == 403
    assert client.get("/analytics/customers/segments", headers=MINH).status_code == 503
