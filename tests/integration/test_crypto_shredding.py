"""Forgetting a person: once the subject's key is deleted, neither the store nor Kafka reveals the data."""

from __future__ import annotations

import pytest

from shared.messaging.relay import OutboxRelay
from shared.ops.stack import Endpoints
from shared.store import NewEvent
from shared.store.postgres import PostgresEventStore
from testkit.events import ContactRecorded
from testkit.kafka import read_topic
from testkit.waiting import published

pytestmark = [pytest.mark.pg, pytest.mark.kafka]

EMAIL, NAME = "tran.van.binh@example.vn", "Trần Văn Bình"


async def test_deleting_the_key_forgets_the_person_in_store_and_topic(
    pg_store: PostgresEventStore, endpoints: Endpoints, kafka_topic
) -> None:
    topic = await kafka_topic()
    event = ContactRecorded(person_id="lead-42", email=EMAIL, full_name=NAME, source="landing page")
    await pg_store.append("lead-42", [NewEvent(event)], expected_version=0)
    await pg_store.append(
        "lead-43",
        [NewEvent(ContactRecorded(person_id="lead-43", email="x@y.vn", full_name="An", source="ads"))],
        expected_version=0,
    )
    relay = OutboxRelay(
        pg_store,
        service="test",
        topic=topic,
        bootstrap_servers=endpoints.kafka_bootstrap_servers,
        database_url=endpoints.database_url,
    )
    await relay.setup()
    assert await relay.lead()
    try:
        assert await published(relay, 2) == 2
    finally:
        await relay.close()

    async with pg_store.pool.acquire() as conn:
        raw_rows = [str(r) for r in await conn.fetch(f"SELECT data::text FROM {pg_store.schema}.events")]
    (_, message), (_, other) = sorted(
        await read_topic(endpoints.kafka_bootstrap_servers, topic), key=lambda m: m[1].streamid
    )
    for text in [*raw_rows, message.model_dump_json()]:
        assert EMAIL not in text
        assert NAME not in text
    assert (await pg_store.personal_data.open([message.data]))[0]["email"] == EMAIL, "readable while the key exists"

    assert await pg_store.personal_data.keys.erase("lead-42", reason="erasure request")
    assert await pg_store.personal_data.keys.is_erased("lead-42")

    (stored,) = await pg_store.read_stream("lead-42")
    opened_store, opened_kafka, opened_other = await pg_store.personal_data.open(
        [stored.data, message.data, other.data]
    )
    assert opened_store["email"] is None and opened_store["full_name"] is None
    assert opened_kafka["email"] is None and opened_kafka["full_name"] is None
    assert opened_store["source"] == "landing page", "what is not personal stays"
    assert opened_other["email"] == "x@y.vn", "other people are not affected"
    async with pg_store.pool.acquire() as conn:
        assert (
            await conn.fetchval(f"SELECT count(*) FROM {pg_store.schema}.subject_keys WHERE subject_id = 'lead-42'")
            == 0
        )
