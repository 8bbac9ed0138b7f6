"""An in-memory event store with the same contract as PostgreSQL's, for unit tests and the domain's tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from shared.privacy.pii import InMemoryKeyStore, PersonalData
from shared.store import (
    START,
    AppendResult,
    Checkpoint,
    ConcurrencyError,
    DuplicateEventError,
    Idempotency,
    IdempotencyKeyReusedError,
    NewEvent,
    NewStream,
    RecordedEvent,
    Snapshot,
    StateCache,
    TimeOrder,
    in_time_order,
)
from shared.store.wire import DEFAULT_MAX_EVENT_BYTES, check_event_sizes


class InMemoryEventStore:
    def __init__(
        self, personal_data: PersonalData | None = None, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    ) -> None:
        self.personal_data = personal_data or PersonalData(InMemoryKeyStore())
        self.max_event_bytes = max_event_bytes
        self._events: list[RecordedEvent] = []
        self._streams: dict[str, list[RecordedEvent]] = {}
        self._keys: dict[str, tuple[str, AppendResult]] = {}
        self._ids: set[uuid.UUID] = set()
        self._lock = asyncio.Lock()
        self._tx = 0
        self._snapshots: dict[str, Snapshot] = {}
        self.states: StateCache | None = StateCache()

    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int,
        idempotency: Idempotency | None = None,
        time_order: TimeOrder = None,
    ) -> AppendResult:
        sealed = await self.personal_data.seal((e.event for e in events), [e.data for e in events])
        check_event_sizes(stream_id, events, sealed, source="memory", limit=self.max_event_bytes)
        async with self._lock:
            if idempotency and (first := await self.idempotent_result(idempotency)):
                return first
            stream = self._streams.setdefault(stream_id, [])
            if any(e.event_id in self._ids for e in events):
                raise DuplicateEventError(stream_id)
            if len(stream) != expected_version:
                raise ConcurrencyError(stream_id, expected_version, len(stream))
            now = datetime.now(UTC)
            events = in_time_order(stream_id, stream[-1].occurred_at if stream else None, events, now, time_order)
            self._tx += 1
            for new, data in zip(events, sealed, strict=True):
                self._record(stream_id, stream, new, data, now)
            last = stream[-1].position if stream else 0
            result = AppendResult(stream_id, len(stream), last, tuple(e.event_id for e in events))
            if idempotency:
                self._keys[idempotency.key] = (idempotency.fingerprint, result)
            return result

    async def create_streams(self, streams: Sequence[NewStream]) -> list[AppendResult | None]:
        if any(not s.events for s in streams):
            raise ValueError("a stream is created with at least one event")
        everything = [e for s in streams for e in s.events]
        sealed = iter(await self.personal_data.seal((e.event for e in everything), [e.data for e in everything]))
        data = [[next(sealed) for _ in s.events] for s in streams]
        for s, d in zip(streams, data, strict=True):
            check_event_sizes(s.stream_id, s.events, d, source="memory", limit=self.max_event_bytes)
        async with self._lock:
            ids = [e.event_id for e in everything]
            if len(set(ids)) != len(ids) or any(i in self._ids for i in ids):
                raise DuplicateEventError(next(s.stream_id for s in streams if s.events))
            results: list[AppendResult | None] = []
            self._tx += 1  # one transaction
            now = datetime.now(UTC)
            for s, d in zip(streams, data, strict=True):
                if self._streams.get(s.stream_id):
                    results.append(None)
                    continue
                stream = self._streams.setdefault(s.stream_id, [])
                for new, sealed_data in zip(s.events, d, strict=True):
                    self._record(s.stream_id, stream, new, sealed_data, now)
                appended = tuple(e.event_id for e in s.events)
                results.append(AppendResult(s.stream_id, len(stream), stream[-1].position, appended))
            return results

    def _record(
        self, stream_id: str, stream: list[RecordedEvent], new: NewEvent, data: dict[str, Any], now: datetime
    ) -> None:
        position = len(self._events) + 1
        recorded = RecordedEvent(
            stream_id=stream_id,
            version=len(stream) + 1,
            position=position,
            event_id=new.event_id,
            event_type=new.event.event_type,
            schema_version=new.event.schema_version,
            data=data,
            metadata=dict(new.metadata),
            occurred_at=new.occurred_at or now,
            recorded_at=now,
            checkpoint=Checkpoint(self._tx, position),
        )
        stream.append(recorded)
        self._events.append(recorded)
        self._ids.add(recorded.event_id)

    async def read_stream(
        self,
        stream_id: str,
        *,
        to_version: int | None = None,
        as_of: datetime | None = None,
        after_version: int = 0,
    ) -> list[RecordedEvent]:
        return [
            e
            for e in self._streams.get(stream_id, [])[after_version:]
            if (to_version is None or e.version <= to_version) and (as_of is None or e.recorded_at <= as_of)
        ]

    async def read_from_snapshot(
        self, stream_id: str, schema_version: int
    ) -> tuple[Snapshot | None, list[RecordedEvent]]:
        snap = self._snapshots.get(stream_id)
        if snap is not None and snap.schema_version != schema_version:
            snap = None
        return snap, await self.read_stream(stream_id, after_version=snap.version if snap else 0)

    async def write_snapshot(self, stream_id: str, snapshot: Snapshot) -> None:
        stored = self._snapshots.get(stream_id)
        if stored is None or stored.schema_version != snapshot.schema_version or stored.version < snapshot.version:
            self._snapshots[stream_id] = snapshot

    async def read_all(self, after: Checkpoint = START, *, limit: int = 500) -> list[RecordedEvent]:
        return [e for e in self._events if e.checkpoint > after][:limit]

    async def read_streams(self, prefix: str) -> list[RecordedEvent]:
        return [e for s in sorted(self._streams) if s.startswith(prefix) for e in self._streams[s]]

    async def stream_version(self, stream_id: str) -> int:
        return len(self._streams.get(stream_id, []))

    async def stream_versions(self, stream_ids: Sequence[str]) -> dict[str, int]:
        return {s: len(self._streams.get(s, [])) for s in stream_ids}

    async def locate(self, position: int) -> tuple[str, int] | None:
        if 1 <= position <= len(self._events):
            e = self._events[position - 1]
            return e.stream_id, e.version
        return None

    async def idempotent_result(self, idempotency: Idempotency) -> AppendResult | None:
        found = self._keys.get(idempotency.key)
        if found is None:
            return None
        fingerprint, result = found
        if fingerprint != idempotency.fingerprint:
            raise IdempotencyKeyReusedError(idempotency.key)
        return AppendResult.from_json(result.to_json())
