"""What the integration tests share beyond the servers: a service running in this test process."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from services.deals import main as deals_main
from shared.ops.stack import Endpoints
from testkit.services import DeployDeals, Deployed, Serve, Served, deployed, serving


@pytest.fixture
async def serve(endpoints: Endpoints) -> AsyncIterator[Serve]:
    """``await serve(main.build, start=…, projections={…})``: the service built on isolated settings with a clock
    the test moves, its relay and those read models running, an HTTP client of its app; all stopped and dropped
    when the test ends."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(build: Callable[..., Any], *, start: datetime, projections: set[str] | None = None) -> Served:
            return await stack.enter_async_context(serving(build, endpoints, start=start, projections=projections))

        yield start


@pytest.fixture
async def deploy_deals(endpoints: Endpoints, tmp_path: Path) -> AsyncIterator[DeployDeals]:
    """``await deploy_deals(MODE, PIPELINES_X=…)``: ``python -m services.deals MODE`` (``all``, ``api``…) on a port of
    its own with those settings, its schema and topics made first, as a deployment runs it (testkit ``deployed``);
    stopped and dropped when the test ends (its output: ``deals-MODE.log`` in the test's tmp_path)."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(mode: str, **env: str) -> Deployed:
            log = tmp_path / f"deals-{mode}.log"
            return await stack.enter_async_context(deployed(deals_main.build, endpoints, mode, log, **env))

        yield start
