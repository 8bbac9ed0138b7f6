"""``PostgresEventStore.create_streams``: many new streams in one statement (issue 26's import batches; decision 0021
"As built: speed").

One INSERT … SELECT FROM unnest of every stream's events, filtered by "the stream has no events": a statement sees
one snapshot, so a stream is filtered whole. It is its own transaction (no BEGIN and COMMIT round trips), its
positions in the order given, and the events table's statement trigger wakes the relay once. A writer creating one
of the streams meanwhile (its first event not committed yet) makes the statement wait for it and then fail on
``(stream_id, version)``: nothing of the statement was written; the streams that exist then are left out and it runs
again. A new stream has no last event, so the commit-order rule of an append after a younger transaction's event
(decision 0002) has nothing to check.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import asyncpg
from pydantic_core import to_json

from shared.ops.metrics import APPEND_SECONDS, EVENTS_APPENDED
from shared.store import AppendResult, DuplicateEventError, NewEvent, NewStream
from shared.store.wire import check_event_sizes

if TYPE_CHECKING:
    from shared.store.postgres import PostgresEventStore

ATTEMPTS = 5  # statements run again when other writers keep creating some of the streams meanwhile

_SQL = """
    INSERT INTO {s}.events (stream_id, version, event_id, event_type, schema_version, data, metadata, occurred_at)
    SELECT t.stream_id, t.version, t.event_id, t.event_type, t.schema_version, t.data::jsonb, t.metadata::jsonb,
           coalesce(t.occurred_at, now())
    FROM unnest($1::text[], $2::int[], $3::uuid[], $4::text[], $5::int[], $6::text[], $7::text[], $8::timestamptz[])
         WITH ORDINALITY AS t(stream_id, version, event_id, event_type, schema_version, data, metadata, occurred_at, n)
    WHERE t.stream_id <> ALL($9::text[])
      AND NOT EXISTS (SELECT 1 FROM {s}.events e WHERE e.stream_id = t.stream_id)
    ORDER BY t.n
    RETURNING stream_id, version, position"""


async def create_streams(store: PostgresEventStore, streams: Sequence[NewStream]) -> list[AppendResult | None]:
    """Per stream its result, or None: it has events (before, or by another writer meanwhile), or it was named
    before in ``streams``; nothing of it written."""
    if any(not s.events for s in streams):
        raise ValueError("a stream is created with at least one event")
    firsts = {s.stream_id: i for i, s in reversed(list(enumerate(streams)))}  # a stream named twice: once
    todo = [s for i, s in enumerate(streams) if firsts[s.stream_id] == i]
    events = [e for s in todo for e in s.events]
    if store.personal_data is not None:  # one key store round trip for every subject of the batch
        sealed = await store.personal_data.seal((e.event for e in events), [e.data for e in events])
    elif any(e.event.personal_fields for e in events):
        raise ValueError(f"store {store.schema} has no key store: it cannot seal personal data")
    else:
        sealed = [dict(e.data) if e.data is not None else e.event.model_dump(mode="json") for e in events]
    texts = [to_json(d) for d in sealed]  # each event's JSON made once: its size on Kafka, then what is inserted
    at = 0
    for s in todo:
        end = at + len(s.events)
        check_event_sizes(
            s.stream_id,
            s.events,
            sealed[at:end],
            source=store.schema,
            limit=store.max_event_bytes,
            sealed_json=texts[at:end],
        )
        at = end
    started = time.perf_counter()
    rows = await _insert(store, todo, events, [t.decode() for t in texts])
    EVENTS_APPENDED.labels(store.schema).inc(len(rows))
    APPEND_SECONDS.labels(store.schema).observe(time.perf_counter() - started)
    last = {r["stream_id"]: (r["version"], r["position"]) for r in sorted(rows, key=lambda r: r["position"])}
    results: list[AppendResult | None] = []
    for i, s in enumerate(streams):
        made = last.get(s.stream_id) if firsts[s.stream_id] == i else None
        ids = tuple(e.event_id for e in s.events)
        results.append(AppendResult(s.stream_id, made[0], made[1], ids) if made else None)
    return results


async def _insert(
    store: PostgresEventStore, streams: list[NewStream], events: list[NewEvent], sealed: list[str]
) -> list[asyncpg.Record]:
    """``sealed``: each event's data as JSON text (cast to jsonb by the statement, not encoded again here)."""
    metadata: dict[int, str] = {}  # a row's events share their metadata: converted once
    args = (
        [s.stream_id for s in streams for _ in s.events],
        [v for s in streams for v in range(1, len(s.events) + 1)],
        [e.event_id for e in events],
        [e.event.event_type for e in events],
        [e.event.schema_version for e in events],
        sealed,
        [_json_metadata(metadata, e.metadata) for e in events],
        [e.occurred_at for e in events],
    )
    sql = _SQL.format(s=store.schema)
    exists: list[str] = []
    for attempt in range(1, ATTEMPTS + 1):
        try:
            async with store._connection() as conn:
                if store._bound is None:  # one statement is its own transaction
                    return list(await conn.fetch(sql, *args, exists))
                async with conn.transaction():  # a savepoint inside the caller's transaction
                    return list(await conn.fetch(sql, *args, exists))
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name and exc.constraint_name.endswith("event_id_key"):
                raise DuplicateEventError(streams[0].stream_id) from None
            if attempt == ATTEMPTS:
                raise
            versions = await store.stream_versions([s.stream_id for s in streams])
            exists = [x for x, v in versions.items() if v]
    raise AssertionError("unreachable")


def _json_metadata(seen: dict[int, str], metadata: Any) -> str:
    """An event's metadata as JSON text (``default=str``), converted once per metadata object."""
    key = id(metadata)
    if key not in seen:
        seen[key] = json.dumps(dict(metadata), default=str, ensure_ascii=False)
    return seen[key]
