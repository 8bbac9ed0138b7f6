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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter

from shared.core.decider import Decider, RefusedError
from shared.core.events import DomainEvent
from shared.store import (
    AppendResult,
    ConcurrencyError,
    EventStore,
    Idempotency,
    NewEvent,
    RecordedEvent,
    Snapshot,
    new_event_id,
)

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
    reason: str | None = None
    derive_ids_from: str | None = None  # reactions: the causing event's id

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"actor": self.actor, "correlation_id": self.correlation_id}
        if self.causation_id:
            meta["causation_id"] = self.causation_id
        if self.reason:
            meta["reason"] = self.reason
        return meta

    def options(self, now: datetime) -> dict[str, Any]:
        """The keyword arguments of ``execute`` for this context."""
        seed = self.derive_ids_from
        return {
            "expected_version": self.expected_version,
            "idempotency": self.idempotency,
            "occurred_at": self.occurred_at or now,
            "metadata": self.metadata(),
            "event_ids": (lambda i: uuid.uuid5(NS_REACTION_EVENTS, f"{seed}:{i}")) if seed else None,
        }

    @classmethod
    def reacting_to(cls, envelope: Any, actor: str) -> Context:
        """The context of a reaction to another service's event (a ``CloudEvent``)."""
        return cls(
            actor=actor, correlation_id=envelope.correlationid, causation_id=envelope.id, derive_ids_from=envelope.id
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
) -> CommandResult[S]:
    """Run one command against one stream. ``event_ids(i)`` derives ids (idempotent reactions).

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
            result = await store.append(stream_id, new, expected_version=loaded.version, idempotency=idempotency)
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


def as_stored(event: DomainEvent) -> DomainEvent:
    """The event as reading it back from the store gives it: its JSON parsed again, personal fields None
    (sealed tokens are not opened for deciding)."""
    data = event.model_dump(mode="json")
    for name in event.personal_fields:
        data[name] = None
    return type(event).model_validate(data)


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
