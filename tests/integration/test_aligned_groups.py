"""Two projector processes reading one topic for two projections, on the real Kafka: the consumers their runners read
with give each partition to the same process in both groups (decision 0035), so the process's projections share its decode (decision 0034). In a rolling
update a consumer of this version cannot join a group of older ones (round-robin): it is refused, the older one
reads on, and it joins once they have stopped."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.errors import InconsistentGroupProtocolError

from services.deals.analytics import analytics
from services.deals.projections import board
from shared.messaging.aligned import aligned
from shared.messaging.kafka import stop_consumer
from shared.messaging.projections import Projection
from shared.messaging.runner import ProjectionRunner
from shared.ops.stack import Endpoints
from testkit.waiting import wait_until

pytestmark = pytest.mark.kafka


def consumer(endpoints: Endpoints, group: str, *strategy: type[AbstractPartitionAssignor]) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=endpoints.kafka_bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
        heartbeat_interval_ms=300,
        partition_assignment_strategy=strategy,
    )


async def assigned(members: dict[str, AIOKafkaConsumer], topics: list[list[str]]) -> dict[str, set[TopicPartition]]:
    """Start and subscribe every member, poll them until each has partitions; who has which."""
    for member, subscription in zip(members.values(), topics, strict=True):
        await member.start()
        member.subscribe(subscription)

    async def settled() -> bool:
        for member in members.values():
            await member.getmany(timeout_ms=50)
        return all(m.assignment() for m in members.values())

    await wait_until(settled, timeout=60)
    for member in members.values():  # a last round: a rebalance begun by the last to join has ended
        await member.getmany(timeout_ms=1000)
    return {name: set(m.assignment()) for name, m in members.items()}


def runner(
    endpoints: Endpoints, pool: asyncpg.Pool, projection: Projection, run: str, process: bytes
) -> ProjectionRunner:
    """The projection's runner in the named process (its own assignor token), one group per projection."""
    servers = endpoints.kafka_bootstrap_servers
    made = ProjectionRunner(
        pool, projection, namespace=f"aligned_{run}", bootstrap_servers=servers, dead_letter_topic="-"
    )
    made.assignor = aligned(process)
    return made


async def test_each_partition_goes_to_the_same_process_in_every_group(
    endpoints: Endpoints, pg_pool: asyncpg.Pool, kafka_topic: Callable[..., Awaitable[str]]
) -> None:
    deals, agenda = await kafka_topic(partitions=6), await kafka_topic(partitions=3)
    run = uuid.uuid4().hex[:8]
    members = {}
    for name, projection in (("board", board(deals, agenda)), ("analytics", analytics(deals))):
        for process in ("a", "b"):
            made = runner(endpoints, pg_pool, projection, run, f"process-{process}".encode())
            members[f"{name}@{process}"] = made.group_consumer(1)  # the consumer the runner reads with
    try:
        got = await assigned(members, [[deals, agenda], [deals, agenda], [deals], [deals]])
    finally:
        for m in members.values():
            await stop_consumer(m)
    for process in ("a", "b"):  # the board reads the agenda too, the analytics (without it here) the deals alone
        on_deals = {tp for tp in got[f"board@{process}"] if tp.topic == deals}
        assert on_deals == got[f"analytics@{process}"]
        assert len(on_deals) == 3
    assert got["board@a"].isdisjoint(got["board@b"])
    assert len(got["board@a"] | got["board@b"]) == 9


async def polled_until_it_fails(joining: AIOKafkaConsumer, member: AIOKafkaConsumer) -> None:
    """Poll a joining consumer (and a member, as its runner does) until the joining one raises; 30 s at most."""
    async with asyncio.timeout(30):
        while True:
            await joining.getmany(timeout_ms=100)
            await member.getmany(timeout_ms=100)


async def test_in_a_rolling_update_the_new_version_joins_once_the_old_has_stopped(
    endpoints: Endpoints, kafka_topic: Callable[..., Awaitable[str]]
) -> None:
    topic = await kafka_topic(partitions=4)
    group = f"test.aligned.rolling.{uuid.uuid4().hex[:8]}"
    old = consumer(endpoints, group, RoundRobinPartitionAssignor)
    refused = consumer(endpoints, group, ProjectionRunner.assignor)
    new = consumer(endpoints, group, ProjectionRunner.assignor)  # the runner's next try, a second later
    try:
        assert len((await assigned({"old": old}, [[topic]]))["old"]) == 4
        await refused.start()
        refused.subscribe([topic])
        with pytest.raises(InconsistentGroupProtocolError):
            await polled_until_it_fails(refused, old)
        await old.getmany(timeout_ms=1000)
        assert len(old.assignment()) == 4  # the old one reads on
        await stop_consumer(old)
        assert len((await assigned({"new": new}, [[topic]]))["new"]) == 4
    finally:
        for c in (old, refused, new):
            await stop_consumer(c)
