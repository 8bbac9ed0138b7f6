"""A won deal makes exactly one order (delivered twice or replayed); the production API on the in-memory store."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from fastapi import Response
from fastapi.testclient import TestClient

from services.deals.events import Address, DealReopened, DealWon, ProductLine, StageKind, StageSnapshot
from services.production.api import ProductionAPI, create_app, order_commands, orders
from services.production.domain import Hold
from services.production.handlers import Production, order_id_for_deal
from shared.core.decider import AbsentError
from shared.core.money import Money
from shared.edge.auth import Principal, TokenVerifier, issue_token
from shared.edge.problems import status_of
from shared.messaging.envelope import CloudEvent
from shared.store import NewEvent
from shared.store.commands import Context
from shared.store.memory import InMemoryEventStore
from testkit.services import TEST_KEYS

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
STAGE = StageSnapshot(
    stage_id="negotiation", name="Negotiation", order=50, probability=Decimal("0.8"), kind=StageKind.OPEN
)


def won(deal: uuid.UUID) -> DealWon:
    return DealWon(
        deal_id=deal,
        value=Money.of(54_000_000),
        customer="Siêu thị Bình An",
        owner_id="u-lan",
        team_id="north",
        quote_id=None,
        stage_at_win=STAGE,
        opened_at=NOW,
        won_at=NOW,
        lines=(ProductLine(product="Tủ đông 500L", quantity=Decimal(3), unit_price=Money.of(18_000_000)),),
        requested_delivery_date=date(2026, 12, 28),
        contact_id="lead-1",
        delivery_address=Address(line1="45 Trần Phú", city="Nha Trang"),
    )


async def deliver(production: Production, deals: InMemoryEventStore, event, stream: str) -> CloudEvent:
    version = await deals.stream_version(stream)
    await deals.append(stream, [NewEvent(event)], expected_version=version)
    recorded = (await deals.read_stream(stream))[-1]
    envelope = CloudEvent.from_recorded(recorded, "deals")
    (data,) = await deals.personal_data.open([envelope.data])
    await production.react(envelope, data)
    return envelope


async def test_a_won_deal_delivered_twice_makes_one_order_with_its_lines_and_address() -> None:
    store = InMemoryEventStore()
    deals = InMemoryEventStore(store.personal_data)  # one key store for every service
    production = Production(store, lambda: NOW)
    deal = uuid.uuid4()
    envelope = await deliver(production, deals, won(deal), f"deal-{deal}")
    (data,) = await deals.personal_data.open([envelope.data])
    await production.react(envelope, data)  # redelivered
    await production.react(envelope, data)  # replayed by a rebuild
    loaded = await production.order(order_id_for_deal(deal))
    assert loaded.version == 1
    assert loaded.state.stage == "new"
    assert loaded.state.due_date == date(2026, 12, 28)
    assert loaded.state.lines[0].product == "Tủ đông 500L"
    (opened,) = await store.personal_data.open([loaded.events[0].data])
    assert opened["delivery_address"]["city"] == "Nha Trang"
    assert loaded.events[0].causation_id == envelope.id
    reopened = DealReopened(deal_id=deal, was="won", to_stage=STAGE, reason="khách đổi mẫu", reopened_at=NOW)
    await deliver(production, deals, reopened, f"deal-{deal}")
    assert (await production.order(order_id_for_deal(deal))).state.stage == "cancelled"


async def test_a_deal_reopened_with_a_long_reason_still_cancels_its_order() -> None:
    """A reopen's reason may be 2,000 characters, a cancellation's 500: the reaction keeps the reason's start."""
    store = InMemoryEventStore()
    deals = InMemoryEventStore(store.personal_data)
    production = Production(store, lambda: NOW)
    deal = uuid.uuid4()
    await deliver(production, deals, won(deal), f"deal-{deal}")
    reopened = DealReopened(deal_id=deal, was="won", to_stage=STAGE, reason="x" * 2000, reopened_at=NOW)
    await deliver(production, deals, reopened, f"deal-{deal}")
    assert (await production.order(order_id_for_deal(deal))).state.stage == "cancelled"


@pytest.fixture
def client():
    store = InMemoryEventStore()

    async def ready() -> dict[str, str]:
        return {"store": "ok"}

    app = create_app(
        ProductionAPI(
            production=Production(store, lambda: NOW),
            read_models=None,
            personal_data=store.personal_data,
            timezone="Asia/Ho_Chi_Minh",
            readiness=ready,
        ),
        TokenVerifier(TEST_KEYS.public(), issuer="pipelines", audience="pipelines"),
    )
    with TestClient(app) as c:
        yield c


def auth(*roles: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_token(TEST_KEYS, user_id="u-1", roles=roles)}


PROD, AUDITOR = auth("production"), auth("auditor")


def test_an_order_through_the_api_with_roles_etags_and_errors(client: TestClient) -> None:
    r = client.post(
        "/orders",
        headers=PROD,
        json={
            "customer": "Cửa hàng Minh Tâm",
            "lines": [{"product": "Bếp từ", "quantity": "2"}],
            "due_date": "2026-12-30",
            "contact_id": "c-9",
            "delivery_address": {"line1": "9 Nguyễn Huệ", "city": "Huế"},
        },
    )
    assert r.status_code == 201, r.text
    order = r.json()["id"]
    assert (
        client.post(
            f"/orders/{order}/plan",
            headers=PROD | {"If-Match": '"1"'},
            json={"planned_start": "2026-11-25", "planned_end": "2026-12-10"},
        ).headers["etag"]
        == '"2"'
    )
    stale = client.post(f"/orders/{order}/hold", headers=PROD | {"If-Match": '"1"'}, json={"reason": "x"})
    assert stale.status_code == 412
    refused = client.post(f"/orders/{order}/pack", headers=PROD, json={"packages": 1})
    assert (refused.status_code, refused.json()["rule"]) == (409, "order_planned")
    assert client.post(f"/orders/{order}/hold", headers=AUDITOR, json={"reason": "x"}).status_code == 403
    assert client.post(f"/orders/{order}/hold", headers=PROD, json={}).status_code == 422
    assert client.get(f"/orders/{uuid.uuid4()}", headers=PROD).status_code == 404
    assert client.get(f"/orders/{order}", headers=PROD).json()["delivery_address"]["city"] == "Huế"
    audited = client.get(f"/orders/{order}", headers=AUDITOR).json()
    assert "delivery_address" not in audited
    history = client.get(f"/orders/{order}/history", headers=AUDITOR).json()["items"]
    assert history[0]["data"]["delivery_address"] is None
    assert [h["data"]["stage_after"] for h in history] == ["new", "planned"]


def test_a_shipment_without_an_id_gets_one_from_the_api_and_one_with_an_id_is_recorded_once(
    client: TestClient,
) -> None:
    order = client.post(
        "/orders",
        headers=PROD,
        json={
            "customer": "Cửa hàng Minh Tâm",
            "lines": [{"product": "Bếp từ", "quantity": "2"}],
            "due_date": "2026-12-30",
        },
    ).json()["id"]
    steps = [
        ("plan", {"planned_start": "2026-11-25", "planned_end": "2026-12-10"}),
        ("start-design", {}),
        ("approve-design", {}),
        ("start-assembly", {}),
        ("record-output", {"product": "Bếp từ", "quantity": "2"}),
        ("complete-assembly", {}),
        ("record-inspection", {"passed": True, "inspected_quantity": "2"}),
        ("pack", {"packages": 1}),
    ]
    for command, body in steps:
        assert client.post(f"/orders/{order}/{command}", headers=PROD, json=body).status_code == 200, command
    assert (
        client.post(f"/orders/{order}/ship", headers=PROD, json={"carrier": "GHN", "quantity": "1"}).status_code == 200
    )
    shipment = {"shipment_id": str(uuid.uuid4()), "carrier": "GHN", "quantity": "1"}
    first = client.post(f"/orders/{order}/ship", headers=PROD, json=shipment).json()
    again = client.post(f"/orders/{order}/ship", headers=PROD, json=shipment).json()
    assert again["version"] == first["version"], "the same shipment again adds nothing"
    shipments = client.get(f"/orders/{order}", headers=PROD).json()["shipments"]
    assert len(shipments) == 2 and shipment["shipment_id"] in {s["shipment_id"] for s in shipments}


async def test_a_route_is_a_function_of_the_service_and_refuses_in_domain_terms() -> None:
    """The routes are module functions: called without an app, a missing order is refused as absent (404 at the
    edge), not with an HTTP exception."""
    store = InMemoryEventStore()

    async def ready() -> dict[str, str]:
        return {"store": "ok"}

    svc = ProductionAPI(Production(store, lambda: NOW), None, store.personal_data, "Asia/Ho_Chi_Minh", ready)
    principal = Principal(user_id="u-1", roles=frozenset({"production"}))
    request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(production=svc)))  # what it reads
    with pytest.raises(AbsentError) as absent:
        await order_commands.handle_order_command(
            request,
            uuid.uuid4(),
            Hold(reason="x"),
            principal,
            Context(actor="u-1"),
        )
    assert (status_of(absent.value), absent.value.rule) == (404, "not_found")
    with pytest.raises(AbsentError):
        await orders.get_order(uuid.uuid4(), svc, principal, Response())


async def test_an_imported_deal_won_a_year_ago_makes_its_order_then_not_today() -> None:
    """A reaction occurs when its cause did (decision 0021): a back-dated DealWon's order is created at the win."""
    store = InMemoryEventStore()
    deals = InMemoryEventStore(store.personal_data)
    production = Production(store, lambda: NOW)
    deal, year_ago = uuid.uuid4(), datetime(2025, 11, 20, 9, 0, tzinfo=UTC)
    await deals.append(f"deal-{deal}", [NewEvent(won(deal), occurred_at=year_ago)], expected_version=0)
    (recorded,) = await deals.read_stream(f"deal-{deal}")
    envelope = CloudEvent.from_recorded(recorded, "deals")
    (data,) = await deals.personal_data.open([envelope.data])
    await production.react(envelope, data)
    loaded = await production.order(order_id_for_deal(deal))
    assert loaded.events[0].occurred_at == year_ago
    assert loaded.events[0].data["created_at"] == year_ago.isoformat().replace("+00:00", "Z")
