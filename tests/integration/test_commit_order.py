"""Commit order keeps each stream's order (issue 24: a reaction batch appending to a deal the API had just changed).

Tailing readers (the relay) read the store in (transaction id, position) order. A transaction's id is assigned at
its first write, so a long transaction (a projection runner's reaction batch) that wrote something early and then
appends to a stream a younger transaction wrote to meanwhile would sort its later version before the younger
transaction's earlier one: the topic would carry the stream out of order. The store refuses that append
(``StaleTransactionError``, which the runner retries in a new transaction); a new transaction appends in order.
"""

from __future__ import annotations

import asyncpg
import pytest

from shared.store import NewEvent, StaleTransactionError
from shared.store.postgres import PostgresEventStore
from testkit.events import Counted
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg]


async def tail(store: PostgresEventStore, count: int) -> list[tuple[str, int]]:
    """The tail once it shows ``count`` events: it hides what committed after a transaction still open anywhere in the
    cluster (another test's, on a shared server), until that one ends."""
    seen: list[tuple[str, int]] = []

    async def shown() -> bool:
        seen[:] = [(e.stream_id, e.version) for e in await store.read_all(limit=100)]
        return len(seen) >= count

    await wait_until(shown, timeout=60, interval=0.1)
    return seen


async def test_an_older_transaction_may_not_append_after_a_younger_one(
    pg_store: PostgresEventStore, pg_pool: asyncpg.Pool
) -> None:
    async with pg_pool.acquire() as batch_conn:
        batch = batch_conn.transaction()
        await batch.start()
        reacting = pg_store.using(batch_conn)
        await reacting.append("deal-a", [NewEvent(Counted(n=1))], expected_version=0)  # its id is assigned here
        await pg_store.append("deal-b", [NewEvent(Counted(n=1))], expected_version=0)  # younger, committed
        with pytest.raises(StaleTransactionError):
            await reacting.append("deal-b", [NewEvent(Counted(n=2))], expected_version=1)
        await reacting.append("deal-c", [NewEvent(Counted(n=1))], expected_version=0)  # untouched streams: fine
        await batch.rollback()  # the runner's retry: the batch again, in a new transaction
        async with batch_conn.transaction():
            again = pg_store.using(batch_conn)
            await again.append("deal-a", [NewEvent(Counted(n=1))], expected_version=0)
            await again.append("deal-b", [NewEvent(Counted(n=2))], expected_version=1)
    tailed = await tail(pg_store, 3)
    assert [v for s, v in tailed if s == "deal-b"] == [1, 2]
    assert sorted(tailed) == [("deal-a", 1), ("deal-b", 1), ("deal-b", 2)]


async def test_a_plain_append_is_never_refused_for_its_age(pg_store: PostgresEventStore) -> None:
    for v in range(5):  # each its own transaction: its id is assigned at its one write
        await pg_store.append("deal-x", [NewEvent(Counted(n=v))], expected_version=v)
    assert [v for _, v in await tail(pg_store, 5)] == [1, 2, 3, 4, 5]
