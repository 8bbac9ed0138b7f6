"""A projector's offset commits around a rebalance (shared.messaging.runner._commit_owned).

The group's committed offsets are what a rebuild's swap waits for: a commit refused while a rebalance is under way
must keep the offsets of the partitions the consumer still owns, or a partition with nothing more to read never
commits them and the new generation stays "building" (seen with two projector processes sharing a rebuild). A
consumer standing in for aiokafka's: only its assignment and commit are used.
"""

from __future__ import annotations

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError

from shared.messaging.runner import _commit_owned

P0, P1, P2 = (TopicPartition("t", n) for n in range(3))


class Consumer:
    def __init__(self, owned: set[TopicPartition], refuse: list[Exception] | None = None) -> None:
        self.owned = owned
        self.refuse = list(refuse or [])
        self.committed: dict[TopicPartition, int] = {}

    def assignment(self) -> set[TopicPartition]:
        return set(self.owned)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        assert set(offsets) <= self.owned, "committing a partition not owned is refused by aiokafka"
        if self.refuse:
            raise self.refuse.pop(0)
        self.committed.update(offsets)


async def test_the_partitions_owned_are_committed_and_nothing_is_left() -> None:
    consumer = Consumer({P0, P1})
    assert await _commit_owned(consumer, {P0: 10, P1: 20}, "m") == {}
    assert consumer.committed == {P0: 10, P1: 20}


async def test_a_partition_taken_away_is_dropped_and_the_others_committed() -> None:
    consumer = Consumer({P1})
    assert await _commit_owned(consumer, {P0: 10, P1: 20}, "m") == {}
    assert consumer.committed == {P1: 20}


async def test_a_refused_commit_keeps_what_is_still_owned_until_it_is_committed() -> None:
    consumer = Consumer({P0, P1, P2}, refuse=[IllegalStateError("rebalancing"), CommitFailedError("rebalanced")])
    left = await _commit_owned(consumer, {P0: 10, P1: 20, P2: 30}, "m")
    assert left == {P0: 10, P1: 20, P2: 30} and consumer.committed == {}
    consumer.owned = {P1, P2}  # the rebalance took P0
    left = await _commit_owned(consumer, left, "m")
    assert left == {P1: 20, P2: 30} and consumer.committed == {}
    assert await _commit_owned(consumer, left, "m") == {}
    assert consumer.committed == {P1: 20, P2: 30}  # P1 had nothing more to read: still committed
