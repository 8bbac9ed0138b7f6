"""The customer 360 across processes (issue 24 item 4), on real Kafka and PostgreSQL: an organisation registered in
the directory, a deal opened for it and won in deals, the order production makes of the win built and shipped —
and the directory's 360 of the organisation shows the won deal, its revenue and the shipment, through each
service's relay, topic and projector."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from services.deals import main as deals_main
from services.directory import main as directory_main
from services.directory.events import OrganisationRegistered
from services.production import domain as production
from services.production import main as production_main
from services.production.events import Material
from services.production.handlers import order_id_for_deal, order_stream
from shared.ops.stack import Endpoints
from shared.store import NewEvent
from shared.store.commands import Context
from testkit.services import bearer, drop_everything, isolated_settings
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka]
LAN = bearer("u-lan", "sales", team="north")
PEER_SOUTH = bearer("u-south", "sales", team="south")


async def build_an_order(core: production_main.ProductionService, order_id: uuid.UUID) -> None:
    """The order through the floor to its first shipment (2 of its 3 units)."""
    steel = (Material(component="thép tấm", quantity=Decimal(2)),)
    today = datetime.now(UTC).date()
    steps: list[production.Command] = [
        production.Plan(planned_start=today, planned_end=today + timedelta(days=20)),
        production.RequestMaterials(materials=steel),
        production.ReceiveMaterials(materials=steel),
        production.StartAssembly(),
        production.RecordOutput(product="Tủ đông", quantity=Decimal(3)),
        production.CompleteAssembly(),
        production.RecordInspection(passed=True, inspected_quantity=Decimal(3)),
        production.Pack(packages=1),
        production.Ship(shipment_id=uuid.uuid4(), carrier="GHN", quantity=Decimal(2)),
    ]
    for step in steps:
        await core.production.handle(order_id, step, Context(actor="u-prod"))


async def test_a_won_deal_and_its_shipped_order_reach_the_organisations_360(endpoints: Endpoints) -> None:
    settings = isolated_settings(endpoints)
    deals = await deals_main.build(settings)
    factory = await production_main.build(settings)
    directory = await directory_main.build(settings)
    cores = [deals, factory, directory]
    await deals.ensure_topics()
    stop = asyncio.Event()
    tasks = []
    for core in cores:
        relay = core.relay()
        relay.poll_interval = 0.1
        await relay.setup()
        tasks.append(asyncio.create_task(relay.run(stop)))
        for runner in core.runners():
            if runner.projection.name in ("reactions", "customer360"):  # what this flow needs, nothing more
                runner.poll_interval = 0.2
                await runner.setup()
                tasks.append(asyncio.create_task(runner.run(stop)))
    org = uuid.uuid4()
    registered = OrganisationRegistered(
        organisation_id=org, name="Nhà hàng Sen", tax_code=None, industry="restaurant", owner_id="u-lan",
        team_id="north", registered_at=datetime.now(UTC),
    )  # fmt: skip
    await directory.storage.store.append(f"directory-organisation-{org}", [NewEvent(registered)], expected_version=0)
    sales = httpx.AsyncClient(transport=httpx.ASGITransport(app=deals.app()), base_url="http://deals")
    people = httpx.AsyncClient(transport=httpx.ASGITransport(app=directory.app()), base_url="http://directory")
    try:
        line = {"product": "Tủ đông", "quantity": "3", "unit_price": {"amount": "12000000", "currency": "VND"}}
        body = {"title": "Tủ đông", "customer": "Sen", "owner_id": "u-lan", "team_id": "north", "lines": [line]}
        opened = await sales.post("/deals", json=body | {"organisation_id": str(org)}, headers=LAN)
        assert opened.status_code == 201, opened.text
        deal = opened.json()["id"]
        assert (await sales.post(f"/deals/{deal}/win", json={}, headers=LAN)).status_code == 200
        order = order_id_for_deal(uuid.UUID(deal))

        async def ordered() -> bool:
            return await factory.storage.store.stream_version(order_stream(order)) > 0  # production's reaction

        await wait_until(ordered, timeout=60, interval=0.2)
        await build_an_order(factory, order)

        async def shown() -> bool:
            r = await people.get(f"/organisations/{org}/360", headers=LAN)
            if r.status_code != 200:
                return False
            got = r.json()
            return got["orders"]["shipments"] == 1 and got["deals"]["won"]["count"] == 1

        await wait_until(shown, timeout=90, interval=0.5)
        got = (await people.get(f"/organisations/{org}/360", headers=LAN)).json()
        assert got["lifetime_revenue"] == {"VND": "36000000"} and got["purchases"] == 1
        assert got["deals"]["won"]["listed"][0]["deal_id"] == deal
        (listed,) = got["orders"]["listed"]
        assert (listed["order_id"], listed["shipped"], listed["quantity"]) == (str(order), "2", "3")
        assert (await people.get(f"/organisations/{org}/360", headers=PEER_SOUTH)).status_code == 404
    finally:
        await sales.aclose()
        await people.aclose()
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for core in cores:
            await core.close()
        await drop_everything(settings)
