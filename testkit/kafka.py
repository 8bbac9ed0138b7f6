"""Reading a topic back: its records, or its envelopes for comparing them with the store."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka import ConsumerRecord

from shared.messaging.envelope import CloudEvent
from shared.messaging.kafka import read_whole_topic
from testkit.waiting import wait_until


async def read_records(
    bootstrap: str, topic: str, count: int = 0, *, timeout: float = 60.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record now in the topic, each partition in its order; with ``count``, once the topic holds at least
    that many (waiting up to ``timeout``: what a process is still writing, dead letters say)."""
    found: list[ConsumerRecord[bytes, bytes]] = []

    async def enough() -> bool:
        nonlocal found
        found = await read_whole_topic(bootstrap, topic, timeout_s=timeout)
        return len(found) >= count

    await wait_until(enough, timeout=timeout, interval=0.2)
    return found


async def read_topic(bootstrap: str, topic: str, *, timeout: float = 60.0) -> list[tuple[int, CloudEvent]]:
    """Every message now in the topic, as (partition, envelope), each partition in its order."""
    return [
        (r.partition, CloudEvent.from_kafka(r.value)) for r in await read_records(bootstrap, topic, timeout=timeout)
    ]


async def raw_messages(bootstrap: str, topic: str, *, timeout: float = 60.0) -> list[bytes]:
    """Every message's key, headers and value, as bytes (for scanning a topic for traces of data)."""
    return [
        b"|".join([r.key or b"", *(v for _, v in r.headers), r.value or b""])
        for r in await read_records(bootstrap, topic, timeout=timeout)
    ]


def by_stream(messages: list[tuple[int, CloudEvent]]) -> dict[str, list[int]]:
    """Each stream's versions in the order the topic holds them."""
    streams: dict[str, list[int]] = {}
    for _, e in messages:
        streams.setdefault(e.streamid, []).append(e.streamversion)
    return streams


STOPS_WITHIN_S = 15.0  # a bound, not a speed: a consumer's start used to wait aiokafka's 40 s for a missing topic


@dataclass
class WaitingForTopics:
    """A consumer's task started before its topics exist (``shared.messaging.kafka.subscribe_when_present``), the
    event that stops it, and the log lines captured meanwhile."""

    task: asyncio.Task[None]
    stop: asyncio.Event
    logs: list[dict[str, object]]

    async def said_it_waits(self) -> None:
        async def said() -> bool:
            return any(e["event"] == "kafka.waiting_for_topics" for e in self.logs)

        await wait_until(said, timeout=STOPS_WITHIN_S)

    async def stopped(self) -> None:
        self.stop.set()

        async def done() -> bool:
            return self.task.done()

        await wait_until(done, timeout=STOPS_WITHIN_S)
        self.task.result()  # ended without an error
