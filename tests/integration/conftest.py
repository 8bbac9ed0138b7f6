"""What the integration tests share beyond the servers: a service running in this test process."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import pytest

from shared.ops.stack import Endpoints
from testkit.services import Serve, Served, serving


@pytest.fixture
async def serve(endpoints: Endpoints) -> AsyncIterator[Serve]:
    """``await serve(main.build, start=…, projections={…})``: the service built on isolated settings with a clock
    the test moves, its relay and those read models running, an HTTP client of its app; all stopped and dropped
    when the test ends."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(build: Callable[..., Any], *, start: datetime, projections: set[str] | None = None) -> Served:
            return await stack.enter_async_context(serving(build, endpoints, start=start, projections=projections))

        yield start
