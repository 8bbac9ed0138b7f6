"""The projection runner: Kafka consumer groups that apply events to read-model tables, exactly once in effect.

How the runner keeps its promises:

- **Exactly-once effect.** Each batch runs in one PostgreSQL transaction that also records, per stream, the
  last version applied. An event at or below that version is skipped, so a redelivered or replayed event has
  no second effect. The progress rows of the batch's streams are locked first (in stream order), so two
  consumers briefly owning one partition during a rebalance cannot both apply an event; a stream new to the read
  model gets its row at the end of the batch, and a batch that finds it taken by then is rolled back and read
  again. Kafka offsets are committed only after the transaction commits, at most once a second while busy (a
  restart re-reads what came after and skips it, counting it in ``pipelines_projection_duplicates_total``:
  tests/faults/test_projector_replay.py kills a projector between the two), and for the partitions a rebalance
  takes away, as it takes them (``_Offsets``).
- **Batches.** One transaction per batch: up to ``batch_size`` events, or ``catch_up_batch_size`` while the
  consumer is further behind than that (a rebuild, a catch-up); a small live batch waits ``LINGER_S`` for what comes
  next (``_linger``: fewer, larger transactions). If an event fails (or cannot be parsed to
  its type), the batch is rolled back and replayed one event at a time in savepoints, and the
  failing event goes to the dead-letter topic with its reason (its stream's progress moves past it). A
  message that is not a CloudEvent of a known type goes there too. The runner goes on.
- **Generations and rebuilds.** Each generation of a read model lives in its own schema
  (``<namespace>__<projection>__g<N>``) and has its own consumer group reading its topics from the beginning.
  ``request_rebuild`` registers a new generation; every projector process starts consuming it while the
  active one keeps serving; once its group has reached the active group's committed offsets on every
  partition, it is swapped in (one UPDATE) and the old one is retired, then dropped.
- **Gaps stop a partition.** A stream's events arrive in version order (one partition per stream). An event
  whose version is past the next one expected (the one before it never came: a damaged topic) is not applied:
  its partition stops there (the rest go on), the runner logs ``projection.gap``, sets
  ``pipelines_projection_stalled_partitions`` and answers not ready, and looks now and then further along the
  partition for the missing version. Once it is there (``pipelines relay republish`` publishes a stream again
  from the store), the partition goes on from where it stopped, and the stream's versions that came too early are
  passed over until the missing one is applied. A dead-lettered event counts as seen: it is no gap.
- **Read your writes.** ``ReadModels.connection(name, wait_for=(stream_id, version))`` waits, bounded, until
  the active generation has applied that version of that stream.
"""

# long because: one consumer-group state machine per read model (generations, batches, gaps, dead letters) whose
# parts share its state and invariants; split, they would hand that state back and forth.

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from prometheus_client import Gauge
from pydantic import ValidationError

from shared.messaging.aligned import Aligned
from shared.messaging.decoded import Parsed, Reader, Window, decode_alone
from shared.messaging.envelope import CloudEvent
from shared.messaging.kafka import admin_client, stop_consumer, subscribe_when_present
from shared.messaging.projections import (
    PROGRESS_DDL,
    REGISTRY_DDL,
    Fact,
    Projection,
    _set_search_path,
    generation_schema,
)
from shared.ops import tracing
from shared.ops.metrics import (
    CONSUMER_LAG,
    DEAD_LETTERS,
    PROJECTION_APPLIED,
    PROJECTION_DUPLICATES,
    PROJECTION_GENERATION,
    PROJECTION_STALLED,
    PROJECTION_WAITING,
)
from shared.store import StaleTransactionError
from shared.store.db import Conn, identifier
from shared.store.migrations import Migration, checksum
from shared.store.migrations import apply as apply_migrations

log = structlog.get_logger(__name__)
COMMIT_EVERY_S = 1.0  # how often a busy consumer commits its Kafka offsets
GAP_RECHECK_S = 15.0  # how often a partition stopped at a gap looks for the missing version further along it
GAP_SCAN_S = 10.0  # how long one look may take
LINGER_S = 0.01  # how long a small live batch waits for more events before it is applied (see _linger)
LINGER_BELOW = 100  # a live batch of fewer events than this is small
COLLECT_EVERY_S = 10.0  # in a catch-up the cyclic collector stays paused between batches, for at most this long


@dataclass
class GenerationStats:
    generation: int
    state: str
    applied: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    gaps: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def events_per_second(self) -> float:
        elapsed = time.monotonic() - self.started
        return (self.applied + self.skipped) / elapsed if elapsed > 0 else 0.0


@dataclass(frozen=True)
class Gap:
    """Where a partition stopped: the first event of a stream past the version expected next."""

    topic: str
    partition: int
    offset: int
    stream_id: str
    expected: int
    got: int

    def __str__(self) -> str:
        return (
            f"{self.topic}/{self.partition} stopped at offset {self.offset}: stream {self.stream_id} "
            f"version {self.got} came before version {self.expected}"
        )


@dataclass(frozen=True)
class _DeadLetter:
    record: ConsumerRecord[bytes, bytes]
    reason: str


class _ProgressRace(Exception):  # noqa: N818 - another consumer applied a new stream's events meanwhile
    pass


# The database went away, or a deadlock or serialization failure, or a reaction's transaction too old to append to a
# stream a younger one wrote (StaleTransactionError), or another consumer's batch took a new stream meanwhile
# (_ProgressRace): retry in a new transaction, never dead-letter.
_RETRYABLE = (
    asyncpg.InterfaceError,
    asyncpg.exceptions.TransactionRollbackError,
    OSError,
    StaleTransactionError,
    _ProgressRace,
)


class _Rejected(Exception):  # noqa: N818 - an event that cannot be applied; its reason goes to the DLQ
    pass


class ProjectionRunner:
    """Runs one projection's generations in this process; more processes share the partitions."""

    assignor: type[AbstractPartitionAssignor] = Aligned  # this process's; a test holding two sets its own

    def __init__(
        self,
        pool: asyncpg.Pool,
        projection: Projection,
        *,
        namespace: str,
        bootstrap_servers: str,
        dead_letter_topic: str,
        group_prefix: str | None = None,
        batch_size: int = 500,
        catch_up_batch_size: int = 10_000,
        poll_interval: float = 1.0,
        drop_retired_after_s: float = 30.0,
        kafka_options: dict[str, Any] | None = None,
        window: Window | None = None,
    ) -> None:
        self.pool = pool
        self.projection = projection
        self.namespace = identifier(namespace)
        self.bootstrap_servers = bootstrap_servers
        self.dead_letter_topic = dead_letter_topic
        self.group_prefix = group_prefix or f"pipelines.{namespace}"
        self.batch_size = batch_size
        self.catch_up_batch_size = catch_up_batch_size
        self.poll_interval = poll_interval
        self.drop_retired_after_s = drop_retired_after_s
        self.kafka_options = kafka_options or {}
        # the process's decoded records, shared with its other runners (ServiceCore.runners; decision 0034)
        self.window = Window() if window is None else window
        self._readers: dict[int, Reader] = {}  # generation → its consumer's reader of the window
        self.stats: dict[int, GenerationStats] = {}
        self._consumers: dict[int, asyncio.Task[None]] = {}
        self._stops: dict[int, asyncio.Event] = {}
        self._positions: dict[int, dict[TopicPartition, tuple[int, int]]] = {}
        self._producer: AIOKafkaProducer | None = None
        self.gaps: dict[int, dict[TopicPartition, Gap]] = {}  # generation → the partitions stopped at a gap
        # generation → stream → the version up to which its early arrivals are passed over (the missing one came)
        self._held: dict[int, dict[str, int]] = {}
        self.waiting: dict[int, list[str]] = {}  # generation → the topics it reads that are not made yet

    def group_id(self, generation: int) -> str:
        return f"{self.group_prefix}.{self.projection.name}.g{generation}"

    def schema(self, generation: int) -> str:
        return generation_schema(self.namespace, self.projection.name, generation)

    # ------------------------------------------------------------------ lifecycle
    async def setup(self) -> None:
        """Create the registry and, on first start, generation 1 as the active read model. Tables are made once
        (``shared.store.migrations``): a start that finds them runs no DDL."""
        ns, name = self.namespace, self.projection.name
        registry = Migration("projections.0001", "projection generations", REGISTRY_DDL.format(ns=ns))
        await apply_migrations(self.pool, ns, [registry])
        active_sql = f"SELECT generation FROM {ns}.projection_generations WHERE projection = $1 AND state = 'active'"
        active = await self.pool.fetchval(active_sql, name)
        if active is None:  # the first start (of one process or of several together)
            await self.pool.execute(
                f"""INSERT INTO {ns}.projection_generations (projection, generation, state, activated_at)
                    SELECT $1, 1, 'active', now() WHERE NOT EXISTS
                        (SELECT 1 FROM {ns}.projection_generations WHERE projection = $1)
                    ON CONFLICT DO NOTHING""",
                name,
            )
            active = await self.pool.fetchval(active_sql, name)
        if active is not None:  # queries can run as soon as setup returns
            await self._create_generation_tables(active)

    async def _create_generation_tables(self, generation: int) -> None:
        """A generation's tables, made once per generation schema: its progress table, then the projection's DDL as
        a migration named by its checksum (a projection whose DDL changed gets the new DDL applied, once)."""
        schema = self.schema(generation)
        migrations = [Migration("projections.progress.0001", "projection progress", PROGRESS_DDL.format(schema=schema))]
        if self.projection.ddl.strip():
            ddl = self.projection.ddl
            migrations.append(Migration(f"projections.ddl.{checksum(ddl)[:16]}", f"{self.projection.name} tables", ddl))
        await apply_migrations(self.pool, schema, migrations)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume every live generation until ``stop``; swap in a rebuilt one when it has caught up."""
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers, enable_idempotence=True, acks="all", **self.kafka_options
        )
        await self._producer.start()
        try:
            while not stop.is_set():
                try:
                    await self._reconcile()
                except Exception as exc:  # PostgreSQL restarting: the pool reconnects, the next round goes on
                    log.warning("projection.reconcile_failed", projection=self.projection.name, error=repr(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.poll_interval)
        finally:
            for g in list(self._consumers):
                await self._stop_generation(g)
            await self._producer.stop()

    async def _generations(self) -> list[asyncpg.Record]:
        async with self.pool.acquire() as conn:
            return list(
                await conn.fetch(
                    f"""SELECT generation, state, retired_at FROM {self.namespace}.projection_generations
                        WHERE projection = $1 ORDER BY generation""",
                    self.projection.name,
                )
            )

    async def _reconcile(self) -> None:
        rows = await self._generations()
        live = {r["generation"]: r["state"] for r in rows if r["state"] in ("active", "building")}
        for g in list(self._consumers):
            if g not in live:
                await self._stop_generation(g)
        for g, state in live.items():
            task = self._consumers.get(g)
            if task is not None and task.done():
                if not task.cancelled() and task.exception() is not None:
                    log.warning(
                        "projection.consumer_failed", projection=self.projection.name, error=repr(task.exception())
                    )
                await self._stop_generation(g)
                task = None
            if task is None:
                await self._start_generation(g, state)
            if self.stats[g].state != state:  # swapped in: its lag goes on under the new state
                self._end_lag(g)
            self.stats[g].state = state
        building = [g for g, s in live.items() if s == "building"]
        active = [g for g, s in live.items() if s == "active"]
        if building and active and await self._caught_up(building[0], active[0]):
            await self._swap(building[0], active[0])
        now = datetime.now(UTC)
        for r in rows:
            if r["state"] == "retired" and (now - r["retired_at"]).total_seconds() >= self.drop_retired_after_s:
                await self._drop(r["generation"])

    async def _start_generation(self, generation: int, state: str) -> None:
        await self._create_generation_tables(generation)
        stop = asyncio.Event()
        self._stops[generation] = stop
        self.stats.setdefault(generation, GenerationStats(generation, state))
        self._consumers[generation] = asyncio.create_task(self._consume(generation, stop))
        PROJECTION_GENERATION.labels(self.namespace, self.projection.name).inc()

    async def _stop_generation(self, generation: int) -> None:
        self._stops.pop(generation, asyncio.Event()).set()
        task = self._consumers.pop(generation, None)
        if task is not None:
            PROJECTION_GENERATION.labels(self.namespace, self.projection.name).dec()
            with contextlib.suppress(Exception):
                await task

    # ------------------------------------------------------------------ swap and drop
    async def _committed(self, generation: int) -> dict[TopicPartition, int]:
        async with admin_client(self.bootstrap_servers, **self.kafka_options) as admin:
            offsets = await admin.list_consumer_group_offsets(self.group_id(generation))
        return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}

    async def _end_offsets(self) -> dict[TopicPartition, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap_servers, **self.kafka_options)
        await consumer.start()
        try:
            tps = [
                TopicPartition(t, p)
                for t in self.projection.topics
                for p in sorted(await _partitions(self.bootstrap_servers, t, **self.kafka_options))
            ]
            return dict(await consumer.end_offsets(tps)) if tps else {}
        finally:
            await stop_consumer(consumer)

    async def _caught_up(self, building: int, active: int) -> bool:
        """Has the new generation's group reached the active group's offsets on every partition?"""
        new, old, end = await self._committed(building), await self._committed(active), await self._end_offsets()
        return all(new.get(tp, 0) >= min(old.get(tp, 0), end_offset) for tp, end_offset in end.items())

    async def _swap(self, building: int, active: int) -> None:
        ns = self.namespace
        async with self.pool.acquire() as conn, conn.transaction():
            swapped = await conn.fetchval(
                f"""WITH retired AS (
                        UPDATE {ns}.projection_generations SET state = 'retired', retired_at = now()
                        WHERE projection = $1 AND generation = $2 AND state = 'active' RETURNING 1)
                    SELECT count(*) FROM retired""",
                self.projection.name,
                active,
            )
            if swapped:
                await conn.execute(
                    f"""UPDATE {ns}.projection_generations SET state = 'active', activated_at = now()
                        WHERE projection = $1 AND generation = $2 AND state = 'building'""",
                    self.projection.name,
                    building,
                )
        if swapped:
            log.info("projection.swapped", projection=self.projection.name, active=building, retired=active)

    async def _drop(self, generation: int) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(f"DROP SCHEMA IF EXISTS {self.schema(generation)} CASCADE")
            await conn.execute(
                f"""UPDATE {self.namespace}.projection_generations SET state = 'dropped'
                    WHERE projection = $1 AND generation = $2""",
                self.projection.name,
                generation,
            )

    # ------------------------------------------------------------------ consuming
    @contextlib.contextmanager
    def reading(self, generation: int) -> Iterator[Reader]:
        """While a generation's consumer reads: its reader of the process's window, through which ``process`` decodes
        (testkit/batches.py ``apply_together`` holds several without consumers)."""
        reader = self._readers[generation] = self.window.reader(self.projection.topics, self.projection.accepts)
        try:
            yield reader
        finally:
            reader.close()
            if self._readers.get(generation) is reader:
                del self._readers[generation]

    def group_consumer(self, generation: int) -> AIOKafkaConsumer:
        """The consumer of the generation's group, as ``_consume`` reads with it (not started)."""
        return AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            group_id=self.group_id(generation),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id=f"{self.group_id(generation)}",
            # each partition in the same process for every projection, so that they share its decode (0035)
            partition_assignment_strategy=(self.assignor,),
            **self.kafka_options,
        )

    async def _consume(self, generation: int, stop: asyncio.Event) -> None:
        consumer = self.group_consumer(generation)
        await consumer.start()
        positions = self._positions.setdefault(generation, {})
        gaps = self.gaps.setdefault(generation, {})
        gaps.clear()
        looked = time.monotonic()
        # Offsets are committed at most every COMMIT_EVERY_S while busy, at once when idle, and as a rebalance takes
        # their partitions: progress in PostgreSQL is what makes an event apply once, offsets only say where to
        # resume reading.
        offsets = _Offsets(consumer, self.projection.name)
        pending = offsets.pending
        try:
            with self.reading(generation) as reader:
                if not await subscribe_when_present(
                    consumer,
                    self.projection.topics,
                    stop,
                    who=self.group_id(generation),
                    missing=functools.partial(self._waiting, generation),  # what /readyz and the gauge say it waits for
                    listener=offsets,
                ):
                    return
                while not stop.is_set():
                    behind = sum(max(high - pos, 0) for pos, high in positions.values()) > self.batch_size
                    batches = await consumer.getmany(
                        timeout_ms=200, max_records=self.catch_up_batch_size if behind else self.batch_size
                    )
                    batches = await _linger(consumer, batches, self.batch_size, behind=behind)
                    records = [r for rs in batches.values() for r in rs]
                    if not records:
                        _collector_given_back(after_s=COLLECT_EVERY_S)  # a catch-up's pause ends, even with no batch
                    else:
                        if behind:  # the process's other projections reading the topic come along (0034)
                            await reader.pace(batches)
                        with offsets.applying():  # a rebalance waits for the batch, then commits its revoked offsets
                            stopped = await self.process(generation, records, catching_up=behind)
                            pending.update({tp: rs[-1].offset + 1 for tp, rs in batches.items()})
                            self._stop_at(consumer, stopped, pending, gaps)
                    if gaps and time.monotonic() - looked >= GAP_RECHECK_S:
                        looked = time.monotonic()
                        for tp, gap in list(gaps.items()):
                            if await self._missing_came(gap):
                                log.info("projection.gap_mended", projection=self.projection.name, gap=str(gap))
                                self._held.setdefault(generation, {})[gap.stream_id] = gap.got
                                del gaps[tp]
                                self._gap_metric(tp, 0)
                                consumer.seek(tp, gap.offset)
                                consumer.resume(tp)
                    if pending and (not records or time.monotonic() - offsets.committed_at >= COMMIT_EVERY_S):
                        await offsets.commit()
                    for tp in consumer.assignment():
                        positions[tp] = (await consumer.position(tp), consumer.highwater(tp) or 0)
                        self._lag_metric(generation, tp).set(max(positions[tp][1] - positions[tp][0], 0))
                if pending:
                    await offsets.commit()
        finally:
            self._waiting(generation, [])
            for tp in gaps:
                self._gap_metric(tp, 0)  # the next owner of the partition meets the gap again
            if self.stats[generation].state == "building":  # a rebuild's lag ends with it; the live one goes on
                self._end_lag(generation)
            await stop_consumer(consumer)

    def _stop_at(
        self,
        consumer: AIOKafkaConsumer,
        stopped: list[Gap],
        pending: dict[TopicPartition, int],
        gaps: dict[TopicPartition, Gap],
    ) -> None:
        """Each partition a batch met a gap in stops there: read from the gap on when the missing version came."""
        for gap in stopped:
            tp = TopicPartition(gap.topic, gap.partition)
            consumer.seek(tp, gap.offset)
            consumer.pause(tp)
            pending[tp] = gap.offset
            gaps[tp] = gap
            self._gap_metric(tp, 1)

    def _lag_metric(self, generation: int, tp: TopicPartition) -> Gauge:
        """A generation's lag, labelled with its state: a rebuild's never mixes with the live one's."""
        state = self.stats[generation].state
        return CONSUMER_LAG.labels(self.namespace, self.projection.name, state, tp.topic, str(tp.partition))

    def _end_lag(self, generation: int) -> None:
        for tp in self._positions.get(generation, {}):
            self._lag_metric(generation, tp).set(0)

    def _gap_metric(self, tp: TopicPartition, value: int) -> None:
        PROJECTION_STALLED.labels(self.namespace, self.projection.name, tp.topic, str(tp.partition)).set(value)

    async def _missing_came(self, gap: Gap) -> bool:
        """Is the missing version of the gap's stream further along its partition now (republished)?"""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False, **self.kafka_options
        )
        await consumer.start()
        try:
            tp = TopicPartition(gap.topic, gap.partition)
            consumer.assign([tp])
            consumer.seek(tp, gap.offset)
            end = (await consumer.end_offsets([tp]))[tp]
            key = gap.stream_id.encode()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(GAP_SCAN_S):
                    while await consumer.position(tp) < end:
                        for r in (await consumer.getmany(tp, timeout_ms=500)).get(tp, []):
                            if r.key == key and r.offset < end:
                                with contextlib.suppress(ValidationError, ValueError):
                                    if CloudEvent.from_kafka(r.value).streamversion == gap.expected:
                                        return True
            return False
        finally:
            await stop_consumer(consumer)

    def _waiting(self, generation: int, topics: list[str]) -> None:
        self.waiting[generation] = topics
        PROJECTION_WAITING.labels(self.namespace, self.projection.name).set(int(any(self.waiting.values())))

    def readiness(self) -> str:
        """'ok', or the partitions stopped at a gap, for /readyz. Waiting for a topic not made yet is ready (the read
        model serves what it has; failing would hold back a start where it comes before the topic's service): the
        answer says so after 'ok; '."""
        stopped = [str(g) for gaps in self.gaps.values() for g in gaps.values()]
        if stopped:
            return f"stopped at a gap: {'; '.join(stopped)}"
        waits = sorted({t for topics in self.waiting.values() for t in topics})
        return f"ok; waiting for topics: {', '.join(waits)}" if waits else "ok"

    async def process(
        self, generation: int, records: Sequence[ConsumerRecord[bytes, bytes]], *, catching_up: bool = False
    ) -> list[Gap]:
        """Apply a batch in one transaction (events one by one in savepoints if any fails), then dead-letter.
        Returns the gaps met: their partitions' records from the gap on were not applied. ``catching_up``: the
        collector's pause may outlast the batch (``_collector_paused``)."""
        stats = self.stats.setdefault(generation, GenerationStats(generation, "active"))
        with _collector_paused(hold=catching_up):
            # parsed and typed before the transaction begins: an open transaction holds back every relay's tailing
            # msgspec-fast, typed only for the types this read model takes (0031), once per process (0034)
            reader = self._readers.get(generation)
            parsed, bad = reader.decode(records) if reader else decode_alone(records, self.projection.accepts)
            unparsed = [_DeadLetter(r, f"not a CloudEvent: {_short(exc)}") for r, exc in bad]
            dead = list(unparsed)
            gaps: list[Gap] = []
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    await self._apply_batch(conn, generation, parsed, stats, dead, gaps, isolate=False)
            except _Rejected:
                dead, gaps = list(unparsed), []
                async with self.pool.acquire() as conn, conn.transaction():
                    await self._apply_batch(conn, generation, parsed, stats, dead, gaps, isolate=True)
            del parsed  # freed while paused: the collector would otherwise walk the whole batch once more
        stopped = {(g.topic, g.partition): g.offset for g in gaps}
        dead = [
            d for d in dead if d.record.offset < stopped.get((d.record.topic, d.record.partition), d.record.offset + 1)
        ]
        await self._dead_letter(dead)
        stats.dead_lettered += len(dead)
        if dead:
            DEAD_LETTERS.labels(self.namespace, self.projection.name).inc(len(dead))
        for gap in gaps:
            stats.gaps += 1
            log.error("projection.gap", projection=self.projection.name, generation=generation, gap=str(gap))
        return gaps

    async def _apply_batch(
        self,
        conn: Conn,
        generation: int,
        parsed: Sequence[Parsed],
        stats: GenerationStats,
        dead: list[_DeadLetter],
        gaps: list[Gap],
        *,
        isolate: bool,
    ) -> None:
        await _begin_batch(conn, self.schema(generation))
        streams = sorted({e.streamid for _, e, _ in parsed})
        # The batch's streams that have a progress row, locked in stream order (no deadlock between two consumers
        # briefly owning a partition), with the version each has applied; a stream without one has applied none.
        known: dict[str, int] = {
            row["stream_id"]: row["version"]
            for row in await conn.fetch(
                """SELECT stream_id, version FROM projection_progress WHERE stream_id = ANY($1::text[])
                   ORDER BY stream_id COLLATE "C" FOR UPDATE""",
                streams,
            )
        }
        progress = dict.fromkeys(streams, 0) | known
        touched: dict[str, int] = {}
        applied = skipped = seen_before = 0
        batch: list[Fact] = []
        held = self._held.get(generation, {})
        stopped: set[tuple[str, int]] = set()
        for r, envelope, fact in parsed:
            if stopped and (r.topic, r.partition) in stopped:
                continue
            seen = progress[envelope.streamid]
            if envelope.streamversion <= seen:  # applied before: a redelivery, or read again after a restart
                skipped += 1
                seen_before += 1
                continue
            if envelope.streamversion > seen + 1:
                if seen < held.get(envelope.streamid, 0):  # came too early; the missing version comes later
                    skipped += 1
                    continue
                gaps.append(Gap(r.topic, r.partition, r.offset, envelope.streamid, seen + 1, envelope.streamversion))
                stopped.add((r.topic, r.partition))
                continue
            progress[envelope.streamid] = touched[envelope.streamid] = envelope.streamversion
            applied += 1  # an event of a type this read model does not take (no fact) is applied as nothing
            if fact is None:
                continue
            if isinstance(fact, Exception):  # it could not be typed
                if not isolate:
                    raise _Rejected from fact
                dead.append(_DeadLetter(r, f"{type(fact).__name__}: {_short(fact)}"))
                applied -= 1
                continue
            if not isolate:
                batch.append(fact)
            elif (reason := await self._apply_one(conn, fact)) is not None:
                dead.append(_DeadLetter(r, reason))
                applied -= 1
        if batch:
            await self._apply_many(conn, batch)
        if touched:
            await _record_progress(conn, touched, known)
        stats.applied += applied
        stats.skipped += skipped
        PROJECTION_APPLIED.labels(self.namespace, self.projection.name).inc(applied)
        PROJECTION_DUPLICATES.labels(self.namespace, self.projection.name).inc(seen_before)

    async def _apply_many(self, conn: Conn, facts: list[Fact]) -> None:
        """The batch in one call; any failure but a retryable one rejects the batch (applied again one by one)."""
        try:
            with tracing.applying(facts, f"{self.namespace}.{self.projection.name}"):  # a span when on (0027)
                await self.projection.apply(conn, facts)
        except _RETRYABLE:
            raise  # not the events' fault: the consumer restarts and the batch is read again
        except Exception as exc:
            raise _Rejected from exc

    async def _apply_one(self, conn: Conn, fact: Fact) -> str | None:
        """One event in its own savepoint: None when applied, else why not."""
        try:
            async with conn.transaction():
                with tracing.applying([fact], f"{self.namespace}.{self.projection.name}"):
                    await self.projection.apply(conn, [fact])
        except _RETRYABLE:
            raise
        except Exception as exc:
            return f"{type(exc).__name__}: {_short(exc)}"
        return None

    async def _dead_letter(self, dead: list[_DeadLetter]) -> None:
        if not dead:
            return
        assert self._producer is not None
        for d in dead:
            log.warning(
                "projection.dead_letter",
                projection=self.projection.name,
                topic=d.record.topic,
                partition=d.record.partition,
                offset=d.record.offset,
                reason=d.reason,
            )
        futures = [
            await self._producer.send(
                self.dead_letter_topic,
                value=d.record.value,
                key=d.record.key,
                headers=[
                    ("dlq-reason", d.reason.encode()),
                    ("dlq-projection", self.projection.name.encode()),
                    ("dlq-source", f"{d.record.topic}/{d.record.partition}/{d.record.offset}".encode()),
                    ("dlq-time", datetime.now(UTC).isoformat().encode()),
                ],
            )
            for d in dead
        ]
        await asyncio.gather(*futures)

    # ------------------------------------------------------------------ observability
    def lag(self, generation: int | None = None) -> dict[TopicPartition, int]:
        """Per partition this process owns: messages not yet consumed (highwater - position)."""
        if generation is None:
            generation = max((g for g, s in self.stats.items() if s.state == "active"), default=1)
        return {tp: max(high - pos, 0) for tp, (pos, high) in self._positions.get(generation, {}).items()}

    def status(self) -> list[dict[str, Any]]:
        return [
            {
                "generation": s.generation,
                "state": s.state,
                "applied": s.applied,
                "skipped": s.skipped,
                "dead_lettered": s.dead_lettered,
                "gaps": s.gaps,
                "events_per_second": round(s.events_per_second, 1),
                "lag": sum(self.lag(s.generation).values()),
                "waiting_for_topics": self.waiting.get(s.generation, []),
            }
            for s in sorted(self.stats.values(), key=lambda s: s.generation)
        ]


_collector_pauses = 0
_collector_paused_at: float | None = None  # when this module paused the collector (None: it did not)


@contextlib.contextmanager
def _collector_paused(*, hold: bool = False) -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a batch is parsed and applied.

    The tens of thousands of objects a catch-up batch allocates (envelopes, typed events, rows) otherwise trigger
    collections that scan them again and again: about half of a rebuild's CPU. Reference counting still frees
    them; cycles wait until the batch is done, when the collector runs again. Nested and concurrent batches
    (several projections in one process) share the pause; a collector disabled by someone else is left alone.

    ``hold`` (a catch-up batch): the collector stays paused after the batch too, until a batch ends that does not
    hold, or ``COLLECT_EVERY_S`` has passed since it was paused (checked as a batch ends or a consumer finds nothing
    to read). What lives from one batch to the next (the window's decoded records kept for the process's other
    projections, the batches fetched) would otherwise be walked by every young collection in between: 2.2 s of a
    16 s build of two read models sharing a window (decision 0034). A catch-up makes almost no cycles (540 objects
    in that build), so a collection every ``COLLECT_EVERY_S`` frees them.
    """
    global _collector_pauses, _collector_paused_at
    if _collector_pauses == 0 and _collector_paused_at is None and not gc.isenabled():
        yield
        return
    _collector_pauses += 1
    if _collector_paused_at is None:
        _collector_paused_at = time.monotonic()
    gc.disable()
    try:
        yield
    finally:
        _collector_pauses -= 1
        if _collector_pauses == 0 and not (hold and time.monotonic() - _collector_paused_at < COLLECT_EVERY_S):
            _collector_given_back()


def _collector_given_back(*, after_s: float = 0.0) -> None:
    """The collector runs again if this module paused it at least ``after_s`` ago and no batch is being applied."""
    global _collector_paused_at
    if (
        _collector_pauses == 0
        and _collector_paused_at is not None
        and time.monotonic() - _collector_paused_at >= after_s
    ):
        _collector_paused_at = None
        gc.enable()


class _Offsets(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka has no type hints
    """A consumer's Kafka offsets applied and not yet committed (``pending``, the consumer loop's own dict).

    ``commit`` commits those of the partitions the consumer still owns. The partitions a rebalance takes away are
    committed before it takes them (aiokafka awaits ``on_partitions_revoked`` before the consumer rejoins its
    group), once the batch being applied, if any, is (``applying``): their next owner, another projector process
    joining or a rebuild's second worker, resumes where this one stopped instead of up to ``COMMIT_EVERY_S`` of
    events back (a rebuild's worker read 24,000-31,000 events again per rebalance: bench rebuild, session 42)."""

    def __init__(self, consumer: AIOKafkaConsumer, projection: str) -> None:
        self.consumer = consumer
        self.projection = projection
        self.pending: dict[TopicPartition, int] = {}
        self.committed_at = time.monotonic()
        self.idle = asyncio.Event()
        self.idle.set()

    @contextlib.contextmanager
    def applying(self) -> Iterator[None]:
        """While a batch is applied and its offsets noted: a revocation waits for it."""
        self.idle.clear()
        try:
            yield
        finally:
            self.idle.set()

    async def commit(self) -> None:
        left = await _commit_owned(self.consumer, self.pending, self.projection)
        self.pending.clear()
        self.pending.update(left)
        self.committed_at = time.monotonic()

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.idle.wait()
        offsets = {tp: offset for tp, offset in self.pending.items() if tp in revoked}
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except KafkaError as exc:  # the group moved on already: the next owner skips what was applied
            log.info("projection.commit_deferred", projection=self.projection, reason=str(exc))
            return
        for tp, offset in offsets.items():
            if self.pending.get(tp) == offset:
                del self.pending[tp]

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        return None


async def _commit_owned(
    consumer: AIOKafkaConsumer, pending: dict[TopicPartition, int], projection: str
) -> dict[TopicPartition, int]:
    """Commit the offsets of the partitions the consumer still owns; answer what is left to commit next time.

    A partition a rebalance took away is dropped: its next owner re-reads it from the group's offset and skips what
    was applied. A commit refused while a rebalance is under way keeps the offsets of the partitions still owned: a
    partition with nothing more to read would otherwise never commit them, and a rebuild's swap waits for the
    group's offsets (found with two projector processes sharing a rebuild: the generation stayed "building")."""
    owned = consumer.assignment()
    offsets = {tp: offset for tp, offset in pending.items() if tp in owned}
    if not offsets:
        return {}
    try:
        await consumer.commit(offsets)
    except (CommitFailedError, IllegalStateError) as exc:
        log.info("projection.commit_deferred", projection=projection, reason=str(exc))
        owned = consumer.assignment()
        return {tp: offset for tp, offset in offsets.items() if tp in owned}
    return {}


async def _linger(
    consumer: AIOKafkaConsumer,
    batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
    max_records: int,
    *,
    behind: bool,
) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
    """A small live batch with what else has come ``LINGER_S`` later (each partition's records still in order);
    a catch-up batch (``behind``) as it is.

    Each batch is a transaction per read model with fixed costs (its progress rows locked and written, statements
    planned, a commit's WAL flush): the deals projector at 200 commands/s applied batches of 2-3 events, its
    PostgreSQL backends spending 0.83 ms a command and the process 1.24 ms; with a 20 ms wait ~6 events, 0.51 and
    0.85 ms (bench/pgcost.py), for ~20 ms more from command to read model; 10 ms keeps about half of that for half
    the delay (decision 0010). An idle consumer still waits in ``getmany`` (no more polls), a busy one's batches are
    large already (no wait)."""
    n = sum(len(rs) for rs in batches.values())
    if behind or not n or n >= min(LINGER_BELOW, max_records):
        return batches
    await asyncio.sleep(LINGER_S)
    for tp, rs in (await consumer.getmany(timeout_ms=0, max_records=max_records - n)).items():
        batches.setdefault(tp, []).extend(rs)
    return batches


async def _begin_batch(conn: Conn, schema: str) -> None:
    """The batch's tables are ``schema``'s, and its progress table is locked for writing first, as an INSERT or
    UPDATE of it would: a batch waits at its start, not with its effects applied and its transaction open, for
    anything holding the table against writes (an index build, tests/faults/test_drain_killed.py). The rows'
    ``FOR UPDATE`` lock alone lets a SHARE lock through."""
    await _set_search_path(conn, schema, custom_plans=True, then="LOCK TABLE projection_progress IN ROW EXCLUSIVE MODE")


async def _record_progress(conn: Conn, touched: dict[str, int], known: dict[str, int]) -> None:
    """Each touched stream's version now: a stream with a row (locked since the batch began) updated, a new one
    inserted at its version — once, not a row at 0 and then its version (a fresh build writes half the row versions).

    Two consumers briefly owning a partition may both find a new stream without a row: the second one's insert
    waits for the first's commit, then finds its row. Both applied the stream's events, so the second batch is
    rolled back (``_ProgressRace``, retried as a database error is): read again, the row says what was applied."""
    old = sorted(s for s in touched if s in known)
    new = sorted(s for s in touched if s not in known)
    if old:
        await conn.execute(
            """UPDATE projection_progress p SET version = t.version, updated_at = now()
               FROM unnest($1::text[], $2::int[]) AS t(stream_id, version) WHERE p.stream_id = t.stream_id""",
            old,
            [touched[s] for s in old],
        )
    if new:
        inserted = await conn.fetchval(
            """WITH i AS (INSERT INTO projection_progress (stream_id, version)
                          SELECT * FROM unnest($1::text[], $2::int[]) ON CONFLICT (stream_id) DO NOTHING RETURNING 1)
               SELECT count(*) FROM i""",
            new,
            [touched[s] for s in new],
        )
        if inserted != len(new):
            raise _ProgressRace(f"{len(new) - inserted} new stream(s) got a progress row from another consumer")


def _short(exc: BaseException, limit: int = 500) -> str:
    text = str(exc).replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "…"


async def _partitions(bootstrap_servers: str, topic: str, **options: Any) -> list[int]:
    async with admin_client(bootstrap_servers, **options) as admin:
        (described,) = await admin.describe_topics([topic])
    return [p["partition"] for p in described["partitions"]]
