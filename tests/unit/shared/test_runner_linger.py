"""A small live batch waits a moment for more events before it is applied (shared.messaging.runner._linger).

Each batch is one transaction per read model with fixed costs (progress rows locked and written, a commit): a batch
of two events costs nearly what one of ten does. A consumer standing in for aiokafka's: only ``getmany`` is used,
answering what "arrived" meanwhile.
"""

from __future__ import annotations

from aiokafka import ConsumerRecord, TopicPartition

from shared.messaging.runner import LINGER_BELOW, _linger

P0, P1 = TopicPartition("t", 0), TopicPartition("t", 1)
Batches = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


def records(tp: TopicPartition, *offsets: int) -> list[ConsumerRecord[bytes, bytes]]:
    return [ConsumerRecord(tp.topic, tp.partition, o, 0, 0, b"k", b"v", None, 1, 1, []) for o in offsets]


class Consumer:
    def __init__(self, later: Batches) -> None:
        self.later = later
        self.asked: list[tuple[int, int]] = []  # (timeout_ms, max_records) of each getmany

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None) -> Batches:
        self.asked.append((timeout_ms, max_records or 0))
        later, self.later = self.later, {}
        return later


def offsets(batches: Batches) -> dict[TopicPartition, list[int]]:
    return {tp: [r.offset for r in rs] for tp, rs in batches.items()}


async def test_a_small_live_batch_takes_what_came_meanwhile_each_partition_in_order() -> None:
    consumer = Consumer({P0: records(P0, 12, 13), P1: records(P1, 7)})
    got = await _linger(consumer, {P0: records(P0, 10, 11)}, 500, behind=False)
    assert offsets(got) == {P0: [10, 11, 12, 13], P1: [7]}
    assert consumer.asked == [(0, 498)]  # no wait in Kafka, and no more than the batch size in all


async def test_a_catch_up_batch_a_large_or_full_one_and_none_are_applied_as_they_are() -> None:
    large = {P0: records(P0, *range(LINGER_BELOW))}
    full = {P0: records(P0, 1, 2, 3)}  # as many as the batch size (a test's or an operator's small one)
    cases = [({P0: records(P0, 1)}, 10_000, True), (large, 10_000, False), (full, 3, False), ({}, 10_000, False)]
    for batches, size, behind in cases:
        consumer = Consumer({P1: records(P1, 1)})
        assert await _linger(consumer, dict(batches), size, behind=behind) == batches
        assert consumer.asked == []
