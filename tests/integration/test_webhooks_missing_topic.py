"""The webhooks' dispatcher before the topics it reads exist (the services make them when they first start): it
waits for them, saying so now and then, stops at once when asked, and queues and sends their events once they are
made. Real Kafka and PostgreSQL; the receiver of testkit/webhook_receiver.py."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from structlog.testing import capture_logs

from services.webhooks import dispatcher
from services.webhooks.main import WebhooksService, build, topics
from shared.messaging.kafka import TopicSpec, ensure_topics
from shared.ops.stack import Endpoints
from testkit import webhook_receiver
from testkit.kafka import WaitingForTopics
from testkit.services import bearer, client_for, drop_everything, isolated_settings
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka]
ADMIN = bearer("u-admin", "admin")


@dataclass
class Waiting(WaitingForTopics):
    service: WebhooksService


@pytest.fixture(scope="module")
def receiver() -> Iterator[str]:
    with webhook_receiver.running() as base:
        yield base


@pytest.fixture
async def waiting(endpoints: Endpoints, receiver: str) -> AsyncIterator[Waiting]:
    """A dispatcher started on settings of their own, whose topics nobody has made (dropped after the test)."""
    host = receiver.split("//")[1].split(":")[0]
    settings = isolated_settings(endpoints).model_copy(
        update={"webhooks_allow": f"{host}/32", "webhooks_poll_s": 0.05, "webhooks_start": "earliest"}
    )
    service = await build(settings)
    sender = service.sender()
    stop = asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(dispatcher.run(service.queuer(sender), sender, stop))
        try:
            yield Waiting(task, stop, logs, service)
        finally:
            stop.set()
            await asyncio.gather(task, return_exceptions=True)
            await service.close()
            await drop_everything(settings)


async def test_a_dispatcher_waiting_for_its_topics_stops_when_asked(
    waiting: Waiting, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="aiokafka"):
        await waiting.said_it_waits()
        await asyncio.sleep(1.5)  # a few looks for the topics
        await waiting.stopped()
    said = [e for e in waiting.logs if e["event"] == "kafka.waiting_for_topics"]
    assert len(said) == 1  # once a minute, not at each look
    assert said[0]["missing"] == sorted(topics(waiting.service.settings))
    assert said[0]["who"] == "webhooks.dispatcher"
    # aiokafka's own wait, with an error line every 100 ms, is never entered
    assert not [r for r in caplog.records if "not found in cluster metadata" in r.getMessage()]


async def test_topics_made_later_are_consumed(waiting: Waiting, receiver: str) -> None:
    settings = waiting.service.settings
    await waiting.said_it_waits()
    api = client_for(waiting.service.app())
    r = await api.post(
        "/subscriptions", json={"url": f"{receiver}/hooks/late", "event_types": ["pipelines.deals.*"]}, headers=ADMIN
    )
    assert r.status_code == 201, r.text
    async with httpx.AsyncClient() as c:
        assert (await c.put(f"{receiver}/control/late", json={"secret": r.json()["secret"]})).status_code == 204
    specs = [TopicSpec(t, 3, settings.kafka_replication_factor) for t in topics(settings)]
    await ensure_topics(settings.kafka_bootstrap_servers, specs)
    event_id, stream = str(uuid.uuid4()), f"deal-{uuid.uuid4()}"
    event = {
        "specversion": "1.0",
        "id": event_id,
        "source": "/pipelines/deals",
        "type": "pipelines.deals.DealWon",
        "datacontenttype": "application/json",
        "subject": stream,
        "time": "2026-12-07T00:00:00Z",
        "data": {"stream": stream},
    }
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(settings.events_topic("deals"), json.dumps(event).encode(), key=stream.encode())
    finally:
        await producer.stop()

    async def delivered() -> bool:
        async with httpx.AsyncClient() as c:
            got = (await c.get(f"{receiver}/control/late")).json()
        return [(g["id"], g["verified"], g["status"]) for g in got] == [(event_id, True, 204)]

    await wait_until(delivered, timeout=60, interval=0.1)
    await api.aclose()
    assert any(e["event"] == "kafka.topics_present" for e in waiting.logs)
    await waiting.stopped()
