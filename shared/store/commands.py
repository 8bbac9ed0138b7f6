"""Commands: load a stream → fold its events into state → decide → append with the expected version.

A service describes an aggregate as a ``Decider``: an initial state and a pure ``evolve(state, event)``.
``execute`` runs one decision, a pure function of the state (the caller closes over the command, the clock's
``now`` and any ids), and appends what it returns:

- with ``expected_version`` (an HTTP ``If-Match``): a stream at another version raises ConcurrencyError and
  nothing is decided;
- without it, the decision is made on the latest state and retried when another writer wins the race;
- with ``idempotency``, a repeated command returns its first result and appends nothing.

A command does not fold its whole stream each time (docs/decisions/0009):

- the store's ``StateCache`` keeps the state this process folded or appended last; a command decides on it
  without reading and appends with its version, so the store's version check proves it was the latest. Only
  when that check fails, or the cached state refuses the command, are the events after it read and the
  command decided again;
- a decider with ``snapshot_every`` keeps a snapshot of its state in the store each time that many events
  have been folded past the last one, so a process that has not seen a stream (a new replica, a restart)
  reads the snapshot and the events after it. ``snapshot_version`` is bumped whenever the state's shape or
  ``evolve`` changes: snapshots of another version are ignored and rewritten.

``load`` (history, audits, ``as_of``) always folds every event from the start.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter

from shared.core.decider import Decider, ForbiddenError, InvalidError, RefusedError
from shared.core.events import DomainEvent
from shared.ops import tracing
from shared.store import (
    AppendResult,
    ConcurrencyError,
    EventStore,
    Idempotency,
    NewEvent,
    NewStream,
    OutOfTimeOrderError,
    RecordedEvent,
    Snapshot,
    TimeOrder,
    new_event_id,
)
from shared.store.new_streams import NewStreams

S = TypeVar("S")
# Events a reaction appends get ids derived from the event that caused it: running it twice appends nothing.
NS_REACTION_EVENTS = uuid.UUID("6f1f3c8e-2f4e-5b7a-9d0c-1a2b3c4d5e03")


@dataclass(frozen=True)
class Context:
    """Who asks, why, and under which conditions: from an HTTP request, or from the event a reaction handles."""

    actor: str
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    causation_id: str | None = None
    expected_version: int | None = None
    idempotency: Idempotency | None = None
    occurred_at: datetime | None = None  # back-dated business time; None: the clock's now
    # how far back ``occurred_at`` may be (the edge's PIPELINES_BACKDATE_LIMIT_DAYS for a caller neither admin nor
    # importer); None: no limit (admin, importer, reactions, tools)
    backdate_limit_days: int | None = None
    # a reaction's fact occurs when its cause did (``occurred_at``), but never after the clock's now nor before its
    # stream's last event: clamped, never refused (decision 0021)
    clamped: bool = False
    reason: str | None = None
    derive_ids_from: str | None = None  # reactions: the causing event's id
    # reactions: the causing event's trace context, what its events carry when no span is current (decision 0027)
    trace: Mapping[str, str] | None = None

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"actor": self.actor, "correlation_id": self.correlation_id}
        if self.causation_id:
            meta["causation_id"] = self.causation_id
        if self.reason:
            meta["reason"] = self.reason
        if trace := tracing.carrier(self.trace):  # the current span's, when tracing is on (decision 0027)
            meta.update(trace)
        return meta

    def at(self, now: datetime) -> datetime:
        """When the command's fact occurs: its back-dated time, else ``now``; what "in the past" checks compare with."""
        if self.occurred_at is None:
            return now
        return min(self.occurred_at, now) if self.clamped else self.occurred_at

    @property
    def backdated(self) -> bool:
        """A command (not a reaction) whose fact occurred at a time it names."""
        return self.occurred_at is not None and not self.clamped

    def check_time(self, now: datetime) -> None:
        """A back-dated command's time against the service's clock (decision 0021): never in the future (422
        ``occurred_in_future``), never further back than the caller's limit (403 ``backdate_limit``)."""
        at = self.occurred_at
        if at is None or self.clamped:
            return
        if at > now:
            raise InvalidError(
                "occurred_in_future", f"a fact cannot be back-dated into the future: {at.isoformat()} is after now"
            )
        limit = self.backdate_limit_days
        if limit is not None and now - at > timedelta(days=limit):
            raise ForbiddenError(
                f"back-dating further than {limit} days (PIPELINES_BACKDATE_LIMIT_DAYS) needs the admin or the "
                f"importer role: {at.isoformat()} is {(now - at).days} days back",
                rule="backdate_limit",
            )

    def options(self, now: datetime) -> dict[str, Any]:
        """The keyword arguments of ``execute`` for this context; refuses a back-dated time ``check_time`` refuses.
        A back-dated command's append refuses an event before its stream's last, a reaction's clamps it
        (``execute``'s ``time_order``)."""
        self.check_time(now)
        seed = self.derive_ids_from
        return {
            "expected_version": self.expected_version,
            "idempotency": self.idempotency,
            "occurred_at": self.at(now),
            "time_order": None if self.occurred_at is None else "clamp" if self.clamped else "refuse",
            "metadata": self.metadata(),
            "event_ids": (lambda i: uuid.uuid5(NS_REACTION_EVENTS, f"{seed}:{i}")) if seed else None,
        }

    @classmethod
    def reacting_to(cls, envelope: Any, actor: str) -> Context:
        """The context of a reaction to another service's event (a ``CloudEvent``)."""
        return cls(
            actor=actor,
            correlation_id=envelope.correlationid,
            causation_id=envelope.id,
            derive_ids_from=envelope.id,
            occurred_at=envelope.time,  # when its cause occurred (an imported fact's reaction: then, not today)
            clamped=True,
            trace={k: v for k in tracing.ATTRIBUTES if (v := getattr(envelope, k, None))} or None,
        )


MAX_ATTEMPTS = 12  # a lost race is retried, with a short random back-off, this many times
_ADAPTERS: dict[type, TypeAdapter[Any]] = {}


def _adapter(decider: Decider[S]) -> TypeAdapter[S]:
    kind = type(decider.initial)
    if kind not in _ADAPTERS:
        _ADAPTERS[kind] = TypeAdapter(kind)
    return _ADAPTERS[kind]


def to_snapshot(decider: Decider[S], state: S, version: int) -> Snapshot:
    return Snapshot(version, decider.snapshot_version, _adapter(decider).dump_python(state, mode="json"))


def from_snapshot(decider: Decider[S], snapshot: Snapshot) -> S:
    return _adapter(decider).validate_python(snapshot.state)


@dataclass(frozen=True)
class Loaded(Generic[S]):
    state: S
    version: int
    events: list[RecordedEvent]


async def load(store: EventStore, stream_id: str, decider: Decider[S], **read: Any) -> Loaded[S]:
    """The stream folded into state; ``to_version=`` / ``as_of=`` give its state at a version or a time."""
    recorded = await store.read_stream(stream_id, **read)
    state = decider.fold([r.to_event() for r in recorded])
    return Loaded(state, recorded[-1].version if recorded else 0, recorded)


@dataclass(frozen=True)
class Current(Generic[S]):
    state: S
    version: int
    snapshot_at: int  # the version of the stream's latest snapshot known here (0: none)
    read: bool = True  # the store was read for it just now (False: this process's cache, unchecked)


async def current(store: EventStore, stream_id: str, decider: Decider[S], *, read: bool = True) -> Current[S]:
    """The stream's latest state, for deciding: from this process's cache or the stream's snapshot, plus the
    events after it. Writes a snapshot when it folded ``snapshot_every`` events or more past the last one.

    ``read=False``: a cached state is returned without asking the store whether events came after it — for a
    decision whose append carries that version (``execute``), or facts of a stream that never change."""
    cache, key = store.states, (stream_id, id(decider))
    hit = cache.get(key) if cache is not None else None
    if hit is not None and not read:
        return Current(*hit, read=False)
    state, version, snapshot_at = hit if hit is not None else (decider.initial, 0, 0)
    if hit is None and decider.snapshot_every:
        snap, recorded = await store.read_from_snapshot(stream_id, decider.snapshot_version)
        if snap is not None:
            state, version, snapshot_at = from_snapshot(decider, snap), snap.version, snap.version
    else:
        recorded = await store.read_stream(stream_id, after_version=version)
    if recorded:
        state = decider.fold([r.to_event() for r in recorded], state)
        version = recorded[-1].version
        # Only states folded here from committed events are snapshotted (a store with a cache is not inside a
        # caller's transaction), and only after reading: a stale cached state is never written back.
        if cache is not None and decider.snapshot_every and version - snapshot_at >= decider.snapshot_every:
            await store.write_snapshot(stream_id, to_snapshot(decider, state, version))
            snapshot_at = version
    if cache is not None:
        cache.put(key, state, version, snapshot_at)
    return Current(state, version, snapshot_at)


@dataclass(frozen=True)
class CommandResult(Generic[S]):
    append: AppendResult
    state: S  # the state after the command (before it, for a replayed idempotent command)
    events: tuple[DomainEvent, ...]

    @property
    def version(self) -> int:
        return self.append.version

    @property
    def position(self) -> int:
        return self.append.position


async def execute(
    store: EventStore,
    stream_id: str,
    decider: Decider[S],
    decide: Callable[[S], Sequence[DomainEvent]],
    *,
    expected_version: int | None = None,
    idempotency: Idempotency | None = None,
    occurred_at: datetime | None = None,
    metadata: Mapping[str, Any] | None = None,
    event_ids: Callable[[int], uuid.UUID] | None = None,
    check: Callable[[S, int], None] | None = None,
    time_order: TimeOrder = None,
) -> CommandResult[S]:
    """Run one command against one stream. ``event_ids(i)`` derives ids (idempotent reactions).

    ``time_order`` (decision 0021) "refuse", a back-dated command's: the events may not occur before the one they
    follow in the stream, checked by the store's append (against the stream's true last event, whatever the cache
    held): 422 ``before_previous_event`` naming that event's occurred time; "clamp", a reaction's: they occur no
    earlier than it. A command at the clock's now is not checked (None), so a few milliseconds between two
    replicas' clocks never refuse one.

    ``check(state, version)`` runs before ``decide`` on every attempt (e.g. the caller's rights on the stream),
    so it holds for the state the append is proven against. The first attempt decides on this process's cached
    state without reading (one round trip: the append, whose version check proves the state was the latest);
    a lost race, or a refusal by ``check`` or ``decide`` of a cached state, reads the events after it and
    decides again, so nothing is refused on a state that was not the latest."""
    if idempotency and (first := await store.idempotent_result(idempotency)):
        earlier = await load(store, stream_id, decider, to_version=first.version)
        return CommandResult(first, earlier.state, ())
    read = False
    for attempt in range(1, MAX_ATTEMPTS + 1):
        loaded = await current(store, stream_id, decider, read=read)
        read = True
        try:
            if expected_version is not None and loaded.version != expected_version:
                raise ConcurrencyError(stream_id, expected_version, loaded.version)
            if check is not None:
                check(loaded.state, loaded.version)
            events = list(decide(loaded.state))
        except (RefusedError, ConcurrencyError):
            if loaded.read:
                raise
            continue  # refused on a cached state: read what came after it, decide again
        new = [
            NewEvent(
                e,
                occurred_at=occurred_at,
                event_id=event_ids(i) if event_ids else new_event_id(),
                metadata=dict(metadata or {}),
            )
            for i, e in enumerate(events)
        ]
        try:
            result = await store.append(
                stream_id, new, expected_version=loaded.version, idempotency=idempotency, time_order=time_order
            )
        except OutOfTimeOrderError as exc:
            raise InvalidError(
                "before_previous_event",
                f"the fact cannot occur at {exc.occurred_at.isoformat()}: the event it follows in its stream "
                f"occurred at {exc.previous.isoformat()}",
            ) from None
        except ConcurrencyError:
            if not loaded.read:
                continue  # the cached state was not the latest: read the events after it
            if store.states is not None:  # the cached state may be from a store restored to an earlier point
                store.states.drop((stream_id, id(decider)))
            if expected_version is not None or attempt == MAX_ATTEMPTS:
                raise
            await asyncio.sleep(random.uniform(0, 0.002 * attempt))
            continue
        if result.replayed:
            replay = await load(store, stream_id, decider, to_version=result.version)
            return CommandResult(result, replay.state, ())
        if store.states is not None and events:
            await _remember(store, stream_id, decider, loaded, events, result.version)
        return CommandResult(result, decider.fold(events, loaded.state), tuple(events))
    raise AssertionError("unreachable")


def as_stored(event: DomainEvent, data: Mapping[str, Any] | None = None) -> DomainEvent:
    """The event as reading it back from the store gives it: its JSON parsed again, personal fields None
    (sealed tokens are not opened for deciding). ``data``: its ``model_dump(mode="json")`` already made."""
    stored = dict(event.model_dump(mode="json") if data is None else data)
    for name in event.personal_fields:
        stored[name] = None
    return type(event).model_validate(stored)


async def _remember(
    store: EventStore, stream_id: str, decider: Decider[S], before: Current[S], events: list[DomainEvent], version: int
) -> None:
    """Cache the state after an append: folded from the events as stored, so neither the cache nor a snapshot
    holds personal data or differs from a replay; a snapshot when ``snapshot_every`` events have passed."""
    assert store.states is not None
    state = decider.fold([as_stored(e) for e in events], before.state)
    snapshot_at = before.snapshot_at
    if decider.snapshot_every and version - snapshot_at >= decider.snapshot_every:
        await store.write_snapshot(stream_id, to_snapshot(decider, state, version))
        snapshot_at = version
    store.states.put((stream_id, id(decider)), state, version, snapshot_at)


# ------------------------------------------------------------------ a new stream's facts, in one append
@dataclass(frozen=True)
class Step(Generic[S]):
    """One fact of a new stream (an imported row's): when it occurred, and the decision it makes on the state
    folded from the facts before it."""

    occurred_at: datetime
    decide: Callable[[S], Sequence[DomainEvent]]


class StepRefusedError(Exception):
    """Step ``index`` of a new stream's facts was refused (``cause``): nothing was appended."""

    def __init__(self, index: int, cause: RefusedError) -> None:
        super().__init__(f"fact {index}: {cause.message}")
        self.index = index
        self.cause = cause


@dataclass(frozen=True)
class Created(Generic[S]):
    state: S  # after every step
    events: tuple[DomainEvent, ...]
    append: AppendResult | None  # None: a dry run, nothing appended


async def execute_new(
    store: EventStore,
    stream_id: str,
    decider: Decider[S],
    steps: Sequence[Step[S]],
    *,
    metadata: Mapping[str, Any] | None = None,
    dry_run: bool = False,
    checks: Callable[[], Awaitable[None]] | None = None,
) -> Created[S] | None:
    """Create a stream from a sequence of facts, each decided on the state the ones before it made and recorded
    with its own occurred time, all in one append (all or nothing; issue 26's import of a row's history). A fact
    occurring before the one it follows is refused (``occurred_out_of_order``), as a back-dated command before its
    stream's last event is. None: the stream has events already (an earlier import, or another writer first):
    nothing is appended. ``dry_run``: decided, not appended. ``checks()`` (what the facts name: references) runs
    once the stream is known to be new: a row imported before answers as such whatever changed since.

    Inside ``NewStreams.rows`` (an import batch's rows, run concurrently) the "exists" read and the append are
    those of every row of the batch together: one read, one write (``EventStore.create_streams``)."""
    batch = NewStreams.serving(store)
    if batch is not None:
        if await batch.version(stream_id):
            return None
        there: Current[S] = Current(decider.initial, 0, 0)
    else:
        there = await current(store, stream_id, decider)
        if there.version:
            return None
    if checks is not None:
        await checks()
    state, events, new = _decide_steps(decider, there.state, steps, dict(metadata or {}))
    if dry_run or not new:
        return Created(state, tuple(events), None)
    if batch is not None:
        made = await batch.create(NewStream(stream_id, new))
        if made is None:
            return None  # created meanwhile by another writer (or another row of the batch): what it made stays
        result = made
    else:
        try:
            result = await store.append(stream_id, new, expected_version=there.version)
        except ConcurrencyError:
            return None  # another writer created it meanwhile: what it made stays
    if store.states is not None:  # the state folded from the events as stored: as _remember would
        snapshot_at = 0
        if decider.snapshot_every and result.version >= decider.snapshot_every:
            await store.write_snapshot(stream_id, to_snapshot(decider, state, result.version))
            snapshot_at = result.version
        store.states.put((stream_id, id(decider)), state, result.version, snapshot_at)
    return Created(state, tuple(events), result)


def _decide_steps(
    decider: Decider[S], state: S, steps: Sequence[Step[S]], meta: dict[str, Any]
) -> tuple[S, list[DomainEvent], list[NewEvent]]:
    """Each step decided on the state the ones before it made (folded as stored), each event at its step's time;
    ``meta`` one mapping for all of them (the store converts it once). Each event is dumped to JSON once: folded as
    stored from that, and the store seals that (``NewEvent.data``)."""
    events, new = list[DomainEvent](), list[NewEvent]()
    previous: datetime | None = None
    for i, step in enumerate(steps):
        try:
            if previous is not None and step.occurred_at < previous:
                raise InvalidError("occurred_out_of_order", f"it occurred before the fact it follows ({previous})")
            decided = list(step.decide(state))
        except RefusedError as refused:
            raise StepRefusedError(i, refused) from None
        previous = step.occurred_at
        dumped = [e.model_dump(mode="json") for e in decided]
        state = decider.fold([as_stored(e, d) for e, d in zip(decided, dumped, strict=True)], state)
        events.extend(decided)
        new.extend(
            NewEvent(e, occurred_at=step.occurred_at, metadata=meta, data=d)
            for e, d in zip(decided, dumped, strict=True)
        )
    return state, events, new
