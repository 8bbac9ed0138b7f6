"""Live updates: the board subscribes to the events topics like any other system and tells open pages what moved.

One consumer per web process, no consumer group (every web replica sees every event), starting at the end of
each partition: a page loaded now already shows everything before. A browser gets, per event, only which
pipeline moved and the event's position in that service's store — never the event itself, so nothing reaches
a user that their role may not see. The page then asks its panels again through the APIs (with the position,
where the API can wait for its read model to have applied it).

The feed waits, pages working meanwhile, only not live: for its topics when the services have not made them yet
(``shared.messaging.kafka.wait_for_topics``; the board is ready then, its ``/readyz`` says "ok; waiting for topics:
…"), and for Kafka when it does not answer (retrying 1 s, doubling to 30 s, a warning a minute; ``/readyz`` 503
"not connected to Kafka").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.messaging.kafka import Backoff, admin_client, wait_for_topics
from shared.ops.settings import PIPELINES, Settings

log = structlog.get_logger()
QUEUE = 256  # a browser further behind than this is told to reload its panels instead


class Hub:
    """Fan-out of small notices to every open page."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[dict[str, Any]]] = set()
        self.connected = False  # the feed reads Kafka (readiness)
        self.waiting: tuple[str, ...] = ()  # the topics the feed waits for, not made yet (ready, not live)

    def publish(self, notice: dict[str, Any]) -> None:
        for q in list(self._queues):
            if q.full():  # slow reader: drop what it has not read and tell it to refresh everything
                while not q.empty():
                    q.get_nowait()
                q.put_nowait({"service": "*"})
            else:
                q.put_nowait(notice)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE)
        self._queues.add(q)
        try:
            yield q
        finally:
            self._queues.discard(q)

    @property
    def listeners(self) -> int:
        return len(self._queues)

    def readiness(self) -> str:
        """The feed's check in /readyz: waiting for topics the services have not made is ready (pages work)."""
        if self.connected:
            return "ok"
        if self.waiting:
            return f"ok; waiting for topics: {', '.join(self.waiting)}"
        return "not connected to Kafka"


def notice(topic: str, value: bytes | None, topics: dict[str, str]) -> dict[str, Any] | None:
    """What a page is told of one message: the service (or "alerts") and the event's position."""
    service = topics.get(topic)
    if service is None or value is None:
        return None
    try:
        envelope = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return {"service": service}  # undecodable: the projector dead-letters it; the page may still refresh
    position = envelope.get("position") if isinstance(envelope, dict) else None
    if service == "alerts":
        source = str(envelope.get("source", "")) if isinstance(envelope, dict) else ""
        return {"service": "alerts", "of": source.rsplit("/", 1)[-1]}
    return {"service": service, "position": position if isinstance(position, int) else None}


async def feed(settings: Settings, hub: Hub, stop: asyncio.Event, *, backoff: Backoff | None = None) -> None:
    """Read the three events topics and the alerts topic from their ends until ``stop``; reconnect on failure, after
    ``backoff``'s wait (``shared.messaging.kafka.Backoff``: 1 s doubling to 30 s, ``web.live.retry`` at once and then
    once a minute, ``web.live.connected`` at a good connection).

    The services make their topics when they first start: until every one is there the feed waits for them as a
    projector does (``wait_for_topics``: a look a second, a log line a minute, ends at once on ``stop``), naming
    them in ``hub.waiting``; pages work meanwhile, only not live."""
    topics = {settings.events_topic(s): s for s in PIPELINES} | {settings.alerts_topic(): "alerts"}
    backoff = backoff or Backoff(who="web.live")

    def waiting(absent: list[str]) -> None:
        hub.waiting = tuple(absent)

    while not stop.is_set():
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False, **settings.kafka_options()
        )
        try:
            await consumer.start()
            if not await wait_for_topics(consumer, topics, stop, who="web.live", missing=waiting):
                return
            async with admin_client(settings.kafka_bootstrap_servers, **settings.kafka_options()) as admin:
                described = await admin.describe_topics(list(topics))
            tps = [
                TopicPartition(t["topic"], p["partition"])
                for t in described
                if not t.get("error_code")
                for p in t["partitions"]
            ]
            if {tp.topic for tp in tps} != set(topics):  # deleted since: wait for it again
                raise LookupError(f"topics missing: {sorted(set(topics) - {tp.topic for tp in tps})}")
            consumer.assign(tps)
            await consumer.seek_to_end(*tps)
            hub.connected = True
            backoff.connected(partitions=len(tps))
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=500, max_records=500)
                for records in batch.values():
                    for record in records:
                        n = notice(record.topic, record.value, topics)
                        if n is not None:
                            hub.publish(n)
        except Exception as exc:  # Kafka away: pages keep working, only not live
            hub.connected, hub.waiting = False, ()
            wait_s = backoff.failed(exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait_s)
        finally:
            hub.connected, hub.waiting = False, ()
            with contextlib.suppress(Exception):
                await consumer.stop()
