"""How a projector batch begins and records its streams' progress (shared.messaging.runner._record_progress), on PostgreSQL.

A stream with a row (locked when the batch began) is updated; a stream new to the read model gets one row at its
version, at the end of the batch. If another consumer briefly owning the same partition inserted that stream's row
meanwhile, both applied its events: the later batch must fail with a retryable error (its transaction, read-model
writes included, rolls back and the batch is read again), never commit a second effect.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from shared.messaging.projections import PROGRESS_DDL
from shared.messaging.runner import _RETRYABLE, _begin_batch, _ProgressRace, _record_progress

pytestmark = pytest.mark.pg


@pytest.fixture
def other(pg_conn_other: asyncpg.Connection) -> asyncpg.Connection:
    return pg_conn_other  # another consumer's session


async def held_insert(other: asyncpg.Connection, stream: str, version: int) -> asyncpg.transaction.Transaction:
    """Another consumer's batch, open, that has inserted ``stream``'s progress row."""
    first = other.transaction()
    await first.start()
    await other.execute("INSERT INTO projection_progress (stream_id, version) VALUES ($1, $2)", stream, version)
    return first


async def versions(conn: asyncpg.Connection) -> dict[str, int]:
    return {
        r["stream_id"]: r["version"] for r in await conn.fetch("SELECT stream_id, version FROM projection_progress")
    }


async def test_known_streams_are_updated_and_new_ones_inserted_at_their_version(
    pg_conn: asyncpg.Connection, pg_schema: str
) -> None:
    await pg_conn.execute(PROGRESS_DDL.format(schema=pg_schema))
    await pg_conn.execute("INSERT INTO projection_progress (stream_id, version) VALUES ('a', 2), ('b', 5)")
    async with pg_conn.transaction():
        await _record_progress(pg_conn, {"a": 4, "c": 1, "d": 3}, known={"a": 2, "b": 5})
    assert await versions(pg_conn) == {"a": 4, "b": 5, "c": 1, "d": 3}


async def test_a_new_stream_another_consumer_took_meanwhile_fails_the_batch_retryably(
    pg_conn: asyncpg.Connection, other: asyncpg.Connection, pg_schema: str
) -> None:
    await pg_conn.execute(PROGRESS_DDL.format(schema=pg_schema))
    first = await held_insert(other, "s", 2)
    async with pg_conn.transaction():
        await pg_conn.execute("CREATE TABLE effects (n int)")
        await pg_conn.execute("INSERT INTO effects VALUES (1)")  # this batch's read-model write

    async def batch() -> None:
        async with pg_conn.transaction():
            await pg_conn.execute("INSERT INTO effects VALUES (2)")
            recording = asyncio.create_task(_record_progress(pg_conn, {"s": 2, "t": 1}, known={}))
            await asyncio.sleep(0.3)
            assert not recording.done(), "the insert waits for the other consumer's transaction"
            await first.commit()
            await recording

    with pytest.raises(_ProgressRace) as raised:
        await batch()
    assert isinstance(raised.value, _RETRYABLE)  # the consumer restarts and reads the batch again
    assert await versions(pg_conn) == {"s": 2}  # the other consumer's, alone
    assert [r["n"] for r in await pg_conn.fetch("SELECT n FROM effects")] == [1]  # the second effect rolled back


async def test_a_new_stream_whose_other_inserter_rolled_back_is_inserted(
    pg_conn: asyncpg.Connection, other: asyncpg.Connection, pg_schema: str
) -> None:
    await pg_conn.execute(PROGRESS_DDL.format(schema=pg_schema))
    first = await held_insert(other, "s", 2)
    async with pg_conn.transaction():
        recording = asyncio.create_task(_record_progress(pg_conn, {"s": 3}, known={}))
        await asyncio.sleep(0.3)
        await first.rollback()
        await recording
    assert await versions(pg_conn) == {"s": 3}


async def test_a_batch_waits_at_its_start_while_the_progress_table_is_held_against_writes(
    pg_conn: asyncpg.Connection, other: asyncpg.Connection, pg_schema: str
) -> None:
    await pg_conn.execute(PROGRESS_DDL.format(schema=pg_schema))
    holder = other.transaction()
    await holder.start()
    await other.execute("LOCK TABLE projection_progress IN SHARE MODE")  # as an index build, or the drain fault test
    async with pg_conn.transaction():
        beginning = asyncio.create_task(_begin_batch(pg_conn, pg_schema))
        await asyncio.sleep(0.3)
        assert not beginning.done(), "the batch waits before it applies anything"
        await holder.commit()
        await beginning
        await _record_progress(pg_conn, {"s": 1}, known={})
    assert await versions(pg_conn) == {"s": 1}
