"""Where the webhooks keep what they know, in their own schema (``webhooks``; no event store: a subscription and a
delivery's attempts are operational state, not business facts, and a secret must never reach an event or a topic).

Tables (migration ``webhooks.0001``):

- ``subscriptions``: URL, event-type filter, the secret sealed (AES-GCM, ``services.webhooks.sealing``), enabled,
  why disabled, the run of consecutive failed attempts; after a rotation (``webhooks.0002``) the previous secret,
  sealed the same way, and until when it still signs (the rotation window), then dropped.
- ``deliveries``: one row per (subscription, event): the CloudEvent's bytes as on Kafka, its stream (the record's
  key) and offset, state ``pending`` → ``delivered`` | ``dead`` → (``pending`` again by a redrive) | ``skipped``;
  ``tries`` since the last redrive, ``attempts`` in all, when it may next be tried, the lease of the dispatcher
  sending it. Unique per (subscription, event id): Kafka's redeliveries queue nothing twice.
- ``attempts``: each attempt: when, outcome (``delivered``, ``http_error``, ``network_error``, ``refused``), the
  response code, latency, the error.

Order per stream: a delivery is claimed only when it is its (subscription, stream)'s *head*, the first in offset
order not yet delivered or skipped; a dead head holds the stream until a redrive or a skip (decision 0026).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import asyncpg

from shared.store.db import identifier
from shared.store.migrations import Migration, apply

MIGRATIONS = (
    Migration(
        "webhooks.0001",
        "subscriptions, deliveries, attempts",
        """
CREATE TABLE subscriptions (
    id uuid PRIMARY KEY, url text NOT NULL, event_types text[] NOT NULL, description text NOT NULL,
    sealed_secret bytea NOT NULL, enabled boolean NOT NULL, disabled_reason text,
    consecutive_failures integer NOT NULL DEFAULT 0, created_by text NOT NULL, created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL, secret_rotated_at timestamptz NOT NULL);
CREATE TABLE deliveries (
    id bigserial PRIMARY KEY, subscription_id uuid NOT NULL REFERENCES subscriptions ON DELETE CASCADE,
    event_id text NOT NULL, event_type text NOT NULL, stream text NOT NULL, topic text NOT NULL,
    kafka_partition integer NOT NULL, kafka_offset bigint NOT NULL, body bytea NOT NULL, state text NOT NULL,
    tries integer NOT NULL DEFAULT 0, attempts integer NOT NULL DEFAULT 0, next_at timestamptz NOT NULL,
    lease_until timestamptz, created_at timestamptz NOT NULL, done_at timestamptz,
    UNIQUE (subscription_id, event_id));
CREATE INDEX deliveries_open ON deliveries (subscription_id, stream, kafka_offset) WHERE state IN ('pending', 'dead');
CREATE INDEX deliveries_by_subscription ON deliveries (subscription_id, id DESC);
CREATE INDEX deliveries_done ON deliveries (done_at) WHERE state IN ('delivered', 'skipped');
CREATE TABLE attempts (
    delivery_id bigint NOT NULL REFERENCES deliveries ON DELETE CASCADE, n integer NOT NULL, at timestamptz NOT NULL,
    outcome text NOT NULL, status_code integer, latency_ms double precision NOT NULL, error text,
    PRIMARY KEY (delivery_id, n));
""",
    ),
    Migration(
        "webhooks.0002",
        "the previous secret during a rotation window",
        """
ALTER TABLE subscriptions ADD COLUMN previous_sealed_secret bytea, ADD COLUMN previous_secret_until timestamptz;
""",
    ),
)

SUBSCRIPTION_COLUMNS = (
    "id, url, event_types, description, sealed_secret, enabled, disabled_reason, consecutive_failures, created_by, "
    "created_at, updated_at, secret_rotated_at, previous_sealed_secret, previous_secret_until"
)
DELIVERY_COLUMNS = (
    "id, subscription_id, event_id, event_type, stream, topic, kafka_partition, kafka_offset, state, tries, attempts, "
    "next_at, created_at, done_at"
)


@dataclass(frozen=True)
class Subscription:
    id: uuid.UUID
    url: str
    event_types: list[str]
    description: str
    sealed_secret: bytes
    enabled: bool
    disabled_reason: str | None
    consecutive_failures: int
    created_by: str
    created_at: datetime
    updated_at: datetime
    secret_rotated_at: datetime
    previous_sealed_secret: bytes | None = None  # the secret before the last rotation, sealed; signs too until:
    previous_secret_until: datetime | None = None


@dataclass(frozen=True)
class Row:
    """A delivery to queue: one event for one subscription."""

    subscription_id: uuid.UUID
    event_id: str
    event_type: str
    stream: str
    topic: str
    partition: int
    offset: int
    body: bytes


@dataclass(frozen=True)
class Claimed:
    id: int
    subscription_id: uuid.UUID
    event_id: str
    body: bytes
    tries: int
    attempts: int
    url: str  # the subscription's, read with the claim
    sealed_secret: bytes
    previous_sealed_secret: bytes | None = None  # only while its rotation window is open at the claim's time


@dataclass(frozen=True)
class Outcome:
    """One attempt's result, as recorded."""

    delivery: Claimed
    outcome: str  # delivered | http_error | network_error | refused
    status_code: int | None
    latency_ms: float
    error: str | None
    retry_at: datetime | None  # None with a failure: the delivery is dead-lettered

    @property
    def delivered(self) -> bool:
        return self.outcome == "delivered"


class Store(Protocol):
    """What the API's use cases need (``PostgresStore``; ``MemoryStore`` for the in-memory apps of the unit tests)."""

    async def add(self, s: Subscription) -> None: ...
    async def count(self) -> int: ...
    async def get(self, sid: uuid.UUID) -> Subscription | None: ...
    async def all(self, *, enabled_only: bool = False) -> list[Subscription]: ...
    async def update(self, s: Subscription) -> None: ...
    async def delete(self, sid: uuid.UUID) -> bool: ...
    async def deliveries(
        self, sid: uuid.UUID, state: str | None, limit: int, before: int | None
    ) -> list[dict[str, Any]]: ...
    async def delivery(self, sid: uuid.UUID, did: int) -> dict[str, Any] | None: ...
    async def attempts(self, did: int) -> list[dict[str, Any]]: ...
    async def settle_dead(self, sid: uuid.UUID, did: int, state: str, now: datetime) -> bool: ...


class MemoryStore:
    """Subscriptions in memory, no deliveries (nothing dispatches to it)."""

    def __init__(self) -> None:
        self.subs: dict[uuid.UUID, Subscription] = {}

    async def add(self, s: Subscription) -> None:
        self.subs[s.id] = s

    async def count(self) -> int:
        return len(self.subs)

    async def get(self, sid: uuid.UUID) -> Subscription | None:
        return self.subs.get(sid)

    async def all(self, *, enabled_only: bool = False) -> list[Subscription]:
        return [s for s in self.subs.values() if s.enabled or not enabled_only]

    async def update(self, s: Subscription) -> None:
        self.subs[s.id] = s

    async def delete(self, sid: uuid.UUID) -> bool:
        return self.subs.pop(sid, None) is not None

    async def deliveries(
        self, sid: uuid.UUID, state: str | None, limit: int, before: int | None
    ) -> list[dict[str, Any]]:
        return []

    async def delivery(self, sid: uuid.UUID, did: int) -> dict[str, Any] | None:
        return None

    async def attempts(self, did: int) -> list[dict[str, Any]]:
        return []

    async def settle_dead(self, sid: uuid.UUID, did: int, state: str, now: datetime) -> bool:
        return False


def _subscription(r: asyncpg.Record) -> Subscription:
    return Subscription(**{k: r[k] for k in SUBSCRIPTION_COLUMNS.split(", ")} | {"event_types": list(r["event_types"])})


class PostgresStore:
    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self.pool = pool
        self.schema = schema
        self._s = identifier(schema)

    async def setup(self) -> None:
        await apply(self.pool, self.schema, MIGRATIONS)

    # subscriptions

    async def add(self, s: Subscription) -> None:
        await self.pool.execute(
            f"INSERT INTO {self._s}.subscriptions ({SUBSCRIPTION_COLUMNS}) VALUES "
            f"({', '.join(f'${i + 1}' for i in range(len(SUBSCRIPTION_COLUMNS.split(', '))))})",
            *(getattr(s, k) for k in SUBSCRIPTION_COLUMNS.split(", ")),
        )

    async def count(self) -> int:
        return int(await self.pool.fetchval(f"SELECT count(*) FROM {self._s}.subscriptions"))

    async def get(self, sid: uuid.UUID) -> Subscription | None:
        r = await self.pool.fetchrow(f"SELECT {SUBSCRIPTION_COLUMNS} FROM {self._s}.subscriptions WHERE id = $1", sid)
        return _subscription(r) if r else None

    async def all(self, *, enabled_only: bool = False) -> list[Subscription]:
        where = "WHERE enabled" if enabled_only else ""
        rows = await self.pool.fetch(
            f"SELECT {SUBSCRIPTION_COLUMNS} FROM {self._s}.subscriptions {where} ORDER BY created_at, id"
        )
        return [_subscription(r) for r in rows]

    async def update(self, s: Subscription) -> None:
        await self.pool.execute(
            f"UPDATE {self._s}.subscriptions SET url = $2, event_types = $3, description = $4, sealed_secret = $5, "
            "enabled = $6, disabled_reason = $7, consecutive_failures = $8, updated_at = $9, secret_rotated_at = $10, "
            "previous_sealed_secret = $11, previous_secret_until = $12 WHERE id = $1",
            s.id, s.url, s.event_types, s.description, s.sealed_secret, s.enabled, s.disabled_reason,
            s.consecutive_failures, s.updated_at, s.secret_rotated_at, s.previous_sealed_secret, s.previous_secret_until,
        )  # fmt: skip

    async def drop_expired_secrets(self, now: datetime) -> int:
        """Previous secrets whose rotation window has closed are dropped; how many."""
        done = await self.pool.execute(
            f"UPDATE {self._s}.subscriptions SET previous_sealed_secret = NULL, previous_secret_until = NULL "
            "WHERE previous_secret_until <= $1",
            now,
        )
        return int(str(done).rsplit(" ", 1)[-1])

    async def delete(self, sid: uuid.UUID) -> bool:
        return str(await self.pool.execute(f"DELETE FROM {self._s}.subscriptions WHERE id = $1", sid)) != "DELETE 0"

    # deliveries

    async def queue(self, rows: list[Row], now: datetime) -> int:
        """Queue ``rows`` (a repeat of a queued (subscription, event) is ignored); how many were new."""
        if not rows:
            return 0
        cols = list(zip(*((r.subscription_id, r.event_id, r.event_type, r.stream, r.topic, r.partition, r.offset,
                           r.body) for r in rows), strict=True))  # fmt: skip
        done = await self.pool.execute(
            f"INSERT INTO {self._s}.deliveries (subscription_id, event_id, event_type, stream, topic, kafka_partition, "
            "kafka_offset, body, state, next_at, created_at) "
            "SELECT s, e, t, st, tp, p, o, b, 'pending', $9, $9 FROM unnest($1::uuid[], $2::text[], $3::text[], "
            "$4::text[], $5::text[], $6::int[], $7::bigint[], $8::bytea[]) AS u(s, e, t, st, tp, p, o, b) "
            "ON CONFLICT (subscription_id, event_id) DO NOTHING",
            *cols,
            now,
        )
        return int(str(done).rsplit(" ", 1)[-1])

    async def claim(self, now: datetime, lease: timedelta, limit: int) -> list[Claimed]:
        """Up to ``limit`` deliveries due now, each the head of its (subscription, stream), for an enabled subscription,
        leased to the caller, with the subscription's URL and sealed secret (and the previous one while its rotation
        window is open at ``now``); another dispatcher's claim of the same row
        waits for this one and then skips it (its WHERE is checked again on the row as this one left it)."""
        rows = await self.pool.fetch(
            f"""UPDATE {self._s}.deliveries d SET lease_until = $1::timestamptz + $2::interval
            FROM {self._s}.subscriptions s
            WHERE s.id = d.subscription_id AND s.enabled AND d.id IN (
                SELECT h.id FROM (
                    SELECT DISTINCT ON (subscription_id, stream) id, subscription_id, state, next_at, lease_until
                    FROM {self._s}.deliveries WHERE state IN ('pending', 'dead')
                    ORDER BY subscription_id, stream, kafka_offset) h
                JOIN {self._s}.subscriptions e ON e.id = h.subscription_id AND e.enabled
                WHERE h.state = 'pending' AND h.next_at <= $1 AND (h.lease_until IS NULL OR h.lease_until < $1)
                ORDER BY h.next_at LIMIT $3)
            AND d.state = 'pending' AND (d.lease_until IS NULL OR d.lease_until < $1)
            RETURNING d.id, d.subscription_id, d.event_id, d.body, d.tries, d.attempts, s.url, s.sealed_secret,
                CASE WHEN s.previous_secret_until > $1 THEN s.previous_sealed_secret END AS previous_sealed_secret""",
            now,
            lease,
            limit,
        )
        return [Claimed(**dict(r)) for r in rows]

    async def record(self, outcomes: list[Outcome], now: datetime, disable_after: int) -> list[uuid.UUID]:
        """Record each attempt and its delivery's new state, and count each subscription's run of failures, disabling
        those reaching ``disable_after`` — one statement (one round trip, one transaction); returns the
        subscriptions this disabled. A success ends a run; each failure lengthens it."""
        if not outcomes:
            return []
        runs: dict[uuid.UUID, int] = {}  # failures after the batch's last success, per subscription
        reset: set[uuid.UUID] = set()  # those with a success in the batch (the run restarts)
        for o in outcomes:
            sid = o.delivery.subscription_id
            runs[sid] = 0 if o.delivered else runs.get(sid, 0) + 1
            if o.delivered:
                reset.add(sid)
        ids = list(runs)
        run = "(CASE WHEN v.reset THEN v.n ELSE u.consecutive_failures + v.n END)"
        rows = await self.pool.fetch(
            f"""WITH a AS (
                INSERT INTO {self._s}.attempts (delivery_id, n, at, outcome, status_code, latency_ms, error)
                SELECT d, n, $7, o, c, l, e FROM unnest($1::bigint[], $2::int[], $3::text[], $4::int[], $5::float8[],
                    $6::text[]) AS x(d, n, o, c, l, e)
                ON CONFLICT DO NOTHING),
            d AS (
                UPDATE {self._s}.deliveries d SET attempts = d.attempts + 1, tries = d.tries + 1, lease_until = NULL,
                    state = CASE WHEN y.ok THEN 'delivered' WHEN y.retry_at IS NULL THEN 'dead' ELSE 'pending' END,
                    next_at = coalesce(y.retry_at, d.next_at), done_at = CASE WHEN y.ok THEN $7::timestamptz END
                FROM unnest($1::bigint[], $8::boolean[], $9::timestamptz[]) AS y(id, ok, retry_at) WHERE d.id = y.id)
            UPDATE {self._s}.subscriptions u SET consecutive_failures = {run}, enabled = u.enabled AND {run} < $13,
                disabled_reason = CASE WHEN u.enabled AND {run} >= $13 THEN 'failures' ELSE u.disabled_reason END
            FROM unnest($10::uuid[], $11::int[], $12::boolean[]) AS v(id, n, reset)
            WHERE u.id = v.id AND (v.n > 0 OR (v.reset AND u.consecutive_failures <> 0))
            RETURNING u.id, u.enabled, u.disabled_reason, u.consecutive_failures""",
            [o.delivery.id for o in outcomes],
            [o.delivery.attempts + 1 for o in outcomes],
            [o.outcome for o in outcomes],
            [o.status_code for o in outcomes],
            [o.latency_ms for o in outcomes],
            [o.error for o in outcomes],
            now,
            [o.delivered for o in outcomes],
            [o.retry_at for o in outcomes],
            ids,
            [runs[i] for i in ids],
            [i in reset for i in ids],
            disable_after,
        )
        return [r["id"] for r in rows if not r["enabled"] and r["consecutive_failures"] >= disable_after]

    async def deliveries(
        self, sid: uuid.UUID, state: str | None, limit: int, before: int | None
    ) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            f"SELECT {DELIVERY_COLUMNS} FROM {self._s}.deliveries WHERE subscription_id = $1 "
            "AND ($2::text IS NULL OR state = $2) AND ($4::bigint IS NULL OR id < $4) ORDER BY id DESC LIMIT $3",
            sid,
            state,
            limit,
            before,
        )
        return [dict(r) for r in rows]

    async def delivery(self, sid: uuid.UUID, did: int) -> dict[str, Any] | None:
        r = await self.pool.fetchrow(
            f"SELECT {DELIVERY_COLUMNS} FROM {self._s}.deliveries WHERE subscription_id = $1 AND id = $2", sid, did
        )
        return dict(r) if r else None

    async def attempts(self, did: int) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            f"SELECT n, at, outcome, status_code, latency_ms, error FROM {self._s}.attempts WHERE delivery_id = $1 "
            "ORDER BY n",
            did,
        )
        return [dict(r) for r in rows]

    async def settle_dead(self, sid: uuid.UUID, did: int, state: str, now: datetime) -> bool:
        """A dead delivery redriven (``pending``, its tries counted afresh) or skipped; False when it was not dead."""
        done = await self.pool.execute(
            f"UPDATE {self._s}.deliveries SET state = $3, tries = 0, next_at = $4, lease_until = NULL, "
            "done_at = CASE WHEN $3::text = 'skipped' THEN $4::timestamptz END WHERE subscription_id = $1 AND id = $2 AND state = 'dead'",
            sid,
            did,
            state,
            now,
        )
        return str(done) != "UPDATE 0"

    async def purge(self, before: datetime) -> int:
        """Delivered and skipped deliveries done before ``before`` go, with their attempts; how many."""
        done = await self.pool.execute(
            f"DELETE FROM {self._s}.deliveries WHERE state IN ('delivered', 'skipped') AND done_at < $1", before
        )
        return int(str(done).rsplit(" ", 1)[-1])

    async def dead_count(self) -> int:
        return int(await self.pool.fetchval(f"SELECT count(*) FROM {self._s}.deliveries WHERE state = 'dead'"))
