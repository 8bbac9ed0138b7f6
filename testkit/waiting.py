"""Polling until a condition holds, bounded (the servers are real and the machines shared)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float = 30.0, interval: float = 0.05) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(interval)


async def published(relay: Any, expected: int, timeout: float = 30.0) -> int:
    """What ``relay`` publishes, batch after batch, until ``expected`` events (or the timeout). A batch may stop
    short of committed events while any transaction of the database cluster that began before them is open: the
    relay never passes an open transaction's place in commit order (decision 0002), and tests running beside this
    one (pytest-xdist) open transactions of their own."""
    total = 0
    async with asyncio.timeout(timeout):
        while total < expected:
            total += await relay.publish_batch()
            if total < expected:
                await asyncio.sleep(0.05)
    return total
