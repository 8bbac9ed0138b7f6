"""The real servers answer: keyed Kafka messages on 6 partitions, PostgreSQL rows, durability settings."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from shared.ops.stack import Endpoints
from testkit.kafka import read_records

KEYS = 24
PER_KEY = 25


@pytest.mark.kafka
async def test_keyed_messages_keep_their_partition_and_order(endpoints: Endpoints, kafka_topic) -> None:
    topic = await kafka_topic(partitions=6)
    producer = AIOKafkaProducer(
        bootstrap_servers=endpoints.kafka_bootstrap_servers, enable_idempotence=True, acks="all", linger_ms=5
    )
    await producer.start()
    try:
        sends = [
            await producer.send(topic, key=f"stream-{k}".encode(), value=str(v).encode())
            for v in range(PER_KEY)
            for k in range(KEYS)
        ]
        metadata = await asyncio.gather(*sends)
    finally:
        await producer.stop()
    assert {m.topic for m in metadata} == {topic}

    got = await read_records(endpoints.kafka_bootstrap_servers, topic, KEYS * PER_KEY)

    assert len(got) == KEYS * PER_KEY
    partitions_of: dict[bytes, set[int]] = defaultdict(set)
    values_of: dict[bytes, list[int]] = defaultdict(list)
    for r in got:  # each partition in the order the topic holds it
        partitions_of[r.key or b""].add(r.partition)
        values_of[r.key or b""].append(int(r.value or b""))
    assert all(len(p) == 1 for p in partitions_of.values()), "a key was split across partitions"
    assert all(v == list(range(PER_KEY)) for v in values_of.values()), "a key's messages came out of order"
    assert len({p for ps in partitions_of.values() for p in ps}) > 1, "24 keys should spread over partitions"


@pytest.mark.pg
async def test_postgres_writes_and_reads_rows(pg_conn: asyncpg.Connection) -> None:
    await pg_conn.execute("CREATE TABLE smoke (id bigserial PRIMARY KEY, name text NOT NULL, data jsonb)")
    async with pg_conn.transaction():
        await pg_conn.executemany(
            "INSERT INTO smoke (name, data) VALUES ($1, $2::jsonb)",
            [(f"Khách hàng {i}", f'{{"n": {i}}}') for i in range(100)],
        )
    rows = await pg_conn.fetch("SELECT name, data->>'n' AS n FROM smoke ORDER BY id")
    assert len(rows) == 100
    assert rows[7]["name"] == "Khách hàng 7"
    assert rows[7]["n"] == "7"


@pytest.mark.pg
async def test_postgres_keeps_durability_on(pg_conn: asyncpg.Connection) -> None:
    settings = {
        r["name"]: r["setting"]
        for r in await pg_conn.fetch(
            "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes')"
        )
    }
    assert settings == {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
