"""The services together on real Kafka and PostgreSQL, driven by the demo's simulation over their HTTP APIs: its
people registered in the directory (and checked by leads and deals against their replica), leads become deals,
won deals become orders, orders ship, and every pipeline's read models show it."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pydantic import SecretStr

from services.deals import main as deals_main
from services.directory import main as directory_main
from services.leads import main as leads_main
from services.production import main as production_main
from shared.ops.stack import Endpoints as Servers
from testkit.services import bearer, drop_everything, isolated_settings, operator_settings
from testkit.waiting import wait_until
from tools.simulate import Endpoints, Simulation

pytestmark = [pytest.mark.pg, pytest.mark.kafka, pytest.mark.e2e]
AUDITOR = bearer("u-audit", "auditor", team=None)


class Router(httpx.AsyncBaseTransport):
    """Requests to http://leads, http://deals, http://production and http://directory go to those apps, here."""

    def __init__(self, apps: dict[str, object]) -> None:
        self.transports = {host: httpx.ASGITransport(app=app) for host, app in apps.items()}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.transports[request.url.host].handle_async_request(request)


async def test_the_simulation_runs_through_all_three_pipelines(endpoints: Servers) -> None:
    settings = isolated_settings(endpoints).model_copy(
        update={"website_form_secret": SecretStr("w"), "ladipage_token": SecretStr("l"), "check_references": True}
    )
    cores = [
        await leads_main.build(settings),
        await deals_main.build(settings),
        await production_main.build(settings),
        await directory_main.build(settings),
    ]
    await cores[0].ensure_topics()
    stop = asyncio.Event()
    tasks = []
    for core in cores:
        relay = core.relay()
        relay.poll_interval = 0.1
        await relay.setup()
        tasks.append(asyncio.create_task(relay.run(stop)))
        for runner in core.runners():
            runner.poll_interval = 0.2
            await runner.setup()
            tasks.append(asyncio.create_task(runner.run(stop)))
    router = Router({core.name: core.app() for core in cores})
    urls = Endpoints("http://leads", "http://deals", "http://production", "http://directory")
    sim = Simulation(urls, operator_settings(settings), seed=7, transport=router)
    http = httpx.AsyncClient(transport=router)
    try:
        stats = await sim.run(leads=30, rate=20)
        assert stats.errors == []
        assert stats.leads == 30
        assert stats.converted > 0 and stats.won > 0 and stats.orders_delivered > 0

        async def shown() -> bool:
            funnel = (
                await http.get(
                    "http://leads/funnel", params={"from": "2026-01-01", "to": "2030-01-01"}, headers=AUDITOR
                )
            ).json()
            customers = sum(r["customers"] for r in funnel)
            delivered = (
                await http.get(
                    "http://production/analytics/delivery",
                    params={"from": "2026-01-01", "to": "2030-01-01"},
                    headers=AUDITOR,
                )
            ).json()
            won = (await http.get("http://deals/deals", params={"status": "won"}, headers=AUDITOR)).json()["items"]
            return (
                customers == stats.won
                and delivered["completed"] == stats.orders_delivered
                and len(won) == stats.won
                and delivered["completed"] - delivered["on_time"] == stats.late_deliveries
            )

        await wait_until(shown, timeout=60, interval=0.5)
        board = (await http.get("http://deals/board", headers=AUDITOR)).json()
        assert sum(s["count"] for s in board["stages"]) == stats.converted - stats.won - stats.lost
    finally:
        await sim.close()
        await http.aclose()
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for core in cores:
            await core.close()
        await drop_everything(settings)
