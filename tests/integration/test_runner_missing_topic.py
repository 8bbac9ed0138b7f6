"""A projector on a topic nobody has made yet (the agenda's on the alerts topic, before an alerting service made it):
it waits for the topic, saying so now and then, stops at once when asked, and consumes the topic once it is made.
Meanwhile it is ready (it serves what it has), and its /readyz, its status and a gauge say what it waits for."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from shared.edge.http import install_common
from shared.messaging.kafka import TopicSpec, delete_topics, ensure_topics
from shared.messaging.relay import OutboxRelay
from shared.messaging.runner import ProjectionRunner
from shared.ops.stack import Endpoints
from shared.store import NewEvent
from shared.store.postgres import PostgresEventStore
from testkit.events import Counted
from testkit.kafka import WaitingForTopics
from testkit.projection import totals_projection
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka]


@dataclass
class Waiting(WaitingForTopics):
    runner: ProjectionRunner
    topic: str


@pytest.fixture
async def waiting(pg_store: PostgresEventStore, endpoints: Endpoints) -> AsyncIterator[Waiting]:
    """A runner started on a topic that does not exist (it is deleted after the test if the test made it)."""
    topic = f"missing.{uuid.uuid4().hex[:12]}"
    runner = ProjectionRunner(
        pg_store.pool,
        totals_projection(topic),
        namespace=pg_store.schema,
        bootstrap_servers=endpoints.kafka_bootstrap_servers,
        dead_letter_topic=f"dlq.{topic}",
        group_prefix=f"test.{uuid.uuid4().hex[:8]}",
        poll_interval=0.2,
    )
    await runner.setup()
    stop = asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(runner.run(stop))
        try:
            yield Waiting(task, stop, logs, runner, topic)
        finally:
            stop.set()
            await task
            await delete_topics(endpoints.kafka_bootstrap_servers, [topic])


def waiting_gauge(runner: ProjectionRunner) -> float | None:
    labels = {"service": runner.namespace, "projection": runner.projection.name}
    return REGISTRY.get_sample_value("pipelines_projection_waiting_for_topics", labels)


async def readyz(runner: ProjectionRunner) -> tuple[int, dict[str, object]]:
    """/readyz of a process running ``runner`` (as shared.edge.service's ``parts`` name it)."""

    async def readiness() -> dict[str, str]:
        return {"postgresql": "ok", f"projection {runner.projection.name}": runner.readiness()}

    app = FastAPI()
    install_common(app, readiness, "test", bounded=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ops") as http:
        answer = await http.get("/readyz")
    return answer.status_code, answer.json()


async def test_a_runner_waiting_for_its_topic_is_ready_and_says_what_it_waits_for(waiting: Waiting) -> None:
    await waiting.said_it_waits()
    runner = waiting.runner
    assert runner.readiness() == f"ok; waiting for topics: {waiting.topic}"
    assert [g["waiting_for_topics"] for g in runner.status()] == [[waiting.topic]]
    assert waiting_gauge(runner) == 1
    status, body = await readyz(runner)
    assert status == 200 and body["status"] == "ok", body
    assert body["checks"] == {"postgresql": "ok", "projection totals": f"ok; waiting for topics: {waiting.topic}"}
    await waiting.stopped()
    assert waiting_gauge(runner) == 0 and runner.readiness() == "ok"


async def test_a_runner_waiting_for_its_topic_stops_when_asked(
    waiting: Waiting, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="aiokafka"):
        await waiting.said_it_waits()
        await asyncio.sleep(1.5)  # a few looks for the topic
        await waiting.stopped()
    said = [e for e in waiting.logs if e["event"] == "kafka.waiting_for_topics"]
    assert len(said) == 1  # once a minute, not at each look
    assert said[0]["missing"] == [waiting.topic] and "totals" in str(said[0]["who"])
    # aiokafka's own wait, with an error line every 100 ms, is never entered
    assert not [r for r in caplog.records if "not found in cluster metadata" in r.getMessage()]


async def test_a_topic_made_later_is_consumed(
    waiting: Waiting, pg_store: PostgresEventStore, endpoints: Endpoints
) -> None:
    await waiting.said_it_waits()
    await ensure_topics(
        endpoints.kafka_bootstrap_servers, [TopicSpec(waiting.topic, replication_factor=endpoints.replication_factor)]
    )
    relay = OutboxRelay(
        pg_store,
        service="test",
        topic=waiting.topic,
        bootstrap_servers=endpoints.kafka_bootstrap_servers,
        database_url=endpoints.database_url,
        poll_interval=0.1,
    )
    await relay.setup()
    for i in range(3):
        await pg_store.append(f"s-{i}", [NewEvent(Counted(n=i + 1)), NewEvent(Counted(n=10))], expected_version=0)
    stop_relay = asyncio.Event()
    relaying = asyncio.create_task(relay.run(stop_relay))
    try:

        async def consumed() -> bool:
            async with waiting.runner.pool.acquire() as conn:
                rows = await conn.fetch(
                    f"SELECT stream_id, total FROM {waiting.runner.schema(1)}.totals ORDER BY stream_id"
                )
            return [(r["stream_id"], r["total"]) for r in rows] == [("s-0", 11), ("s-1", 12), ("s-2", 13)]

        await wait_until(consumed, timeout=60)
    finally:
        stop_relay.set()
        await relaying
    assert any(e["event"] == "kafka.topics_present" for e in waiting.logs)
    assert waiting.runner.readiness() == "ok" and waiting_gauge(waiting.runner) == 0
    assert [g["waiting_for_topics"] for g in waiting.runner.status()] == [[]]
    assert (await readyz(waiting.runner))[1]["checks"] == {"postgresql": "ok", "projection totals": "ok"}
    await waiting.stopped()
