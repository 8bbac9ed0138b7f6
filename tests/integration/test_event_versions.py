"""A version-1 event stored before the change reads as version 2 from PostgreSQL and from Kafka."""

from __future__ import annotations

import uuid

import pytest

from services.deals.events import ActivityLogged
from shared.messaging.relay import OutboxRelay
from shared.ops.stack import Endpoints
from shared.store.postgres import PostgresEventStore
from testkit.kafka import read_topic
from testkit.waiting import published

pytestmark = [pytest.mark.pg, pytest.mark.kafka]


async def test_version_1_in_the_store_and_on_the_topic_reads_as_version_2(
    pg_store: PostgresEventStore, endpoints: Endpoints, kafka_topic
) -> None:
    deal = uuid.uuid4()
    v1 = {
        "deal_id": str(deal),
        "activity_id": str(uuid.uuid4()),
        "activity_type": "meeting",
        "channel": "meeting",
        "stage_id": "needs_discussed",
        "outcome": None,
        "duration_minutes": 30,
        "note": None,
    }
    async with pg_store.pool.acquire() as conn:  # written by the code of before, never rewritten since
        await conn.execute(
            f"""INSERT INTO {pg_store.schema}.events (stream_id, version, event_id, event_type, schema_version, data,
                    metadata, occurred_at) VALUES ($1, 1, $2, 'pipelines.deals.ActivityLogged', 1, $3, '{{}}', now())""",
            f"deal-{deal}",
            uuid.uuid4(),
            v1,
        )
    (stored,) = await pg_store.read_stream(f"deal-{deal}")
    assert stored.schema_version == 1
    event = stored.to_event()
    assert isinstance(event, ActivityLogged)
    assert event.direction == "outbound"

    topic = await kafka_topic()
    relay = OutboxRelay(
        pg_store,
        service="deals",
        topic=topic,
        bootstrap_servers=endpoints.kafka_bootstrap_servers,
        database_url=endpoints.database_url,
    )
    await relay.setup()
    assert await relay.lead()
    try:
        assert await published(relay, 1) == 1
    finally:
        await relay.close()
    ((_, message),) = await read_topic(endpoints.kafka_bootstrap_servers, topic)
    assert message.schemaversion == 1, "published as stored: subscribers see the version it was written in"
    assert message.to_event() == event
