"""A service's pool hands out no connection whose session is still inside a transaction (issue 23, item 9).

``GET /leads`` answered 500 in CI: ``BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`` failed with
ActiveSQLTransactionError ("SET TRANSACTION ISOLATION LEVEL must be called before any query") on a connection
asyncpg believed idle. asyncpg prepares a statement with Parse/Describe/Flush and runs it with Bind/Execute/Sync;
PostgreSQL opens an implicit transaction at the Parse (with a snapshot) that only a Sync or a simple query ends,
and no ReadyForQuery tells asyncpg of it. A statement stopped between the two left the session there: an argument
asyncpg cannot encode (refused before anything is sent: the API's 422 backstop for numbers out of range), or a
cancellation landing just after the Parse was answered. The services' pool released connections with no reset
query at all, so the next user of the connection began its transaction inside that one.

Each test makes the connection's first statement stop at that point, on the pool ``Storage.open`` makes (one
connection), then looks at the session from another connection and begins the read models' transaction on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.leads import main as leads_main
from services.production import main as production_main
from shared.edge.service import Storage
from shared.ops.settings import Settings
from shared.ops.stack import Endpoints
from shared.store.db import connect
from testkit.services import bearer, client_for, drop_schemas, isolated_settings

pytestmark = [pytest.mark.pg]


@pytest.fixture
async def settings(endpoints: Endpoints) -> AsyncIterator[Settings]:
    """Schemas of the test's own, dropped afterwards; a pool of one connection."""
    settings = isolated_settings(endpoints).model_copy(update={"db_pool_size": 1})
    yield settings
    await drop_schemas(settings)


@pytest.fixture
async def storage(settings: Settings) -> AsyncIterator[Storage]:
    """The leads service's storage."""
    storage = await Storage.open(settings, "leads")
    try:
        yield storage
    finally:
        await storage.close()


async def session_of(storage: Storage) -> tuple[str, str]:
    """The pool's one connection as PostgreSQL sees it from another session: its state and its last statement."""
    async with storage.pool.acquire() as conn:
        pid = conn.get_server_pid()
    watcher = await connect(storage.settings.database_url_for("leads"))
    try:
        row = await watcher.fetchrow("SELECT state, query FROM pg_stat_activity WHERE pid = $1", pid)
    finally:
        await watcher.close()
    assert row is not None
    return row["state"], row["query"]


async def read_models_begin(storage: Storage) -> int:
    """The read models' transaction (``ReadModels.connection``) on the pool's connection."""
    async with storage.pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
        return int(await conn.fetchval("SELECT 1"))


async def cancel_once_answered(task: asyncio.Task[object]) -> None:
    """Cancel ``task`` in the same turn of the event loop as the reply it waits for is read, before it resumes.

    For a statement new to the connection the first wait is its Parse/Describe: asyncpg has the reply (so it asks
    PostgreSQL to cancel nothing) and the task never sends the Bind/Execute/Sync."""
    while (waiter := task._fut_waiter) is None or not waiter.done():  # type: ignore[attr-defined]  # asyncio's own
        await asyncio.sleep(0)
    task.cancel()


async def test_an_argument_asyncpg_refuses_leaves_no_transaction_behind(storage: Storage) -> None:
    with pytest.raises(asyncpg.DataError, match="invalid input for query argument"):
        await storage.store.locate(2**63)  # a position past bigint: refused before it is sent
    state, last = await session_of(storage)
    assert await read_models_begin(storage) == 1
    assert state == "idle"
    assert "RESET ALL" in last  # sent on release: the statement had stopped before its Sync


async def test_a_query_cancelled_once_its_statement_is_prepared_leaves_no_transaction_behind(
    storage: Storage,
) -> None:
    query = asyncio.ensure_future(storage.store.locate(1))
    await cancel_once_answered(query)
    with pytest.raises(asyncio.CancelledError):
        await query
    state, last = await session_of(storage)
    assert await read_models_begin(storage) == 1
    assert state == "idle"
    assert "RESET ALL" in last  # sent on release: the statement had stopped before its Sync


async def test_a_statement_run_to_its_end_is_released_without_a_reset_query(storage: Storage) -> None:
    """The reset query is one more round trip per query (bench, 821722b): only a release that needs it sends it."""
    assert await storage.store.locate(1) is None
    state, query = await session_of(storage)
    assert state == "idle"
    assert query.startswith("SELECT stream_id, version FROM"), query  # locate's, not a reset query


async def test_get_leads_answers_after_a_statement_refused_on_its_connection(settings: Settings) -> None:
    """The CI symptom, through the app: no retry hides it any more (ReadModels.connection tries once)."""
    service = await leads_main.build(settings)
    try:
        for runner in service.runners():
            await runner.setup()  # the read models' generations (no Kafka: nothing is consumed)
        with pytest.raises(asyncpg.DataError):
            await service.storage.store.locate(2**63)
        async with client_for(service.app()) as http:
            response = await http.get("/leads", headers=bearer("u-mkt", "marketing"))
        assert response.status_code == 200, response.text
        assert response.json()["items"] == []
    finally:
        await service.close()


async def test_a_query_over_two_read_models_holds_one_pool_connection_at_a_time(settings: Settings) -> None:
    """``GET /demand`` reads the demand and floor read models. Holding a connection to each at once, as many such
    requests as the pool has connections each took one and waited for a second forever (here: one is enough)."""
    service = await production_main.build(settings)
    try:
        for runner in service.runners():
            await runner.setup()
        async with client_for(service.app()) as http:
            response = await asyncio.wait_for(http.get("/demand", headers=bearer("u-plan", "production")), 10)
        assert response.status_code == 200, response.text
        assert response.json() == []
    finally:
        await service.close()
