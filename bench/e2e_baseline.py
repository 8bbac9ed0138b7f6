"""bench/e2e.py's baseline: the deals service's hops by hand, offered at the same rates with the same watcher — a raw
asyncpg INSERT of an event row (the ack), then a raw aiokafka producer (acks=all, idempotent, key = stream), a raw
aiokafka consumer in its own process applying each batch in one transaction (an upsert of the stream's row) and
committing offsets. That is the floor of PostgreSQL + Kafka on this machine.

``python -m bench.e2e_baseline BOOTSTRAP TOPIC DSN TABLE GROUP`` is that consumer process.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.openloop import Acked, Watcher
from shared.messaging.kafka import TopicSpec, delete_topics, ensure_topics
from shared.ops.settings import Settings
from shared.ops.stack import ROOT


@dataclass
class Baseline:
    """The same hops by hand: INSERT (ack) → producer → consumer process → UPDATE."""

    settings: Settings
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    consumer: subprocess.Popen[bytes]
    topic: str
    schema: str
    streams: list[str]
    versions: dict[str, int]
    watcher: Watcher
    stop: asyncio.Event
    task: asyncio.Task[None]
    payload: str

    @classmethod
    async def start(cls, settings: Settings, pool_size: int, activity: dict[str, Any]) -> Baseline:
        """A pool of ``pool_size`` streams, each event's data the project's command body (``activity``)."""
        schema = f"{settings.schema_prefix}baseline"
        topic = f"{settings.topic_prefix}.baseline.events"
        dsn = str(settings.database_url)
        await ensure_topics(
            settings.kafka_bootstrap_servers,
            [TopicSpec(topic, settings.kafka_partitions, settings.kafka_replication_factor)],
        )
        pool = await asyncpg.create_pool(dsn, min_size=4, max_size=10)
        await pool.execute(
            f"""CREATE SCHEMA {schema};
                CREATE TABLE {schema}.events (
                    position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, stream_id text NOT NULL,
                    version integer NOT NULL, data jsonb NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now(),
                    UNIQUE (stream_id, version));
                CREATE TABLE {schema}.board (stream_id text PRIMARY KEY, version integer NOT NULL)"""
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers, enable_idempotence=True, acks="all"
        )
        await producer.start()
        consumer = subprocess.Popen(
            [sys.executable, "-m", "bench.e2e_baseline", settings.kafka_bootstrap_servers, topic, dsn,
             f"{schema}.board", f"{settings.topic_prefix}.baseline"],
            cwd=ROOT,
        )  # fmt: skip
        watcher = Watcher(await asyncpg.connect(dsn), f"{schema}.board")
        stop = asyncio.Event()
        task = asyncio.create_task(watcher.run(stop))
        streams = [f"deal-{uuid.uuid4()}" for _ in range(pool_size)]
        payload = json.dumps({"deal_id": str(uuid.uuid4()), **activity, "activity_id": str(uuid.uuid4())})
        self = cls(settings, pool, producer, consumer, topic, schema, streams, {}, watcher, stop, task, payload)
        # the pool's first events, like the deals opened on the project's side; waits for the consumer's group
        for s in streams:
            await self.send(lambda stream, version: watcher.expect(stream, version, time.perf_counter()), s)
        if unseen := await watcher.drain(within=60):
            raise RuntimeError(f"{unseen} baseline events never reached the table")
        return self

    async def send(self, acked: Acked, stream: str | None = None) -> None:
        stream = stream or random.choice(self.streams)
        version = self.versions[stream] = self.versions.get(stream, 0) + 1
        await self.pool.execute(
            f"INSERT INTO {self.schema}.events (stream_id, version, data) VALUES ($1, $2, $3::jsonb)",
            stream,
            version,
            self.payload,
        )
        acked(stream, version)
        value = json.dumps({"stream_id": stream, "version": version, "data": self.payload}).encode()
        await self.producer.send_and_wait(self.topic, value=value, key=stream.encode())

    async def close(self) -> None:
        self.stop.set()
        await self.task
        await self.watcher.conn.close()
        await self.producer.stop()
        self.consumer.terminate()
        self.consumer.wait(timeout=30)
        await self.pool.close()
        await delete_topics(self.settings.kafka_bootstrap_servers, [self.topic])


async def consume(bootstrap: str, topic: str, dsn: str, table: str, group: str) -> None:
    """Consume, apply each batch in one transaction (upsert each stream's version), commit offsets."""
    conn = await asyncpg.connect(dsn)
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=500)
            if not batches:
                continue
            latest: dict[str, int] = {}
            for records in batches.values():
                for r in records:
                    event = json.loads(r.value)
                    latest[event["stream_id"]] = max(latest.get(event["stream_id"], 0), event["version"])
            async with conn.transaction():
                await conn.execute(
                    f"""INSERT INTO {table} (stream_id, version) SELECT * FROM unnest($1::text[], $2::int[])
                        ON CONFLICT (stream_id) DO UPDATE SET version = greatest({table}.version, excluded.version)""",
                    list(latest),
                    list(latest.values()),
                )
            await consumer.commit({tp: rs[-1].offset + 1 for tp, rs in batches.items()})
    finally:
        await consumer.stop()
        await conn.close()


if __name__ == "__main__":
    asyncio.run(consume(*sys.argv[1:6]))
