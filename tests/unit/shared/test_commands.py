"""The command runner (shared.store.commands) on the in-memory store: versions, idempotency, races, as-of."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.store import ConcurrencyError, Idempotency
from shared.store.commands import execute, load
from shared.store.memory import InMemoryEventStore
from testkit.events import Counted, counter


async def test_execute_returns_version_position_and_new_state() -> None:
    store = InMemoryEventStore()
    first = await execute(store, "c", counter, lambda n: [Counted(n=n + 1)])
    second = await execute(store, "c", counter, lambda n: [Counted(n=n + 1), Counted(n=n + 2)])
    assert (first.version, first.state) == (1, 1)
    assert (second.version, second.state) == (3, 3)
    assert second.position > first.position
    assert second.events == (Counted(n=2), Counted(n=3))


async def test_expected_version_refuses_a_stale_command_without_deciding() -> None:
    store = InMemoryEventStore()
    await execute(store, "c", counter, lambda n: [Counted(n=1)])
    decided = []
    with pytest.raises(ConcurrencyError):
        await execute(store, "c", counter, lambda n: decided.append(n) or [Counted(n=2)], expected_version=0)
    assert decided == []


async def test_a_decision_of_no_events_appends_nothing() -> None:
    store = InMemoryEventStore()
    result = await execute(store, "c", counter, lambda n: [])
    assert (result.version, result.events) == (0, ())


async def test_repeated_command_with_an_idempotency_key_returns_the_first_answer() -> None:
    store = InMemoryEventStore()
    key = Idempotency.of("u-1", "abc", {"n": 1})
    first = await execute(store, "c", counter, lambda n: [Counted(n=1)], idempotency=key)
    again = await execute(store, "c", counter, lambda n: [Counted(n=1)], idempotency=key)
    assert again.append.replayed
    assert (again.version, again.position) == (first.version, first.position)
    assert await store.stream_version("c") == 1


class RacingStore(InMemoryEventStore):
    """Every append yields first, so commands started together all decide on the same version and race."""

    appends = 0

    async def append(self, *args: Any, **kwargs: Any) -> Any:
        self.appends += 1
        await asyncio.sleep(0)
        return await super().append(*args, **kwargs)


async def test_concurrent_commands_are_retried_on_the_latest_state() -> None:
    store = RacingStore()
    await asyncio.gather(*(execute(store, "c", counter, lambda n: [Counted(n=n)]) for _ in range(10)))
    decided_on = [r.data["n"] for r in await store.read_stream("c")]
    assert decided_on == list(range(10))  # each decided on the state the others had left: none on a stale one
    assert store.appends > 10  # they did race: the losers read the events after their state and decided again


async def test_state_as_of_a_version_is_the_fold_of_that_prefix() -> None:
    store = InMemoryEventStore()
    for _ in range(5):
        await execute(store, "c", counter, lambda n: [Counted(n=n)])
    assert (await load(store, "c", counter, to_version=2)).state == 2
    assert (await load(store, "c", counter)).state == 5
