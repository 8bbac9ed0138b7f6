"""One contract, two stores: the in-memory store is trusted because it passes the same tests as PostgreSQL's."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from shared.privacy.pii import is_token
from shared.store import (
    NO_STREAM,
    START,
    ConcurrencyError,
    DuplicateEventError,
    Idempotency,
    IdempotencyKeyReusedError,
    NewEvent,
    NewStream,
    OutOfTimeOrderError,
)
from shared.store.memory import InMemoryEventStore
from testkit.events import ContactRecorded, Counted, ThingCreated, ThingRenamed
from testkit.waiting import wait_until


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.pg)])
def store(request: pytest.FixtureRequest):
    if request.param == "memory":
        return InMemoryEventStore()
    return request.getfixturevalue("pg_store")


def counted(*ns: int) -> list[NewEvent]:
    return [NewEvent(Counted(n=n)) for n in ns]


async def test_append_to_a_new_stream_and_read_it_back(store) -> None:
    result = await store.append("thing-1", [NewEvent(ThingCreated(thing_id="1", name="Bàn gỗ"))], expected_version=0)
    assert result.version == 1
    assert result.position >= 1
    (recorded,) = await store.read_stream("thing-1")
    assert recorded.version == 1
    assert recorded.position == result.position
    assert recorded.to_event() == ThingCreated(thing_id="1", name="Bàn gỗ")
    assert recorded.occurred_at.tzinfo is not None
    assert await store.stream_version("thing-1") == 1
    assert await store.stream_version("thing-unknown") == 0


async def test_versions_and_positions_grow(store) -> None:
    a = await store.append("s-a", counted(1, 2, 3), expected_version=NO_STREAM)
    b = await store.append("s-b", counted(1), expected_version=NO_STREAM)
    c = await store.append("s-a", counted(4), expected_version=3)
    assert (a.version, b.version, c.version) == (3, 1, 4)
    assert a.position < b.position < c.position
    assert [e.version for e in await store.read_stream("s-a")] == [1, 2, 3, 4]


async def test_stale_expected_version_is_refused_and_writes_nothing(store) -> None:
    await store.append("s", counted(1, 2), expected_version=0)
    with pytest.raises(ConcurrencyError) as err:
        await store.append("s", counted(99), expected_version=1)
    assert err.value.expected == 1
    with pytest.raises(ConcurrencyError):
        await store.append("s", counted(99), expected_version=0)
    with pytest.raises(ConcurrencyError):  # ahead of the stream: would leave a gap
        await store.append("s", counted(99), expected_version=5)
    assert [e.to_event() for e in await store.read_stream("s")] == [Counted(n=1), Counted(n=2)]


async def test_read_stream_up_to_a_version_or_a_recorded_time(store) -> None:
    await store.append("s", counted(1, 2), expected_version=0)
    await asyncio.sleep(0.01)
    between = datetime.now(UTC)
    await asyncio.sleep(0.01)
    await store.append("s", counted(3), expected_version=2)
    assert [e.version for e in await store.read_stream("s", to_version=1)] == [1]
    assert [e.version for e in await store.read_stream("s", as_of=between)] == [1, 2]
    assert await store.read_stream("s", as_of=between - timedelta(days=1)) == []


async def test_occurred_at_is_kept_apart_from_recorded_at(store) -> None:
    back_dated = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    await store.append("s", [NewEvent(Counted(n=1), occurred_at=back_dated)], expected_version=0)
    (e,) = await store.read_stream("s")
    assert e.occurred_at == back_dated
    assert e.recorded_at > back_dated


async def test_an_append_in_time_order_refuses_an_event_before_the_one_it_follows(store) -> None:
    """Decision 0021: a back-dated command's append ("refuse") cannot occur before the stream's last event, nor
    before the one it follows in the same append; nothing is written. Without the order asked, nothing is checked
    (a command at the clock's now: replicas' clocks may differ by milliseconds)."""
    t = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    await store.append("s", [NewEvent(Counted(n=1), occurred_at=t)], expected_version=0)
    with pytest.raises(OutOfTimeOrderError) as refused:
        await store.append(
            "s", [NewEvent(Counted(n=2), occurred_at=t - timedelta(hours=1))], expected_version=1, time_order="refuse"
        )
    assert (refused.value.previous, refused.value.occurred_at) == (t, t - timedelta(hours=1))
    later = [NewEvent(Counted(n=2), occurred_at=t + timedelta(hours=2)), NewEvent(Counted(n=3), occurred_at=t)]
    with pytest.raises(OutOfTimeOrderError):  # the second occurs before the first of the same append
        await store.append("s", later, expected_version=1, time_order="refuse")
    assert [e.version for e in await store.read_stream("s")] == [1]
    await store.append("s", [NewEvent(Counted(n=2), occurred_at=t)], expected_version=1, time_order="refuse")
    await store.append("s", [NewEvent(Counted(n=3), occurred_at=t - timedelta(days=1))], expected_version=2)
    assert [e.occurred_at for e in await store.read_stream("s")] == [t, t, t - timedelta(days=1)]


async def test_an_append_clamped_in_time_order_occurs_no_earlier_than_the_stream_s_last_event(store) -> None:
    """A reaction's append ("clamp") occurs when its cause did, but never before its stream's last event."""
    t = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    await store.append("s", [NewEvent(Counted(n=1), occurred_at=t)], expected_version=0)
    early = [NewEvent(Counted(n=2), occurred_at=t - timedelta(hours=1))]
    await store.append("s", early, expected_version=1, time_order="clamp")
    late = [NewEvent(Counted(n=3), occurred_at=t + timedelta(hours=1))]
    await store.append("s", late, expected_version=2, time_order="clamp")
    first = [NewEvent(Counted(n=1), occurred_at=t - timedelta(hours=1))]
    await store.append("new", first, expected_version=0, time_order="clamp")
    assert [e.occurred_at for e in await store.read_stream("s")] == [t, t, t + timedelta(hours=1)]
    assert [e.occurred_at for e in await store.read_stream("new")] == [t - timedelta(hours=1)]


async def test_read_all_in_batches_sees_every_event_once(store) -> None:
    for i in range(7):
        await store.append(f"s-{i % 3}", counted(i), expected_version=await store.stream_version(f"s-{i % 3}"))

    async def all_shown() -> bool:  # the tail hides what committed after a transaction open elsewhere on the server
        return len(await store.read_all(START, limit=100)) == 7

    await wait_until(all_shown, timeout=60, interval=0.1)
    seen, checkpoint = [], START
    while batch := await store.read_all(checkpoint, limit=3):
        assert len(batch) <= 3
        seen += batch
        checkpoint = batch[-1].checkpoint
    assert sorted(e.to_event().n for e in seen) == list(range(7))
    assert [e.checkpoint for e in seen] == sorted(e.checkpoint for e in seen)
    for stream in ("s-0", "s-1", "s-2"):
        versions = [e.version for e in seen if e.stream_id == stream]
        assert versions == sorted(versions)


async def test_metadata_carries_correlation_and_causation(store) -> None:
    meta = {"correlation_id": "c-1", "causation_id": "e-0", "actor": "u-7"}
    await store.append("s", [NewEvent(Counted(n=1), metadata=meta)], expected_version=0)
    (e,) = await store.read_stream("s")
    assert (e.correlation_id, e.causation_id, e.metadata["actor"]) == ("c-1", "e-0", "u-7")


async def test_idempotency_key_returns_the_first_result_and_appends_nothing(store) -> None:
    key = Idempotency.of("u-1:POST /things", "k-1", {"n": 1})
    first = await store.append("s", counted(1), expected_version=0, idempotency=key)
    again = await store.append("s", counted(1), expected_version=1, idempotency=key)
    assert (again.version, again.position, again.event_ids) == (first.version, first.position, first.event_ids)
    assert again.replayed
    assert not first.replayed
    assert await store.stream_version("s") == 1
    assert (await store.idempotent_result(key)).position == first.position
    with pytest.raises(IdempotencyKeyReusedError):
        await store.idempotent_result(Idempotency.of("u-1:POST /things", "k-1", {"n": 2}))


async def test_old_schema_versions_are_upcast_on_read(store) -> None:
    class V1(ThingRenamed):  # what the code looked like before: same wire name, version 1, no reason
        schema_version = 1

    old = V1.model_construct(thing_id="1", name="Ghế")
    data = {"thing_id": "1", "name": "Ghế"}
    object.__setattr__(old, "__dict__", data)
    await store.append("thing-1", [NewEvent(old)], expected_version=0)
    (recorded,) = await store.read_stream("thing-1")
    assert recorded.schema_version == 1
    assert recorded.data == data  # stored as written, never rewritten
    assert recorded.to_event() == ThingRenamed(thing_id="1", name="Ghế", reason="(not recorded)")


async def test_personal_fields_are_sealed_and_forgotten_with_the_key(store) -> None:
    event = ContactRecorded(person_id="p-1", email="lan.nguyen@example.vn", full_name="Nguyễn Thị Lan", source="web")
    await store.append("person-p-1", [NewEvent(event)], expected_version=0)
    (recorded,) = await store.read_stream("person-p-1")
    assert is_token(recorded.data["email"])
    assert "lan.nguyen" not in str(recorded.data)
    assert recorded.data["source"] == "web"
    (opened,) = await store.personal_data.open([recorded.data])
    assert opened["email"] == "lan.nguyen@example.vn"
    assert opened["full_name"] == "Nguyễn Thị Lan"

    assert await store.personal_data.keys.erase("p-1", reason="request of 2026-11-24")
    (recorded,) = await store.read_stream("person-p-1")
    (opened,) = await store.personal_data.open([recorded.data])
    assert opened == {**opened, "email": None, "full_name": None, "source": "web"}
    # personal data sent again for an erased subject is not kept
    await store.append("person-p-1", [NewEvent(event)], expected_version=1)
    (_, again) = await store.read_stream("person-p-1")
    assert again.data["email"] is None


async def test_a_position_locates_its_stream_and_version(store) -> None:
    await store.append("a", counted(1, 2), expected_version=0)
    b = await store.append("b", counted(3), expected_version=0)
    assert await store.locate(b.position) == ("b", 1)
    assert await store.locate(10_000) is None


async def test_an_event_id_is_stored_once(store) -> None:
    event = NewEvent(Counted(n=1))
    await store.append("a", [event], expected_version=0)
    with pytest.raises(DuplicateEventError):
        await store.append("a", [event], expected_version=1)
    with pytest.raises(DuplicateEventError):
        await store.append("b", [event], expected_version=0)
    assert await store.stream_version("b") == 0


# ---------------------------------------------------------------------- many new streams at once (issue 26 imports)
async def test_many_new_streams_are_created_in_one_call_and_an_existing_one_is_left_whole(store) -> None:
    await store.append("s-old", counted(1), expected_version=0)
    contact = ContactRecorded(person_id="p-9", email="binh@example.vn", full_name="Trần Bình", source="import")
    streams = [
        NewStream("s-a", counted(1, 2)),
        NewStream("s-old", counted(7, 8)),  # has events: nothing of it written
        NewStream("person-p-9", [NewEvent(contact)]),
        NewStream("s-a", counted(5)),  # named twice: the first stands
    ]
    a, old, person, twice = await store.create_streams(streams)
    assert old is None and twice is None
    assert a is not None and person is not None
    assert (a.stream_id, a.version, person.version) == ("s-a", 2, 1)
    assert a.event_ids == tuple(e.event_id for e in streams[0].events)
    assert [e.to_event() for e in await store.read_stream("s-a")] == [Counted(n=1), Counted(n=2)]
    assert [e.to_event() for e in await store.read_stream("s-old")] == [Counted(n=1)]
    (recorded,) = await store.read_stream("person-p-9")
    assert recorded.position == person.position and is_token(recorded.data["email"])
    assert (await store.personal_data.open([recorded.data]))[0]["full_name"] == "Trần Bình"
    assert await store.stream_versions(["s-a", "s-old", "person-p-9", "s-none"]) == {
        "s-a": 2,
        "s-old": 1,
        "person-p-9": 1,
        "s-none": 0,
    }
    positions = [e.position for s in ("s-old", "s-a", "person-p-9") for e in await store.read_stream(s)]
    assert positions == sorted(positions)  # in the order given


async def test_created_streams_keep_their_occurred_times_and_metadata(store) -> None:
    at = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    meta = {"actor": "u-import", "imported_from": "csv/deal/7"}
    (made,) = await store.create_streams([NewStream("s", [NewEvent(Counted(n=1), occurred_at=at, metadata=meta)])])
    (recorded,) = await store.read_stream("s")
    assert recorded.occurred_at == at and recorded.recorded_at > at
    assert recorded.metadata == meta and made is not None


async def test_creating_streams_with_a_stored_event_id_writes_none_of_them(store) -> None:
    event = NewEvent(Counted(n=1))
    await store.append("a", [event], expected_version=0)
    with pytest.raises(DuplicateEventError):
        await store.create_streams([NewStream("b", counted(1)), NewStream("c", [event])])
    assert await store.stream_versions(["b", "c"]) == {"b": 0, "c": 0}


@pytest.mark.pg
async def test_a_stream_another_writer_creates_meanwhile_is_left_whole_and_the_others_are_written(pg_store) -> None:
    async with pg_store.pool.acquire() as conn:
        other = conn.transaction()
        await other.start()
        await pg_store.using(conn).append("s-race", counted(1), expected_version=0)  # not committed yet
        streams = [NewStream("s-a", counted(1)), NewStream("s-race", counted(7, 8)), NewStream("s-b", counted(2))]
        creating = asyncio.create_task(pg_store.create_streams(streams))
        await asyncio.sleep(0.2)  # it waits on the other writer's (s-race, 1), then finds the stream taken
        await other.commit()
    a, race, b = await creating
    assert race is None and a is not None and b is not None
    assert [e.to_event() for e in await pg_store.read_stream("s-race")] == [Counted(n=1)]  # never its 8 after 1
    assert [e.to_event() for e in await pg_store.read_stream("s-b")] == [Counted(n=2)]
