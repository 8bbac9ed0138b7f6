"""The directory's ``POST /imports/batches`` (issue 26, decision 0021) on the in-memory store: organisations land
before the people of the same batch who name them by ``$import``; each row back-dated in one append, personal data
sealed; a second send answers ``exists`` and appends nothing; a refused row (an unknown owner, a tax code held by
another) names its field while the others land; a dry run appends nothing and claims no tax code; only the importer
(and admin) import."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.directory.api import DirectoryAPI, create_app
from services.directory.customers import Customers
from services.directory.handlers import Directory
from shared.core.ids import import_id
from shared.edge.auth import ROLES, TokenVerifier, issue_token
from shared.privacy.pii import is_token
from shared.store.memory import InMemoryEventStore
from testkit.services import TEST_KEYS

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)


def auth(user: str, *roles: str, team: str | None = None) -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_token(TEST_KEYS, user_id=user, roles=roles, team=team)}


ADMIN = auth("u-admin", "admin")
IMPORTER = auth("u-import", "importer")


@pytest.fixture
def setup() -> Iterator[tuple[TestClient, InMemoryEventStore]]:
    store = InMemoryEventStore()

    async def ready() -> dict[str, str]:
        return {"store": "ok"}

    directory = Directory(store, lambda: NOW, ROLES)
    api = DirectoryAPI(directory, None, store.personal_data, ready, Customers(store, lambda: NOW, directory))
    with TestClient(create_app(api, TokenVerifier(TEST_KEYS.public(), issuer="pipelines", audience="pipelines"))) as c:
        assert c.post("/teams", headers=ADMIN, json={"team_id": "north", "name": "North"}).status_code == 201
        body = {"user_id": "u-lan", "name": "Lan", "email": "lan@example.vn", "team_id": "north", "roles": ["sales"]}
        assert c.post("/users", headers=ADMIN, json=body).status_code == 201
        yield c, store


def fact(command: str, at: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"command": command, "occurred_at": at, "body": body}


def organisation(n: int, key: str, tax_code: str | None = "0100109106", **extra: Any) -> dict[str, Any]:
    body = {"name": f"Gạch Men {key}", "tax_code": tax_code, "owner_id": "u-lan", "team_id": "north", **extra}
    return {
        "row": n,
        "kind": "organisation",
        "key": key,
        "facts": [fact("register", "2024-05-01T09:00:00+07:00", body)],
    }


PERSON = {
    "row": 9,
    "kind": "person",
    "key": "p-7",
    "facts": [
        fact(
            "register",
            "2024-05-02T09:00:00+07:00",
            {
                "name": "Phạm Thu Hà",
                "emails": ["ha.pham@thanglong.vn"],
                "organisation_id": {"$import": {"kind": "organisation", "key": "55"}},
            },
        ),
        fact("change", "2024-06-02T09:00:00+07:00", {"name": "Phạm Thu Hà", "title": "CFO", "reason": "promoted"}),
    ],
}


def batch(*rows: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
    return {"source": "pipedrive", "dry_run": dry_run, "rows": list(rows)}


def counts(client: TestClient, store: InMemoryEventStore) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in client.portal.call(store.read_streams, "directory-"):
        out[r.stream_id] = out.get(r.stream_id, 0) + 1
    return out


def test_people_land_after_their_organisations_sealed_and_once(setup: tuple[TestClient, InMemoryEventStore]) -> None:
    client, store = setup
    answer = client.post("/imports/batches", json=batch(PERSON, organisation(2, "55")), headers=IMPORTER)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    org, person = import_id("pipedrive", "organisation", "55"), import_id("pipedrive", "person", "p-7")
    assert [(r["row"], r["status"], r["id"]) for r in results] == [
        (9, "created", str(person)),
        (2, "created", str(org)),
    ]
    assert results[1]["stream_id"] == f"directory-organisation-{org}" and results[1]["version"] == 1
    events = list(client.portal.call(store.read_streams, "directory-person-"))
    assert events[0].data["organisation_id"] == str(org)
    assert (events[0].data["owner_id"], events[0].data["team_id"]) == ("u-lan", "north")  # the organisation's
    assert is_token(events[0].data["name"])  # personal data sealed
    assert events[1].occurred_at == datetime(2024, 6, 2, 2, tzinfo=UTC)
    got = client.get(f"/organisations/{org}", headers=ADMIN).json()
    assert got["tax_code"] == "0100109106"

    before = counts(client, store)
    again = client.post("/imports/batches", json=batch(PERSON, organisation(2, "55")), headers=IMPORTER).json()
    assert [r["status"] for r in again["results"]] == ["exists", "exists"]
    assert counts(client, store) == before


def test_refused_rows_name_their_field_and_a_dry_run_writes_nothing(
    setup: tuple[TestClient, InMemoryEventStore],
) -> None:
    client, store = setup
    before = counts(client, store)
    dry = client.post("/imports/batches", json=batch(organisation(2, "55"), PERSON, dry_run=True), headers=IMPORTER)
    results = dry.json()["results"]
    assert [r["status"] for r in results] == ["created", "created"]
    assert results[1]["unchecked"] == ["facts[0].body.organisation_id"]
    assert counts(client, store) == before  # nothing appended, no tax code claimed

    same_code = organisation(3, "56")  # the tax code of row 2's organisation
    ghost = organisation(4, "57", tax_code=None, owner_id="u-ghost")
    answer = client.post("/imports/batches", json=batch(organisation(2, "55"), same_code, ghost), headers=IMPORTER)
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["created", "refused", "refused"]
    assert "tax_code_taken" in results[1]["errors"][0]["reason"]
    assert results[2]["errors"][0]["field"] == "facts[0].body.owner_id"


@pytest.mark.parametrize("roles", [("sales",)])
def test_only_the_importer_and_admin_import(
    setup: tuple[TestClient, InMemoryEventStore], roles: tuple[str, ...]
) -> None:
    client, store = setup
    before = counts(client, store)
    denied = client.post(
        "/imports/batches", json=batch(organisation(2, "55")), headers=auth("u-x", *roles, team="north")
    )
    assert denied.status_code == 403
    assert counts(client, store) == before
    assert client.post("/imports/batches", json=batch(organisation(2, "55")), headers=ADMIN).status_code == 200
