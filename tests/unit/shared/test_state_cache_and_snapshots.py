"""Commands do not fold their whole stream each time: the state cache and snapshots (shared.core.decider, 0009).

Run on both stores: what they promise is the same.
"""

from __future__ import annotations

import pytest

from shared.core.decider import Decider, RuleError
from shared.store import ConcurrencyError, NewEvent, Snapshot, StateCache
from shared.store.commands import current, execute, load
from shared.store.memory import InMemoryEventStore
from testkit.events import ContactRecorded, Counted, count

every3 = Decider(initial=0, evolve=count, snapshot_every=3)


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.pg)])
def store(request: pytest.FixtureRequest):
    if request.param == "memory":
        return InMemoryEventStore()
    return request.getfixturevalue("pg_store")


async def snapshot(store, stream_id: str, schema_version: int = 1) -> Snapshot | None:
    return (await store.read_from_snapshot(stream_id, schema_version))[0]


def restart(store) -> None:
    """What a new process sees: the same store, nothing cached."""
    store.states = StateCache()


async def bump(store, stream: str = "s"):
    return await execute(store, stream, every3, lambda n: [Counted(n=n + 1)])


async def test_read_stream_after_a_version(store) -> None:
    await store.append("s", [NewEvent(Counted(n=i)) for i in range(5)], expected_version=0)
    assert [e.version for e in await store.read_stream("s", after_version=3)] == [4, 5]
    assert [e.version for e in await store.read_stream("s", after_version=2, to_version=4)] == [3, 4]
    assert await store.read_stream("s", after_version=5) == []


async def test_a_snapshot_is_kept_unless_a_later_one_of_its_version_is_stored(store) -> None:
    assert await snapshot(store, "s") is None
    await store.write_snapshot("s", Snapshot(6, 1, {"n": 6}))
    await store.write_snapshot("s", Snapshot(3, 1, {"n": 3}))  # older: ignored
    assert await snapshot(store, "s") == Snapshot(6, 1, {"n": 6})
    await store.write_snapshot("s", Snapshot(2, 2, {"n": 2}))  # another shape of state: replaces it
    assert await snapshot(store, "s", 2) == Snapshot(2, 2, {"n": 2})
    assert await snapshot(store, "s", 1) is None


async def test_a_snapshot_and_the_events_after_it_are_read_together(store) -> None:
    assert await store.read_from_snapshot("s", 1) == (None, [])
    await store.append("s", [NewEvent(Counted(n=i)) for i in range(5)], expected_version=0)
    snap, events = await store.read_from_snapshot("s", 1)
    assert snap is None and [e.version for e in events] == [1, 2, 3, 4, 5]
    await store.write_snapshot("s", Snapshot(3, 1, {"n": 3, "names": ["Lê", "An"]}))
    snap, events = await store.read_from_snapshot("s", 1)
    assert snap == Snapshot(3, 1, {"n": 3, "names": ["Lê", "An"]})
    assert [(e.version, e.to_event()) for e in events] == [(4, Counted(n=3)), (5, Counted(n=4))]
    assert events == await store.read_stream("s", after_version=3)
    snap, events = await store.read_from_snapshot("s", 2)  # another shape of state: not used
    assert snap is None and len(events) == 5
    await store.write_snapshot("s", Snapshot(5, 1, {"n": 5}))
    assert await store.read_from_snapshot("s", 1) == (Snapshot(5, 1, {"n": 5}), [])


async def test_the_cache_holds_the_folded_state_and_the_events_after_it_are_read(store) -> None:
    for _ in range(2):
        await bump(store)
    # another process appends: the cached state is behind, the command reads the events after it
    await store.append("s", [NewEvent(Counted(n=9))], expected_version=2)
    result = await bump(store)
    assert (result.version, result.state) == (4, 4)
    assert (await current(store, "s", every3)).state == (await load(store, "s", every3)).state == 4


async def test_a_snapshot_is_written_every_n_events_and_read_by_a_new_process(store) -> None:
    for _ in range(7):
        await bump(store)
    snap = await snapshot(store, "s")
    assert snap is not None
    assert snap.version in (3, 6) and snap.state == snap.version  # the counter's state is its count
    # a new process starts from the snapshot: prove it by planting one that differs from the fold
    await store.write_snapshot("s", Snapshot(7, every3.snapshot_version, 1000))
    restart(store)
    assert (await current(store, "s", every3)).state == 1000
    # a snapshot of another version of the decider is not used
    await store.write_snapshot("s", Snapshot(7, 99, 5000))
    restart(store)
    now = await current(store, "s", every3)
    assert (now.state, now.version) == (7, 7)


async def test_a_long_stream_loaded_cold_writes_a_snapshot(store) -> None:
    await store.append("s", [NewEvent(Counted(n=i)) for i in range(10)], expected_version=0)
    restart(store)
    assert (await current(store, "s", every3)).state == 10
    assert await snapshot(store, "s") == Snapshot(10, 1, 10)


async def test_a_cached_state_ahead_of_the_store_is_dropped_and_the_command_retried(store) -> None:
    await bump(store)
    # as after the store was restored to an earlier point: the cache says version 50
    store.states.put(("s", id(every3)), 50, 50, 0)
    result = await bump(store)
    assert (result.version, result.state) == (2, 2)


async def test_cached_and_snapshotted_states_hold_no_personal_data(store) -> None:
    def contacts(state: list[str | None], event) -> list[str | None]:
        return [*state, event.email] if isinstance(event, ContactRecorded) else state

    decider = Decider(initial=[], evolve=contacts, snapshot_every=1)
    result = await execute(
        store,
        "person-1",
        decider,
        lambda _: [ContactRecorded(person_id="p1", email="an@example.vn", full_name="An", source="web")],
    )
    assert result.state == ["an@example.vn"]  # the command's answer has what it decided
    assert (await current(store, "person-1", decider)).state == [None]
    snap = await snapshot(store, "person-1")
    assert snap is not None and "an@example.vn" not in str(snap.state)


@pytest.mark.pg
async def test_a_store_inside_a_transaction_caches_nothing(pg_store) -> None:
    async with pg_store.pool.acquire() as conn, conn.transaction():
        bound = pg_store.using(conn)
        assert bound.states is None
        await execute(bound, "s", every3, lambda n: [Counted(n=n + 1)])
    assert len(pg_store.states) == 0


def count_reads(store) -> list[str]:
    """Record each read_stream of the store (the round trips a command makes before its append)."""
    reads: list[str] = []
    original = store.read_stream

    async def read_stream(stream_id: str, **kw):
        reads.append(stream_id)
        return await original(stream_id, **kw)

    store.read_stream = read_stream
    return reads


async def test_a_command_on_a_cached_state_appends_without_reading(store) -> None:
    await bump(store)
    reads = count_reads(store)
    for _ in range(3):
        await bump(store)
    assert reads == []  # the append's version check proved the cached state was the latest
    assert (await load(store, "s", every3)).state == 4


async def test_a_cached_state_that_refuses_is_read_again_before_the_refusal(store) -> None:
    await bump(store)  # cached: one event counted
    await store.append("s", [NewEvent(Counted(n=5))], expected_version=1)  # another process: two

    def at_least_two(n: int) -> list[Counted]:
        if n < 2:
            raise RuleError("too_few", f"only {n}")
        return [Counted(n=n + 1)]

    result = await execute(store, "s", every3, at_least_two)
    assert (result.version, result.state) == (3, 3)
    with pytest.raises(RuleError, match="only 0"):  # a refusal on a state read from the store stands
        await execute(store, "t", every3, at_least_two)


async def test_the_check_runs_on_the_state_the_append_is_proven_against(store) -> None:
    await bump(store)
    await store.append("s", [NewEvent(Counted(n=7))], expected_version=1)  # the cache still says 1
    seen: list[tuple[int, int]] = []
    result = await execute(
        store, "s", every3, lambda n: [Counted(n=n + 1)], check=lambda n, version: seen.append((n, version))
    )
    assert seen == [(1, 1), (2, 2)]  # the cached state lost the race; the check ran again on the latest
    assert result.version == 3


async def test_an_expected_version_is_checked_against_the_store_not_the_cache(store) -> None:
    await bump(store)
    await store.append("s", [NewEvent(Counted(n=4))], expected_version=1)  # the cache still says 1
    result = await execute(store, "s", every3, lambda n: [Counted(n=n + 1)], expected_version=2)
    assert (result.version, result.state) == (3, 3)
    with pytest.raises(ConcurrencyError):
        await execute(store, "s", every3, lambda n: [Counted(n=n + 1)], expected_version=2)
