"""Backup and restore, first part of the drill (#8): a logical backup taken while traffic flows, restored into a
fresh PostgreSQL cluster. The relay refuses to run until the cluster's transaction counter is advanced
(`scripts/stack pg-advance-xid`, docs/OPERATIONS.md), then publishes new events; every event the topic holds is
either in the restored store or one of those written after the backup; ``shared.restore.catch_up`` appends those,
and a read model rebuilt from the topic into the restored database agrees with the restored store."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from shared.db import create_pool
from shared.envelope import CloudEvent
from shared.eventstore import NewEvent
from shared.eventstore.postgres import PostgresEventStore
from shared.kafka import TopicSpec, delete_topics, ensure_topics
from shared.projections import ProjectionRunner, ReadModels
from shared.relay import CheckpointAheadError, OutboxRelay
from shared.restore import RestoreError, catch_up
from shared.settings import Settings
from shared.stack import ROOT, Endpoints
from tests.support.events import Counted
from tests.support.kafka import read_topic
from tests.support.projection import totals_projection
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka]


def pg_tool(name: str) -> str:
    return shutil.which(name) or str(max(Path("/usr/lib/postgresql").glob(f"*/bin/{name}")))


def stack(run_dir: Path, *args: str) -> str:
    done = subprocess.run(
        [str(ROOT / "scripts/stack"), "--run-dir", str(run_dir), *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def fresh_cluster(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A second PostgreSQL cluster, started by the project's script and wiped afterwards."""
    run_dir = tmp_path / "restore"
    out = stack(run_dir, "pg-up")
    url = next(line.split("=", 1)[1] for line in out.splitlines() if line.startswith("export DATABASE_URL="))
    try:
        yield run_dir, url
    finally:
        stack(run_dir, "down", "--wipe")


def relay_for(store: PostgresEventStore, url: str, endpoints: Endpoints, topic: str) -> OutboxRelay:
    return OutboxRelay(
        store, service="test", topic=topic, bootstrap_servers=endpoints.kafka_bootstrap_servers, database_url=url
    )


async def publish_all(relay: OutboxRelay) -> None:
    while await relay.publish_batch():
        pass
    assert (await relay.lag()).events == 0


async def next_xid(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT pg_snapshot_xmax(pg_current_snapshot())"))


async def test_backup_while_writing_restore_into_a_fresh_cluster(
    pg_store: PostgresEventStore, endpoints: Endpoints, kafka_topic, fresh_cluster, tmp_path: Path
) -> None:
    run_dir, fresh_url = fresh_cluster
    topic = await kafka_topic()
    # the source cluster's counter must be well past the fresh one's, as in any real deployment
    async with pg_store.pool.acquire() as conn:
        fresh = await asyncpg.connect(fresh_url)
        try:
            target = await next_xid(fresh) + 5_000
        finally:
            await fresh.close()
        while await next_xid(conn) < target:
            await conn.execute("SELECT pg_current_xact_id()")

    relay = relay_for(pg_store, endpoints.database_url, endpoints, topic)
    await relay.setup()
    assert await relay.lead()
    appended = 0
    stop = asyncio.Event()

    async def traffic() -> None:
        nonlocal appended
        while not stop.is_set():
            i = appended
            await pg_store.append(f"deal-{i % 10}", [NewEvent(Counted(n=1000 + i))], expected_version=i // 10)
            await relay.publish_batch()
            appended += 1

    async def until_appended(n: int) -> None:
        async with asyncio.timeout(60):
            while appended < n:
                await asyncio.sleep(0.01)

    writer = asyncio.create_task(traffic())
    await until_appended(200)
    dump = tmp_path / "store.dump"
    backup = await asyncio.create_subprocess_exec(
        pg_tool("pg_dump"), "-d", endpoints.database_url, "-n", pg_store.schema, "-Fc", "-f", str(dump)
    )
    assert await backup.wait() == 0
    at_backup = appended
    await until_appended(at_backup + 50)  # traffic goes on after the backup
    stop.set()
    await writer
    await publish_all(relay)
    await relay.close()

    restore = await asyncio.to_thread(
        subprocess.run,
        [pg_tool("pg_restore"), "--no-owner", "-d", fresh_url, str(dump)],
        capture_output=True,
        text=True,
    )
    assert restore.returncode == 0, restore.stderr
    pool = await create_pool(fresh_url, min_size=1, max_size=2)
    try:
        restored = PostgresEventStore(pool, pg_store.schema)
        restored_relay = relay_for(restored, fresh_url, endpoints, topic)
        with pytest.raises(CheckpointAheadError):
            await restored_relay.lead()
        await restored_relay.close()
        async with pool.acquire() as conn:
            newest = await conn.fetchval(f"SELECT max(tx_id)::text FROM {restored.schema}.events")
            backed_up = {
                r["id"] for r in await conn.fetch(f"SELECT event_id::text AS id FROM {restored.schema}.events")
            }
    finally:
        await pool.close()

    # The topic holds exactly what the restored store holds plus what was written after the backup.
    published = await read_topic(endpoints.kafka_bootstrap_servers, topic)
    in_source = [e.event_id for e in await pg_store.read_all(limit=100_000)]
    on_topic = {e.id for _, e in published}
    assert on_topic == {str(i) for i in in_source}
    after_backup = on_topic - backed_up
    assert backed_up <= on_topic and after_backup  # the backup is a prefix; the rest is on the topic, not lost
    assert len(backed_up) + len(after_backup) == len(in_source)

    await asyncio.to_thread(stack, run_dir, "pg-advance-xid", newest)
    pool = await create_pool(fresh_url, min_size=1, max_size=4)
    try:
        restored = PostgresEventStore(pool, pg_store.schema)
        caught_up = await catch_up(restored, endpoints.kafka_bootstrap_servers, [topic], source="/pipelines/test")
        assert caught_up.appended == len(after_backup) and caught_up.already_stored == len(published) - len(
            after_backup
        )
        assert await history(restored) == await history(pg_store)  # same streams, versions, ids, times
        assert (
            await catch_up(restored, endpoints.kafka_bootstrap_servers, [topic], source="/pipelines/test")
        ).appended == 0

        restored_relay = relay_for(restored, fresh_url, endpoints, topic)
        assert await restored_relay.lead()
        await restored.append("deal-new", [NewEvent(Counted(n=1))], expected_version=0)
        await publish_all(restored_relay)
        await restored_relay.close()
        published = await read_topic(endpoints.kafka_bootstrap_servers, topic)
        assert [e.streamid for _, e in published if e.id not in on_topic] == ["deal-new"]  # nothing twice

        # the read model, rebuilt from the topic into the restored database, agrees with the restored store
        runner = ProjectionRunner(
            pool,
            totals_projection(topic),
            namespace=restored.schema,
            bootstrap_servers=endpoints.kafka_bootstrap_servers,
            dead_letter_topic=await kafka_topic("dlq", partitions=1),
            group_prefix=f"restore.{restored.schema}",
            poll_interval=0.2,
        )
        await runner.setup()
        stop = asyncio.Event()
        running = asyncio.create_task(runner.run(stop))
        try:
            expected = await store_totals(restored)
            assert expected == {**await store_totals(pg_store), "deal-new": (1, 1)}

            async def rebuilt() -> bool:
                async with ReadModels(pool, restored.schema).connection("totals") as conn:
                    rows = await conn.fetch("SELECT stream_id, total, events FROM totals")
                return {r["stream_id"]: (r["total"], r["events"]) for r in rows} == expected

            await wait_until(rebuilt, timeout=60)
        finally:
            stop.set()
            await running
    finally:
        await pool.close()


async def history(store: PostgresEventStore) -> list[tuple[str, int, str, str, object]]:
    async with store.pool.acquire() as conn:
        rows = await conn.fetch(
            f"""SELECT stream_id, version, event_id::text, event_type, occurred_at FROM {store.schema}.events
                ORDER BY stream_id, version"""
        )
    return [tuple(r) for r in rows]


async def store_totals(store: PostgresEventStore) -> dict[str, tuple[int, int]]:
    async with store.pool.acquire() as conn:
        rows = await conn.fetch(
            f"""SELECT stream_id, sum((data->>'n')::int) AS total, count(*) AS events
                FROM {store.schema}.events GROUP BY stream_id"""
        )
    return {r["stream_id"]: (r["total"], r["events"]) for r in rows}


async def test_catch_up_refuses_a_gap_and_writes_nothing(
    pg_store: PostgresEventStore, endpoints: Endpoints, kafka_topic
) -> None:
    topic = await kafka_topic()
    await pg_store.append("a", [NewEvent(Counted(n=n)) for n in (1, 2, 3)], expected_version=0)
    recorded = await pg_store.read_stream("a")
    producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap_servers)
    await producer.start()
    try:
        for e in (recorded[0], recorded[2]):  # version 2 never reached the topic
            await producer.send_and_wait(topic, CloudEvent.from_recorded(e, "test").kafka_value(), key=b"a")
    finally:
        await producer.stop()
    target = PostgresEventStore(pg_store.pool, f"{pg_store.schema}_r")
    await target.setup()
    try:
        with pytest.raises(RestoreError, match=r"ends at version 0 and the topic holds \[1, 3\]; versions \[2\]"):
            await catch_up(target, endpoints.kafka_bootstrap_servers, [topic])
        assert await target.stream_version("a") == 0
    finally:
        async with pg_store.pool.acquire() as conn:
            await conn.execute(f"DROP SCHEMA {target.schema} CASCADE")


async def test_restore_command_catches_up_a_service_store(
    pg_store: PostgresEventStore, endpoints: Endpoints, kafka_topic
) -> None:
    """``python -m shared.restore <service>`` with a deployment's prefixes: what it appends, and a clear refusal."""
    prefix = f"r{uuid.uuid4().hex[:8]}"
    settings = Settings(
        database_url=endpoints.database_url,
        kafka_bootstrap_servers=endpoints.kafka_bootstrap_servers,
        schema_prefix=f"{prefix}_",
        topic_prefix=prefix,
    )
    topics = [settings.events_topic("deals"), settings.alerts_topic()]
    await ensure_topics(
        endpoints.kafka_bootstrap_servers,
        [TopicSpec(t, partitions=2, replication_factor=endpoints.replication_factor) for t in topics],
    )
    target = PostgresEventStore(pg_store.pool, settings.schema_name("deals"))
    await target.setup()
    env = os.environ | {
        "DATABASE_URL": endpoints.database_url,
        "KAFKA_BOOTSTRAP_SERVERS": endpoints.kafka_bootstrap_servers,
        "PIPELINES_SCHEMA_PREFIX": settings.schema_prefix,
        "PIPELINES_TOPIC_PREFIX": prefix,
    }

    async def restore() -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "shared.restore", "deals"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    try:
        await pg_store.append("deal-1", [NewEvent(Counted(n=n)) for n in (1, 2)], expected_version=0)
        await pg_store.append("deal-2", [NewEvent(Counted(n=3))], expected_version=0)
        recorded = await pg_store.read_all()
        producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap_servers)
        await producer.start()
        try:
            for e in recorded:
                envelope = CloudEvent.from_recorded(e, "deals")
                await producer.send_and_wait(topics[0], envelope.kafka_value(), key=e.stream_id.encode())
            other = CloudEvent.from_recorded(recorded[0], "leads")  # another service's message on the shared topic
            await producer.send_and_wait(topics[1], other.model_copy(update={"streamid": "x"}).kafka_value())
        finally:
            await producer.stop()
        done = await restore()
        assert done.returncode == 0, done.stderr
        assert "deals: 3 events appended to 2 streams" in done.stdout
        assert [e.event_id for e in await target.read_all()] == [e.event_id for e in recorded]
        assert (await restore()).stdout.startswith("deals: 0 events appended")

        async with pg_store.pool.acquire() as conn:  # a store that is not a prefix of the topic's history
            await conn.execute(f"DROP SCHEMA {target.schema} CASCADE")
        await target.setup()
        await target.append("deal-1", [NewEvent(Counted(n=9))], expected_version=0)  # not the topic's version 1
        refused = await restore()
        assert refused.returncode != 0
        assert "stream 'deal-1' version 1: the store holds event" in refused.stderr
        assert "(nothing was written)" in refused.stderr
        assert await target.stream_version("deal-1") == 1 and await target.stream_version("deal-2") == 0
    finally:
        await delete_topics(endpoints.kafka_bootstrap_servers, topics)
        async with pg_store.pool.acquire() as conn:
            await conn.execute(f"DROP SCHEMA IF EXISTS {target.schema} CASCADE")
