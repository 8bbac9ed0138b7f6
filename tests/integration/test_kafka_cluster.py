"""The 3-node mode: replication factor 3, min.insync.replicas 2, and a topic that keeps serving with a node down."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.messaging.kafka import TopicSpec, admin_client, ensure_topics
from shared.ops.stack import Endpoints, LocalStack

pytestmark = [pytest.mark.kafka, pytest.mark.cluster, pytest.mark.slow]


async def consume_all(bootstrap: str, topic: str, expected: int, group: str) -> list[tuple[int, str, int]]:
    """(partition, key, value) in the order each partition delivered them, read as a consumer group (its
    coordinator on the cluster too) that commits its offsets."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    got: list[tuple[int, str, int]] = []
    try:
        async with asyncio.timeout(60):
            while len(got) < expected:
                batches = await consumer.getmany(timeout_ms=1000)
                for tp, records in batches.items():
                    got.extend((tp.partition, r.key.decode(), int(r.value)) for r in records)
            await consumer.commit()
    finally:
        await consumer.stop()
    return got


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, Endpoints]]:
    stack = LocalStack(run_dir=Path(tmp_path_factory.mktemp("cluster")), nodes=3)
    try:
        yield stack, stack.up()
    finally:
        stack.down(wipe=True)


async def produce(bootstrap: str, topic: str, values: range) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for v in values:
            await producer.send_and_wait(topic, key=f"k{v % 12}".encode(), value=str(v).encode())
    finally:
        await producer.stop()


async def test_topic_keeps_serving_with_one_node_stopped(cluster: tuple[LocalStack, Endpoints]) -> None:
    stack, endpoints = cluster
    bootstrap = endpoints.kafka_bootstrap_servers
    assert endpoints.replication_factor == 3
    assert len(bootstrap.split(",")) == 3
    topic = f"cluster.{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, [TopicSpec(topic, partitions=6, replication_factor=3)])
    async with admin_client(bootstrap) as admin:
        (described,) = await admin.describe_topics([topic])
        configs = await admin.describe_cluster()
    assert all(len(p["replicas"]) == 3 for p in described["partitions"])
    assert len(configs["brokers"]) == 3

    await produce(bootstrap, topic, range(100))
    stack.stop_node(2)
    try:
        # acks=all with min.insync.replicas=2: two of three replicas still accept writes.
        await produce(bootstrap, topic, range(100, 200))
        got = await consume_all(bootstrap, topic, 200, f"cluster-{uuid.uuid4()}")
        assert sorted(v for _, _, v in got) == list(range(200))
        async with admin_client(bootstrap) as admin:
            (after,) = await admin.describe_topics([topic])
        assert all(2 not in p["isr"] for p in after["partitions"]), "the stopped node is out of every ISR"
        assert all(p["leader"] in (1, 3) for p in after["partitions"])
    finally:
        stack.start_node(2)
