"""Every process exposes its metrics and health: the API on its own port, relay and projector on the ops port."""

from __future__ import annotations

import asyncio
import re

import pytest

from services.deals import main as deals_main
from shared.edge.service import ops_app
from shared.ops.stack import Endpoints
from shared.ops.version import VERSION
from testkit.services import (
    applied_everything,
    bearer,
    client_for,
    drop_everything,
    isolated_settings,
    start_parts,
)
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka]
SALES = bearer("u-lan", "sales")


def value(metrics: str, name: str, **labels: str) -> float:
    """The sample of ``name`` whose labels include ``labels`` (0 when absent)."""
    for line in metrics.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_and_health_of_api_relay_and_projector(endpoints: Endpoints) -> None:
    settings = isolated_settings(endpoints)
    core = await deals_main.build(settings)
    await core.ensure_topics()
    schema = core.storage.store.schema
    stop = asyncio.Event()
    tasks = await start_parts(core, stop)
    api, ops = client_for(core.app()), client_for(ops_app(core, "projector"))
    try:
        before = (await api.get("/metrics")).text
        for i in range(3):
            r = await api.post(
                "/deals",
                headers=SALES,
                json={"title": f"Đơn {i}", "customer": "Sen Vàng", "owner_id": "u-lan", "team_id": "north"},
            )
            assert r.status_code == 201
        assert (await api.get("/deals/not-a-uuid", headers=SALES)).status_code == 422
        await wait_until(lambda: applied_everything(core, "board"), timeout=30)

        async def reported() -> bool:
            text = (await api.get("/metrics")).text
            return value(text, "pipelines_relay_published_total", service="deals") >= 3

        await wait_until(reported, timeout=30)
        text = (await api.get("/metrics")).text
        assert (
            value(text, "pipelines_events_appended_total", service=schema)
            - value(before, "pipelines_events_appended_total", service=schema)
        ) == 3
        assert value(text, "pipelines_append_seconds_count", service=schema) >= 3

        def grew(name: str, **labels: str) -> float:  # the registry is the process's: other tests count too
            return value(text, name, **labels) - value(before, name, **labels)

        assert (
            grew("pipelines_http_request_seconds_count", service="deals", route="/deals", method="POST", status="201")
            == 3
        )
        assert grew("pipelines_http_request_seconds_count", route="/deals/{deal_id}", status="422") == 1
        assert not re.search(r'route="/deals/[0-9a-f-]{36}"', text), "ids never become labels"
        assert value(text, "pipelines_projection_applied_total", service=schema, projection="board") >= 3
        assert value(text, "pipelines_projection_generation", service=schema, projection="board") == 1
        assert "pipelines_consumer_lag{" in text
        assert (await ops.get("/healthz")).json() == {"status": "ok", "version": VERSION}
        ready = (await ops.get("/readyz")).json()
        assert ready == {"status": "ok", "checks": {"postgresql": "ok", "kafka": "ok"}}
        assert "pipelines_relay_backlog_events" in (await ops.get("/metrics")).text
        assert (await ops.get("/deals")).status_code == 404, "the ops port serves only health and metrics"
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await api.aclose()
        await ops.aclose()
        await core.close()
        await drop_everything(settings)
