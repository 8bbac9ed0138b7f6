"""Deals and production together on real Kafka: a won deal makes exactly one order (delivered twice, then replayed
by a rebuild), production's delays and shipments come back to the deal, and the pipeline's demand meets the plan."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from aiokafka import AIOKafkaProducer

from services.deals import main as deals_main
from services.production import main as production_main
from services.production.handlers import order_id_for_deal
from shared.messaging.projections import request_rebuild
from shared.ops.stack import Endpoints
from testkit.kafka import read_topic
from testkit.services import bearer, client_for, drop_everything, isolated_settings
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka]
SALES = bearer("u-lan", "sales")
PROD = bearer("u-prod", "production")


def line(product: str, qty: int) -> dict:
    return {"product": product, "quantity": str(qty), "unit_price": {"amount": "1000000", "currency": "VND"}}


async def test_one_order_per_won_deal_and_the_way_back(endpoints: Endpoints) -> None:
    settings = isolated_settings(endpoints)
    deals = await deals_main.build(settings)
    production = await production_main.build(settings)
    await deals.ensure_topics()
    stop = asyncio.Event()
    tasks = []
    for core in (deals, production):
        relay = core.relay()
        relay.poll_interval = 0.1
        await relay.setup()
        tasks.append(asyncio.create_task(relay.run(stop)))
        for runner in core.runners():
            runner.poll_interval = 0.2
            await runner.setup()
            tasks.append(asyncio.create_task(runner.run(stop)))
    d_http, p_http = client_for(deals.app()), client_for(production.app())
    try:

        async def open_deal(title: str, lines: list, close: str) -> str:
            r = await d_http.post(
                "/deals",
                headers=SALES,
                json={
                    "title": title,
                    "customer": "Chuỗi Bình An",
                    "owner_id": "u-lan",
                    "team_id": "north",
                    "lines": lines,
                    "expected_close_date": close,
                },
            )
            assert r.status_code == 201, r.text
            return r.json()["id"]

        won = await open_deal("Tủ đông", [line("Tủ đông 500L", 3)], "2026-12-15")
        open_a = await open_deal("Tủ mát", [line("Tủ mát 2 cánh", 10)], "2026-12-20")
        open_b = await open_deal("Tủ đông nữa", [line("Tủ đông 500L", 5), line("Tủ mát 2 cánh", 2)], "2027-01-10")
        assert (
            await d_http.post(f"/deals/{open_a}/move-stage", headers=SALES, json={"stage_id": "negotiation"})
        ).status_code == 200
        assert (
            await d_http.post(
                f"/deals/{open_b}/override-probability",
                headers=SALES,
                json={"probability": "0.25", "reason": "ngân sách chưa duyệt"},
            )
        ).status_code == 200
        due = str(datetime.now(UTC).date() + timedelta(days=22))  # a win's requested delivery date is never in the past
        r = await d_http.post(f"/deals/{won}/win", headers=SALES, json={"requested_delivery_date": due})
        assert r.status_code == 200
        order_id = order_id_for_deal(uuid.UUID(won))

        async def order_exists() -> bool:
            return (await p_http.get(f"/orders/{order_id}", headers=PROD)).status_code == 200

        await wait_until(order_exists, timeout=60)

        # DealWon delivered a second time (a relay re-send), then every deals event replayed (a rebuild)
        (won_message,) = [
            m
            for _, m in await read_topic(settings.kafka_bootstrap_servers, settings.events_topic("deals"))
            if m.type == "pipelines.deals.DealWon"
        ]
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
        await producer.start()
        try:
            await producer.send_and_wait(
                settings.events_topic("deals"), won_message.kafka_value(), key=won_message.kafka_key()
            )
        finally:
            await producer.stop()
        storage = production.storage
        await request_rebuild(storage.pool, storage.store.schema, "reactions")

        async def rebuilt() -> bool:
            async with storage.pool.acquire() as conn:
                return (
                    await conn.fetchval(
                        f"SELECT generation FROM {storage.store.schema}.projection_generations "
                        "WHERE projection = 'reactions' AND state = 'active'"
                    )
                    == 2
                )

        await wait_until(rebuilt, timeout=60)
        await asyncio.sleep(1)
        async with storage.pool.acquire() as conn:
            orders = await conn.fetchval(
                f"SELECT count(DISTINCT stream_id) FROM {storage.store.schema}.events "
                "WHERE stream_id LIKE 'production-order-%'"
            )
        assert orders == 1
        order = (await p_http.get(f"/orders/{order_id}", headers=PROD)).json()
        assert (order["version"], order["due_date"], order["quantity"]) == (1, due, "3")

        # production's delay reaches the deal as a delivery risk; a shipment starts its follow-up
        for path, body in [
            ("plan", {"planned_start": "2026-11-25", "planned_end": "2026-12-15"}),
            ("change-due-date", {"due_date": "2027-01-05", "reason": "thiếu máy nén"}),
            ("request-materials", {"materials": [{"component": "máy nén", "quantity": "3"}]}),
            ("receive-materials", {"materials": [{"component": "máy nén", "quantity": "3"}]}),
            ("start-assembly", {}),
            ("record-output", {"product": "Tủ đông 500L", "quantity": "3"}),
            ("complete-assembly", {}),
            ("record-inspection", {"passed": True, "inspected_quantity": "3"}),
            ("pack", {"packages": 1}),
            ("ship", {"carrier": "GHN", "quantity": "3"}),
        ]:
            r = await p_http.post(f"/orders/{order_id}/{path}", headers=PROD, json=body)
            assert r.status_code == 200, (path, r.text)

        async def followed_up() -> bool:
            deal = (await d_http.get(f"/deals/{won}", headers=SALES)).json()
            return bool(deal["follow_ups"]) and deal["delivery_risk"] is not None

        await wait_until(followed_up, timeout=60)
        assert "2027-01-05" in (await d_http.get(f"/deals/{won}", headers=SALES)).json()["delivery_risk"]

        # demand from the pipeline vs the plan vs what was made
        for product, action, qty, reason in [
            ("Tủ mát 2 cánh", "approve", "12", None),
            ("Tủ mát 2 cánh", "revise", "9", "ít khách hơn dự kiến"),
        ]:
            r = await p_http.put(
                f"/plans/{product}/2026-12", headers=PROD, json={"action": action, "quantity": qty, "reason": reason}
            )
            assert r.status_code == 200, r.text
        proposed = (await p_http.post("/plans/2026-12/propose", headers=PROD)).json()["forecasts"]
        expected = {
            ("Tủ mát 2 cánh", "2026-12"): Decimal(10) * Decimal("0.8"),  # negotiation
            ("Tủ đông 500L", "2027-01"): Decimal(5) * Decimal("0.25"),
            ("Tủ mát 2 cánh", "2027-01"): Decimal(2) * Decimal("0.25"),
        }
        assert Decimal(proposed["Tủ mát 2 cánh"]) == expected[("Tủ mát 2 cánh", "2026-12")]

        async def demand_ready() -> bool:
            rows = (await p_http.get("/demand", headers=PROD)).json()
            by = {(r["product"], r["period"]): r for r in rows}
            return (
                ("Tủ mát 2 cánh", "2026-12") in by
                and by[("Tủ mát 2 cánh", "2026-12")]["planned"] == "9"
                and by[("Tủ mát 2 cánh", "2026-12")]["forecast"] is not None
            )

        await wait_until(demand_ready, timeout=60)
        rows = {(r["product"], r["period"]): r for r in (await p_http.get("/demand", headers=PROD)).json()}
        for key, want in expected.items():
            assert Decimal(rows[key]["pipeline_demand"]) == want, key
        won_month = next(k for k in rows if k[0] == "Tủ đông 500L" and k[1] != "2027-01")
        assert Decimal(rows[won_month]["pipeline_demand"]) == 3, "a won deal counts whole, in the month it was won"
        assert Decimal(rows[won_month]["produced"]) == 3
        assert rows[("Tủ mát 2 cánh", "2026-12")]["plan_attainment"] == 0.0
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await d_http.aclose()
        await p_http.aclose()
        await deals.close()
        await production.close()
        await drop_everything(settings)
