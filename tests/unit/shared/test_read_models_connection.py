"""ReadModels.connection when a pool connection's session is inside a transaction asyncpg does not know of:
BEGIN fails before anything is read, so the query is tried once more; a failure after it was given is not."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from shared.messaging.projections import ReadModels


class FakeConn:
    def __init__(self, pool: FakePool) -> None:
        self.pool = pool

    @contextlib.asynccontextmanager
    async def transaction(self, **_: Any) -> AsyncIterator[None]:
        if self.pool.stale:
            self.pool.stale -= 1  # asyncpg's release rolls the failed block back
            raise asyncpg.ActiveSQLTransactionError("SET TRANSACTION ISOLATION LEVEL must be called before any query")
        yield

    async def fetchval(self, *_: Any) -> int:
        return 1  # the active generation

    async def execute(self, *_: Any) -> str:
        return "SET"


class FakePool:
    def __init__(self, stale: int) -> None:
        self.stale = stale
        self.acquired = 0

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[FakeConn]:
        self.acquired += 1
        yield FakeConn(self)


async def test_a_stale_transaction_is_rolled_back_and_the_read_tried_once_more() -> None:
    pool = FakePool(stale=1)
    models = ReadModels(pool, "deals")
    async with models.connection("board") as conn:
        assert await conn.fetchval("SELECT 1") == 1
    assert pool.acquired == 2


async def test_it_is_tried_once_more_only() -> None:
    pool = FakePool(stale=2)
    models = ReadModels(pool, "deals")
    with pytest.raises(asyncpg.ActiveSQLTransactionError):
        async with models.connection("board"):
            pass
    assert pool.acquired == 2


async def test_an_error_in_the_query_itself_is_not_retried() -> None:
    pool = FakePool(stale=0)
    models = ReadModels(pool, "deals")
    with pytest.raises(asyncpg.ActiveSQLTransactionError):
        async with models.connection("board"):
            raise asyncpg.ActiveSQLTransactionError("from the caller's own statement")
    assert pool.acquired == 1
