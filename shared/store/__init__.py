"""The event store contract: append with an expected version, read a stream, tail everything in commit order.

Two implementations pass one contract suite (tests/contract/test_eventstore_contract.py):
``shared.store.memory.InMemoryEventStore`` and ``shared.store.postgres.PostgresEventStore``.

Positions and checkpoints: every event gets a global ``position`` (unique, increasing within a stream). A
position taken from a sequence is not commit order, so tailing readers (the relay, catch-up readers) do not
tail by position: they tail by ``Checkpoint`` = (transaction id, position) and only see events whose
transaction id is below that of every transaction still running, so it has ended and no running transaction can
still write an event that sorts before it (docs/decisions/0002).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
import uuid
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple, Protocol

from shared.core.events import DomainEvent
from shared.privacy.pii import parse_stored
from shared.store.wire import EventTooLargeError

__all__ = ["EventTooLargeError"]  # raised by append; defined beside the wire format it protects


class Checkpoint(NamedTuple):
    """Where a tailing reader is: the last (transaction id, position) it has read."""

    tx: int
    position: int


START = Checkpoint(0, 0)
NO_STREAM = 0  # expected version of a stream that must not exist yet


class EventStoreError(Exception):
    pass


class ConcurrencyError(EventStoreError):
    """The stream is not at the expected version: someone else appended first. Nothing was written."""

    def __init__(self, stream_id: str, expected: int, actual: int | None = None) -> None:
        detail = f", it is at {actual}" if actual is not None else ""
        super().__init__(f"stream {stream_id} was expected at version {expected}{detail}")
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class StaleTransactionError(EventStoreError):
    """The appending transaction is older (its id was assigned earlier) than the one that wrote the stream's last
    event: its event would sort before that one in commit order (the tailing readers' order) though it follows it.
    Nothing was written; the transaction must end and the append be tried again in a new one (a projection runner
    reads the batch again). Only a transaction that wrote something else first can meet it: a reaction batch."""

    def __init__(self, stream_id: str) -> None:
        super().__init__(f"stream {stream_id} was written by a younger transaction: append it in a new one")
        self.stream_id = stream_id


class DuplicateEventError(EventStoreError):
    """An event with this id is stored already: the append it belongs to happened before. Nothing was written."""

    def __init__(self, stream_id: str) -> None:
        super().__init__(f"an event appended to {stream_id} has an id already stored")
        self.stream_id = stream_id


class OutOfTimeOrderError(EventStoreError):
    """An append asked to keep time order (a back-dated command: ``in_time_order``) has an event that would occur
    before the one it follows in its stream: the stream's last event, or the one before it in the same append.
    Nothing was written (decision 0021)."""

    def __init__(self, stream_id: str, occurred_at: datetime, previous: datetime) -> None:
        super().__init__(
            f"an event of {stream_id} cannot occur at {occurred_at.isoformat()}, before the event it follows "
            f"(which occurred at {previous.isoformat()})"
        )
        self.stream_id = stream_id
        self.occurred_at = occurred_at
        self.previous = previous


# How an append keeps its stream's events in occurred-time order (decision 0021): None, not checked (a command at
# the clock's now: replicas' clocks differ by milliseconds); "refuse" (a back-dated command): an event occurring
# before the one it follows raises OutOfTimeOrderError; "clamp" (a reaction, occurring when its cause did): an
# event occurring before the stream's last one occurs when that one did.
TimeOrder = Literal["refuse", "clamp"] | None


def in_time_order(
    stream_id: str, previous: datetime | None, events: Sequence[NewEvent], now: datetime, order: TimeOrder
) -> list[NewEvent]:
    """The events as appended after an event that occurred at ``previous`` (None: a new stream): refused or
    clamped by ``order``; an event without its time occurs ``now``."""
    if order is None:
        return list(events)
    kept = []
    for new in events:
        at = new.occurred_at or now
        if previous is not None and at < previous:
            if order == "refuse":
                raise OutOfTimeOrderError(stream_id, at, previous)
            at = previous
        kept.append(dataclasses.replace(new, occurred_at=at))
        previous = at
    return kept


class IdempotencyKeyReusedError(EventStoreError):
    """An idempotency key was sent again with a different request."""

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r} was already used for a different request")
        self.key = key


def new_event_id() -> uuid.UUID:
    """A UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then random bits. Ids made one after another
    sort together, so the events table's unique index on them grows at its right edge instead of touching a
    random page of a large index for every append."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 9562 variant
    return uuid.UUID(int=value)


@dataclass(frozen=True)
class NewEvent:
    """An event to append, with what the store cannot know: when it happened, its id, its causes."""

    event: DomainEvent
    occurred_at: datetime | None = None  # None: the time it is recorded
    event_id: uuid.UUID = field(default_factory=new_event_id)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    # the event's ``model_dump(mode="json")`` when its maker had it already (an imported row's facts: decided and
    # folded as stored from it), so sealing does not dump it again; personal fields still in plaintext here
    data: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class NewStream:
    """A stream to create (``EventStore.create_streams``): its id and its first events."""

    stream_id: str
    events: Sequence[NewEvent]


@dataclass(frozen=True)
class RecordedEvent:
    stream_id: str
    version: int
    position: int
    event_id: uuid.UUID
    event_type: str
    schema_version: int
    data: dict[str, Any]  # as stored: personal fields are sealed tokens
    metadata: dict[str, Any]
    occurred_at: datetime
    recorded_at: datetime
    checkpoint: Checkpoint

    @property
    def correlation_id(self) -> str:
        return str(self.metadata.get("correlation_id") or self.event_id)

    @property
    def causation_id(self) -> str:
        return str(self.metadata.get("causation_id") or self.event_id)

    def to_event(self) -> DomainEvent:
        """The typed event, upcast to the current schema, personal fields unopened (None).

        Readers allowed to see personal data open ``data`` with ``shared.privacy.pii.PersonalData.open`` and parse that.
        """
        return parse_stored(self.event_type, self.schema_version, self.data)


@dataclass(frozen=True)
class AppendResult:
    stream_id: str
    version: int  # the stream's version after the append
    position: int  # the global position of the last event appended (or of the stream's last event)
    event_ids: tuple[uuid.UUID, ...] = ()
    replayed: bool = False  # True when an idempotency key returned an earlier result

    def to_json(self) -> dict[str, Any]:
        return {
            "stream_id": self.stream_id,
            "version": self.version,
            "position": self.position,
            "event_ids": [str(e) for e in self.event_ids],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, replayed: bool = True) -> AppendResult:
        return cls(
            stream_id=data["stream_id"],
            version=data["version"],
            position=data["position"],
            event_ids=tuple(uuid.UUID(e) for e in data["event_ids"]),
            replayed=replayed,
        )


@dataclass(frozen=True)
class Idempotency:
    """A client's idempotency key, scoped (e.g. by caller and endpoint), and a fingerprint of its request."""

    key: str
    fingerprint: str

    @classmethod
    def of(cls, scope: str, key: str, request: Any) -> Idempotency:
        body = json.dumps(request, sort_keys=True, default=str).encode()
        return cls(key=f"{scope}:{key}", fingerprint=hashlib.sha256(body).hexdigest())


@dataclass(frozen=True)
class Snapshot:
    """A stream's state folded up to ``version``, as JSON; ``schema_version`` is its decider's snapshot version."""

    version: int
    schema_version: int
    state: Any  # JSON


class StateCache:
    """The latest states this process folded, by (stream, decider): a command reads only the events after them.

    Safe because a stream is append-only: a state folded from versions 1..v stays the fold of 1..v, and the
    events after v are read before deciding. Only states of committed events go in (a store working inside a
    caller's transaction has no cache). Least recently used entries go first.
    """

    def __init__(self, max_entries: int = 5000) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, tuple[Any, int, int]] = OrderedDict()

    def get(self, key: Hashable) -> tuple[Any, int, int] | None:
        """(state, version, version of the last snapshot written) or None."""
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def put(self, key: Hashable, state: Any, version: int, snapshot_version: int) -> None:
        self._entries[key] = (state, version, snapshot_version)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def drop(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)


class EventStore(Protocol):
    states: StateCache | None  # None when the store works inside a caller's transaction

    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int,
        idempotency: Idempotency | None = None,
        time_order: TimeOrder = None,
    ) -> AppendResult:
        """Append after ``expected_version`` (NO_STREAM for a new stream) or raise ConcurrencyError.

        ``time_order`` ("refuse": a back-dated command's append): an event occurring before the one it follows (the
        stream's last, or the previous one appended with it) raises ``OutOfTimeOrderError`` and nothing is
        appended; ("clamp": a reaction's) it occurs when the one it follows did.

        With ``idempotency``: a key seen before returns its first result and appends nothing. An event that would be
        a Kafka record over the store's ``max_event_bytes`` raises ``EventTooLargeError`` and nothing is appended.
        """
        ...

    async def read_stream(
        self,
        stream_id: str,
        *,
        to_version: int | None = None,
        as_of: datetime | None = None,
        after_version: int = 0,
    ) -> list[RecordedEvent]:
        """The stream's events in order, after a version, up to a version and/or as recorded by a time."""
        ...

    async def write_snapshot(self, stream_id: str, snapshot: Snapshot) -> None:
        """Keep a snapshot unless a later one of the same schema version is stored."""
        ...

    async def read_from_snapshot(
        self, stream_id: str, schema_version: int
    ) -> tuple[Snapshot | None, list[RecordedEvent]]:
        """In one read: the stream's snapshot if it is of ``schema_version``, and the events after it (all of the
        stream's events when there is none)."""
        ...

    async def read_all(self, after: Checkpoint = START, *, limit: int = 500) -> list[RecordedEvent]:
        """Committed events after a checkpoint, in commit-safe order; an event committing late is never skipped."""
        ...

    async def read_streams(self, prefix: str) -> list[RecordedEvent]:
        """Every committed event of the streams whose id starts with ``prefix``, by stream and version: what a
        command deciding over many streams reads (not ``read_all``, which hides what committed after an older
        transaction still open, for tailing readers)."""
        ...

    async def stream_version(self, stream_id: str) -> int: ...

    async def stream_versions(self, stream_ids: Sequence[str]) -> dict[str, int]:
        """The version of each of these streams (0: no events), in one read (an import batch's rows)."""
        ...

    async def create_streams(self, streams: Sequence[NewStream]) -> list[AppendResult | None]:
        """Many new streams, each appended at expected version ``NO_STREAM``, in one write (one statement on
        PostgreSQL, one transaction): per stream its result, or None when the stream has events already (written
        before, or by another writer meanwhile): nothing of it is appended, never a part. The others are written
        whatever happens to that one. Their personal data is sealed together (one key store round trip for all the
        subjects). Events are not time-ordered here: the caller decided them in order (``execute_new``)."""
        ...

    async def locate(self, position: int) -> tuple[str, int] | None:
        """The (stream id, version) of the event at a global position."""
        ...

    async def idempotent_result(self, idempotency: Idempotency) -> AppendResult | None:
        """The first result of a key already used with this request; raises if used with another."""
        ...
