"""The web board's live feed before the topics it reads exist (the services make them when they first start): it
waits for them, saying so once a minute rather than at every look, stops at once when asked, and tells open pages
what moved once the topics are made; the board is ready meanwhile, its /readyz saying what the feed waits for.
Without Kafka (an address nobody listens on) the board is not ready and the feed warns once, however often it
tries. Real Kafka."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from structlog.testing import capture_logs

from services.web import live
from services.web.app import create_app
from shared.edge.revocation import revocations_topic
from shared.messaging.kafka import Backoff, TopicSpec, delete_topics, ensure_topics
from shared.ops.settings import PIPELINES, Settings
from shared.ops.stack import Endpoints, free_port
from testkit.kafka import WaitingForTopics
from testkit.services import isolated_settings
from testkit.waiting import wait_until

pytestmark = [pytest.mark.kafka]


@dataclass
class Waiting(WaitingForTopics):
    hub: live.Hub
    settings: Settings


def topics(settings: Settings) -> list[str]:
    return sorted([settings.events_topic(s) for s in PIPELINES] + [settings.alerts_topic()])


@pytest.fixture
async def waiting(endpoints: Endpoints) -> AsyncIterator[Waiting]:
    """A live feed on settings of their own, whose topics nobody has made (deleted after the test)."""
    settings = isolated_settings(endpoints)
    hub, stop = live.Hub(), asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(live.feed(settings, hub, stop))
        try:
            yield Waiting(task, stop, logs, hub, settings)
        finally:
            stop.set()
            await asyncio.gather(task, return_exceptions=True)
            await delete_topics(settings.kafka_bootstrap_servers, topics(settings))


async def test_a_feed_waiting_for_its_topics_says_so_once_and_stops_when_asked(
    waiting: Waiting, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="aiokafka"):
        await waiting.said_it_waits()
        await asyncio.sleep(2.5)  # a few looks for the topics (it used to retry, and say so, every 2 s)
        await waiting.stopped()
    said = [e for e in waiting.logs if e["event"] == "kafka.waiting_for_topics"]
    assert len(said) == 1  # once a minute, not at each look
    assert said[0]["missing"] == topics(waiting.settings) and said[0]["who"] == "web.live"
    assert not [e for e in waiting.logs if e["event"] == "web.live.retry"]
    assert not waiting.hub.connected
    assert not [r for r in caplog.records if "not found in cluster metadata" in r.getMessage()]


async def test_topics_made_later_are_read(waiting: Waiting) -> None:
    settings = waiting.settings
    await waiting.said_it_waits()
    specs = [TopicSpec(t, 3, settings.kafka_replication_factor) for t in topics(settings)]
    await ensure_topics(settings.kafka_bootstrap_servers, specs)

    async def connected() -> bool:
        return waiting.hub.connected

    async with waiting.hub.subscribe() as page:
        await wait_until(connected, timeout=30)
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
        await producer.start()
        try:
            envelope = {"type": "pipelines.deals.DealWon", "position": 7}
            await producer.send_and_wait(settings.events_topic("deals"), json.dumps(envelope).encode(), key=b"d-1")
        finally:
            await producer.stop()
        assert await asyncio.wait_for(page.get(), 30) == {"service": "deals", "position": 7}
    assert any(e["event"] == "kafka.topics_present" and e["who"] == "web.live" for e in waiting.logs)
    await waiting.stopped()


async def test_the_board_is_ready_while_its_feed_waits_for_topics_and_live_once_they_are_made(
    endpoints: Endpoints,
) -> None:
    settings = isolated_settings(endpoints)
    app = create_app(settings, transport=httpx.MockTransport(lambda _: httpx.Response(200, json={"status": "ok"})))
    web = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://web")

    def ready_with_live(expected: str) -> Callable[[], Awaitable[bool]]:
        async def ready() -> bool:
            answer = await web.get("/readyz")
            body = answer.json()
            return answer.status_code == 200 and body["status"] == "ok" and body["checks"]["live"] == expected

        return ready

    try:
        async with app.router.lifespan_context(app), web:
            waiting = f"ok; waiting for topics: {', '.join(topics(settings))}"
            await wait_until(ready_with_live(waiting), timeout=30)  # once the revocation list caught up
            specs = [TopicSpec(t, 3, settings.kafka_replication_factor) for t in topics(settings)]
            await ensure_topics(settings.kafka_bootstrap_servers, specs)
            await wait_until(ready_with_live("ok"), timeout=30)
            assert app.state.board.hub.connected and app.state.board.hub.waiting == ()
    finally:
        await delete_topics(settings.kafka_bootstrap_servers, [*topics(settings), revocations_topic(settings)])


async def test_a_feed_without_kafka_is_not_ready_warns_once_however_often_it_tries_and_stops_when_asked(
    endpoints: Endpoints,
) -> None:
    settings = isolated_settings(endpoints).model_copy(update={"kafka_bootstrap_servers": f"127.0.0.1:{free_port()}"})
    hub, stop = live.Hub(), asyncio.Event()
    # short waits, so that a few attempts fail within the minute between warnings
    backoff = Backoff(who="web.live", first_s=0.1)
    with capture_logs() as logs:
        waiting = WaitingForTopics(asyncio.create_task(live.feed(settings, hub, stop, backoff=backoff)), stop, logs)

        async def failed_thrice() -> bool:
            return backoff.failures >= 3

        await wait_until(failed_thrice, timeout=60)
        assert hub.readiness() == "not connected to Kafka"
        await waiting.stopped()
    warned = [e for e in logs if e["event"] == "web.live.retry"]
    assert len(warned) == 1 and warned[0]["attempts"] == 1 and "KafkaConnectionError" in str(warned[0]["error"])
