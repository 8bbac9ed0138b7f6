"""Back-dated commands in the kernel (decision 0021, issue 26 item 1): ``Context.options`` refuses a time in the
future (422) and one further back than the caller's limit (403); ``execute`` refuses a back-dated fact before the
event it follows in its stream (422 naming that event's time), never a command at the clock's now; a reaction
occurs when its cause did, clamped to its stream's last event and to now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from shared.core.decider import ForbiddenError, InvalidError
from shared.ops.settings import Settings
from shared.store import NewEvent
from shared.store.commands import Context, execute
from shared.store.memory import InMemoryEventStore
from testkit.events import Counted, counter

NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


def inc(n: int) -> list[Counted]:
    return [Counted(n=n + 1)]


async def occurred(store: InMemoryEventStore, stream: str = "c") -> list[datetime]:
    return [e.occurred_at for e in await store.read_stream(stream)]


def test_a_time_in_the_future_or_beyond_the_callers_limit_is_refused() -> None:
    with pytest.raises(InvalidError) as future:
        Context("u-lan", occurred_at=NOW + timedelta(seconds=1)).options(NOW)
    assert future.value.rule == "occurred_in_future"
    limited = Context("u-lan", occurred_at=NOW - timedelta(days=8), backdate_limit_days=7)
    with pytest.raises(ForbiddenError) as beyond:
        limited.options(NOW)
    assert beyond.value.rule == "backdate_limit"
    assert "7 days" in beyond.value.message and "PIPELINES_BACKDATE_LIMIT_DAYS" in beyond.value.message
    within = Context("u-lan", occurred_at=NOW - timedelta(days=6), backdate_limit_days=7).options(NOW)
    assert (within["occurred_at"], within["time_order"]) == (NOW - timedelta(days=6), "refuse")
    unlimited = Context("u-import", occurred_at=NOW - timedelta(days=3650)).options(NOW)  # admin, importer
    assert unlimited["occurred_at"] == NOW - timedelta(days=3650)
    plain = Context("u-lan", backdate_limit_days=7).options(NOW)
    assert (plain["occurred_at"], plain["time_order"]) == (NOW, None)


async def test_a_back_dated_fact_cannot_occur_before_the_event_it_follows() -> None:
    store = InMemoryEventStore()
    await execute(store, "c", counter, inc, **Context("u", occurred_at=NOW - timedelta(days=2)).options(NOW))
    with pytest.raises(InvalidError) as refused:
        await execute(store, "c", counter, inc, **Context("u", occurred_at=NOW - timedelta(days=3)).options(NOW))
    assert refused.value.rule == "before_previous_event"
    assert (NOW - timedelta(days=2)).isoformat() in refused.value.message, "it names the previous event's time"
    await execute(store, "c", counter, inc, **Context("u", occurred_at=NOW - timedelta(days=2)).options(NOW))
    await execute(store, "c", counter, inc, **Context("u").options(NOW))
    assert await occurred(store) == [NOW - timedelta(days=2), NOW - timedelta(days=2), NOW]


async def test_a_command_at_the_clocks_now_is_never_refused_by_another_replicas_clock() -> None:
    """The last event was appended by a replica whose clock runs a few milliseconds ahead of this one's."""
    store = InMemoryEventStore()
    ahead = NOW + timedelta(milliseconds=5)
    await store.append("c", [NewEvent(Counted(n=1), occurred_at=ahead)], expected_version=0)
    result = await execute(store, "c", counter, inc, **Context("u").options(NOW))
    assert result.version == 2
    assert await occurred(store) == [ahead, NOW]


async def test_the_check_holds_against_the_stream_whatever_this_process_cached() -> None:
    """Another replica appended a later event this process's state cache has not seen: the append still refuses."""
    store = InMemoryEventStore()
    await execute(store, "c", counter, inc, **Context("u", occurred_at=NOW - timedelta(days=5)).options(NOW))
    other = InMemoryEventStore.__new__(InMemoryEventStore)
    other.__dict__.update(store.__dict__)
    other.states = None  # another process: no cache, same events
    await execute(other, "c", counter, inc, **Context("u", occurred_at=NOW - timedelta(days=1)).options(NOW))
    with pytest.raises(InvalidError) as refused:
        await execute(store, "c", counter, inc, **Context("u", occurred_at=NOW - timedelta(days=2)).options(NOW))
    assert refused.value.rule == "before_previous_event"
    assert await occurred(store) == [NOW - timedelta(days=5), NOW - timedelta(days=1)]


async def test_a_reaction_occurs_when_its_cause_did_clamped_to_its_stream_and_to_now() -> None:
    store = InMemoryEventStore()
    await execute(store, "c", counter, inc, **Context("u", occurred_at=NOW - timedelta(days=10)).options(NOW))

    def cause(at: datetime) -> SimpleNamespace:
        return SimpleNamespace(correlationid="corr", id=f"ev-{at.isoformat()}", time=at)

    year_ago = NOW - timedelta(days=365)  # an imported fact's reaction: before the stream's last event
    for at in (NOW - timedelta(days=3), year_ago, NOW + timedelta(seconds=2)):
        ctx = Context.reacting_to(cause(at), "reactions")
        assert not ctx.backdated
        await execute(store, "c", counter, inc, **ctx.options(NOW))
    assert await occurred(store) == [
        NOW - timedelta(days=10),
        NOW - timedelta(days=3),  # when its cause occurred
        NOW - timedelta(days=3),  # not before the event it follows: clamped, not refused
        NOW,  # never in the future: a cause stamped by a clock ahead of this one's
    ]


def test_the_limit_is_a_setting_of_seven_days_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIPELINES_BACKDATE_LIMIT_DAYS", raising=False)
    assert Settings(_env_file=None).backdate_limit_days == 7
    monkeypatch.setenv("PIPELINES_BACKDATE_LIMIT_DAYS", "30")
    assert Settings(_env_file=None).backdate_limit_days == 30
    monkeypatch.setenv("PIPELINES_BACKDATE_LIMIT_DAYS", "-1")
    with pytest.raises(ValueError, match="backdate_limit_days"):
        Settings(_env_file=None)
