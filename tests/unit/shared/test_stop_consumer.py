"""``stop_consumer``: aiokafka's group-less consumer re-raises its own task's cancellation from ``stop()``; that
one is swallowed, a cancellation of the task stopping it is not."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, cast

import pytest

from shared.messaging.kafka import stop_consumer


class Consumer:
    def __init__(self, fails: BaseException | None = None) -> None:
        self.fails = fails
        self.stopped = False

    async def stop(self) -> None:
        self.stopped = True
        if self.fails is not None:
            raise self.fails


async def test_a_plain_stop() -> None:
    consumer = Consumer()
    await stop_consumer(cast(Any, consumer))
    assert consumer.stopped


async def test_the_consumers_own_cancellation_is_swallowed() -> None:
    await stop_consumer(cast(Any, Consumer(asyncio.CancelledError())))


async def test_a_cancellation_of_the_caller_goes_on() -> None:
    started = asyncio.Event()

    async def caller() -> None:
        started.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(10)  # cancelled here; the task is still being cancelled
        await stop_consumer(cast(Any, Consumer(asyncio.CancelledError())))
        raise AssertionError("the cancellation was swallowed")

    task = asyncio.create_task(caller())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_other_errors_reach_the_caller() -> None:
    with pytest.raises(RuntimeError):
        await stop_consumer(cast(Any, Consumer(RuntimeError("broker away"))))
