"""The agenda's ``POST /imports/batches`` (issue 26, decision 0021) on the in-memory store and replicas: an
activity on an imported deal (``$import``), won since, lands with its completion back-dated in one append, its notes
sealed under the deal's data subject; a second send answers ``exists`` and appends nothing; a refused row names its
field while the others land; a dry run appends nothing; only the importer (and admin) import."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.agenda.api import AgendaAPI, create_app
from services.agenda.handlers import Agenda
from services.agenda.subjects import MemorySubjects, Subject
from services.directory.replica import MemoryReplica
from shared.core.ids import import_id
from shared.edge.auth import TokenVerifier, issue_token
from shared.privacy.pii import is_token
from shared.store.memory import InMemoryEventStore
from testkit.services import TEST_KEYS

NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
DEAL = import_id("pipedrive", "deal", "1234")


def auth(user: str, *roles: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_token(TEST_KEYS, user_id=user, roles=roles, team="north")}


IMPORTER = auth("u-import", "importer")


@pytest.fixture
def setup() -> Iterator[tuple[TestClient, InMemoryEventStore]]:
    store = InMemoryEventStore()
    replica = MemoryReplica().seed(("u-lan", "north"), ("u-tuan", "south"))
    subjects = MemorySubjects(replica)
    subjects.deals[DEAL] = Subject("deal", DEAL, "u-lan", "north", False, "c-1234")  # won since

    async def ready() -> dict[str, str]:
        return {"store": "ok"}

    api = AgendaAPI(Agenda(store, lambda: NOW), None, store.personal_data, ready, replica, subjects)
    with TestClient(create_app(api, TokenVerifier(TEST_KEYS.public(), issuer="pipelines", audience="pipelines"))) as c:
        yield c, store


def activity(n: int, key: str, deal: Any, *then: tuple[str, str, dict[str, Any]], **extra: Any) -> dict[str, Any]:
    schedule = {
        "kind": "meeting",
        "subject_type": "deal",
        "subject_id": deal,
        "owner_id": "u-lan",
        "title": "Gặp chị Hà",
        "notes": "chị Hà, 0912 345 678",
        "due_at": "2025-03-05T14:00:00+07:00",
        **extra,
    }
    facts = [("schedule", "2025-03-01T09:00:00+07:00", schedule), *then]
    return {
        "row": n,
        "kind": "activity",
        "key": key,
        "facts": [{"command": c, "occurred_at": at, "body": b} for c, at, b in facts],
    }


ON_DEAL = {"$import": {"kind": "deal", "key": "1234"}}
MET = activity(
    2,
    "a-1",
    ON_DEAL,
    ("reassign", "2025-03-02T09:00:00+07:00", {"owner_id": "u-tuan", "reason": "Lan on leave"}),
    ("complete", "2025-03-05T15:00:00+07:00", {"outcome": "agreed on a trial"}),
)


def streams(client: TestClient, store: InMemoryEventStore) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for r in client.portal.call(store.read_streams, "agenda-activity-"):
        out.setdefault(r.stream_id, []).append(r)
    return out


def batch(*rows: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
    return {"source": "pipedrive", "dry_run": dry_run, "rows": list(rows)}


def test_an_activity_s_history_lands_back_dated_once(setup: tuple[TestClient, InMemoryEventStore]) -> None:
    client, store = setup
    first = client.post("/imports/batches", json=batch(MET), headers=IMPORTER)
    assert first.status_code == 200, first.text
    (result,) = first.json()["results"]
    assert (result["status"], result["id"]) == ("created", str(import_id("pipedrive", "activity", "a-1")))
    events = streams(client, store)[f"agenda-activity-{result['id']}"]
    assert [e.event_type.rsplit(".", 1)[1] for e in events] == [
        "ActivityScheduled",
        "ActivityReassigned",
        "ActivityCompleted",
    ]
    assert events[0].data["subject_ref"] == str(DEAL) and is_token(events[0].data["notes"])
    assert events[0].data["data_subject"] == "c-1234"  # sealed under the deal's contact
    assert events[1].data["team_id"] == "south"  # the new owner's team
    assert events[2].occurred_at == datetime(2025, 3, 5, 8, tzinfo=UTC)

    again = client.post("/imports/batches", json=batch(MET), headers=IMPORTER).json()["results"]
    assert again[0]["status"] == "exists"
    assert len(streams(client, store)[f"agenda-activity-{result['id']}"]) == 3


def test_a_refused_row_names_its_field_and_a_dry_run_appends_nothing(
    setup: tuple[TestClient, InMemoryEventStore],
) -> None:
    client, store = setup
    unknown_deal = activity(3, "a-2", {"$import": {"kind": "deal", "key": "999"}})
    no_owner = activity(4, "a-3", ON_DEAL, owner_id=None)
    too_early = activity(5, "a-4", ON_DEAL, due_at="2025-02-01T09:00:00+07:00")
    dry = client.post(
        "/imports/batches", json=batch(MET, unknown_deal, no_owner, too_early, dry_run=True), headers=IMPORTER
    )
    results = dry.json()["results"]
    assert [r["status"] for r in results] == ["created", "created", "refused", "refused"]
    assert results[1]["unchecked"] == ["facts[0].body.subject_id"]
    assert streams(client, store) == {}
    real = client.post("/imports/batches", json=batch(MET, unknown_deal, no_owner, too_early), headers=IMPORTER)
    results = real.json()["results"]
    assert [r["status"] for r in results] == ["created", "refused", "refused", "refused"]
    assert [r["errors"][0]["field"] for r in results[1:]] == [
        "facts[0].body.subject_id",
        "facts[0].body.owner_id",
        "facts[0].body.due_at",
    ]
    assert len(streams(client, store)) == 1


@pytest.mark.parametrize("roles", [("sales",)])
def test_only_the_importer_and_admin_import(
    setup: tuple[TestClient, InMemoryEventStore], roles: tuple[str, ...]
) -> None:
    client, store = setup
    assert client.post("/imports/batches", json=batch(MET), headers=auth("u-lan", *roles)).status_code == 403
    assert streams(client, store) == {}
    assert client.post("/imports/batches", json=batch(MET), headers=auth("u-a", "admin")).status_code == 200
