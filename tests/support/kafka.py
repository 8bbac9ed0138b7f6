"""Reading a whole topic back, for comparing it with the store."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.envelope import CloudEvent
from shared.kafka import admin_client


async def read_topic(bootstrap: str, topic: str, *, timeout: float = 60.0) -> list[tuple[int, CloudEvent]]:
    """Every message now in the topic, as (partition, envelope), each partition in its order."""
    return [(p, CloudEvent.from_kafka(value)) for p, value in await _records(bootstrap, topic, timeout)]


async def raw_messages(bootstrap: str, topic: str, *, timeout: float = 60.0) -> list[bytes]:
    """Every message's key, headers and value, as bytes (for scanning a topic for traces of data)."""
    return [value for _, value in await _records(bootstrap, topic, timeout, whole=True)]


async def _records(bootstrap: str, topic: str, timeout: float, *, whole: bool = False) -> list[tuple[int, bytes]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        async with admin_client(bootstrap) as admin:
            (described,) = await admin.describe_topics([topic])
        partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
        assert partitions, f"no topic {topic}"
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        out: list[tuple[int, bytes]] = []
        async with asyncio.timeout(timeout):
            while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
                for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                    for r in records:
                        value = r.value or b""
                        if whole:
                            value = b"|".join([r.key or b"", *(v for _, v in r.headers), value])
                        out.append((tp.partition, value))
        return out
    finally:
        try:
            await consumer.stop()
        except asyncio.CancelledError:
            # aiokafka's group-less consumer, stopped soon after start, re-raises its own task's cancellation
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise


def by_stream(messages: list[tuple[int, CloudEvent]]) -> dict[str, list[int]]:
    """Each stream's versions in the order the topic holds them."""
    streams: dict[str, list[int]] = {}
    for _, e in messages:
        streams.setdefault(e.streamid, []).append(e.streamversion)
    return streams
