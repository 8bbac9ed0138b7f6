"""Bad messages on a topic, read by the real projection runner from real Kafka into PostgreSQL.

test_projections.py covers a message that is not JSON and an event the projection fails on. Here, in one
partition and in this order, between good events: JSON that is not an object (a list, a string, null), a
CloudEvent of a type nobody registered, one of a schema version newer than the code knows, one of an old version
(upcast and applied), and a message as large as the broker takes that is not a CloudEvent. Each bad one is
dead-lettered with its reason, whole; the good ones after them are applied. A message over the broker's limit
(Kafka's message.max.bytes, 1 MiB by default: the limit on every topic) never gets on the topic: its producer
gets the error.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError

from shared.messaging.envelope import CloudEvent
from shared.messaging.projections import Fact, Projection, ReadModels, one_by_one
from shared.messaging.runner import ProjectionRunner
from shared.ops.stack import Endpoints
from shared.store.db import Conn
from shared.store.postgres import PostgresEventStore
from testkit.events import Counted, ThingRenamed
from testkit.kafka import read_records
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka]

BROKER_LIMIT = 1024 * 1024  # Kafka's default message.max.bytes, as the local stack and the deployments keep it
DDL = """
CREATE TABLE IF NOT EXISTS seen (stream_id text PRIMARY KEY, what text NOT NULL);
"""


async def apply(conn: Conn, fact: Fact) -> None:
    """Every event comes typed (the runner parsed it); what it says is kept per stream."""
    envelope, event = fact.envelope, fact.event
    match event:
        case Counted():
            what = f"counted {event.n}"
        case ThingRenamed():
            what = f"renamed {event.name}: {event.reason}"
        case _:
            what = type(event).__name__
    await conn.execute(
        "INSERT INTO seen (stream_id, what) VALUES ($1, $2) ON CONFLICT (stream_id) DO UPDATE SET what = $2",
        envelope.streamid,
        what,
    )


def envelope(stream: str, event_type: str, data: dict[str, Any], *, schema_version: int = 1) -> bytes:
    now = datetime.now(UTC)
    return CloudEvent(
        id=str(uuid.uuid4()),
        source="/pipelines/test",
        type=event_type,
        subject=stream,
        time=now,
        data=data,
        streamid=stream,
        streamversion=1,
        position=1,
        schemaversion=schema_version,
        recordedtime=now,
        correlationid="c",
        causationid="c",
    ).kafka_value()


@dataclass
class Runner:
    runner: ProjectionRunner
    read_models: ReadModels
    topic: str
    dlq: str

    async def seen(self) -> dict[str, str]:
        async with self.read_models.connection("seen") as conn:
            return {r["stream_id"]: r["what"] for r in await conn.fetch("SELECT stream_id, what FROM seen")}


@pytest.fixture
async def running(pg_store: PostgresEventStore, endpoints: Endpoints, kafka_topic) -> AsyncIterator[Runner]:
    topic, dlq = await kafka_topic("events", partitions=1), await kafka_topic("dlq", partitions=1)
    runner = ProjectionRunner(
        pg_store.pool,
        Projection(name="seen", topics=(topic,), ddl=DDL, apply=one_by_one(apply), accepts=("",), tables=("seen",)),
        namespace=pg_store.schema,
        bootstrap_servers=endpoints.kafka_bootstrap_servers,
        dead_letter_topic=dlq,
        group_prefix=f"test.{uuid.uuid4().hex[:8]}",
        batch_size=50,
        poll_interval=0.2,
    )
    await runner.setup()
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        yield Runner(runner, ReadModels(pg_store.pool, pg_store.schema), topic, dlq)
    finally:
        stop.set()
        await task


async def test_bad_messages_are_dead_lettered_with_their_reason_old_versions_upcast_and_the_rest_applied(
    running: Runner, endpoints: Endpoints
) -> None:
    huge = b'{"padding": "' + b"x" * (BROKER_LIMIT - 2000) + b'"}'  # JSON, not a CloudEvent, under the limit
    messages: list[tuple[bytes, bytes]] = [
        (b"good-1", envelope("good-1", Counted.event_type, {"n": 1})),
        (b"a-list", b"[1, 2, 3]"),
        (b"a-string", json.dumps("an event").encode()),
        (b"null", b"null"),
        (b"unknown", envelope("unknown", "pipelines.nowhere.Thing", {"n": 1})),
        (b"future", envelope("future", ThingRenamed.event_type, {"thing_id": "t", "name": "n"}, schema_version=9)),
        (b"old", envelope("old", ThingRenamed.event_type, {"thing_id": "t", "name": "Tủ mới"}, schema_version=1)),
        (b"huge", huge),
        (b"good-2", envelope("good-2", Counted.event_type, {"n": 2})),
    ]
    producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap_servers, max_request_size=4 * BROKER_LIMIT)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(running.topic, value, key=key)
        with pytest.raises(MessageSizeTooLargeError):  # over the broker's limit: refused, nothing on the topic
            await producer.send_and_wait(running.topic, b"x" * (BROKER_LIMIT + 1), key=b"too-large")
    finally:
        await producer.stop()

    async def good_ones_applied() -> bool:
        return len(await running.seen()) == 3

    await wait_until(good_ones_applied, timeout=60)
    assert await running.seen() == {
        "good-1": "counted 1",
        "old": "renamed Tủ mới: (not recorded)",  # version 1, upcast to 2
        "good-2": "counted 2",
    }

    dead = await read_records(endpoints.kafka_bootstrap_servers, running.dlq, 6)
    by_key = {r.key: r for r in dead}
    assert sorted(by_key) == [b"a-list", b"a-string", b"future", b"huge", b"null", b"unknown"]
    reasons = {k: dict(r.headers)["dlq-reason"].decode() for k, r in by_key.items()}
    for key in (b"a-list", b"a-string", b"null", b"huge"):
        assert reasons[key].startswith("not a CloudEvent"), reasons[key]
    assert "UnknownEventTypeError" in reasons[b"unknown"]
    assert "pipelines.nowhere.Thing" in reasons[b"unknown"]
    assert "UnsupportedSchemaVersionError" in reasons[b"future"]
    assert by_key[b"huge"].value == huge, "dead-lettered whole"
    assert all(r.value == dict(messages)[r.key] for r in dead)
    assert all(dict(r.headers)["dlq-source"].decode().startswith(f"{running.topic}/0/") for r in dead)
    assert sum(s.dead_lettered for s in running.runner.stats.values()) == 6
