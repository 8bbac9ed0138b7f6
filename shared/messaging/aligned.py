"""Every consumer group of the same processes assigns a partition to the same process (decision 0035).

A projector process runs one consumer group per projection, and the projections of a topic share each record's
decode within the process (decision 0034). Kafka's round-robin assignor orders a group's members by the member ids
the broker draws at random, so with two processes one may read partitions 0, 2 and 4 of the deals' topic for the
board and 1, 3 and 5 for the analytics: nothing left to share, each record decoded twice over the two processes.

``Aligned`` orders the members by a token of their process, sent in the member metadata's user data, and gives
each topic's partition ``p`` to the ``p mod n``-th of the ``n`` members subscribed to that topic: groups with the
same processes assign each partition alike.

The runner lists it alone. Listed before round-robin as a fallback, groups on the real Kafka fell into rebalances
that did not end and now and then refused a member with ``InconsistentGroupProtocol`` (decision 0035). Alone, a
process of an older version (round-robin) and one of this version cannot be in one group: during a rolling
update the newer one's consumer fails to join, the runner starts it again every ``poll_interval`` and it joins
once the older processes have stopped; the older ones read on meanwhile.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable, Mapping

import structlog
from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment, ConsumerProtocolMemberMetadata

log = structlog.get_logger(__name__)

# this process, the same in every group it joins; the random part keeps two hosts' pid 1 apart
PROCESS = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}".encode()


class Aligned(AbstractPartitionAssignor):  # type: ignore[misc]  # aiokafka has no type hints
    """Partition ``p`` of a topic to the ``p mod n``-th member subscribed to it, members ordered by process."""

    name = "pipelines-aligned"
    version = 0
    process = PROCESS

    @classmethod
    def metadata(cls, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        return ConsumerProtocolMemberMetadata(cls.version, sorted(topics), cls.process)

    @classmethod
    def assign(
        cls, cluster: ClusterMetadata, members: Mapping[str, ConsumerProtocolMemberMetadata]
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        order = sorted(members, key=lambda m: (members[m].user_data or b"", m))
        taken: dict[str, dict[str, list[int]]] = {m: {} for m in members}
        for topic in sorted({t for meta in members.values() for t in meta.subscription}):
            partitions = cluster.partitions_for_topic(topic)
            if partitions is None:
                log.warning("kafka.no_partition_metadata", topic=topic)  # round-robin leaves it out too
                continue
            takers = [m for m in order if topic in members[m].subscription]
            for p in sorted(partitions):
                taken[takers[p % len(takers)]].setdefault(topic, []).append(p)
        return {m: ConsumerProtocolMemberAssignment(cls.version, sorted(taken[m].items()), b"") for m in members}

    @classmethod
    def on_assignment(cls, assignment: ConsumerProtocolMemberAssignment) -> None:
        pass


def aligned(process: bytes) -> type[Aligned]:
    """The assignor as a process named ``process`` runs it (tests hold several "processes" in one)."""
    return type(f"Aligned_{process.decode(errors='replace')}", (Aligned,), {"process": process})
