"""Production's ``POST /imports/batches`` (issue 26, decision 0021) on the in-memory store: an order's creation and
steps land back-dated in one append, a shipment named by a ``$import`` reference delivered by the same reference; a
second send answers ``exists`` and appends nothing; a refused row names its fact while the others land; a dry run
appends nothing; only the importer (and admin) import."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.production.api import ProductionAPI, create_app
from services.production.handlers import Production
from shared.core.ids import import_id
from shared.edge.auth import TokenVerifier, issue_token
from shared.store.memory import InMemoryEventStore
from testkit.services import TEST_KEYS

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
MATERIALS = [{"component": "máy nén", "quantity": "4"}]
SHIPMENT = {"$import": {"kind": "shipment", "key": "SO-77/1"}}


def auth(user: str, *roles: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_token(TEST_KEYS, user_id=user, roles=roles)}


IMPORTER = auth("u-import", "importer")


def order(n: int, key: str, *steps: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    create = {
        "customer": "Siêu thị Bình An",
        "lines": [{"product": "Tủ đông 500L", "quantity": "4"}],
        "due_date": "2025-06-01",
        "deal_id": {"$import": {"kind": "deal", "key": "1234"}},
    }
    facts = [("create", create), *steps]
    return {
        "row": n,
        "kind": "order",
        "key": key,
        "facts": [
            {"command": c, "occurred_at": f"2025-05-{i + 1:02d}T09:00:00+07:00", "body": b}
            for i, (c, b) in enumerate(facts)
        ],
    }


DELIVERED = order(
    2,
    "SO-77",
    ("plan", {"planned_start": "2025-05-03", "planned_end": "2025-05-20"}),
    ("start_design", {}),
    ("approve_design", {}),
    ("request_materials", {"materials": MATERIALS}),
    ("receive_materials", {"materials": MATERIALS}),
    ("start_assembly", {}),
    ("record_output", {"product": "Tủ đông 500L", "quantity": "4"}),
    ("complete_assembly", {}),
    ("record_inspection", {"passed": True, "inspected_quantity": "4"}),
    ("pack", {"packages": 2}),
    ("ship", {"shipment_id": SHIPMENT, "carrier": "GHN", "quantity": "4"}),
    ("confirm_delivery", {"shipment_id": SHIPMENT}),
)
NEW = order(3, "SO-78")


def batch(*rows: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
    return {"source": "odoo", "dry_run": dry_run, "rows": list(rows)}


@pytest.fixture
def setup() -> Iterator[tuple[TestClient, InMemoryEventStore]]:
    store = InMemoryEventStore()

    async def ready() -> dict[str, str]:
        return {"store": "ok"}

    api = ProductionAPI(Production(store, lambda: NOW), None, store.personal_data, "Asia/Ho_Chi_Minh", ready)
    with TestClient(create_app(api, TokenVerifier(TEST_KEYS.public(), issuer="pipelines", audience="pipelines"))) as c:
        yield c, store


def streams(client: TestClient, store: InMemoryEventStore) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for r in client.portal.call(store.read_streams, "production-order-"):
        out.setdefault(r.stream_id, []).append(r)
    return out


def test_an_order_s_history_lands_back_dated_once(setup: tuple[TestClient, InMemoryEventStore]) -> None:
    client, store = setup
    first = client.post("/imports/batches", json=batch(DELIVERED, NEW), headers=IMPORTER)
    assert first.status_code == 200, first.text
    assert [r["status"] for r in first.json()["results"]] == ["created", "created"]
    events = streams(client, store)[f"production-order-{import_id('odoo', 'order', 'SO-77')}"]
    assert events[0].data["deal_id"] == str(import_id("odoo", "deal", "1234"))
    shipped = next(e for e in events if e.event_type.endswith("OrderShipped"))
    assert shipped.data["shipment_id"] == str(import_id("odoo", "shipment", "SO-77/1"))
    assert events[-1].event_type.endswith("OrderDelivered")
    assert events[-1].occurred_at == datetime(2025, 5, 13, 2, tzinfo=UTC)
    assert len({e.recorded_at for e in events}) == 1  # one append

    before = {s: len(e) for s, e in streams(client, store).items()}
    again = client.post("/imports/batches", json=batch(DELIVERED, NEW), headers=IMPORTER).json()["results"]
    assert [r["status"] for r in again] == ["exists", "exists"]
    assert {s: len(e) for s, e in streams(client, store).items()} == before


def test_a_refused_row_names_its_fact_and_a_dry_run_appends_nothing(
    setup: tuple[TestClient, InMemoryEventStore],
) -> None:
    client, store = setup
    unknown_shipment = order(4, "SO-79", ("confirm_delivery", {"shipment_id": SHIPMENT}))
    dry = client.post("/imports/batches", json=batch(NEW, unknown_shipment, dry_run=True), headers=IMPORTER)
    assert [r["status"] for r in dry.json()["results"]] == ["created", "refused"]
    assert streams(client, store) == {}
    results = client.post("/imports/batches", json=batch(NEW, unknown_shipment), headers=IMPORTER).json()["results"]
    assert [r["status"] for r in results] == ["created", "refused"]
    assert results[1]["errors"][0]["field"] == "facts[1]"
    assert list(streams(client, store)) == [f"production-order-{import_id('odoo', 'order', 'SO-78')}"]


@pytest.mark.parametrize("roles", [("production",), ("sales",)])
def test_only_the_importer_and_admin_import(
    setup: tuple[TestClient, InMemoryEventStore], roles: tuple[str, ...]
) -> None:
    client, store = setup
    assert client.post("/imports/batches", json=batch(NEW), headers=auth("u-x", *roles)).status_code == 403
    assert client.post("/imports/batches", json=batch(NEW), headers=auth("u-a", "admin")).status_code == 200
    assert len(streams(client, store)) == 1
