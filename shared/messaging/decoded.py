"""One decode per record per process (decision 0034): the projections of a process that read one topic share the
decoding and typing of its records.

A projector process runs every projection of its service, each with its own consumer group, so the deals' board,
analytics and hand-overs each read every event of the deals' topic. Each still fetches it (groups, offsets, progress
rows, rebuilds and the swap are the runner's, unchanged), but only the first to reach a record decodes and types it
(``fast_envelope.decode_fact``, for every type any of them takes); the others take what it left in the process's
``Window``, keyed by topic, partition and offset, and checked against the record's bytes (a topic made again under
the same name cannot hand out another record's event).

- **Who waits for it.** A record decoded is left in the window only for the readers still to come to it: those that
  read its partition lately (``FRESH_S``), are not past it and not further back than the window holds. The last
  of them takes it out. Nobody left: not kept, so a projection alone on its topic pays nothing.
- **Bounded.** The window holds at most ``capacity`` records, the oldest going first; a reader that comes to a
  record no longer there decodes it itself, exactly as without a window.
- **Moving together.** In a catch-up (a fresh deployment, rebuilds of several read models) the readers go at their
  own paces, and a fast one soon runs beyond what the window holds. So a reader catching up waits (``pace``) while
  another reader is more than ``lead`` records behind it over the batch's partitions, for at most ``wait_s`` a batch.
  It never waits for a reader that has stopped reading a partition (a gap, a stop, a rebalance) or is too far back
  on it (a rebuild started later), nor for one waiting itself (two readers may each be ahead on another partition);
  a live reader never waits.
- **The collector.** Kept records live from one batch to the next, so a catch-up keeps Python's cyclic collector
  paused between its batches too (``runner._collector_paused``), or young collections would walk them again and
  again.
- **Shared objects.** The readers get the same envelope and event objects, frozen models that no read model
  changes (tests/integration/test_read_model_batches_shared.py applies each service's histories through all its
  projections with and without a window and compares their tables).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from aiokafka import ConsumerRecord, TopicPartition
from pydantic import ValidationError

from shared.messaging.envelope import CloudEvent
from shared.messaging.fast_envelope import Head, decode_fact
from shared.messaging.projections import Fact

FRESH_S = 5.0  # a reader that has not read a partition for this long is not waited for, nor kept for

Record: TypeAlias = ConsumerRecord[bytes, bytes]
# a record as decoded: its envelope (only its head for a type no reader takes), and its typed fact, or the error
# typing it raised, or None for a type this reader does not take (fast_envelope.decode_fact)
Parsed = tuple[Record, CloudEvent | Head, Fact | Exception | None]
Unparsed = tuple[Record, Exception]  # a message that is not a CloudEvent, and why


@dataclass(slots=True)
class _Entry:
    value: bytes | None
    envelope: CloudEvent | Head | None
    fact: Fact | Exception | None  # typed for the union of the readers' types when it was decoded
    error: Exception | None  # not a CloudEvent
    left: int  # readers still to take it


class Window:
    """The records of a process's topics decoded once for all their readers (see the module's docstring)."""

    def __init__(self, *, capacity: int = 30_000, lead: int | None = None, wait_s: float = 2.0) -> None:
        self.capacity = capacity
        self.lead = capacity // 3 if lead is None else lead  # how far a reader catching up may run ahead
        self.wait_s = wait_s
        self._entries: OrderedDict[tuple[str, int, int], _Entry] = OrderedDict()
        self._readers: dict[str, list[Reader]] = {}
        self._union: dict[str, tuple[str, ...]] = {}  # topic → every type prefix its readers take
        self.moved = asyncio.Event()  # set (and replaced) whenever a reader has read on: pacing readers look again
        self.shared = 0  # records a reader took decoded (tests and benches read these)
        self.decoded = 0
        self.waited_s = 0.0

    def __len__(self) -> int:
        return len(self._entries)

    def reader(self, topics: Sequence[str], accepts: tuple[str, ...]) -> Reader:
        """A consumer's reader of its topics (leave it with ``close``)."""
        reader = Reader(self, tuple(topics), accepts)
        for topic in reader.topics:
            self._readers.setdefault(topic, []).append(reader)
        self._unite(reader.topics)
        return reader

    def _leave(self, reader: Reader) -> None:
        for topic in reader.topics:
            readers = self._readers.get(topic, [])
            if reader in readers:
                readers.remove(reader)
            if not readers:
                self._readers.pop(topic, None)
        self._unite(reader.topics)

    def _unite(self, topics: Sequence[str]) -> None:
        for topic in topics:
            prefixes = {p for r in self._readers.get(topic, []) for p in r.accepts}
            self._union[topic] = tuple(sorted(prefixes))

    def _others(self, reader: Reader, topic: str) -> list[Reader]:
        return [r for r in self._readers.get(topic, ()) if r is not reader]


class Reader:
    """One consumer's view of the window: ``decode`` its batches, ``pace`` a catch-up's."""

    def __init__(self, window: Window, topics: tuple[str, ...], accepts: tuple[str, ...]) -> None:
        self.window = window
        self.topics = topics
        self.accepts = accepts
        self.positions: dict[tuple[str, int], tuple[int, float]] = {}  # partition → (next offset, when read)
        self.pacing = False  # waiting in ``pace``: nobody waits for it (two readers each ahead on another partition)

    def close(self) -> None:
        self.window._leave(self)

    def decode(self, records: Sequence[Record]) -> tuple[list[Parsed], list[Unparsed]]:
        """The batch as this reader's projection takes it; what another reader decoded is taken from the window."""
        window, entries, accepts = self.window, self.window._entries, self.accepts
        now = time.monotonic()
        if not window.capacity or (not entries and not any(window._others(self, t) for t in self.topics)):  # alone
            window.decoded += len(records)
            self._read(records, now)
            return decode_alone(records, accepts)
        parsed: list[Parsed] = []
        unparsed: list[Unparsed] = []
        waiting: dict[tuple[str, int], list[tuple[int, float]]] = {}  # partition → the others' positions
        for r in records:
            key = (r.topic, r.partition, r.offset)
            entry = entries.get(key)
            if entry is not None and entry.value == r.value:
                window.shared += 1
                entry.left -= 1
                if entry.left <= 0:
                    del entries[key]
                if entry.error is not None:
                    unparsed.append((r, entry.error))
                    continue
                envelope, fact = entry.envelope, entry.fact
                assert envelope is not None
                if not envelope.type.startswith(accepts):
                    fact = None
                elif fact is None:  # a type no reader took when it was decoded (this one came later)
                    envelope, fact = decode_fact(r.value, accepts)
                parsed.append((r, envelope, fact))
                continue
            window.decoded += 1
            part = (r.topic, r.partition)
            if part not in waiting:
                waiting[part] = [
                    p for o in window._others(self, r.topic) if (p := o.positions.get(part)) and now - p[1] < FRESH_S
                ]
            left = sum(0 <= r.offset - offset < window.capacity for offset, _ in waiting[part])
            union = window._union.get(r.topic, accepts) if left else accepts  # typed for those it is kept for
            try:
                envelope, fact = decode_fact(r.value, union)
            except (ValidationError, ValueError) as exc:
                unparsed.append((r, exc))
                if left:
                    entries[key] = _Entry(r.value, None, None, exc, left)
                continue
            if left:
                entries[key] = _Entry(r.value, envelope, fact, None, left)
            if fact is not None and not envelope.type.startswith(accepts):
                fact = None
            parsed.append((r, envelope, fact))
        while len(entries) > window.capacity:
            entries.popitem(last=False)
        self._read(records, now)
        return parsed, unparsed

    def _read(self, records: Sequence[Record], now: float) -> None:
        """Where this reader is now on each partition of the batch; readers pacing behind it look again."""
        for r in records:  # each partition's records come in offset order: the last one's stays
            self.positions[(r.topic, r.partition)] = (r.offset + 1, now)
        self.window.moved.set()
        self.window.moved = asyncio.Event()

    async def pace(self, batches: Mapping[TopicPartition, Sequence[Record]]) -> float:
        """Before a catch-up batch: wait, up to the window's ``wait_s``, while another reader is more than ``lead``
        records behind it (``_ahead``). Returns the seconds waited."""
        if not self._ahead(batches):
            return 0.0
        started = time.monotonic()
        deadline = started + self.window.wait_s
        self.pacing = True
        try:
            while self._ahead(batches) and (left := deadline - time.monotonic()) > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.window.moved.wait(), left)
        finally:
            self.pacing = False
        waited = time.monotonic() - started
        self.window.waited_s += waited
        return waited

    def _ahead(self, batches: Mapping[TopicPartition, Sequence[Record]]) -> bool:
        """Is another reader (not pacing itself) more than ``lead`` records behind this batch, over its partitions
        (the window holds what lies between, of every partition), counting only the partitions it reads lately and
        is within the window's reach on?"""
        window, now = self.window, time.monotonic()
        firsts = {(tp.topic, tp.partition): rs[0].offset for tp, rs in batches.items() if rs}
        others = {o for topic, _ in firsts for o in window._others(self, topic) if not o.pacing}
        for other in others:
            behind = 0
            for part, first in firsts.items():
                position = other.positions.get(part)
                if position and now - position[1] < FRESH_S and 0 < first - position[0] < window.capacity:
                    behind += first - position[0]
            if behind > window.lead:
                return True
        return False


def decode_alone(records: Sequence[Record], accepts: tuple[str, ...]) -> tuple[list[Parsed], list[Unparsed]]:
    """A batch decoded by a reader with no window (``ProjectionRunner.process`` outside a consumer)."""
    parsed: list[Parsed] = []
    unparsed: list[Unparsed] = []
    for r in records:
        try:
            parsed.append((r, *decode_fact(r.value, accepts)))
        except (ValidationError, ValueError) as exc:
            unparsed.append((r, exc))
    return parsed, unparsed
