"""The event store on PostgreSQL (asyncpg), one schema per service. Pools come from ``shared.store.db``.

- ``events``: append-only; ``(stream_id, version)`` unique, so two writers at one version cannot both win.
  Each row records the id of the transaction that wrote it (``tx_id``, xid8).
- Tailing (``read_all``) orders by (tx_id, position) and returns only rows whose transaction id is below
  ``pg_snapshot_xmin(pg_current_snapshot())``: every such transaction has ended, and every transaction that
  writes later has a larger id, so a reader never passes an event whose transaction is still open.
- ``idempotency_keys``: a key, the request's fingerprint and the first result, written in the append's
  transaction.
- A statement trigger notifies ``<schema>_events`` on commit, so the relay wakes at once (it polls too).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from shared.ops.metrics import APPEND_SECONDS, EVENTS_APPENDED
from shared.privacy.pii import PersonalData
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
    OutOfTimeOrderError,
    RecordedEvent,
    Snapshot,
    StaleTransactionError,
    StateCache,
    TimeOrder,
    in_time_order,
)
from shared.store.db import Conn, identifier
from shared.store.migrations import Migration, apply
from shared.store.postgres_streams import create_streams
from shared.store.wire import DEFAULT_MAX_EVENT_BYTES, check_event_sizes

# The store's migrations (shared.store.migrations). The first makes what every start made before migrations, IF NOT
# EXISTS throughout (the index, trigger and rules only when missing), so on a schema made then it changes nothing
# and takes no lock on the events table.
SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.events (
    position       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id      text        NOT NULL,
    version        integer     NOT NULL CHECK (version > 0),
    event_id       uuid        NOT NULL UNIQUE,
    event_type     text        NOT NULL,
    schema_version integer     NOT NULL,
    data           jsonb       NOT NULL,
    metadata       jsonb       NOT NULL,
    occurred_at    timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    tx_id          xid8        NOT NULL DEFAULT pg_current_xact_id(),
    UNIQUE (stream_id, version)
);
CREATE TABLE IF NOT EXISTS {s}.idempotency_keys (
    key         text PRIMARY KEY,
    fingerprint text NOT NULL,
    result      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS {s}.snapshots (
    stream_id      text PRIMARY KEY,
    version        integer NOT NULL,
    schema_version integer NOT NULL,
    state          jsonb NOT NULL,
    written_at     timestamptz NOT NULL DEFAULT now()
);
CREATE OR REPLACE FUNCTION {s}.notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('{channel}', ''); RETURN NULL; END $$;
DO $$ BEGIN
    IF to_regclass('{s}.events_commit_order') IS NULL THEN
        CREATE INDEX events_commit_order ON {s}.events (tx_id, position);
    END IF;
    IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = '{s}.events'::regclass AND tgname = 'events_notify') THEN
        CREATE TRIGGER events_notify AFTER INSERT ON {s}.events
            FOR EACH STATEMENT EXECUTE FUNCTION {s}.notify_events();
    END IF;
    IF NOT EXISTS (SELECT FROM pg_rules WHERE schemaname = '{s}' AND tablename = 'events'
                   AND rulename = 'events_no_update') THEN
        CREATE RULE events_no_update AS ON UPDATE TO {s}.events DO INSTEAD NOTHING;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_rules WHERE schemaname = '{s}' AND tablename = 'events'
                   AND rulename = 'events_no_delete') THEN
        CREATE RULE events_no_delete AS ON DELETE TO {s}.events DO INSTEAD NOTHING;
    END IF;
END $$;
"""

_COLUMNS = """stream_id, version, position, event_id, event_type, schema_version, data, metadata,
              occurred_at, recorded_at, tx_id"""


# The append's checks (after its INSERT … SELECT): the stream is at the expected version $2, and its last event
# neither comes from a younger transaction nor, with $9, occurred after the first event appended.
_APPEND_CHECKS = """WHERE coalesce((SELECT max(version) FROM {s}.events WHERE stream_id = $1), 0) = $2
              -- commit order (tx_id, position) must keep the stream's order: no appending after a younger
              -- transaction's event (StaleTransactionError); with $9 (time order "refuse"), nor after an event
              -- that occurred later than the first appended (OutOfTimeOrderError)
              AND NOT EXISTS (SELECT 1 FROM {s}.events l
                              WHERE l.stream_id = $1 AND l.version = $2
                                AND (l.tx_id > pg_current_xact_id() OR l.occurred_at > $9::timestamptz))
            RETURNING version, position"""

# The fields _COLUMNS fills in order (all but the checkpoint, made of tx_id and position)
_FIELDS = tuple(f.name for f in dataclasses.fields(RecordedEvent) if f.name != "checkpoint")
assert [c.strip() for c in _COLUMNS.split(",")] == [*_FIELDS, "tx_id"], "_COLUMNS must follow RecordedEvent"
_new = object.__new__
_new_tuple = tuple.__new__


def _replayed(row: asyncpg.Record) -> RecordedEvent:
    """A row of ``SELECT {_COLUMNS}`` as a RecordedEvent, built without its ``__init__`` (the frozen dataclass's
    eleven ``object.__setattr__`` calls, the Checkpoint's ``__new__`` and the lookups by name were a fifth of
    read_all's time, decision 0031): the same object, equal to the one ``__init__`` makes, from values asyncpg has
    already typed."""
    event = _new(RecordedEvent)
    values = event.__dict__
    values.update(zip(_FIELDS, row, strict=False))  # the row has tx_id too
    values["checkpoint"] = _new_tuple(Checkpoint, (row[10], row[2]))
    return event


def _recorded(row: asyncpg.Record) -> RecordedEvent:
    return RecordedEvent(
        stream_id=row["stream_id"],
        version=row["version"],
        position=row["position"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        schema_version=row["schema_version"],
        data=row["data"],
        metadata=row["metadata"],
        occurred_at=row["occurred_at"],
        recorded_at=row["recorded_at"],
        checkpoint=Checkpoint(row["tx_id"], row["position"]),
    )


_PLAIN = (str, int, bool, float, type(None))


def _json_ready(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The metadata as JSON values: what is not a string, number, boolean or null is written as its ``str``
    (a UUID, a time); a copy either way."""
    plain = dict(metadata)
    if all(type(v) in _PLAIN for v in plain.values()):
        return plain
    loaded: dict[str, Any] = json.loads(json.dumps(plain, default=str))
    return loaded


class PostgresEventStore:
    def __init__(
        self,
        pool: asyncpg.Pool,
        schema: str,
        personal_data: PersonalData | None = None,
        *,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        """Without ``personal_data`` the store reads and appends events that carry no personal fields. An event
        that would be a Kafka record over ``max_event_bytes`` is refused (``shared.store.wire.EventTooLargeError``)."""
        self.pool = pool
        self.max_event_bytes = max_event_bytes
        self.schema = identifier(schema)
        self.channel = f"{self.schema}_events"
        self.personal_data = personal_data
        self._bound: Conn | None = None
        self.states: StateCache | None = StateCache()
        self._appended = EVENTS_APPENDED.labels(self.schema)  # the metrics' children, looked up once
        self._append_seconds = APPEND_SECONDS.labels(self.schema)
        s = self.schema
        self._append_sql = f"""
            INSERT INTO {s}.events (stream_id, version, event_id, event_type, schema_version, data, metadata,
                                    occurred_at)
            SELECT $1, $2 + t.n, t.event_id, t.event_type, t.schema_version, t.data, t.metadata,
                   -- $10 (time order "clamp", a reaction's): not before the stream's last event
                   CASE WHEN $10::boolean
                        THEN greatest(coalesce(t.occurred_at, now()),
                                      (SELECT l.occurred_at FROM {s}.events l WHERE l.stream_id = $1 AND l.version = $2))
                        ELSE coalesce(t.occurred_at, now()) END
            FROM unnest($3::uuid[], $4::text[], $5::int[], $6::jsonb[], $7::jsonb[], $8::timestamptz[])
                 WITH ORDINALITY AS t(event_id, event_type, schema_version, data, metadata, occurred_at, n)
            {_APPEND_CHECKS.format(s=s)}"""
        # One event (a command's usual append) as plain values rather than one-element arrays: less to encode and to
        # decode on both sides (bench/cmdcost.py); the same checks.
        self._append_one_sql = f"""
            INSERT INTO {s}.events (stream_id, version, event_id, event_type, schema_version, data, metadata,
                                    occurred_at)
            SELECT $1, $2 + 1, $3::uuid, $4::text, $5::int, $6::jsonb, $7::jsonb,
                   CASE WHEN $10::boolean
                        THEN greatest(coalesce($8::timestamptz, now()),
                                      (SELECT l.occurred_at FROM {s}.events l WHERE l.stream_id = $1 AND l.version = $2))
                        ELSE coalesce($8::timestamptz, now()) END
            {_APPEND_CHECKS.format(s=s)}"""

    def using(self, conn: Conn) -> PostgresEventStore:
        """This store working inside a transaction of the caller's (a reaction's): reads and appends use ``conn``."""
        bound = copy.copy(self)
        bound._bound = conn
        bound.states = None  # what it reads may be uncommitted
        return bound

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Conn]:
        if self._bound is not None:
            yield self._bound
        else:
            async with self.pool.acquire() as conn:
                yield conn

    async def setup(self) -> None:
        """The store's tables, made once (``shared.store.migrations``): a start that finds them runs no DDL."""
        sql = SCHEMA_SQL.format(s=self.schema, channel=self.channel)
        await apply(self.pool, self.schema, [Migration("eventstore.0001", "events, idempotency keys, snapshots", sql)])

    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int,
        idempotency: Idempotency | None = None,
        conn: Conn | None = None,
        time_order: TimeOrder = None,
    ) -> AppendResult:
        """Append in its own transaction, or inside the caller's (``conn``, e.g. a reaction's)."""
        # in time order within the append here; after the stream's last event in the append's statement
        events = in_time_order(stream_id, None, events, datetime.now(UTC), time_order)
        if self.personal_data is not None:
            sealed = await self.personal_data.seal((e.event for e in events), [e.data for e in events])
        elif any(e.event.personal_fields for e in events):
            raise ValueError(f"store {self.schema} has no key store: it cannot seal personal data")
        else:
            sealed = [e.event.model_dump(mode="json") for e in events]
        check_event_sizes(stream_id, events, sealed, source=self.schema, limit=self.max_event_bytes)
        conn = conn or self._bound
        started = time.perf_counter()
        try:
            if conn is not None:
                async with conn.transaction():  # a savepoint inside the caller's transaction
                    result = await self._append(
                        conn, stream_id, events, sealed, expected_version, idempotency, time_order
                    )
            elif idempotency is None and events:
                # one statement is its own transaction: no BEGIN and COMMIT round trips
                async with self.pool.acquire() as own:
                    result = await self._append(
                        own, stream_id, events, sealed, expected_version, idempotency, time_order
                    )
            else:
                async with self.pool.acquire() as own, own.transaction():
                    result = await self._append(
                        own, stream_id, events, sealed, expected_version, idempotency, time_order
                    )
            if not result.replayed and events:
                self._appended.inc(len(events))
                self._append_seconds.observe(time.perf_counter() - started)
            return result
        except _KeyTaken:
            assert idempotency is not None
            first = await self.idempotent_result(idempotency)
            assert first is not None
            return first

    async def create_streams(self, streams: Sequence[NewStream]) -> list[AppendResult | None]:
        """Many new streams in one statement (``shared.store.postgres_streams``)."""
        return await create_streams(self, streams)

    async def _append(
        self,
        conn: Conn,
        stream_id: str,
        events: Sequence[NewEvent],
        sealed: list[dict[str, Any]],
        expected_version: int,
        idempotency: Idempotency | None,
        time_order: TimeOrder = None,
    ) -> AppendResult:
        if events:
            first = events[0].occurred_at if time_order == "refuse" else None
            sql, values = self._append_statement(events, sealed)
            try:
                rows = await conn.fetch(sql, stream_id, expected_version, *values, first, time_order == "clamp")
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name and exc.constraint_name.endswith("event_id_key"):
                    raise DuplicateEventError(stream_id) from None
                raise ConcurrencyError(stream_id, expected_version) from None
            if not rows:
                actual, last_occurred = await self._last(conn, stream_id)
                if actual != expected_version:
                    raise ConcurrencyError(stream_id, expected_version, actual)
                if first is not None and last_occurred is not None and last_occurred > first:
                    raise OutOfTimeOrderError(stream_id, first, last_occurred)
                raise StaleTransactionError(stream_id)
            result = AppendResult(
                stream_id, rows[-1]["version"], rows[-1]["position"], tuple(e.event_id for e in events)
            )
        else:
            version, position = await self._head(conn, stream_id)
            if version != expected_version:
                raise ConcurrencyError(stream_id, expected_version, version)
            result = AppendResult(stream_id, version, position)
        if idempotency:
            stored = await conn.fetchval(
                f"""INSERT INTO {self.schema}.idempotency_keys (key, fingerprint, result) VALUES ($1, $2, $3)
                    ON CONFLICT (key) DO NOTHING RETURNING true""",
                idempotency.key,
                idempotency.fingerprint,
                result.to_json(),
            )
            if not stored:  # the same key committed meanwhile: undo ours, answer theirs
                raise _KeyTaken
        return result

    def _append_statement(
        self, events: Sequence[NewEvent], sealed: list[dict[str, Any]]
    ) -> tuple[str, tuple[Any, ...]]:
        """The append's statement and its values $3..$8 for these (one or more) events."""
        metadata = [_json_ready(e.metadata) for e in events]
        if len(events) == 1:
            (one,) = events
            event = one.event
            return self._append_one_sql, (
                one.event_id, event.event_type, event.schema_version, sealed[0], metadata[0], one.occurred_at
            )  # fmt: skip
        return self._append_sql, (
            [e.event_id for e in events],
            [e.event.event_type for e in events],
            [e.event.schema_version for e in events],
            sealed,
            metadata,
            [e.occurred_at for e in events],
        )

    async def _last(self, conn: Conn, stream_id: str) -> tuple[int, datetime | None]:
        """The stream's version and its last event's occurred time (None: no events)."""
        row = await conn.fetchrow(
            f"""SELECT version, occurred_at FROM {self.schema}.events WHERE stream_id = $1
                ORDER BY version DESC LIMIT 1""",
            stream_id,
        )
        return (row["version"], row["occurred_at"]) if row else (0, None)

    async def _version(self, conn: Conn, stream_id: str) -> int:
        return (await self._head(conn, stream_id))[0]

    async def _head(self, conn: Conn, stream_id: str) -> tuple[int, int]:
        row = await conn.fetchrow(
            f"""SELECT version, position FROM {self.schema}.events WHERE stream_id = $1
                ORDER BY version DESC LIMIT 1""",
            stream_id,
        )
        return (row["version"], row["position"]) if row else (0, 0)

    async def read_stream(
        self,
        stream_id: str,
        *,
        to_version: int | None = None,
        as_of: datetime | None = None,
        after_version: int = 0,
    ) -> list[RecordedEvent]:
        async with self._connection() as conn:
            rows = await conn.fetch(
                f"""SELECT {_COLUMNS} FROM {self.schema}.events
                    WHERE stream_id = $1 AND version > $4 AND ($2::int IS NULL OR version <= $2)
                      AND ($3::timestamptz IS NULL OR recorded_at <= $3)
                    ORDER BY version""",
                stream_id,
                to_version,
                as_of,
                after_version,
            )
        return [_replayed(r) for r in rows]

    async def read_from_snapshot(
        self, stream_id: str, schema_version: int
    ) -> tuple[Snapshot | None, list[RecordedEvent]]:
        # One round trip for a state this process has not cached: the snapshot (its state on the first row only,
        # so it is decoded once) beside the events after it; a row without an event when there are none.
        async with self._connection() as conn:
            rows = await conn.fetch(
                f"""SELECT s.version AS snapshot_version,
                           CASE WHEN row_number() OVER (ORDER BY e.version) = 1 THEN s.state END AS snapshot_state,
                           e.*
                    FROM (SELECT) AS one
                    LEFT JOIN {self.schema}.snapshots AS s ON s.stream_id = $1 AND s.schema_version = $2
                    LEFT JOIN LATERAL (
                        SELECT {_COLUMNS} FROM {self.schema}.events
                        WHERE stream_id = $1 AND version > coalesce(s.version, 0)
                    ) AS e ON true
                    ORDER BY e.version""",
                stream_id,
                schema_version,
            )
        first = rows[0]
        snap = None
        if first["snapshot_version"] is not None:
            snap = Snapshot(first["snapshot_version"], schema_version, first["snapshot_state"])
        return snap, [_recorded(r) for r in rows if r["stream_id"] is not None]

    async def write_snapshot(self, stream_id: str, snapshot: Snapshot) -> None:
        async with self._connection() as conn:
            await conn.execute(
                f"""INSERT INTO {self.schema}.snapshots AS s (stream_id, version, schema_version, state)
                    VALUES ($1, $2, $3, $4)
                    ON CONFLICT (stream_id) DO UPDATE SET version = $2, schema_version = $3, state = $4,
                        written_at = now()
                    WHERE s.schema_version <> $3 OR s.version < $2""",
                stream_id,
                snapshot.version,
                snapshot.schema_version,
                snapshot.state,
            )

    async def read_all(
        self, after: Checkpoint = START, *, limit: int = 500, conn: Conn | None = None
    ) -> list[RecordedEvent]:
        sql = f"""SELECT {_COLUMNS} FROM {self.schema}.events
                  WHERE (tx_id, position) > ($1::xid8, $2)
                    AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
                  ORDER BY tx_id, position LIMIT $3"""
        if conn is not None:
            rows = await conn.fetch(sql, after.tx, after.position, limit)
        else:
            async with self.pool.acquire() as own:
                rows = await own.fetch(sql, after.tx, after.position, limit)
        return [_replayed(r) for r in rows]

    async def read_streams(self, prefix: str) -> list[RecordedEvent]:
        like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        async with self._connection() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM {self.schema}.events WHERE stream_id LIKE $1 ORDER BY stream_id, version",
                like,
            )
        return [_replayed(r) for r in rows]

    async def stream_version(self, stream_id: str) -> int:
        async with self._connection() as conn:
            return await self._version(conn, stream_id)

    async def stream_versions(self, stream_ids: Sequence[str]) -> dict[str, int]:
        wanted = list(dict.fromkeys(stream_ids))
        async with self._connection() as conn:
            rows = await conn.fetch(
                f"""SELECT stream_id, max(version) AS version FROM {self.schema}.events
                    WHERE stream_id = ANY($1::text[]) GROUP BY stream_id""",
                wanted,
            )
        found = {r["stream_id"]: r["version"] for r in rows}
        return {x: found.get(x, 0) for x in wanted}

    async def locate(self, position: int) -> tuple[str, int] | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(
                f"SELECT stream_id, version FROM {self.schema}.events WHERE position = $1", position
            )
        return (row["stream_id"], row["version"]) if row else None

    async def idempotent_result(self, idempotency: Idempotency) -> AppendResult | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(
                f"SELECT fingerprint, result FROM {self.schema}.idempotency_keys WHERE key = $1", idempotency.key
            )
        if row is None:
            return None
        if row["fingerprint"] != idempotency.fingerprint:
            raise IdempotencyKeyReusedError(idempotency.key)
        return AppendResult.from_json(row["result"])


class _KeyTaken(Exception):  # noqa: N818 - control flow inside append, never escapes
    pass
