"""The process's window of decoded records (shared.messaging.decoded, decision 0034): the readers of one topic decode
each record once, each gets what its own decode would give, and the window stays within its bounds."""

from __future__ import annotations

import asyncio
import itertools
import time

from aiokafka import TopicPartition

from shared.messaging.decoded import FRESH_S, Window, decode_alone
from shared.messaging.envelope import CloudEvent
from shared.messaging.fast_envelope import Head
from testkit.batches import TOPIC, records
from testkit.deals_history import History

DEALS = ("pipelines.deals.",)
WON = ("pipelines.deals.DealWon",)
NOTHING = ("pipelines.leads.",)
MESSAGES = list(itertools.islice(History(15, seed=3).messages(), 120))
RECORDS = records(MESSAGES)
assert len(RECORDS) == 120


def _same(got: tuple[list, list], want: tuple[list, list]) -> None:
    """Each record as a reader of its own would decode it: the same envelope (a head for a type not taken), fact."""
    (parsed, bad), (parsed_want, bad_want) = got, want
    assert [r.offset for r, _ in bad] == [r.offset for r, _ in bad_want]
    assert len(parsed) == len(parsed_want)
    for (r, envelope, fact), (r_want, envelope_want, fact_want) in zip(parsed, parsed_want, strict=True):
        assert r is r_want
        assert (envelope.streamid, envelope.streamversion, envelope.type) == (
            envelope_want.streamid,
            envelope_want.streamversion,
            envelope_want.type,
        )
        if fact_want is None:
            assert fact is None
        else:
            assert fact is not None and not isinstance(fact, Exception)
            assert fact.event == fact_want.event and fact.envelope == fact_want.envelope


def _reading(reader: object, at: int) -> None:
    """The reader has read its partition up to ``at`` just now."""
    reader.positions[(TOPIC, 0)] = (at, time.monotonic())  # type: ignore[attr-defined]


def test_readers_of_one_topic_decode_each_record_once_and_get_what_they_take() -> None:
    window = Window()
    board, won, other = (window.reader([TOPIC], a) for a in (DEALS, WON, NOTHING))
    for r in (won, other):
        _reading(r, 0)
    _same(board.decode(RECORDS), decode_alone(RECORDS, DEALS))
    assert window.decoded == len(RECORDS) and len(window) == len(RECORDS)
    _same(won.decode(RECORDS), decode_alone(RECORDS, WON))
    assert window.shared == len(RECORDS) and len(window) == len(RECORDS)  # the third reader is yet to come
    got = other.decode(RECORDS)
    _same(got, decode_alone(RECORDS, NOTHING))
    assert window.decoded == len(RECORDS) and len(window) == 0  # the last reader took them out
    shared = board.decode(RECORDS[:1])[0][0][2], won.decode(RECORDS[:1])[0][0][2]
    assert shared[0] is None or shared[0] is not shared[1]  # read again after the window: decoded again


def test_a_reader_alone_keeps_nothing_and_one_past_a_record_is_not_kept_for() -> None:
    window = Window()
    board = window.reader([TOPIC], DEALS)
    board.decode(RECORDS)
    assert len(window) == 0
    ahead = window.reader([TOPIC], WON)
    _reading(ahead, 60)
    board.decode(RECORDS)  # offsets 0-59 are behind the other reader: kept only from 60 on
    assert len(window) == len(RECORDS) - 60
    ahead.close()
    board.decode(RECORDS)  # alone again: nothing kept (the 60 kept for the reader gone are taken on the way)
    assert len(window) == 0
    assert (window.decoded, window.shared) == (3 * len(RECORDS) - 60, 60)


def test_a_reader_that_stopped_reading_its_partition_is_not_kept_for() -> None:
    window = Window()
    board, stale = window.reader([TOPIC], DEALS), window.reader([TOPIC], DEALS)
    stale.positions[(TOPIC, 0)] = (0, time.monotonic() - FRESH_S - 1)
    board.decode(RECORDS)
    assert len(window) == 0


def test_the_window_holds_at_most_its_capacity_oldest_first() -> None:
    window = Window(capacity=50, lead=10)
    board, slow = window.reader([TOPIC], DEALS), window.reader([TOPIC], DEALS)
    _reading(slow, 0)
    board.decode(RECORDS[:60])  # kept within the window's reach of the reader behind: offsets 0-49
    assert len(window) == 50
    _reading(slow, 40)  # it moved on (a rebalance gave it the partition from offset 40, say)
    board.decode(RECORDS[60:90])  # 60-89 kept too: 80 records, the oldest 30 go
    assert len(window) == 50
    _same(slow.decode(RECORDS[40:90]), decode_alone(RECORDS[40:90], DEALS))
    assert window.shared == 10 + 30  # 40-49 and 60-89; 50-59 it decoded itself
    assert len(window) == 10  # 30-39, which it passed by: gone with the next to go over the capacity


def test_a_topic_made_again_under_the_same_name_is_decoded_anew() -> None:
    window = Window()
    board, analytics = window.reader([TOPIC], DEALS), window.reader([TOPIC], DEALS)
    _reading(analytics, 0)
    board.decode(RECORDS[:10])
    again = records(MESSAGES[10:20])  # the same topic, partition and offsets, other messages
    _same(analytics.decode(again), decode_alone(again, DEALS))
    assert window.shared == 0


def test_a_message_that_is_no_cloud_event_is_refused_for_every_reader() -> None:
    bad = records([*MESSAGES[:3], (b"k", b'{"not": "an event"}'), (b"k", b"\xff")])
    window = Window()
    first, second = window.reader([TOPIC], DEALS), window.reader([TOPIC], NOTHING)
    _reading(second, 0)
    want = decode_alone(bad, NOTHING)
    assert [r.offset for r, _ in want[1]] == [3, 4]
    _same(first.decode(bad), decode_alone(bad, DEALS))
    got = second.decode(bad)
    _same(got, want)
    assert [str(e) for _, e in got[1]] == [str(e) for _, e in want[1]]
    assert window.shared == len(bad)


def test_a_type_taken_by_one_reader_only_is_typed_once_and_a_head_for_nobody() -> None:
    window = Window()
    won, other = window.reader([TOPIC], WON), window.reader([TOPIC], NOTHING)
    _reading(other, 0)
    won_parsed, _ = won.decode(RECORDS)
    other_parsed, _ = other.decode(RECORDS)
    for (_, envelope, fact), (_, shared, none) in zip(won_parsed, other_parsed, strict=True):
        assert none is None and shared is envelope
        assert isinstance(envelope, CloudEvent) if fact is not None else isinstance(envelope, Head)


async def test_a_reader_catching_up_waits_for_one_behind_it_and_not_for_one_far_back() -> None:
    window = Window(capacity=100, lead=20, wait_s=5)
    fast, slow = window.reader([TOPIC], DEALS), window.reader([TOPIC], DEALS)
    tp = TopicPartition(TOPIC, 0)
    _reading(fast, 60)
    _reading(slow, 30)
    batch = {tp: RECORDS[60:90]}
    assert await fast.pace({tp: RECORDS[40:60]}) == 0  # 10 ahead of it: within the lead

    async def slow_reads_on() -> None:
        await asyncio.sleep(0.2)
        slow.decode(RECORDS[30:50])  # 10 behind now

    waited, _ = await asyncio.gather(fast.pace(batch), slow_reads_on())
    assert 0.15 < waited < 2
    _reading(slow, 0)  # beyond the window: a rebuild started later, say; not waited for
    _reading(fast, 110)
    assert await fast.pace({tp: RECORDS[110:120]}) == 0
    fast.close()
    slow.close()


async def test_a_reader_waits_at_most_its_bound() -> None:
    window = Window(capacity=100, lead=10, wait_s=0.3)
    fast, slow = window.reader([TOPIC], DEALS), window.reader([TOPIC], DEALS)
    _reading(slow, 0)
    waited = await fast.pace({TopicPartition(TOPIC, 0): RECORDS[50:60]})
    assert 0.25 < waited < 1.5
    assert window.waited_s == waited


async def test_two_readers_each_ahead_on_another_partition_do_not_wait_for_each_other() -> None:
    window = Window(capacity=100, lead=10, wait_s=0.5)
    one, two = window.reader([TOPIC], DEALS), window.reader([TOPIC], DEALS)
    now = time.monotonic()
    one.positions = {(TOPIC, 0): (50, now), (TOPIC, 1): (0, now)}
    two.positions = {(TOPIC, 0): (0, now), (TOPIC, 1): (50, now)}
    p0, p1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
    waited = await asyncio.gather(one.pace({p0: RECORDS[50:60]}), two.pace({p1: RECORDS[50:60]}))
    assert waited[1] == 0  # the second does not wait for the first, which waits for it (its bound: nothing moves here)
    assert 0.4 < waited[0] < 2


async def test_a_window_of_no_capacity_shares_nothing_and_nobody_waits() -> None:
    window = Window(capacity=0, lead=0)
    board, analytics = window.reader([TOPIC], DEALS), window.reader([TOPIC], DEALS)
    _reading(analytics, 0)
    _same(board.decode(RECORDS), decode_alone(RECORDS, DEALS))
    assert len(window) == 0 and window.shared == 0
    assert await board.pace({TopicPartition(TOPIC, 0): RECORDS[100:120]}) == 0
