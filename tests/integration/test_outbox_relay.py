"""The outbox relay against real PostgreSQL and Kafka: order, no skips, crash and resume, one leader."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest

from shared.messaging.relay import HELD_BACK, CheckpointAheadError, OutboxRelay
from shared.ops.stack import ROOT, Endpoints
from shared.store import Checkpoint, NewEvent
from shared.store.postgres import PostgresEventStore
from testkit.events import Counted
from testkit.kafka import by_stream, read_topic
from testkit.waiting import published, wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka]


def make_relay(store: PostgresEventStore, endpoints: Endpoints, topic: str, **kw) -> OutboxRelay:
    return OutboxRelay(
        store,
        service="test",
        topic=topic,
        bootstrap_servers=endpoints.kafka_bootstrap_servers,
        database_url=endpoints.database_url,
        **kw,
    )


async def store_streams(store: PostgresEventStore) -> dict[str, list[int]]:
    async with store.pool.acquire() as conn:
        rows = await conn.fetch(f"SELECT stream_id, version FROM {store.schema}.events ORDER BY stream_id, version")
    streams: dict[str, list[int]] = {}
    for r in rows:
        streams.setdefault(r["stream_id"], []).append(r["version"])
    return streams


async def test_relay_holds_back_everything_after_an_open_transaction(
    pg_store: PostgresEventStore, endpoints: Endpoints, kafka_topic
) -> None:
    topic = await kafka_topic()
    relay = make_relay(pg_store, endpoints, topic)
    await relay.setup()
    assert await relay.lead()
    try:
        async with pg_store.pool.acquire() as slow:
            tx = slow.transaction()
            await tx.start()
            await pg_store.append("late", [NewEvent(Counted(n=0))], expected_version=0, conn=slow)
            for i in range(1, 4):
                await pg_store.append("after", [NewEvent(Counted(n=i))], expected_version=i - 1)
            assert await relay.publish_batch() == 0
            assert await read_topic(endpoints.kafka_bootstrap_servers, topic) == []
            lag = await relay.lag()
            assert lag.events == 3  # committed, waiting behind the open transaction
            await tx.commit()
        assert await published(relay, 4) == 4
        messages = await read_topic(endpoints.kafka_bootstrap_servers, topic)
        assert [(e.streamid, e.data["n"]) for _, e in sorted(messages, key=lambda m: m[1].position)] == [
            ("late", 0),
            ("after", 1),
            ("after", 2),
            ("after", 3),
        ]
        assert by_stream(messages)["after"] == [1, 2, 3]
        assert (await relay.lag()).events == 0
    finally:
        await relay.close()


async def test_the_relays_probe_after_each_batch_reads_the_index_not_the_table(
    pg_store: PostgresEventStore, endpoints: Endpoints, kafka_topic
) -> None:
    """Whether events wait behind an open transaction is asked after every batch, as a prepared statement: its
    generic plan (PostgreSQL's after five runs) must find the first row past the checkpoint in the commit-order
    index, not scan the whole store (an EXISTS did: the planner drops its ORDER BY and LIMIT)."""
    s = pg_store.schema
    async with pg_store.pool.acquire() as conn:
        await conn.execute(
            f"""INSERT INTO {s}.events (stream_id, version, event_id, event_type, schema_version, data, metadata,
                                        occurred_at)
                SELECT 's' || i, 1, gen_random_uuid(), 't', 1, '{{}}', '{{}}', now() FROM generate_series(1, 5000) i;
                ANALYZE {s}.events"""
        )
        async with conn.transaction():
            await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            await conn.execute(f"PREPARE held_back(xid8, bigint) AS {HELD_BACK.format(schema=s)}")
            plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN EXECUTE held_back('0', 0)"))
            await conn.execute("DEALLOCATE held_back")
    assert "events_commit_order" in plan, plan
    assert "Seq Scan" not in plan, plan
    relay = make_relay(pg_store, endpoints, await kafka_topic())
    await relay.setup()
    assert await relay.lead()
    try:
        for _ in range(6):  # past the fifth run, on the relay's own connection: the answer stays right
            assert await relay._held_back()
        assert (await relay.lag()).events == 5000  # no checkpoint stored yet: every event
        async with pg_store.pool.acquire() as conn:
            last = await conn.fetchrow(f"SELECT tx_id, position FROM {s}.events ORDER BY tx_id DESC, position DESC")
        relay.checkpoint = Checkpoint(last["tx_id"], last["position"])
        assert not await relay._held_back()
    finally:
        await relay.close()


async def test_only_the_relays_checkpoints_skip_the_wal_flush_wait(
    pg_store: PostgresEventStore, endpoints: Endpoints, kafka_topic
) -> None:
    relay = make_relay(pg_store, endpoints, await kafka_topic())
    await relay.setup()
    assert await relay.lead()
    try:
        await pg_store.append("s", [NewEvent(Counted(n=1))], expected_version=0)
        assert await published(relay, 1) == 1
        assert relay._conn is not None
        assert await relay._conn.fetchval("SHOW synchronous_commit") == "off"  # a lost checkpoint: sent again
        async with pg_store.pool.acquire() as conn:  # the appends wait for their flush
            assert await conn.fetchval("SHOW synchronous_commit") == "on"
        assert (
            await relay._conn.fetchval(
                f"SELECT published FROM {pg_store.schema}.relay_checkpoints WHERE name = $1", relay.name
            )
            == 1
        )
    finally:
        await relay.close()


async def test_concurrent_writers_while_the_relay_runs_topic_equals_store(
    pg_store: PostgresEventStore, endpoints: Endpoints, kafka_topic
) -> None:
    topic = await kafka_topic()
    relay = make_relay(pg_store, endpoints, topic, batch_size=37, poll_interval=0.2)
    await relay.setup()
    stop = asyncio.Event()
    running = asyncio.create_task(relay.run(stop))

    async def writer(w: int) -> None:
        for v in range(30):
            await pg_store.append(f"w-{w}", [NewEvent(Counted(n=v))], expected_version=v)

    await asyncio.gather(*(writer(w) for w in range(16)))

    async def drained() -> bool:
        return (await relay.lag()).events == 0

    await wait_until(drained)
    stop.set()
    await running

    messages = await read_topic(endpoints.kafka_bootstrap_servers, topic)
    assert len(messages) == 16 * 30, "published once each in normal operation"
    assert by_stream(messages) == await store_streams(pg_store)
    partitions = {}
    for partition, e in messages:
        assert partitions.setdefault(e.streamid, partition) == partition, "one stream, one partition"
        assert e.type == "pipelines.test.Counted"
        assert e.source == "/pipelines/test"


def start_relay_process(endpoints: Endpoints, schema: str, topic: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": endpoints.database_url,
        "KAFKA_BOOTSTRAP_SERVERS": endpoints.kafka_bootstrap_servers,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "testkit.relay_process", "test", "--schema", schema, "--topic", topic],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
async def test_relay_process_killed_mid_stream_loses_nothing(
    pg_store: PostgresEventStore, endpoints: Endpoints, kafka_topic
) -> None:
    topic = await kafka_topic()
    watcher = make_relay(pg_store, endpoints, topic)  # only for lag(): never leads
    await watcher.setup()
    process = start_relay_process(endpoints, pg_store.schema, topic)
    stop_writing = asyncio.Event()

    async def writer(w: int) -> None:
        v = 0
        while not stop_writing.is_set():
            await pg_store.append(f"k-{w}", [NewEvent(Counted(n=v))], expected_version=v)
            v += 1
            await asyncio.sleep(0.001)

    writers = [asyncio.create_task(writer(w)) for w in range(8)]
    try:

        async def some_published() -> bool:
            async with pg_store.pool.acquire() as conn:
                n = await conn.fetchval(f"SELECT coalesce(sum(published), 0) FROM {pg_store.schema}.relay_checkpoints")
            return n >= 200

        await wait_until(some_published)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL
        await asyncio.sleep(0.3)  # writes go on while no relay runs
        process = start_relay_process(endpoints, pg_store.schema, topic)
        await asyncio.sleep(0.5)
    finally:
        stop_writing.set()
        await asyncio.gather(*writers)

    async def drained() -> bool:
        return (await watcher.lag()).events == 0

    try:
        await wait_until(drained, timeout=60)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0, process.stderr.read().decode()[-2000:] if process.stderr else ""

    messages = await read_topic(endpoints.kafka_bootstrap_servers, topic)
    stored = await store_streams(pg_store)
    published = by_stream(messages)
    assert set(published) == set(stored)
    for stream, versions in stored.items():
        got = published[stream]
        # at least once: every version is there; a duplicate is only a re-send of an earlier version
        assert sorted(set(got)) == versions, f"{stream} lost events"
        deduplicated = []
        for v in got:
            if not deduplicated or v > deduplicated[-1]:
                deduplicated.append(v)
        assert deduplicated == versions, f"{stream} out of order beyond re-sends"


async def test_second_relay_waits_as_standby_and_takes_over(
    pg_store: PostgresEventStore, endpoints: Endpoints, kafka_topic
) -> None:
    topic = await kafka_topic()
    first = make_relay(pg_store, endpoints, topic, poll_interval=0.1)
    second = make_relay(pg_store, endpoints, topic, poll_interval=0.1)
    await first.setup()
    stop1, stop2 = asyncio.Event(), asyncio.Event()
    run1 = asyncio.create_task(first.run(stop1))

    async def leading() -> bool:
        return first.is_leader

    await wait_until(leading)
    run2 = asyncio.create_task(second.run(stop2))
    for v in range(10):
        await pg_store.append("s", [NewEvent(Counted(n=v))], expected_version=v)

    async def drained() -> bool:
        return (await first.lag()).events == 0

    await wait_until(drained)
    assert not second.is_leader
    stop1.set()
    await run1

    async def second_leads() -> bool:
        return second.is_leader

    await wait_until(second_leads)
    for v in range(10, 15):
        await pg_store.append("s", [NewEvent(Counted(n=v))], expected_version=v)
    await wait_until(drained)
    stop2.set()
    await run2
    assert first.published == 10
    assert second.published == 5
    messages = await read_topic(endpoints.kafka_bootstrap_servers, topic)
    assert by_stream(messages) == {"s": list(range(1, 16))}


async def test_relay_refuses_a_checkpoint_ahead_of_the_cluster(
    pg_store: PostgresEventStore, endpoints: Endpoints, kafka_topic
) -> None:
    """A logical restore into a fresh cluster leaves checkpoints ahead of its transaction ids: say so, publish nothing."""
    topic = await kafka_topic()
    relay = make_relay(pg_store, endpoints, topic)
    await relay.setup()
    await pg_store.append("s", [NewEvent(Counted(n=1))], expected_version=0)
    async with pg_store.pool.acquire() as conn:
        ahead = await conn.fetchval("SELECT pg_snapshot_xmax(pg_current_snapshot())") + 1_000_000
        await conn.execute(
            f"""INSERT INTO {pg_store.schema}.relay_checkpoints (name, tx_id, position, published)
                VALUES ($1, $2::xid8, 0, 0)""",
            relay.name,
            ahead,
        )
    try:
        with pytest.raises(CheckpointAheadError, match="pg_resetwal"):
            await relay.lead()
    finally:
        await relay.close()
    assert await read_topic(endpoints.kafka_bootstrap_servers, topic) == []
    async with pg_store.pool.acquire() as conn:  # once the counter is past it (here: the checkpoint moved back)
        await conn.execute(
            f"UPDATE {pg_store.schema}.relay_checkpoints SET tx_id = '0'::xid8 WHERE name = $1", relay.name
        )
    assert await relay.lead()
    try:
        assert await published(relay, 1) == 1
    finally:
        await relay.close()
