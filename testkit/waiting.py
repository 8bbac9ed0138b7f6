"""Polling until a condition holds, bounded (the servers are real and the machines shared)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float = 30.0, interval: float = 0.05) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(interval)
