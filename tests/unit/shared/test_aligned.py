"""The aligned assignor (decision 0035): groups of the same processes assign each partition to the same process."""

from __future__ import annotations

import random

from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata

from shared.messaging.aligned import PROCESS, Aligned, aligned


class Cluster:
    """The one thing an assignor asks of the cluster's metadata: a topic's partitions (None: unknown)."""

    def __init__(self, partitions: dict[str, int]) -> None:
        self.partitions = partitions

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return set(range(self.partitions[topic])) if topic in self.partitions else None


def members(subscriptions: dict[bytes, list[str]], rng: random.Random) -> dict[str, ConsumerProtocolMemberMetadata]:
    """A group's members: one a process, each under a member id drawn at random as the broker draws them."""
    return {
        f"group-{rng.getrandbits(64):016x}": aligned(process).metadata(topics)
        for process, topics in subscriptions.items()
    }


def by_process(group: dict[str, ConsumerProtocolMemberMetadata], cluster: Cluster) -> dict[bytes, dict[str, list[int]]]:
    assignment = Aligned.assign(cluster, group)
    return {group[m].user_data: dict(a.assignment) for m, a in assignment.items()}


def test_every_group_of_the_same_processes_gives_each_partition_to_the_same_process() -> None:
    rng = random.Random(7)
    cluster = Cluster({"deals": 6, "agenda": 6})
    processes = [b"host-a:1:aa", b"host-b:1:bb", b"host-c:9:cc"]
    for n in (1, 2, 3):
        board = by_process(members({p: ["deals", "agenda"] for p in processes[:n]}, rng), cluster)
        analytics = by_process(members({p: ["agenda", "deals"] for p in processes[:n]}, rng), cluster)
        handovers = by_process(members({p: ["deals"] for p in processes[:n]}, rng), cluster)
        assert board == analytics
        assert {p: {"deals": a["deals"]} for p, a in board.items()} == handovers
        for topic in ("deals", "agenda"):  # every partition once, spread evenly
            taken = [part for a in board.values() for part in a[topic]]
            assert sorted(taken) == list(range(6))
            assert {len(a[topic]) for a in board.values()} == {6 // n}


def test_a_topic_some_members_do_not_take_goes_to_those_that_do() -> None:
    cluster = Cluster({"deals": 4, "agenda": 3})
    group = members({b"a": ["deals"], b"b": ["deals", "agenda"]}, random.Random(1))
    assert by_process(group, cluster) == {b"a": {"deals": [0, 2]}, b"b": {"deals": [1, 3], "agenda": [0, 1, 2]}}


def test_a_topic_without_metadata_is_left_out() -> None:
    group = members({b"a": ["deals", "gone"]}, random.Random(2))
    assert by_process(group, Cluster({"deals": 2})) == {b"a": {"deals": [0, 1]}}


def test_this_process_sends_its_own_token() -> None:
    meta = Aligned.metadata({"b", "a"})
    assert (meta.subscription, meta.user_data) == (["a", "b"], PROCESS)
    assert aligned(b"x").metadata(["a"]).user_data == b"x"
