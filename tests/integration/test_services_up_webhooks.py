"""``pipelines services up`` starts the webhooks' two processes (decision 0026) as it starts the others: the API on
``PIPELINES_WEBHOOKS_PORT`` and the dispatcher, its /readyz on the dispatcher's ops port; ``services status`` lists
them with their pids and ``services down`` stops them (tools/local.py; the other parts: tests/unit/test_cli_services.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from shared.ops.stack import Endpoints, free_port
from testkit.services import drop_everything, isolated_settings, process_env
from tools import local

pytestmark = [pytest.mark.pg, pytest.mark.kafka]
PARTS = (local.WEBHOOKS, local.DISPATCHER)


def test_services_up_starts_the_webhooks_api_and_dispatcher(
    endpoints: Endpoints, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = isolated_settings(endpoints)
    api_port, ops_port = free_port(), free_port()  # not the fixed local ports: other stacks may hold them
    for key, value in process_env(settings, PIPELINES_WEBHOOKS_PORT=str(api_port)).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PIPELINES_FACEBOOK_GRAPH_URL", "http://127.0.0.1:9")  # no Graph stub: no leads service here
    monkeypatch.setattr(local, "RUN", tmp_path)
    monkeypatch.setattr(local, "PARTS", PARTS)  # the webhooks' two alone: the rest are the same loop
    monkeypatch.setattr(local, "DISPATCHER_OPS_PORT", ops_port)
    try:
        local.up()  # returns once each answers /readyz (else exits non-zero)
        status = {row["service"]: row for row in local.status()}
        assert set(status) == set(PARTS) and all(row["pid"] for row in status.values())
        assert status[local.WEBHOOKS]["url"].endswith(f":{api_port}")
        assert status[local.DISPATCHER]["url"].endswith(f":{ops_port}")
        metrics = httpx.get(f"{status[local.DISPATCHER]['url']}/metrics", timeout=5).text
        assert "pipelines_webhook" in metrics  # the dispatcher's own metrics, where the pod monitors scrape them
        # the API answers as the webhooks' API: its subscriptions need a token
        assert httpx.get(f"{status[local.WEBHOOKS]['url']}/subscriptions", timeout=5).status_code == 401
    finally:
        local.down()
        asyncio.run(drop_everything(settings))
    # both stopped at once on SIGTERM, the dispatcher too while it waits for its topics (none exist here)
    assert all(row["pid"] is None for row in local.status())
