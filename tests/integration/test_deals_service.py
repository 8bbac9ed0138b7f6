"""The deals service on real PostgreSQL and Kafka: API → store → relay → Kafka → read models and reactions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import httpx
import pytest

from services.deals import main as deals_main
from services.deals.events import deal_id_for_lead
from services.deals.handlers import follow_up_id_for_order
from services.leads.events import Attribution, LeadContact, LeadConverted
from services.production.events import OrderDelivered, OrderShipped, PromisedDateChanged
from shared.messaging.projections import request_rebuild
from shared.messaging.relay import OutboxRelay
from shared.ops.settings import Settings
from shared.ops.stack import Endpoints
from shared.store import NewEvent
from shared.store.postgres import PostgresEventStore
from testkit.services import bearer, client_for, drop_everything, isolated_settings
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka]

LAN = bearer("u-lan", "sales")
MANAGER = bearer("u-mai", "sales_manager")
AUDITOR = bearer("u-audit", "auditor", team=None)
LINE = {"product": "Máy lạnh 2HP", "quantity": "2", "unit_price": {"amount": "15000000", "currency": "VND"}}


@dataclass
class Running:
    settings: Settings
    service: deals_main.DealsService
    http: httpx.AsyncClient
    upstream: dict[str, PostgresEventStore]  # stand-ins for the leads and production services' stores
    stop: asyncio.Event


@pytest.fixture
async def deals(endpoints: Endpoints) -> AsyncIterator[Running]:
    settings = isolated_settings(endpoints)
    service = await deals_main.build(settings)
    await service.ensure_topics()
    stop = asyncio.Event()
    tasks = []
    relays = [
        OutboxRelay(
            service.storage.store,
            service="deals",
            topic=settings.events_topic("deals"),
            bootstrap_servers=settings.kafka_bootstrap_servers,
            database_url=settings.database_url_for("deals"),
            poll_interval=0.1,
        )
    ]
    upstream = {}
    for other in ("leads", "production"):
        store = PostgresEventStore(service.storage.pool, settings.schema_name(other), service.storage.personal_data)
        await store.setup()
        upstream[other] = store
        relays.append(
            OutboxRelay(
                store,
                service=other,
                topic=settings.events_topic(other),
                bootstrap_servers=settings.kafka_bootstrap_servers,
                database_url=settings.database_url_for(other),
                poll_interval=0.1,
            )
        )
    for relay in relays:
        await relay.setup()
        tasks.append(asyncio.create_task(relay.run(stop)))
    for runner in service.runners():
        runner.poll_interval = 0.2
        await runner.setup()
        tasks.append(asyncio.create_task(runner.run(stop)))
    http = client_for(service.app())
    try:
        yield Running(settings, service, http, upstream, stop)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await http.aclose()
        await service.close()
        await drop_everything(settings)


async def command(r: Running, path: str, body: dict, headers=LAN) -> dict:
    response = await r.http.post(path, json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def test_commands_reach_the_board_and_a_query_waits_for_its_position(deals: Running) -> None:
    opened = []
    for i in range(4):
        opened.append(
            await command(
                deals,
                "/deals",
                {
                    "title": f"Đơn {i}",
                    "customer": f"Khách {i}",
                    "owner_id": "u-lan",
                    "team_id": "north",
                    "lines": [LINE],
                },
            )
        )
    a, b, c, d = (o["id"] for o in opened)
    await command(deals, f"/deals/{a}/move-stage", {"stage_id": "negotiation"})
    await command(deals, f"/deals/{b}/move-stage", {"stage_id": "quote_sent"})
    await command(deals, f"/deals/{c}/win", {})
    last = await command(deals, f"/deals/{d}/lose", {"reason": "giá cao", "competitor": "Rival"})

    board = (await deals.http.get("/board", params={"position": last["position"]}, headers=LAN)).json()
    columns = {s["stage_id"]: s for s in board["stages"]}
    assert columns["negotiation"]["count"] == 1
    assert columns["negotiation"]["weighted_value"] == {"VND": "24000000"}  # 30,000,000 × 0.8
    assert columns["quote_sent"]["value"] == {"VND": "30000000"}
    assert sum(s["count"] for s in board["stages"]) == 2, "won and lost deals leave the board"
    assert board["weighted_value"] == {"VND": "42000000"}

    won = (await deals.http.get("/deals", params={"status": "won", "position": last["position"]}, headers=LAN)).json()
    assert [x["deal_id"] for x in won["items"]] == [c]
    assert (await deals.http.get("/board", headers=bearer("u-binh", "sales"))).json()["stages"][0]["count"] == 0

    # a rebuild replays the topic into a new generation and gives the same board
    await request_rebuild(deals.service.storage.pool, deals.service.storage.store.schema, "board")

    async def rebuilt() -> bool:
        async with deals.service.storage.pool.acquire() as conn:
            return (
                await conn.fetchval(
                    f"SELECT generation FROM {deals.service.storage.store.schema}.projection_generations "
                    "WHERE projection = 'board' AND state = 'active'"
                )
                == 2
            )

    await wait_until(rebuilt, timeout=60)
    again = (await deals.http.get("/board", headers=LAN)).json()
    assert [(s["stage_id"], s["count"], s["value"]) for s in again["stages"]] == [
        (s["stage_id"], s["count"], s["value"]) for s in board["stages"]
    ]

    # the board page lists each stage's first deals only (`cards`), one stage whole; counts and values of all
    for i in range(2):
        last = await command(
            deals, "/deals", {"title": f"Mới {i}", "customer": "K", "owner_id": "u-lan", "lines": [LINE]}
        )
    query = {"position": last["position"], "cards": 1}
    first = (await deals.http.get("/board", params=query, headers=LAN)).json()["stages"][0]
    whole = (await deals.http.get("/board", params=query | {"whole_stage": "target_identified"}, headers=LAN)).json()
    assert first["count"] == 2 and len(first["deals"]) == 1 and first["value"] == {"VND": "60000000"}
    assert [d["title"] for d in whole["stages"][0]["deals"]] == ["Mới 0", "Mới 1"]


async def test_a_converted_lead_opens_a_deal_and_production_drives_its_follow_up(deals: Running) -> None:
    lead_id = uuid.uuid4()
    converted = LeadConverted(
        lead_id=lead_id,
        customer="Nhà hàng Sen Vàng",
        owner_id="u-lan",
        team_id="north",
        title="Tủ đông",
        contact=LeadContact(name="Lê Thị Mai", email="mai.le@senvang.vn", phone="+84912345678"),
        estimated_value=None,
        expected_close_date=date(2027, 1, 31),
        attribution=Attribution(source="facebook_lead_ads", campaign_id="camp-tet"),
    )
    for _ in range(2):  # the leads service's relay may publish twice: one deal
        await deals.upstream["leads"].append(
            f"lead-{lead_id}-{_}",
            [NewEvent(converted, metadata={"correlation_id": "corr-lead-1"})],
            expected_version=0,
        )
    deal_id = deal_id_for_lead(lead_id)

    async def opened() -> bool:
        return (await deals.http.get(f"/deals/{deal_id}", headers=LAN)).status_code == 200

    await wait_until(opened, timeout=30)
    deal = (await deals.http.get(f"/deals/{deal_id}", params={"include_contact": True}, headers=LAN)).json()
    assert deal["contact"]["email"] == "mai.le@senvang.vn"
    assert deal["source"] == "facebook_lead_ads"
    history = (await deals.http.get(f"/deals/{deal_id}/history", headers=AUDITOR)).json()["items"]
    assert len(history) == 1
    assert history[0]["correlation_id"] == "corr-lead-1", "the deal's history names the lead's chain"
    assert history[0]["actor"] == "system:deals-reactions"

    await command(deals, f"/deals/{deal_id}/change-lines", {"lines": [LINE]})
    await command(deals, f"/deals/{deal_id}/win", {})
    order_id, shipment_id = uuid.uuid4(), uuid.uuid4()
    shipped = OrderShipped(
        order_id=order_id,
        deal_id=deal_id,
        shipment_id=shipment_id,
        carrier="GHN",
        quantity=Decimal(2),
        shipped_at=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
    )
    delivered = OrderDelivered(
        order_id=order_id,
        deal_id=deal_id,
        shipment_id=shipment_id,
        quantity=Decimal(2),
        delivered_at=datetime(2026, 11, 22, 15, 0, tzinfo=UTC),
        on_time=True,
    )
    risk = PromisedDateChanged(
        order_id=order_id, deal_id=deal_id, old=None, new=date(2026, 12, 5), reason="thiếu linh kiện"
    )
    production = deals.upstream["production"]
    await production.append(
        f"order-{order_id}", [NewEvent(shipped), NewEvent(delivered), NewEvent(risk)], expected_version=0
    )

    async def followed() -> bool:
        body = (await deals.http.get(f"/deals/{deal_id}", headers=LAN)).json()
        return (
            bool(body["follow_ups"])
            and body["delivery_risk"] is not None
            and body["follow_ups"][0]["due_on"] == "2026-11-29"
        )

    await wait_until(followed, timeout=30)
    body = (await deals.http.get(f"/deals/{deal_id}", headers=LAN)).json()
    assert body["follow_ups"][0]["follow_up_id"] == str(follow_up_id_for_order(order_id))
    assert "thiếu linh kiện" in body["delivery_risk"]

    # the same production events delivered again (a relay re-send): nothing more happens
    version = len((await deals.http.get(f"/deals/{deal_id}/history", headers=LAN)).json()["items"])
    await production.append(
        f"order-{order_id}-copy", [NewEvent(shipped), NewEvent(delivered), NewEvent(risk)], expected_version=0
    )
    await asyncio.sleep(2)
    assert len((await deals.http.get(f"/deals/{deal_id}/history", headers=LAN)).json()["items"]) == version + 1
    due = (await deals.http.get("/follow-ups", params={"due_by": "2026-12-31"}, headers=LAN)).json()["items"]
    assert [f["deal_id"] for f in due] == [str(deal_id)]
