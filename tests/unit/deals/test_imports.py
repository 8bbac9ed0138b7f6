"""The deals' ``POST /imports/batches`` (issue 26, decision 0021) on the in-memory store: each row's opening and
commands land in one append with their own occurred times; a second send answers ``exists`` and appends nothing; a
refused row names its field and reason while the others land; a dry run appends nothing; a ``$import`` reference
becomes the directory's derived id; only the importer (and admin) import."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.deals.api import DealsAPI, create_app
from services.deals.handlers import Deals
from services.directory.replica import MemoryReplica
from services.directory.replica_customers import OrganisationRef
from shared.core.ids import import_id, is_client_id
from shared.edge.auth import TokenVerifier, issue_token
from shared.store.memory import InMemoryEventStore
from testkit.services import TEST_KEYS

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
ORG = import_id("pipedrive", "organisation", "55")


def auth(user: str, *roles: str, team: str | None = None) -> dict[str, str]:
    token = issue_token(TEST_KEYS, user_id=user, roles=roles, team=team)
    return {"Authorization": f"Bearer {token}"}


IMPORTER = auth("u-import", "importer")


def opening(title: str, **extra: Any) -> dict[str, Any]:
    return {"title": title, "customer": "Công ty Hòa Bình", "owner_id": "u-lan", "team_id": "north", **extra}


def row(n: int, key: str, *facts: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "row": n,
        "kind": "deal",
        "key": key,
        "facts": [{"command": c, "occurred_at": at, "body": body} for c, at, body in facts],
    }


def batch(*rows: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
    return {"source": "pipedrive", "dry_run": dry_run, "rows": list(rows)}


@pytest.fixture
def setup() -> Iterator[tuple[TestClient, InMemoryEventStore]]:
    store = InMemoryEventStore()
    replica = MemoryReplica().seed(("u-lan", "north"), ("u-tuan", "south"))
    replica.organisations[ORG] = OrganisationRef(ORG, "south", "u-tuan")

    async def ready() -> dict[str, str]:
        return {"store": "ok"}

    deals = Deals(store, lambda: NOW)
    api = DealsAPI(deals, store, None, store.personal_data, "Asia/Ho_Chi_Minh", ready, replica)
    with TestClient(create_app(api, TokenVerifier(TEST_KEYS.public(), issuer="pipelines", audience="pipelines"))) as c:
        c.portal.call(deals.ensure_default_pipeline)
        yield c, store


def deal_events(client: TestClient, store: InMemoryEventStore) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for r in client.portal.call(store.read_streams, "deal-"):
        out.setdefault(r.stream_id, []).append(r)
    return out


GOOD = row(
    2,
    "1234",
    (
        "open_deal",
        "2025-03-01T09:00:00+07:00",
        opening("Tủ lạnh cho chuỗi", value={"amount": "90000000", "currency": "VND"}),
    ),
    ("move_stage", "2025-03-09T10:00:00+07:00", {"stage_id": "contacted"}),
    ("move_stage", "2025-03-20T10:00:00+07:00", {"stage_id": "needs_discussed"}),
)
OTHER = row(3, "1235", ("open_deal", "2025-04-01T09:00:00+07:00", opening("Máy lạnh")))


def test_rows_land_back_dated_in_one_append_and_a_second_send_appends_nothing(
    setup: tuple[TestClient, InMemoryEventStore],
) -> None:
    client, store = setup
    first = client.post("/imports/batches", json=batch(GOOD, OTHER), headers=IMPORTER)
    assert first.status_code == 200, first.text
    results = first.json()["results"]
    deal_id = import_id("pipedrive", "deal", "1234")
    assert [(r["row"], r["status"], r["id"]) for r in results] == [
        (2, "created", str(deal_id)),
        (3, "created", str(import_id("pipedrive", "deal", "1235"))),
    ]
    assert not is_client_id(deal_id)  # a client can never name it first
    streams = deal_events(client, store)
    events = streams[f"deal-{deal_id}"]
    assert [e.event_type.rsplit(".", 1)[1] for e in events] == ["DealOpened", "StageChanged", "StageChanged"]
    assert [e.occurred_at for e in events] == [
        datetime(2025, 3, 1, 2, tzinfo=UTC),
        datetime(2025, 3, 9, 3, tzinfo=UTC),
        datetime(2025, 3, 20, 3, tzinfo=UTC),
    ]
    assert len({e.position for e in events}) == 3 and events[0].recorded_at == events[-1].recorded_at  # one append
    assert events[0].metadata["imported_from"] == "pipedrive/deal/1234"
    assert events[0].metadata["actor"] == "u-import"
    deal = client.get(f"/deals/{deal_id}", headers=auth("u-dir", "sales_director")).json()
    assert (deal["stage"]["stage_id"], deal["opened_at"][:10]) == ("needs_discussed", "2025-03-01")

    again = client.post("/imports/batches", json=batch(GOOD, OTHER), headers=IMPORTER)
    assert [r["status"] for r in again.json()["results"]] == ["exists", "exists"]
    assert {s: len(e) for s, e in deal_events(client, store).items()} == {s: len(e) for s, e in streams.items()}


def test_a_refused_row_names_its_field_and_the_others_land(setup: tuple[TestClient, InMemoryEventStore]) -> None:
    client, store = setup
    bad_stage = row(
        4,
        "9",
        ("open_deal", "2025-03-01T09:00:00+07:00", opening("A")),
        ("move_stage", "2025-03-02T09:00:00+07:00", {"stage_id": "nowhere"}),
    )
    bad_body = row(5, "10", ("open_deal", "2025-03-01T09:00:00+07:00", opening("B", value={"amount": "x"})))
    out_of_order = row(
        6,
        "11",
        ("open_deal", "2025-03-05T09:00:00+07:00", opening("C")),
        ("move_stage", "2025-03-02T09:00:00+07:00", {"stage_id": "contacted"}),
    )
    future = row(7, "12", ("open_deal", "2027-01-01T00:00:00+07:00", opening("D")))
    unknown_owner = row(8, "13", ("open_deal", "2025-03-01T09:00:00+07:00", opening("E", owner_id="u-nobody")))
    wrong_kind = {**OTHER, "row": 9, "kind": "person"}
    from_lead = row(
        10, "14", ("open_deal", "2025-03-01T09:00:00+07:00", opening("F", source_lead_id=str(uuid.uuid4())))
    )
    answer = client.post(
        "/imports/batches",
        json=batch(bad_stage, OTHER, bad_body, out_of_order, future, unknown_owner, wrong_kind, from_lead),
        headers=IMPORTER,
    )
    assert answer.status_code == 200, answer.text
    results = {r["row"]: r for r in answer.json()["results"]}
    assert results[3]["status"] == "created"
    assert {n: r["status"] for n, r in results.items() if n != 3} == dict.fromkeys((4, 5, 6, 7, 8, 9, 10), "refused")
    fields = {n: [e["field"] for e in r["errors"]] for n, r in results.items()}
    assert fields[4] == ["facts[1]"] and "unknown_stage" in results[4]["errors"][0]["reason"]
    assert fields[5] == ["facts[0].body.value.amount"]
    assert fields[6] == ["facts[1].occurred_at"]
    assert fields[7] == ["facts[0].occurred_at"]
    assert fields[8] == ["facts[0].body.owner_id"]
    assert fields[9] == ["kind"]
    assert fields[10] == ["facts[0].body.source_lead_id"]
    assert list(deal_events(client, store)) == [f"deal-{import_id('pipedrive', 'deal', '1235')}"]


def test_a_dry_run_decides_every_row_and_appends_nothing(setup: tuple[TestClient, InMemoryEventStore]) -> None:
    client, store = setup
    unknown_org = row(
        3,
        "77",
        (
            "open_deal",
            "2025-04-01T09:00:00+07:00",
            opening("F", organisation_id={"$import": {"kind": "organisation", "key": "999"}}),
        ),
    )
    bad = row(4, "78", ("open_deal", "2025-04-01T09:00:00+07:00", opening("G", stage_id="nowhere")))
    answer = client.post("/imports/batches", json=batch(GOOD, unknown_org, bad, dry_run=True), headers=IMPORTER)
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["created", "created", "refused"]
    assert results[1]["unchecked"] == ["facts[0].body.organisation_id"]
    assert deal_events(client, store) == {}
    real = client.post("/imports/batches", json=batch(unknown_org), headers=IMPORTER).json()["results"][0]
    assert (real["status"], real["errors"][0]["field"]) == ("refused", "facts[0].body.organisation_id")


def test_an_import_reference_becomes_the_directory_s_derived_id(setup: tuple[TestClient, InMemoryEventStore]) -> None:
    client, _ = setup
    linked = row(
        3,
        "88",
        (
            "open_deal",
            "2025-04-01T09:00:00+07:00",
            opening("H", organisation_id={"$import": {"kind": "organisation", "key": "55"}}),
        ),
    )
    (result,) = client.post("/imports/batches", json=batch(linked), headers=IMPORTER).json()["results"]
    assert result["status"] == "created", result
    deal = client.get(f"/deals/{result['id']}", headers=auth("u-admin", "admin")).json()
    assert deal["organisation_id"] == str(ORG)  # another team's organisation: an import is the company's


@pytest.mark.parametrize("roles", [("sales",), ("sales_director",)])
def test_only_the_importer_and_admin_import(
    setup: tuple[TestClient, InMemoryEventStore], roles: tuple[str, ...]
) -> None:
    client, store = setup
    assert (
        client.post("/imports/batches", json=batch(OTHER), headers=auth("u-lan", *roles, team="north")).status_code
        == 403
    )
    assert client.post("/imports/batches", json=batch(OTHER), headers=auth("u-admin", "admin")).status_code == 200
    assert len(deal_events(client, store)) == 1


def test_the_batch_is_bounded(setup: tuple[TestClient, InMemoryEventStore]) -> None:
    client, _ = setup
    too_many = batch(*[{**OTHER, "key": str(i)} for i in range(501)])
    assert client.post("/imports/batches", json=too_many, headers=IMPORTER).status_code == 422
    bad_source = {**batch(OTHER), "source": "Pipe Drive"}
    answer = client.post("/imports/batches", json=bad_source, headers=IMPORTER)
    assert answer.status_code == 422 and answer.json()["errors"][0]["loc"] == ["body", "source"]
    bad_ref = row(3, "5", ("open_deal", "2025-04-01T09:00:00+07:00", opening("I", organisation_id={"$import": "55"})))
    (result,) = client.post("/imports/batches", json=batch(bad_ref), headers=IMPORTER).json()["results"]
    assert (result["status"], result["errors"][0]["field"]) == ("refused", "facts[0].body.organisation_id")
    assert uuid.UUID(result["id"]).version == 5
