"""The projection runner on real Kafka and PostgreSQL: exactly-once effect, rebuilds, dead letters, read-your-writes."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY

from shared.messaging.projections import Fact, ReadModelBehindError, ReadModels, request_rebuild
from shared.messaging.relay import OutboxRelay
from shared.messaging.runner import ProjectionRunner
from shared.ops.stack import Endpoints
from shared.store import NewEvent
from shared.store.db import Conn
from shared.store.postgres import PostgresEventStore
from testkit.events import Counted, ThingCreated
from testkit.kafka import read_records
from testkit.projection import POISON, totals_projection
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka]


@dataclass
class Pipeline:
    store: PostgresEventStore
    relay: OutboxRelay
    runner: ProjectionRunner
    read_models: ReadModels
    topic: str
    dlq: str
    endpoints: Endpoints

    async def write(self, stream: str, *ns: int) -> tuple[str, int]:
        version = await self.store.stream_version(stream)
        result = await self.store.append(stream, [NewEvent(Counted(n=n)) for n in ns], expected_version=version)
        return stream, result.version

    async def totals(self) -> dict[str, tuple[int, int]]:
        async with self.read_models.connection("totals") as conn:
            rows = await conn.fetch("SELECT stream_id, total, events FROM totals ORDER BY stream_id")
        return {r["stream_id"]: (r["total"], r["events"]) for r in rows}

    async def expected_totals(self) -> dict[str, tuple[int, int]]:
        async with self.store.pool.acquire() as conn:
            rows = await conn.fetch(
                f"""SELECT stream_id, sum((data->>'n')::int) AS total, count(*) AS events
                    FROM {self.store.schema}.events WHERE (data->>'n')::int <> {POISON} GROUP BY stream_id"""
            )
        return {r["stream_id"]: (r["total"], r["events"]) for r in rows}

    async def drained(self) -> None:
        """The relay has published everything and the active read model shows the store."""

        async def settled() -> bool:
            return (await self.relay.lag()).events == 0 and await self.totals() == await self.expected_totals()

        await wait_until(settled, timeout=60)


@pytest.fixture
async def pipeline(pg_store: PostgresEventStore, endpoints: Endpoints, kafka_topic) -> AsyncIterator[Pipeline]:
    topic, dlq = await kafka_topic("events"), await kafka_topic("dlq", partitions=1)
    relay = OutboxRelay(
        pg_store,
        service="test",
        topic=topic,
        bootstrap_servers=endpoints.kafka_bootstrap_servers,
        database_url=endpoints.database_url,
        poll_interval=0.1,
    )
    runner = ProjectionRunner(
        pg_store.pool,
        totals_projection(topic),
        namespace=pg_store.schema,
        bootstrap_servers=endpoints.kafka_bootstrap_servers,
        dead_letter_topic=dlq,
        group_prefix=f"test.{uuid.uuid4().hex[:8]}",
        batch_size=50,
        poll_interval=0.2,
        drop_retired_after_s=0.5,
    )
    await relay.setup()
    await runner.setup()
    stop = asyncio.Event()
    tasks = [asyncio.create_task(relay.run(stop)), asyncio.create_task(runner.run(stop))]
    try:
        yield Pipeline(pg_store, relay, runner, ReadModels(pg_store.pool, pg_store.schema), topic, dlq, endpoints)
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def test_each_event_has_one_effect_even_when_delivered_twice(pipeline: Pipeline, endpoints: Endpoints) -> None:
    for i in range(20):
        await pipeline.write(f"s-{i % 4}", 2 * i, 2 * i + 100)  # never the poison 13
    await pipeline.drained()
    once = await pipeline.totals()
    assert sum(events for _, events in once.values()) == 40

    # Redelivery: every message of the topic sent again, as a crashed relay would.
    published = await read_records(endpoints.kafka_bootstrap_servers, pipeline.topic, 40)
    producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap_servers, enable_idempotence=True)
    await producer.start()
    try:
        for r in published:
            await producer.send_and_wait(pipeline.topic, r.value, key=r.key)
    finally:
        await producer.stop()

    async def redelivered_consumed() -> bool:
        return sum(s.skipped for s in pipeline.runner.stats.values()) >= 40

    await wait_until(redelivered_consumed)
    assert await pipeline.totals() == once


def lag_samples(pipeline: Pipeline, state: str) -> list[float]:
    """``pipelines_consumer_lag`` of the pipeline's read model in this process, for one generation state."""
    return [
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "pipelines_consumer_lag"
        for sample in metric.samples
        if sample.labels["service"] == pipeline.store.schema and sample.labels["state"] == state
    ]


async def test_rebuild_replays_everything_into_new_tables_and_swaps(pipeline: Pipeline) -> None:
    for i in range(30):
        await pipeline.write(f"s-{i % 5}", 2 * i)
    await pipeline.drained()
    before = await pipeline.totals()
    assert lag_samples(pipeline, "active") and not lag_samples(pipeline, "building")

    generation = await request_rebuild(pipeline.store.pool, pipeline.store.schema, "totals")
    assert generation == 2
    assert await request_rebuild(pipeline.store.pool, pipeline.store.schema, "totals") == 2, "one rebuild at a time"

    async def swapped() -> bool:
        async with pipeline.store.pool.acquire() as conn:
            return (
                await conn.fetchval(
                    f"SELECT generation FROM {pipeline.store.schema}.projection_generations "
                    "WHERE projection = 'totals' AND state = 'active'"
                )
                == 2
            )

    await wait_until(swapped, timeout=60)
    assert await pipeline.totals() == before, "replaying every event again gives the same read model"

    # the rebuild reported its lag under its own state, and it ends at 0 once swapped in: the live lag (the
    # autoscaler's and the alerts') never showed the rebuild's backlog
    async def rebuild_lag_ended() -> bool:
        building = lag_samples(pipeline, "building")
        return bool(building) and not any(building)

    await wait_until(rebuild_lag_ended)
    assert lag_samples(pipeline, "active")
    stats = pipeline.runner.stats[2]
    assert stats.applied == 30
    assert stats.events_per_second > 0

    async def old_dropped() -> bool:
        async with pipeline.store.pool.acquire() as conn:
            return not await conn.fetchval(
                "SELECT 1 FROM information_schema.schemata WHERE schema_name = $1", pipeline.runner.schema(1)
            )

    await wait_until(old_dropped)


@pytest.mark.slow
async def test_rebuild_while_events_keep_arriving_misses_nothing(pipeline: Pipeline) -> None:
    stop = asyncio.Event()

    async def writer(w: int) -> None:
        i = 0
        while not stop.is_set():
            await pipeline.write(f"live-{w}", i % 50 + 1)
            i += 1
            await asyncio.sleep(0.005)

    writers = [asyncio.create_task(writer(w)) for w in range(4)]
    try:
        await asyncio.sleep(1.0)
        await request_rebuild(pipeline.store.pool, pipeline.store.schema, "totals")

        async def swapped() -> bool:
            return pipeline.runner.stats.get(2) is not None and pipeline.runner.stats[2].state == "active"

        await wait_until(swapped, timeout=60)
        await asyncio.sleep(0.5)  # keep writing into the swapped-in read model
    finally:
        stop.set()
        await asyncio.gather(*writers)
    await pipeline.drained()
    totals = await pipeline.totals()
    assert sum(events for _, events in totals.values()) == sum(
        events for _, events in (await pipeline.expected_totals()).values()
    )


async def test_poison_messages_go_to_the_dead_letter_topic_and_the_rest_applies(
    pipeline: Pipeline, endpoints: Endpoints
) -> None:
    await pipeline.write("good", 1, 2)
    await pipeline.write("bad", 5, POISON, 7)
    producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(pipeline.topic, b"{not json", key=b"junk")
    finally:
        await producer.stop()
    await pipeline.write("good", 3)
    await pipeline.drained()
    assert await pipeline.totals() == {"good": (6, 3), "bad": (12, 2)}

    dead = await read_records(endpoints.kafka_bootstrap_servers, pipeline.dlq, 2)
    reasons = {r.key: dict(r.headers)["dlq-reason"].decode() for r in dead}
    assert reasons[b"junk"].startswith("not a CloudEvent")
    assert "ValueError: 13 cannot be counted" in reasons[b"bad"]
    assert all(dict(r.headers)["dlq-projection"] == b"totals" for r in dead)
    assert sum(s.dead_lettered for s in pipeline.runner.stats.values()) == 2


async def test_a_type_the_read_model_does_not_take_advances_it_and_a_broken_one_is_dead_lettered(
    pipeline: Pipeline, endpoints: Endpoints
) -> None:
    """Of a type the read model does not take only the envelope's head is built (decision 0031, session 40): every
    attribute is still checked, so a message whose data is not an object, or not UTF-8, is still no CloudEvent."""
    thing = f"thing-{uuid.uuid4().hex[:8]}"
    envelope = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/pipelines/test",
        "type": ThingCreated.event_type,
        "subject": thing,
        "time": "2026-12-07T06:00:00Z",
        "data": {"thing_id": thing, "name": "Sen"},
        "streamid": thing,
        "streamversion": 1,
        "position": 1,
        "schemaversion": 1,
        "recordedtime": "2026-12-07T06:00:00Z",
        "correlationid": "c",
        "causationid": "c",
    }
    good = json.dumps(envelope).encode()
    as_list = json.dumps({**envelope, "data": [1], "streamid": "list", "subject": "list"}).encode()
    not_utf8 = good.replace(b'"Sen"', b'"S\xff"').replace(thing.encode(), b"bytes")
    producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap_servers)
    await producer.start()
    try:
        for key, value in ((b"list", as_list), (b"bytes", not_utf8), (thing.encode(), good)):
            await producer.send_and_wait(pipeline.topic, value, key=key)
    finally:
        await producer.stop()
    await pipeline.write("counted", 4)
    await pipeline.drained()

    dead = await read_records(endpoints.kafka_bootstrap_servers, pipeline.dlq, 2)
    reasons = {r.key: dict(r.headers)["dlq-reason"].decode() for r in dead}
    assert set(reasons) == {b"list", b"bytes"}
    assert all(reason.startswith("not a CloudEvent") for reason in reasons.values()), reasons
    assert await pipeline.totals() == {"counted": (4, 1)}

    async def applied() -> bool:  # the good message of a type not taken: applied as nothing, its stream advanced
        async with pipeline.read_models.connection("totals") as conn:
            return await conn.fetchval("SELECT version FROM projection_progress WHERE stream_id = $1", thing) == 1

    await wait_until(applied, timeout=30)
    assert sum(s.dead_lettered for s in pipeline.runner.stats.values()) == 2


async def test_a_query_can_wait_for_the_position_a_command_returned(pipeline: Pipeline) -> None:
    stream, version = await pipeline.write("mine", 41)
    async with pipeline.read_models.connection("totals", wait_for=(stream, version), wait_s=30) as conn:
        assert await conn.fetchval("SELECT total FROM totals WHERE stream_id = $1", stream) == 41
    with pytest.raises(ReadModelBehindError):
        async with pipeline.read_models.connection("totals", wait_for=(stream, version + 1), wait_s=0.2):
            pass


async def test_batches_plan_each_statement_for_their_own_rows_and_queries_keep_cached_plans(
    pipeline: Pipeline,
) -> None:
    """A generic plan cached on a connection while a new generation's tables were small stays a sequential scan
    as they grow (decision 0010: a rebuild of 1,000,000 events took 1.5-1.8 times its first build). The runner
    plans each batch's statements for that batch, in the batch transaction and in its event-by-event replay."""
    seen: list[tuple[str, str]] = []

    totals = totals_projection(pipeline.topic)

    async def recording(conn: Conn, facts: Sequence[Fact]) -> None:
        seen.append(tuple(await conn.fetchrow("SELECT current_setting('plan_cache_mode'), current_schema()")))
        await totals.apply(conn, facts)

    runner = ProjectionRunner(
        pipeline.store.pool,
        replace(totals, name="planned", apply=recording),
        namespace=pipeline.store.schema,
        bootstrap_servers=pipeline.endpoints.kafka_bootstrap_servers,
        dead_letter_topic=pipeline.dlq,
        group_prefix=f"test.{uuid.uuid4().hex[:8]}",
        poll_interval=0.2,
    )
    await runner.setup()
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await pipeline.write("p-1", 1, 2, POISON, 3)  # the poison rejects its batch: replayed event by event
        await pipeline.write("p-2", 5)

        async def consumed() -> bool:
            return sum(s.applied + s.dead_lettered for s in runner.stats.values()) == 5

        await wait_until(consumed, timeout=60)
    finally:
        stop.set()
        await task
    assert sum(s.dead_lettered for s in runner.stats.values()) == 1
    assert {mode for mode, _ in seen} == {"force_custom_plan"}
    assert {schema for _, schema in seen} == {runner.schema(1)}
    assert len(seen) >= 1 + 4 + 1  # the batch's first try, then each of p-1's events again, then p-2
    async with ReadModels(pipeline.store.pool, pipeline.store.schema).connection("planned") as conn:
        assert await conn.fetchval("SELECT current_setting('plan_cache_mode')") == "auto"
        assert await conn.fetchval("SELECT total FROM totals WHERE stream_id = 'p-1'") == 6
