"""Rows running at once share their "exists" read and their append (shared.store.new_streams, issue 26's import
batches): one store call each, every row still all-or-nothing and answered on its own."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.core.decider import InvalidError
from shared.store import AppendResult, NewStream
from shared.store.commands import Created, Step, StepRefusedError, execute_new
from shared.store.memory import InMemoryEventStore
from shared.store.new_streams import NewStreams
from testkit.events import Counted, counter

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


class CountingStore(InMemoryEventStore):
    """Counts the store calls; ``fail`` makes the batched append fail (a database down)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.fail = False

    async def append(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append("append")
        return await super().append(*args, **kwargs)

    async def stream_versions(self, stream_ids: Sequence[str]) -> dict[str, int]:
        self.calls.append(f"versions:{len(stream_ids)}")
        return await super().stream_versions(stream_ids)

    async def create_streams(self, streams: Sequence[NewStream]) -> list[AppendResult | None]:
        self.calls.append(f"create:{len(streams)}")
        if self.fail:
            raise ConnectionError("the database is gone")
        return await super().create_streams(streams)


def steps(n: int, refuse: bool = False) -> list[Step[int]]:
    def second(state: int) -> list[Counted]:
        if refuse:
            raise InvalidError("not_this", "refused")
        return [Counted(n=n + 1)]

    return [Step(T0, lambda state: [Counted(n=n)]), Step(T0 + timedelta(hours=1), second)]


async def rows(store: CountingStore, count: int, body: Any) -> list[Any]:
    """``count`` rows run as a batch runs them: concurrently, each leaving when done."""
    with NewStreams.rows(count) as shared:

        async def row(i: int) -> Any:
            try:
                return await body(i)
            except StepRefusedError as refused:
                return refused
            finally:
                shared.left()

        return await asyncio.gather(*(asyncio.create_task(row(i)) for i in range(count)))


async def test_a_batch_of_rows_reads_and_writes_its_new_streams_in_one_call_each() -> None:
    store = CountingStore()
    await execute_new(store, "row-3", counter, steps(30))  # imported before
    store.calls.clear()

    async def body(i: int) -> Created[int] | None:
        await asyncio.sleep(0.001 * (i % 3))  # rows arrive at different times (their own reads)
        return await execute_new(store, f"row-{i}", counter, steps(i * 10, refuse=i == 5), metadata={"row": i})

    results = await rows(store, 8, body)
    assert store.calls == ["versions:8", "create:6"]  # row-3 exists, row-5 refused; no per-row append
    assert results[3] is None
    assert isinstance(results[5], StepRefusedError) and results[5].index == 1
    for i in (0, 1, 2, 4, 6, 7):
        created = results[i]
        assert isinstance(created, Created) and created.append is not None and created.append.version == 2
        recorded = await store.read_stream(f"row-{i}")
        assert [e.to_event() for e in recorded] == [Counted(n=i * 10), Counted(n=i * 10 + 1)]
        assert [e.occurred_at for e in recorded] == [T0, T0 + timedelta(hours=1)]
        assert recorded[0].metadata == {"row": i}
    assert await store.stream_version("row-5") == 0  # refused: nothing of it
    assert store.states is not None and store.states.get(("row-0", id(counter)))[:2] == (2, 2)  # cached as stored


async def test_a_second_run_of_the_batch_appends_nothing() -> None:
    store = CountingStore()
    first = await rows(store, 4, lambda i: execute_new(store, f"row-{i}", counter, steps(i)))
    assert all(isinstance(r, Created) for r in first)
    store.calls.clear()
    again = await rows(store, 4, lambda i: execute_new(store, f"row-{i}", counter, steps(i)))
    assert again == [None] * 4 and store.calls == ["versions:4"]


async def test_a_dry_run_batch_reads_once_and_writes_nothing() -> None:
    store = CountingStore()
    results = await rows(store, 3, lambda i: execute_new(store, f"row-{i}", counter, steps(i), dry_run=True))
    assert [r.append for r in results] == [None] * 3
    assert store.calls == ["versions:3"]
    assert await store.stream_versions(["row-0", "row-1", "row-2"]) == {"row-0": 0, "row-1": 0, "row-2": 0}


async def test_two_rows_of_one_stream_write_it_once() -> None:
    store = CountingStore()
    results = await rows(store, 2, lambda i: execute_new(store, "row-same", counter, steps(i * 100)))
    assert sorted(r is None for r in results) == [False, True]
    assert len(await store.read_stream("row-same")) == 2


async def test_a_store_failure_fails_every_waiting_row_and_writes_nothing() -> None:
    store = CountingStore()
    store.fail = True
    with pytest.raises(ConnectionError):
        await rows(store, 3, lambda i: execute_new(store, f"row-{i}", counter, steps(i)))
    assert await store.read_all() == []


async def test_a_row_held_by_something_else_does_not_hold_the_others_forever() -> None:
    store = CountingStore()
    release = asyncio.Event()

    async def body(i: int) -> Created[int] | None:
        if i == 0:
            await release.wait()  # waits for a row that waits on the batch: only the timer flushes
        result = await execute_new(store, f"row-{i}", counter, steps(i))
        if i == 1:
            release.set()
        return result

    results = await asyncio.wait_for(rows(store, 2, body), 10)
    assert all(isinstance(r, Created) for r in results)
