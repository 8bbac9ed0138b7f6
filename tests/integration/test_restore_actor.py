"""Restored events keep their actor (issue 23, item 8): an event the restore brings back from the topic says who
did it, as the store said before the backup was lost. The deals service tells a deal a lead's conversion opened
from one a user opened by that actor; the histories show it."""

from __future__ import annotations

import pytest

from shared.messaging.relay import OutboxRelay
from shared.messaging.restore import catch_up
from shared.ops.stack import Endpoints
from shared.store import NewEvent
from shared.store.commands import Context
from shared.store.postgres import PostgresEventStore
from testkit.events import Counted
from testkit.kafka import read_topic

pytestmark = [pytest.mark.pg, pytest.mark.kafka]
ACTORS = {"deal-a": "u-lan", "deal-b": "system:leads-reactions"}


async def test_events_restored_from_the_topic_keep_their_actor(
    pg_store: PostgresEventStore, endpoints: Endpoints, kafka_topic
) -> None:
    topic = await kafka_topic(partitions=2)
    for stream, actor in ACTORS.items():
        ctx = Context(actor=actor)
        await pg_store.append(stream, [NewEvent(Counted(n=1), metadata=ctx.metadata())], expected_version=0)
    await pg_store.append("deal-c", [NewEvent(Counted(n=2))], expected_version=0)  # no actor recorded
    relay = OutboxRelay(
        pg_store,
        service="test",
        topic=topic,
        bootstrap_servers=endpoints.kafka_bootstrap_servers,
        database_url=endpoints.database_url,
    )
    await relay.setup()
    try:
        assert await relay.lead()
        while await relay.publish_batch():
            pass
    finally:
        await relay.close()
    on_topic = {e.streamid: e for _, e in await read_topic(endpoints.kafka_bootstrap_servers, topic)}
    assert "actor" not in on_topic["deal-c"].kafka_value().decode()  # none recorded: none on the wire

    target = PostgresEventStore(pg_store.pool, f"{pg_store.schema}_r")  # the store lost, rebuilt from the topic
    await target.setup()
    try:
        assert (await catch_up(target, endpoints.kafka_bootstrap_servers, [topic])).appended == 3
        for stream, actor in ACTORS.items():
            (restored,) = await target.read_stream(stream)
            (original,) = await pg_store.read_stream(stream)
            assert restored.metadata["actor"] == actor, restored.metadata
            assert restored.metadata["correlation_id"] == original.metadata["correlation_id"]
            assert restored.metadata["restored_from"] == "kafka"
        (no_actor,) = await target.read_stream("deal-c")
        assert "actor" not in no_actor.metadata
    finally:
        async with pg_store.pool.acquire() as conn:
            await conn.execute(f"DROP SCHEMA {target.schema} CASCADE")
