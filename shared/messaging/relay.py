"""The outbox relay: publishes every committed event of a service's store to its Kafka topic, in stream order.

- The event table is the outbox: an event is published if and only if its transaction committed.
- It tails the store in commit-safe order (``read_all``), so an event whose transaction commits late holds
  back everything after it instead of being skipped.
- One relay per service is active at a time: it holds a PostgreSQL advisory lock on its own connection;
  other relay processes wait as standbys and take over when that connection goes (crash, SIGKILL, network).
  Reads and checkpoint writes use that same connection, so a relay that lost its lock cannot move the
  checkpoint.
- Idempotent producer, ``acks=all``, key = stream id: Kafka keeps each stream's order. After a crash it resumes
  from its stored checkpoint, so events published but not yet checkpointed are published again: delivery is
  at least once, and consumers skip a (stream, version) they have already applied.
- It refuses to lead when its checkpoint is ahead of the cluster's transaction counter (a logical restore into
  a fresh cluster): new events would sort before the checkpoint and never be published (docs/OPERATIONS.md).
- Wakes on the store's NOTIFY, and polls as a fallback.
- One failed batch never republishes what Kafka acknowledged: a partition's next batch is sent only once its
  previous one is acknowledged (so a stream's v3 never lands when v2 failed), and the events acknowledged beyond
  the checkpoint are remembered and not sent again when the batch is retried. tests/integration/test_relay_order.py
  fails Produce requests on the wire (testkit/kafkaproxy.py) and checks every stream's order on the topic.
- It never skips an event. One that cannot be published (a record over the topic's ``max.message.bytes`` or the
  producer's ``max_request_size``: the store refuses such events at append, so only older data or a lowered limit
  makes one) stops the relay before it: everything before it is published, the relay reports itself stuck in its
  log, ``/readyz`` and ``pipelines_relay_stuck``, the backlog grows in ``pipelines_relay_backlog_events``, and an
  operator acts (docs/OPERATIONS.md, "An event the relay cannot publish"). It refuses to start when the topics or its
  producer take less than ``PIPELINES_MAX_EVENT_BYTES``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder

from shared.core.events import SCHEMA_ID_BASE
from shared.messaging.envelope import KAFKA_HEADERS
from shared.messaging.kafka import topic_configs
from shared.ops import tracing
from shared.ops.metrics import RELAY_BACKLOG, RELAY_BACKLOG_SECONDS, RELAY_PUBLISHED, RELAY_STUCK
from shared.store import START, Checkpoint, RecordedEvent
from shared.store.db import connect
from shared.store.migrations import Migration, apply
from shared.store.postgres import PostgresEventStore
from shared.store.wire import DEFAULT_MAX_EVENT_BYTES, envelope_json, record_bytes

__all__ = ["OutboxRelay", "envelope_json"]

log = structlog.get_logger(__name__)
LAG_EVERY_S = 5.0  # how often the leading relay measures its backlog for the metrics
HELD_BACK_POLL_S = 0.01  # how soon to look again when committed events wait behind an open transaction
STUCK_RETRY_S = 5.0  # a stuck relay looks again this often (the event may have been dealt with)
STUCK_LOG_EVERY_S = 60.0  # and says so in its log this often
FAILING_AFTER_S = 10.0  # publishing failing for longer than this makes the relay not ready
_PARTITIONER = DefaultPartitioner()  # what AIOKafkaProducer.send uses for keyed messages
# The first event past a checkpoint in commit order, asked after every batch. Not ``EXISTS (…)``: the planner drops an
# EXISTS subquery's ORDER BY and LIMIT, and the generic plan of the prepared statement (after its fifth run) read the
# whole events table for rows at its end: 4 ms a batch at 50,000 events, growing with the store (bench/pgcost.py).
HELD_BACK = "SELECT 1 FROM {schema}.events WHERE (tx_id, position) > ($1::xid8, $2) ORDER BY tx_id, position LIMIT 1"


@dataclass(frozen=True)
class Lag:
    events: int  # committed events not yet published
    seconds: float  # age of the oldest of them (0 when none)


class CheckpointAheadError(RuntimeError):
    """The stored checkpoint names a transaction the cluster has not reached: publishing would skip events."""


class RelayLimitsError(RuntimeError):
    """A topic or the producer takes smaller records than the store lets events be: the relay will not start."""


class UnpublishableEventError(RuntimeError):
    """The next event to publish is larger than Kafka takes: the relay stops before it, never skips it."""

    def __init__(self, event: RecordedEvent, size: int, limit: int, topic: str) -> None:
        super().__init__(
            f"event {event.event_id} ({event.event_type}, stream {event.stream_id} version {event.version}, "
            f"position {event.position}) is a {size:,}-byte record, over the {limit:,} bytes {topic} or the producer "
            "takes; nothing after it is published until an operator acts (docs/OPERATIONS.md, "
            "'An event the relay cannot publish')"
        )
        self.event = event
        self.size = size
        self.limit = limit


@dataclass(frozen=True)
class _Out:
    """An event as it goes to Kafka."""

    event: RecordedEvent
    topic: str
    key: bytes
    value: bytes


class _Sending:
    """A batch queued in the producer: one task per record batch, each partition's tasks chained in order."""

    def __init__(self, tasks: list[asyncio.Task[None]]) -> None:
        self.tasks = tasks

    async def acknowledged(self) -> None:
        """Return when every record batch is acknowledged. If one fails, wait until the others have settled (what
        was acknowledged is then known), and raise the first failure."""
        try:
            await asyncio.gather(*self.tasks)
        except BaseException:
            await self.settle()
            raise

    async def settle(self) -> None:
        await asyncio.gather(*self.tasks, return_exceptions=True)


class OutboxRelay:
    def __init__(
        self,
        store: PostgresEventStore,
        *,
        service: str,
        topic: str,
        bootstrap_servers: str,
        database_url: str,
        name: str = "relay",
        batch_size: int = 500,
        poll_interval: float = 1.0,
        kafka_options: dict[str, Any] | None = None,
        routes: dict[str, str] | None = None,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        max_request_size: int = 1_048_576,
        schema_base: str = SCHEMA_ID_BASE,
    ) -> None:
        """``routes``: event type prefix → topic, for events that go elsewhere than ``topic`` (alerts).
        ``max_event_bytes``: the store's limit, which every topic and the producer (``max_request_size``) must take.
        ``schema_base``: what the events' ``dataschema`` URIs start with (``Settings.schema_base_for``)."""
        self.store = store
        self.service = service
        self.topic = topic
        self.name = name
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.routes = routes or {}
        self.schema_base = schema_base
        self._bootstrap = bootstrap_servers
        self._dsn = database_url
        self._kafka_options = kafka_options or {}
        self._lock_id = zlib.crc32(f"{store.schema}.{name}".encode())
        self._conn: asyncpg.Connection | None = None
        self._producer: AIOKafkaProducer | None = None
        self._wake = asyncio.Event()
        self.max_event_bytes = max_event_bytes
        self.max_request_size = max_request_size
        self._limits: dict[str, int] = {}  # topic → the largest record it and the producer take
        self._ahead: tuple[list[_Out], _Sending] | None = None  # queued, not checkpointed
        self._acked: set[Any] = set()  # ids of events acknowledged by Kafka but not yet behind the checkpoint
        self._tails: dict[tuple[str, int], asyncio.Task[None]] = {}  # each partition's last record batch sent
        self.is_leader = False
        self.published = 0
        self.checkpoint = START
        self.stuck: UnpublishableEventError | None = None
        self._stuck_logged = 0.0
        self.failing_since: float | None = None
        self.last_error = ""

    async def setup(self) -> None:
        """The checkpoint table, made once (``shared.store.migrations``)."""
        checkpoints = f"""CREATE TABLE IF NOT EXISTS {self.store.schema}.relay_checkpoints (
                    name text PRIMARY KEY,
                    tx_id xid8 NOT NULL,
                    position bigint NOT NULL,
                    published bigint NOT NULL DEFAULT 0,
                    updated_at timestamptz NOT NULL DEFAULT now())"""
        await apply(self.store.pool, self.store.schema, [Migration("relay.0001", "relay checkpoints", checkpoints)])

    async def run(self, stop: asyncio.Event) -> None:
        """Wait for leadership, then publish until ``stop`` is set; reconnect after failures."""
        while not stop.is_set():
            try:
                if await self.lead(stop):
                    measured = 0.0
                    while not stop.is_set():
                        self._wake.clear()  # a NOTIFY from now on wakes the next sleep at once
                        n = await self.publish_batch()
                        if time.monotonic() - measured > LAG_EVERY_S:
                            await self.report_lag()
                            measured = time.monotonic()
                        if n < self.batch_size:
                            # Committed events an older open transaction still hides get no NOTIFY of their
                            # own when it ends: look again soon rather than at the next poll.
                            held = await self._held_back()
                            await self._sleep(stop, HELD_BACK_POLL_S if held else self.poll_interval)
            except RelayLimitsError as exc:  # a configuration an operator must change: do not run at all
                log.error("relay.limits", relay=self.name, error=str(exc))
                raise
            except CheckpointAheadError as exc:  # an operator must act; keep saying so
                self._failed(exc)
                log.error("relay.checkpoint_ahead", relay=self.name, error=str(exc))
                await _pause(stop, 10.0)
            except UnpublishableEventError as exc:  # stop before it, say so, look again now and then
                if (
                    self.stuck is None
                    or self.stuck.event.event_id != exc.event.event_id
                    or time.monotonic() - self._stuck_logged > STUCK_LOG_EVERY_S
                ):
                    log.error("relay.stuck", relay=self.name, service=self.service, error=str(exc))
                    self._stuck_logged = time.monotonic()
                self.stuck = exc
                RELAY_STUCK.labels(self.service).set(1)
                await self._report_lag_quietly()
                await _pause(stop, STUCK_RETRY_S)
            except Exception as exc:  # the database or Kafka failed: start over from the stored checkpoint
                self._failed(exc)
                log.warning("relay.error", relay=self.name, error=repr(exc))
                await self._report_lag_quietly()
                await _pause(stop, 1.0)
            finally:
                await self.close()

    def _failed(self, exc: BaseException) -> None:
        if self.failing_since is None:
            self.failing_since = time.monotonic()
        self.last_error = f"{type(exc).__name__}: {exc}"[:300]

    def _published_ok(self) -> None:
        if self.stuck is not None:
            log.info("relay.unstuck", relay=self.name, service=self.service)
            RELAY_STUCK.labels(self.service).set(0)
        self.stuck = None
        self.failing_since = None
        self.last_error = ""

    def readiness(self) -> str:
        """'ok' when publishing (or standing by); else why not, for /readyz."""
        if self.stuck is not None:
            return f"stuck: {self.stuck}"
        if self.failing_since is not None and time.monotonic() - self.failing_since > FAILING_AFTER_S:
            return f"failing for {time.monotonic() - self.failing_since:.0f} s: {self.last_error}"
        return "ok"

    async def _report_lag_quietly(self) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await self.report_lag()

    async def lead(self, stop: asyncio.Event | None = None) -> bool:
        """Connect and wait for the advisory lock; False if ``stop`` came first. Then ``publish_batch`` works."""
        stop = stop or asyncio.Event()
        if self._conn is None or self._conn.is_closed():
            self._conn = await connect(self._dsn)
            # Its only writes are checkpoints; one lost in a crash is published again (at least once), so the
            # next batch need not wait for a checkpoint's WAL flush (the store's appends stay synchronous).
            await self._conn.execute("SET synchronous_commit = off")
        while not stop.is_set():
            if await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self._lock_id):
                break
            await self._sleep(stop, self.poll_interval)
        else:
            return False
        self.is_leader = True
        await self._conn.add_listener(self.store.channel, self._on_notify)
        row = await self._conn.fetchrow(
            f"SELECT tx_id, position FROM {self.store.schema}.relay_checkpoints WHERE name = $1", self.name
        )
        self.checkpoint = Checkpoint(row["tx_id"], row["position"]) if row else START
        next_tx = await self._conn.fetchval("SELECT pg_snapshot_xmax(pg_current_snapshot())")
        if int(self.checkpoint.tx) >= int(next_tx):
            raise CheckpointAheadError(
                f"relay {self.name!r} of {self.service}: checkpoint transaction {self.checkpoint.tx} is ahead of "
                f"this cluster's next transaction id {next_tx} (a logical restore into a fresh cluster?); new "
                "events would never be published. Advance the counter past it (pg_resetwal -x) before writing "
                "(docs/OPERATIONS.md, Backups and restore)."
            )
        await self._check_limits()
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            # a record batch goes whole to a topic: no larger than the smallest topic takes
            max_batch_size=min(262144, *self._limits.values()),
            max_request_size=self.max_request_size,
            client_id=f"pipelines-{self.service}-{self.name}",
            **self._kafka_options,
        )
        await self._producer.start()
        log.info("relay.leading", relay=self.name, service=self.service, checkpoint=tuple(self.checkpoint))
        return True

    async def _check_limits(self) -> None:
        """Every topic this relay writes, and its producer, must take the largest event the store lets in."""
        topics = sorted({self.topic, *self.routes.values()})
        configured = await topic_configs(self._bootstrap, topics, "max.message.bytes", **self._kafka_options)
        self._limits = {t: min(int(configured[t]), self.max_request_size) for t in topics}
        small = {t: n for t, n in self._limits.items() if n < self.max_event_bytes}
        if small:
            raise RelayLimitsError(
                f"the store lets events be {self.max_event_bytes:,}-byte records (PIPELINES_MAX_EVENT_BYTES) but "
                + ", ".join(f"{t} takes {n:,}" for t, n in small.items())
                + f" (max.message.bytes of the topic, and the producer's {self.max_request_size:,}: "
                "PIPELINES_KAFKA_MAX_REQUEST_SIZE); raise them or lower the store's limit (docs/OPERATIONS.md)"
            )

    def _on_notify(self, *_: Any) -> None:
        self._wake.set()

    async def _held_back(self) -> bool:
        """Are there events past the checkpoint that the commit-safe read could not see yet?"""
        assert self._conn is not None, "not leading"
        first = await self._conn.fetchval(
            HELD_BACK.format(schema=self.store.schema), self.checkpoint.tx, self.checkpoint.position
        )
        return first is not None

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        """Until a NOTIFY (since the last clear), ``stop``, or ``seconds`` have passed."""
        waits = [asyncio.create_task(self._wake.wait()), asyncio.create_task(stop.wait())]
        _, pending = await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for t in pending:
            t.cancel()

    async def publish_batch(self) -> int:
        """Publish the next batch and move the checkpoint past it; returns how many were published.

        While a backlog drains, the batch after it is read and queued before this one's acknowledgements are
        awaited, so one batch may be in flight beyond the checkpoint (resent after a crash: at least once)."""
        assert self._conn is not None, "not leading"
        assert self._producer is not None, "not leading"
        if self._ahead is not None:
            out, sending = self._ahead
            self._ahead = None
        else:
            out = await self._next(self.checkpoint)
            if not out:
                self._published_ok()
                return 0
            sending = await self._send(out)
        try:
            if len(out) == self.batch_size:  # a backlog: read and queue the next batch while this one is acked
                following = await self._next(out[-1].event.checkpoint, stop_quietly=True)
                if following:
                    self._ahead = (following, await self._send(following))
            await sending.acknowledged()
        except BaseException:
            await self._drop_ahead()  # never checkpoint past a batch that failed; what was acked is remembered
            raise
        last = out[-1].event.checkpoint
        await self._conn.execute(
            f"""INSERT INTO {self.store.schema}.relay_checkpoints (name, tx_id, position, published)
                VALUES ($1, $2::xid8, $3, $4)
                ON CONFLICT (name) DO UPDATE SET tx_id = $2::xid8, position = $3,
                    published = relay_checkpoints.published + $4, updated_at = now()""",
            self.name,
            last.tx,
            last.position,
            len(out),
        )
        self.checkpoint = last
        self._acked.difference_update(o.event.event_id for o in out)
        self.published += len(out)
        RELAY_PUBLISHED.labels(self.service).inc(len(out))
        self._published_ok()
        return len(out)

    async def _next(self, after: Checkpoint, *, stop_quietly: bool = False) -> list[_Out]:
        """The next events after ``after`` as records, up to the first one Kafka would refuse (which raises
        ``UnpublishableEventError`` when it comes first, unless ``stop_quietly``: the batch ahead leaves it to the
        next read)."""
        assert self._conn is not None, "not leading"
        out: list[_Out] = []
        for e in await self.store.read_all(after, limit=self.batch_size, conn=self._conn):
            topic = self._topic_of(e.event_type)
            e = tracing.publishing(e, topic)  # traced: carries its producer span's context (decision 0027)
            key, value = e.stream_id.encode(), envelope_json(e, self.service, self.schema_base)
            size, limit = record_bytes(value, key), self._limits.get(topic, self.max_request_size)
            if size > limit:
                if out or stop_quietly:
                    break
                raise UnpublishableEventError(e, size, limit, topic)
            out.append(_Out(e, topic, key, value))
        return out

    async def _send(self, out: list[_Out]) -> _Sending:
        """Queue the records in order, one record batch per partition (and more when one fills): the same
        partition (the default partitioner's murmur2 of the key), bytes and order as ``send`` per event, at a
        fraction of its cost. A partition's record batch goes to the producer only once the one before it on that
        partition (of this batch or the one before) is acknowledged; events already acknowledged are not sent."""
        producer = self._producer
        assert producer is not None, "not leading"
        builders: dict[tuple[str, int], BatchBuilder] = {}
        events: dict[tuple[str, int], list[Any]] = {}
        partitions: dict[str, list[int]] = {}
        owner: dict[tuple[str, bytes], int] = {}  # a stream's events sit together: hash its key once
        tasks: list[asyncio.Task[None]] = []
        for o in out:
            if o.event.event_id in self._acked:
                continue
            if o.topic not in partitions:
                partitions[o.topic] = sorted(await producer.partitions_for(o.topic))
            if (o.topic, o.key) not in owner:
                owner[o.topic, o.key] = _PARTITIONER(o.key, partitions[o.topic], partitions[o.topic])
            tp = (o.topic, owner[o.topic, o.key])
            builder = builders.get(tp)
            if (
                builder is None
                or builder.append(key=o.key, value=o.value, timestamp=None, headers=KAFKA_HEADERS) is None
            ):
                if builder is not None:  # full: queue it, go on in a new one
                    tasks.append(self._queue(builder, tp, events.pop(tp)))
                builder = builders[tp] = producer.create_batch()
                if builder.append(key=o.key, value=o.value, timestamp=None, headers=KAFKA_HEADERS) is None:
                    raise ValueError(f"event {o.event.event_id} does not fit in a Kafka record batch")
            events.setdefault(tp, []).append(o.event.event_id)
        tasks.extend(self._queue(builder, tp, events[tp]) for tp, builder in builders.items())
        return _Sending(tasks)

    def _queue(self, builder: BatchBuilder, tp: tuple[str, int], ids: list[Any]) -> asyncio.Task[None]:
        """Send ``builder`` to ``tp`` once the partition's previous record batch is acknowledged; remember its
        events as acknowledged when it is. If the previous one failed, this one is not sent."""
        previous = self._tails.get(tp)

        async def send() -> None:
            if previous is not None:
                await previous  # raises if it failed: a stream's later version never goes before an earlier one
            assert self._producer is not None, "not leading"
            await (await self._producer.send_batch(builder, tp[0], partition=tp[1]))
            self._acked.update(ids)

        task = self._tails[tp] = asyncio.ensure_future(send())
        return task

    async def report_lag(self) -> Lag:
        lag = await self.lag()
        RELAY_BACKLOG.labels(self.service).set(lag.events)
        RELAY_BACKLOG_SECONDS.labels(self.service).set(lag.seconds)
        return lag

    def _topic_of(self, event_type: str) -> str:
        return next((t for prefix, t in self.routes.items() if event_type.startswith(prefix)), self.topic)

    async def lag(self) -> Lag:
        """Committed events after the stored checkpoint, and how old the oldest is."""
        s = self.store.schema
        # The checkpoint read first and the count planned for its values: with the bound unknown when planning (a
        # subquery's, or a prepared statement's generic plan) the count read the whole table every LAG_EVERY_S.
        async with self.store.pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
            at = await conn.fetchrow(f"SELECT tx_id, position FROM {s}.relay_checkpoints WHERE name = $1", self.name)
            row = await conn.fetchrow(
                f"""SELECT count(*) AS n, min(recorded_at) AS oldest FROM {s}.events
                    WHERE (tx_id, position) > ($1::xid8, $2)""",
                *((at["tx_id"], at["position"]) if at else START),
            )
        assert row is not None
        oldest = row["oldest"]
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
        return Lag(events=row["n"], seconds=max(age, 0.0))

    async def _drop_ahead(self) -> None:
        """Forget the batch queued ahead once its record batches have settled: it is not checkpointed, so it is read
        again, and only what Kafka did not acknowledge is sent again."""
        if self._ahead is not None:
            sending, self._ahead = self._ahead[1], None
            await sending.settle()

    async def close(self) -> None:
        await self._drop_ahead()
        self._tails.clear()
        if self._producer is not None:
            producer, self._producer = self._producer, None
            with contextlib.suppress(Exception):
                await producer.stop()
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):
                await conn.close()  # the advisory lock goes with the session
        self.is_leader = False


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    """Until ``stop`` or ``seconds`` have passed (not woken by NOTIFY: appends go on while the relay cannot)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
