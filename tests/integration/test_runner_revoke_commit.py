"""A projector's offsets are committed for the partitions a rebalance takes away, as it takes them, once the batch
being applied is (shared.messaging.runner._Offsets, on the real Kafka).

A projector commits its Kafka offsets at most once a second while busy. Without this, a second projector process
joining the group (a rebuild's second worker, a replica scaled out) took over partitions from the group's last
commit and read again everything applied since: about 25,000 events a rebalance in a board rebuild (skipped by the
progress rows, but read, decoded and typed again)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.messaging.kafka import stop_consumer, subscribe_when_present
from shared.messaging.runner import _Offsets
from shared.ops.stack import Endpoints
from testkit.waiting import wait_until

pytestmark = pytest.mark.kafka

PER_PARTITION = 10


def consumer(endpoints: Endpoints, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=endpoints.kafka_bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        heartbeat_interval_ms=500,
    )


async def test_the_partitions_a_rebalance_takes_are_committed_once_their_batch_is_applied(
    endpoints: Endpoints, kafka_topic: Callable[..., Awaitable[str]]
) -> None:
    topic = await kafka_topic(partitions=4)
    producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap_servers)
    await producer.start()
    try:
        for p in range(4):
            for n in range(PER_PARTITION):
                await producer.send_and_wait(topic, f"{p}.{n}".encode(), partition=p)
    finally:
        await producer.stop()
    group, stop = f"test.revoke.{uuid.uuid4().hex[:8]}", asyncio.Event()
    first = consumer(endpoints, group)
    second = consumer(endpoints, group)
    await first.start()
    try:
        offsets = _Offsets(first, "m")
        assert await subscribe_when_present(first, [topic], stop, who="first", listener=offsets)
        last: dict[TopicPartition, int] = {}
        while sum(o + 1 for o in last.values()) < 4 * PER_PARTITION:  # the first owns every partition, reads all
            for tp, records in (await first.getmany(timeout_ms=200)).items():
                last[tp] = records[-1].offset

        with offsets.applying():  # the batch is being applied as a second consumer joins
            await second.start()
            assert await subscribe_when_present(second, [topic], stop, who="second")
            await asyncio.sleep(3)  # the first's heartbeat (0.5 s) learns of the rebalance: its revocation waits
            assert not second.assignment()
            offsets.pending.update({tp: offset + 1 for tp, offset in last.items()})  # applied, not yet committed

        async def shared() -> bool:  # the first keeps polling, as a runner does, so that it rejoins
            await first.getmany(timeout_ms=100)
            return bool(second.assignment()) and bool(first.assignment())

        await wait_until(shared, timeout=60)  # the two consumers share the partitions
        taken = second.assignment()
        assert taken and not (taken & first.assignment())
        for tp in taken:  # committed by the first as the rebalance took them: the second resumes after them
            assert await second.committed(tp) == PER_PARTITION
            assert tp not in offsets.pending
        assert not await second.getmany(timeout_ms=1000)  # nothing is read again
        assert set(offsets.pending) <= first.assignment()  # what the first still owns is committed as usual
    finally:
        await stop_consumer(second)
        await stop_consumer(first)
