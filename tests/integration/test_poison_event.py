"""An event Kafka cannot take never stops a relay for good, never makes duplicates, never leaves a gap applied
(issue 19): refused at append, stopped before (and reported) by the relay, a failed partition's batch never
resending what Kafka acknowledged, and a projector stopping a partition at a gap until the missing version comes."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from prometheus_client import REGISTRY

import shared.messaging.relay
import shared.messaging.runner
from shared.messaging.envelope import CloudEvent
from shared.messaging.kafka import TopicSpec, admin_client, ensure_topics, topic_configs
from shared.messaging.relay import OutboxRelay, RelayLimitsError
from shared.messaging.runner import ProjectionRunner
from shared.ops.settings import Settings
from shared.ops.stack import Endpoints
from shared.store import EventTooLargeError, NewEvent
from shared.store.postgres import PostgresEventStore
from testkit.events import Counted, ThingCreated
from testkit.kafka import read_topic
from testkit.projection import totals_projection
from testkit.waiting import wait_until
from tools import ops

pytestmark = [pytest.mark.pg, pytest.mark.kafka]


def operator_settings(endpoints: Endpoints, store: PostgresEventStore) -> Settings:
    """Settings under which the store's schema is a service's (for the operator's commands)."""
    return Settings(
        kafka_bootstrap_servers=endpoints.kafka_bootstrap_servers,
        database_url=endpoints.database_url,
        schema_prefix="",
        topic_prefix=f"poison{uuid.uuid4().hex[:8]}",
    )


def relay_for(store: PostgresEventStore, endpoints: Endpoints, topic: str, **kw) -> OutboxRelay:
    return OutboxRelay(
        store,
        service=f"poison-{uuid.uuid4().hex[:6]}",
        topic=topic,
        bootstrap_servers=endpoints.kafka_bootstrap_servers,
        database_url=endpoints.database_url,
        poll_interval=0.1,
        **kw,
    )


async def set_max_message_bytes(endpoints: Endpoints, topic: str, value: int) -> None:
    """Set the topic's limit and wait until the brokers describe it: KRaft applies a config change through the
    metadata log, so a describe right after the alter may still show the old value (a relay asked then would
    believe it, and a test expecting its refusal would wait forever)."""
    async with admin_client(endpoints.kafka_bootstrap_servers) as admin:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": str(value)})])

    async def applied() -> bool:
        found = await topic_configs(endpoints.kafka_bootstrap_servers, [topic], "max.message.bytes")
        return found[topic] == str(value)

    await wait_until(applied, timeout=30, interval=0.1)


@contextlib.asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[asyncio.Task[None]]:
    await relay.setup()
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        yield task
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await task


def unpublishable_store(store: PostgresEventStore) -> PostgresEventStore:
    """The same store without its size check: an event stored before the check existed, or under a higher limit."""
    legacy = PostgresEventStore(store.pool, store.schema, store.personal_data, max_event_bytes=50_000_000)
    legacy.states = None
    return legacy


def ids_seen_more_than_once(published: list[tuple[int, CloudEvent]]) -> dict[str, int]:
    return {i: n for i, n in Counter(e.id for _, e in published).items() if n > 1}


async def test_an_event_over_the_limit_is_refused_at_append_naming_the_field(pg_store: PostgresEventStore) -> None:
    pg_store.max_event_bytes = 20_000
    await pg_store.append("thing-1", [NewEvent(ThingCreated(thing_id="thing-1", name="ok"))], expected_version=0)
    with pytest.raises(EventTooLargeError) as refused:
        await pg_store.append(
            "thing-1", [NewEvent(ThingCreated(thing_id="thing-1", name="x" * 25_000))], expected_version=1
        )
    assert refused.value.field == "data.name" and refused.value.limit == 20_000 and refused.value.size > 25_000
    assert "20,000 bytes" in str(refused.value)
    with pytest.raises(EventTooLargeError) as by_header:
        await pg_store.append(
            "thing-1",
            [NewEvent(ThingCreated(thing_id="thing-1", name="y"), metadata={"correlation_id": "c" * 30_000})],
            expected_version=1,
        )
    assert by_header.value.field == "X-Correlation-ID"
    assert await pg_store.stream_version("thing-1") == 1  # nothing was written


async def test_the_relay_stops_before_an_event_kafka_cannot_take_and_never_skips_or_repeats(
    pg_store: PostgresEventStore, endpoints: Endpoints, kafka_topic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared.messaging.relay, "STUCK_RETRY_S", 0.2)
    settings = operator_settings(endpoints, pg_store)
    topic = settings.events_topic(pg_store.schema)
    await ensure_topics(endpoints.kafka_bootstrap_servers, [TopicSpec(topic)])
    legacy = unpublishable_store(pg_store)
    for n in range(3):
        await pg_store.append("before", [NewEvent(Counted(n=n))], expected_version=n)
    await pg_store.append("poisoned", [NewEvent(ThingCreated(thing_id="p", name="small"))], expected_version=0)
    await legacy.append("poisoned", [NewEvent(ThingCreated(thing_id="p", name="x" * 1_200_000))], expected_version=1)
    await pg_store.append("poisoned", [NewEvent(ThingCreated(thing_id="p", name="after"))], expected_version=2)
    for n in range(2):
        await pg_store.append("after", [NewEvent(Counted(n=n))], expected_version=n)

    relay = relay_for(pg_store, endpoints, topic)
    relay.service = pg_schema_service = pg_store.schema
    async with running(relay):
        await wait_until(lambda: _true(relay.stuck is not None), timeout=30)
        await asyncio.sleep(1.5)  # several rounds of looking again
        assert relay.readiness().startswith("stuck: event ")
        assert "stream poisoned version 2" in relay.readiness()
        assert REGISTRY.get_sample_value("pipelines_relay_stuck", {"service": relay.service}) == 1
        assert REGISTRY.get_sample_value("pipelines_relay_backlog_events", {"service": relay.service}) == 4
    published = await read_topic(endpoints.kafka_bootstrap_servers, topic)
    assert [(e.streamid, e.streamversion) for _, e in sorted(published, key=lambda m: m[1].position)] == [
        ("before", 1),
        ("before", 2),
        ("before", 3),
        ("poisoned", 1),
    ]
    status = await ops.relay_status(settings, pg_schema_service)
    assert status["backlog"] == 4 and status["next"]["stream_id"] == "poisoned" and status["next"]["version"] == 2
    assert status["next"]["fits"] is False and status["next"]["record_bytes"] > status["next"]["limit"] == 1_048_576

    # What an operator does (docs/OPERATIONS.md): raise the topic's limit and the producer's together, restart.
    await set_max_message_bytes(endpoints, topic, 3_000_000)
    relay = relay_for(pg_store, endpoints, topic, max_request_size=3_000_000)
    async with running(relay):
        await wait_until(lambda: _lag_is_zero(relay), timeout=30)
        assert relay.readiness() == "ok"
    published = await read_topic(endpoints.kafka_bootstrap_servers, topic)
    assert ids_seen_more_than_once(published) == {}
    assert [(e.streamid, e.streamversion) for _, e in sorted(published, key=lambda m: m[1].position)][4:] == [
        ("poisoned", 2),
        ("poisoned", 3),
        ("after", 1),
        ("after", 2),
    ]
    assert (await ops.relay_status(settings, pg_schema_service))["next"] is None

    # A stream published again from the store (what mends a gap a damaged topic left): in order, once more.
    assert await ops.republish(settings, pg_schema_service, "before") == 3
    again = await read_topic(endpoints.kafka_bootstrap_servers, topic)
    assert [e.streamversion for _, e in again if e.streamid == "before"] == [1, 2, 3, 1, 2, 3]


async def test_a_batch_kafka_refuses_on_one_partition_never_resends_what_the_others_acknowledged(
    pg_store: PostgresEventStore, endpoints: Endpoints, kafka_topic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kafka refusing one partition's record batch (here: the topic's limit lowered behind the relay's back) fails
    the batch; the retries must not publish the other partitions' events again, nor the stream's later version."""
    topic = await kafka_topic()
    legacy = unpublishable_store(pg_store)
    streams = [f"s{i}" for i in range(24)]
    for s in streams:
        await pg_store.append(s, [NewEvent(Counted(n=1)), NewEvent(Counted(n=2))], expected_version=0)
    await pg_store.append("big", [NewEvent(ThingCreated(thing_id="b", name="small"))], expected_version=0)
    await legacy.append("big", [NewEvent(ThingCreated(thing_id="b", name="x" * 60_000))], expected_version=1)
    await pg_store.append("big", [NewEvent(ThingCreated(thing_id="b", name="after"))], expected_version=2)
    for s in streams:
        await pg_store.append(s, [NewEvent(Counted(n=3))], expected_version=2)
    await set_max_message_bytes(endpoints, topic, 30_000)

    relay = relay_for(pg_store, endpoints, topic)

    async def limits_as_believed() -> None:  # the relay believes the topic takes 1 MB
        relay._limits = {topic: 1_048_576}

    monkeypatch.setattr(relay, "_check_limits", limits_as_believed)
    monkeypatch.setattr(shared.messaging.relay, "FAILING_AFTER_S", 0.0)
    async with running(relay):
        await wait_until(lambda: _true(relay.failing_since is not None), timeout=30)
        await asyncio.sleep(4)  # a few retries (one a second)
        assert relay.readiness().startswith("failing for")
    published = await read_topic(endpoints.kafka_bootstrap_servers, topic)
    assert ids_seen_more_than_once(published) == {}
    versions: dict[str, list[int]] = {}
    for _, e in published:
        versions.setdefault(e.streamid, []).append(e.streamversion)
    assert versions.pop("big", []) in ([], [1])  # never version 3 without version 2 (1 and 2 may share a batch)
    # the other partitions' events, once each and in order (those sharing big's record batch wait with it)
    assert len(versions) >= len(streams) // 2 and all(v in ([1, 2], [1, 2, 3]) for v in versions.values())
    assert (await relay.lag()).events > 0  # the checkpoint stayed before the refused event


async def test_the_relay_refuses_to_start_when_a_topic_takes_less_than_the_store_lets_in(
    pg_store: PostgresEventStore, endpoints: Endpoints, kafka_topic
) -> None:
    topic = await kafka_topic()
    await set_max_message_bytes(endpoints, topic, 500_000)
    relay = relay_for(pg_store, endpoints, topic)
    await relay.setup()
    with pytest.raises(RelayLimitsError, match="takes 500,000"):
        await asyncio.wait_for(relay.run(asyncio.Event()), timeout=60)
    relay = relay_for(pg_store, endpoints, await kafka_topic(), max_request_size=600_000)
    await relay.setup()
    with pytest.raises(RelayLimitsError, match="600,000"):
        await asyncio.wait_for(relay.run(asyncio.Event()), timeout=60)


def envelope(stream: str, version: int, n: int) -> bytes:
    now = datetime.now(UTC)
    return CloudEvent(
        id=str(uuid.uuid4()),
        source="/pipelines/test",
        type=Counted.event_type,
        subject=stream,
        time=now,
        data={"n": n},
        streamid=stream,
        streamversion=version,
        position=1,
        schemaversion=1,
        recordedtime=now,
        correlationid="c",
        causationid="c",
    ).kafka_value()


async def test_a_projector_stops_a_partition_at_a_gap_and_goes_on_once_the_missing_version_comes(
    pg_store: PostgresEventStore, endpoints: Endpoints, kafka_topic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared.messaging.runner, "GAP_RECHECK_S", 0.3)
    topic, dlq = await kafka_topic("events", partitions=2), await kafka_topic("dlq", partitions=1)
    runner = ProjectionRunner(
        pg_store.pool,
        totals_projection(topic),
        namespace=pg_store.schema,
        bootstrap_servers=endpoints.kafka_bootstrap_servers,
        dead_letter_topic=dlq,
        group_prefix=f"test.{uuid.uuid4().hex[:8]}",
        poll_interval=0.2,
    )
    await runner.setup()
    producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap_servers)
    await producer.start()

    async def send(partition: int, stream: str, version: int, n: int) -> None:
        await producer.send_and_wait(topic, envelope(stream, version, n), key=stream.encode(), partition=partition)

    async def totals() -> dict[str, int]:
        async with runner.pool.acquire() as conn:
            rows = await conn.fetch(f"SELECT stream_id, total FROM {runner.schema(1)}.totals")
        return {r["stream_id"]: r["total"] for r in rows}

    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await send(0, "gappy", 1, 1)
        await send(0, "gappy", 3, 100)  # version 2 never came
        await send(0, "behind", 1, 5)  # same partition, after the gap: waits
        await send(1, "elsewhere", 1, 7)  # another partition goes on
        await wait_until(lambda: _has(totals, "elsewhere"), timeout=30)
        await wait_until(lambda: _true(bool(runner.gaps.get(1))), timeout=30)
        await asyncio.sleep(1)
        assert await totals() == {"gappy": 1, "elsewhere": 7}
        assert "stream gappy version 3 came before version 2" in runner.readiness()
        labels = {"service": pg_store.schema, "projection": "totals", "topic": topic, "partition": "0"}
        assert REGISTRY.get_sample_value("pipelines_projection_stalled_partitions", labels) == 1

        # the stream published again from the store, in order (pipelines relay republish)
        await send(0, "gappy", 1, 1)
        await send(0, "gappy", 2, 10)
        await send(0, "gappy", 3, 100)
        await wait_until(lambda: _equals(totals, {"gappy": 111, "behind": 5, "elsewhere": 7}), timeout=30)
        assert runner.readiness() == "ok"
        assert REGISTRY.get_sample_value("pipelines_projection_stalled_partitions", labels) == 0
    finally:
        stop.set()
        await task
        await producer.stop()


async def _true(value: bool) -> bool:
    return value


async def _lag_is_zero(relay: OutboxRelay) -> bool:
    return (await relay.lag()).events == 0


async def _has(totals, stream: str) -> bool:
    return stream in await totals()


async def _equals(totals, expected: dict[str, int]) -> bool:
    return await totals() == expected
