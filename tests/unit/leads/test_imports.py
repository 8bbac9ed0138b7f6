"""The leads' ``POST /imports/batches`` (issue 26, decision 0021) on the in-memory store: a lead's capture and its
lifecycle land back-dated in one append, a person seen before flagged as a capture flags it; a second send answers
``exists`` and appends nothing; a refused row names its field while the others land; a dry run appends nothing;
a ``$import`` reference resolved; a spend row goes to its campaign; only the importer (and admin) import."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.leads import domain
from services.leads.api import LeadsAPI, create_app
from services.leads.handlers import InMemoryDedupe, Leads
from shared.core.ids import import_id
from shared.core.money import Money
from shared.edge.auth import TokenVerifier, issue_token
from shared.ops.settings import Settings
from shared.store.commands import Context
from shared.store.memory import InMemoryEventStore
from testkit.apps import replica
from testkit.services import TEST_KEYS

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def auth(user: str, *roles: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_token(TEST_KEYS, user_id=user, roles=roles, team="north")}


IMPORTER = auth("u-import", "importer")


def lead(n: int, key: str, email: str, *facts: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    capture = {"source": "hubspot", "external_id": key, "contact": {"name": "Trần Văn Minh", "email": email}}
    return {
        "row": n,
        "kind": "lead",
        "key": key,
        "facts": [
            {"command": "capture", "occurred_at": "2025-02-01T09:00:00+07:00", "body": capture},
            *({"command": c, "occurred_at": at, "body": body} for c, at, body in facts),
        ],
    }


def batch(*rows: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
    return {"source": "hubspot", "dry_run": dry_run, "rows": list(rows)}


@pytest.fixture
def setup() -> Iterator[tuple[TestClient, InMemoryEventStore, Leads]]:
    store = InMemoryEventStore()
    leads = Leads(store, store.personal_data, lambda: NOW, InMemoryDedupe(), b"d" * 32)

    async def ready() -> dict[str, str]:
        return {"store": "ok"}

    api = LeadsAPI(leads, None, Settings(), None, ready, replica())
    with TestClient(create_app(api, TokenVerifier(TEST_KEYS.public(), issuer="pipelines", audience="pipelines"))) as c:
        yield c, store, leads


def streams(client: TestClient, store: InMemoryEventStore, prefix: str = "lead-") -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for r in client.portal.call(store.read_streams, prefix):
        out.setdefault(r.stream_id, []).append(r)
    return out


CONTACTED = lead(
    2,
    "501",
    "minh@hoabinh.vn",
    ("assign", "2025-02-01T10:00:00+07:00", {"owner_id": "u-lan", "team_id": "north"}),
    ("contact", "2025-02-03T09:30:00+07:00", {"channel": "phone"}),
)
SAME_PERSON = lead(3, "502", "MINH@hoabinh.vn")


def test_leads_land_back_dated_flagged_once_and_a_second_send_appends_nothing(
    setup: tuple[TestClient, InMemoryEventStore, Leads],
) -> None:
    client, store, _ = setup
    first = client.post("/imports/batches", json=batch(CONTACTED), headers=IMPORTER)
    assert first.status_code == 200, first.text
    lead_id = import_id("hubspot", "lead", "501")
    assert first.json()["results"] == [
        {
            "row": 2,
            "status": "created",
            "id": str(lead_id),
            "errors": [],
            "stream_id": f"lead-{lead_id}",
            "version": 3,
            "unchecked": [],
        }
    ]
    second = client.post("/imports/batches", json=batch(SAME_PERSON), headers=IMPORTER).json()["results"]
    assert second[0]["status"] == "created"
    events = streams(client, store)
    contacted = events[f"lead-{import_id('hubspot', 'lead', '501')}"]
    assert [e.event_type.rsplit(".", 1)[1] for e in contacted] == ["LeadCaptured", "LeadAssigned", "LeadContacted"]
    assert contacted[2].occurred_at == datetime(2025, 2, 3, 2, 30, tzinfo=UTC)
    assert contacted[2].data["at"].startswith("2025-02-03T")  # the fact's own time, not the clock's
    assert contacted[0].data["contact"] != {"name": "Trần Văn Minh"}  # sealed
    again = events[f"lead-{import_id('hubspot', 'lead', '502')}"]
    assert [e.event_type.rsplit(".", 1)[1] for e in again] == ["LeadCaptured", "LeadDuplicateDetected"]

    resent = client.post("/imports/batches", json=batch(CONTACTED, SAME_PERSON), headers=IMPORTER).json()["results"]
    assert [r["status"] for r in resent] == ["exists", "exists"]
    assert {s: len(e) for s, e in streams(client, store).items()} == {s: len(e) for s, e in events.items()}


def test_a_refused_row_names_its_field_a_dry_run_appends_nothing(
    setup: tuple[TestClient, InMemoryEventStore, Leads],
) -> None:
    client, store, _ = setup
    unknown_owner = lead(4, "503", "a@b.vn", ("assign", "2025-02-02T09:00:00+07:00", {"owner_id": "u-nobody"}))
    no_contact = {
        **lead(5, "504", "c@d.vn"),
        "facts": [{"command": "capture", "occurred_at": "2025-02-01T09:00:00Z", "body": {"source": "hubspot"}}],
    }
    dry = client.post(
        "/imports/batches", json=batch(CONTACTED, unknown_owner, no_contact, dry_run=True), headers=IMPORTER
    )
    assert [r["status"] for r in dry.json()["results"]] == ["created", "refused", "refused"]
    assert streams(client, store) == {}
    real = client.post("/imports/batches", json=batch(CONTACTED, unknown_owner, no_contact), headers=IMPORTER)
    results = real.json()["results"]
    assert [r["status"] for r in results] == ["created", "refused", "refused"]
    assert results[1]["errors"][0]["field"] == "facts[1].body.owner_id"
    assert results[2]["errors"][0]["field"] == "facts[0].body.contact"
    assert list(streams(client, store)) == [f"lead-{import_id('hubspot', 'lead', '501')}"]


def test_a_spend_row_goes_to_its_campaign(setup: tuple[TestClient, InMemoryEventStore, Leads]) -> None:
    client, _, leads = setup
    campaign = uuid.uuid4()
    ctx = Context(actor="u-mkt")
    create = domain.CreateCampaign(name="Tết", channel="facebook", code="tet-26", budget=Money.of(90_000_000))
    client.portal.call(leads.campaign_command, campaign, create, ctx)
    client.portal.call(leads.campaign_command, campaign, domain.ChangeCampaignStatus(status="active"), ctx)
    body = {"campaign": "tet-26", "day": "2026-11-20", "amount": {"amount": "1500000", "currency": "VND"}}
    spend = {
        "row": 7,
        "kind": "spend",
        "key": "tet-26/2026-11-20",
        "facts": [{"command": "record_spend", "occurred_at": "2026-11-20T23:59:00+07:00", "body": body}],
    }
    results = client.post("/imports/batches", json=batch(spend, CONTACTED), headers=IMPORTER).json()["results"]
    assert [(r["row"], r["status"]) for r in results] == [(7, "created"), (2, "created")]
    assert results[0]["id"] == str(campaign)
    again = client.post("/imports/batches", json=batch(spend), headers=IMPORTER).json()["results"]
    assert again[0]["status"] == "exists"


@pytest.mark.parametrize("roles", [("marketing",), ("sales",)])
def test_only_the_importer_and_admin_import(
    setup: tuple[TestClient, InMemoryEventStore, Leads], roles: tuple[str, ...]
) -> None:
    client, store, _ = setup
    assert client.post("/imports/batches", json=batch(CONTACTED), headers=auth("u-x", *roles)).status_code == 403
    assert streams(client, store) == {}
    assert client.post("/imports/batches", json=batch(CONTACTED), headers=auth("u-a", "admin")).status_code == 200
