"""An exchange rate set in the directory reaches the deals service's replica across Kafka and PostgreSQL, and the
pipeline's value across currencies is converted with it (issue 26 item 3): before the rate, USD is listed and named
unconverted; once the rate arrives, the total in VND is the hand-computed one."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.deals import main as deals_main
from services.directory import main as directory_main
from shared.ops.stack import Endpoints
from testkit.services import bearer, drop_everything, isolated_settings, start_parts
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka]
ADMIN = bearer("u-admin", "admin")
LAN = bearer("u-lan", "sales", team="north")


def client(app: Any, name: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}")


async def test_a_rate_reaches_the_deals_replica_and_converts_the_pipeline_value(endpoints: Endpoints) -> None:
    settings = isolated_settings(endpoints).model_copy(update={"check_references": True})  # the replica kept
    directory = await directory_main.build(settings)
    deals = await deals_main.build(settings)
    await deals.ensure_topics()
    stop = asyncio.Event()
    tasks = [
        *await start_parts(directory, stop, projections=set()),
        *await start_parts(deals, stop, projections={"analytics", "directory"}),
    ]
    people, sales = client(directory.app(), "directory"), client(deals.app(), "deals")
    today = datetime.now(UTC).date()
    window = {"from": (today - timedelta(days=2)).isoformat(), "to": (today + timedelta(days=2)).isoformat()}
    try:
        assert (await people.post("/teams", json={"team_id": "north", "name": "Miền Bắc"}, headers=ADMIN)).is_success
        lan = {"user_id": "u-lan", "name": "Lan", "email": "lan@example.vn", "team_id": "north", "roles": ["sales"]}
        assert (await people.post("/users", json=lan, headers=ADMIN)).is_success
        values = [{"amount": "1000.50", "currency": "USD"}, {"amount": "25000000", "currency": "VND"}]
        for n, value in enumerate(values):
            deal = {"title": f"Tủ đông {n}", "customer": "Sen", "owner_id": "u-lan", "team_id": "north", "value": value}

            async def opened(deal: dict[str, Any] = deal) -> bool:  # once the replica has u-lan
                return (await sales.post("/deals", json=deal, headers=LAN)).status_code == 201

            await wait_until(opened, timeout=60, interval=0.3)
        seen: list[dict[str, Any]] = []

        async def pipeline_value(unconverted: list[str]) -> bool:
            got = await sales.get("/analytics/stages", params=window, headers=ADMIN)
            assert got.status_code == 200, got.text
            seen.append(got.json()["all_currencies"]["pipeline_value"])
            return set(seen[-1]["by_currency"]) == {"USD", "VND"} and seen[-1]["unconverted"] == unconverted

        await wait_until(lambda: pipeline_value(["USD"]), timeout=60, interval=0.3)
        assert seen[-1]["total"] == "25000000"  # VND only: USD has no rate yet, listed as it is
        assert seen[-1]["by_currency"]["USD"] == {"amount": "1000.50", "vnd": None}

        rate = {"per_vnd": "25400.5", "effective_from": "2020-01-01", "reason": "Vietcombank"}
        assert (await people.put("/rates/USD", json=rate, headers=ADMIN)).status_code == 200
        await wait_until(lambda: pipeline_value([]), timeout=60, interval=0.3)
        # 1000.50 × 25,400.5 = 25,413,200.25 → 25,413,200; + 25,000,000 = 50,413,200.25 → 50,413,200
        assert seen[-1]["by_currency"]["USD"] == {"amount": "1000.50", "vnd": "25413200"}
        assert seen[-1]["total"] == "50413200"
        rates = (await people.get("/rates", headers=LAN)).json()["rates"]
        assert rates == [{"currency": "USD", "effective_from": "2020-01-01", "per_vnd": "25400.5"}]
    finally:
        for c in (people, sales):
            await c.aclose()
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for core in (directory, deals):
            await core.close()
        await drop_everything(settings)
