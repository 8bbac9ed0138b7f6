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
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
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
from pydantic_core import to_json

from shared.db import connect, create_pool, run_ddl
from shared.envelope import KAFKA_HEADERS
from shared.eventstore import START, Checkpoint, RecordedEvent
from shared.eventstore.postgres import PostgresEventStore
from shared.kafka import events_topic
from shared.logs import configure_logging
from shared.metrics import RELAY_BACKLOG, RELAY_BACKLOG_SECONDS, RELAY_PUBLISHED
from shared.settings import Settings

log = structlog.get_logger(__name__)
LAG_EVERY_S = 5.0  # how often the leading relay measures its backlog for the metrics
HELD_BACK_POLL_S = 0.01  # how soon to look again when committed events wait behind an open transaction
_PARTITIONER = DefaultPartitioner()  # what AIOKafkaProducer.send uses for keyed messages


@dataclass(frozen=True)
class Lag:
    events: int  # committed events not yet published
    seconds: float  # age of the oldest of them (0 when none)


def envelope_json(event: RecordedEvent, service: str) -> bytes:
    """``CloudEvent.from_recorded(event, service).kafka_value()``, byte for byte, without building the model:
    the same fields in the same order through pydantic-core's serialiser (bench/relay.py checks every byte)."""
    return to_json(
        {
            "specversion": "1.0",
            "id": str(event.event_id),
            "source": f"/pipelines/{service}",
            "type": event.event_type,
            "subject": event.stream_id,
            "time": event.occurred_at,
            "datacontenttype": "application/json",
            "data": event.data,
            "streamid": event.stream_id,
            "streamversion": event.version,
            "position": event.position,
            "schemaversion": event.schema_version,
            "recordedtime": event.recorded_at,
            "correlationid": event.correlation_id,
            "causationid": event.causation_id,
        }
    )


class CheckpointAheadError(RuntimeError):
    """The stored checkpoint names a transaction the cluster has not reached: publishing would skip events."""


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
    ) -> None:
        """``routes``: event type prefix → topic, for events that go elsewhere than ``topic`` (alerts)."""
        self.store = store
        self.service = service
        self.topic = topic
        self.name = name
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.routes = routes or {}
        self._bootstrap = bootstrap_servers
        self._dsn = database_url
        self._kafka_options = kafka_options or {}
        self._lock_id = zlib.crc32(f"{store.schema}.{name}".encode())
        self._conn: asyncpg.Connection | None = None
        self._producer: AIOKafkaProducer | None = None
        self._wake = asyncio.Event()
        self._ahead: tuple[list[RecordedEvent], asyncio.Future[Any]] | None = None  # queued, not checkpointed
        self.is_leader = False
        self.published = 0
        self.checkpoint = START

    async def setup(self) -> None:
        await run_ddl(
            self.store.pool,
            f"""CREATE TABLE IF NOT EXISTS {self.store.schema}.relay_checkpoints (
                    name text PRIMARY KEY,
                    tx_id xid8 NOT NULL,
                    position bigint NOT NULL,
                    published bigint NOT NULL DEFAULT 0,
                    updated_at timestamptz NOT NULL DEFAULT now())""",
        )

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
            except CheckpointAheadError as exc:  # an operator must act; keep saying so
                log.error("relay.checkpoint_ahead", relay=self.name, error=str(exc))
                await asyncio.sleep(10.0)
            except Exception as exc:  # the database or Kafka failed: start over from the stored checkpoint
                log.warning("relay.error", relay=self.name, error=repr(exc))
                await asyncio.sleep(1.0)
            finally:
                await self.close()

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
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            max_batch_size=262144,
            client_id=f"pipelines-{self.service}-{self.name}",
            **self._kafka_options,
        )
        await self._producer.start()
        log.info("relay.leading", relay=self.name, service=self.service, checkpoint=tuple(self.checkpoint))
        return True

    def _on_notify(self, *_: Any) -> None:
        self._wake.set()

    async def _held_back(self) -> bool:
        """Are there events past the checkpoint that the commit-safe read could not see yet?"""
        assert self._conn is not None, "not leading"
        return bool(
            await self._conn.fetchval(
                f"SELECT EXISTS (SELECT 1 FROM {self.store.schema}.events WHERE (tx_id, position) > ($1::xid8, $2))",
                self.checkpoint.tx,
                self.checkpoint.position,
            )
        )

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
            events, acks = self._ahead
            self._ahead = None
        else:
            events = await self.store.read_all(self.checkpoint, limit=self.batch_size, conn=self._conn)
            if not events:
                return 0
            acks = asyncio.gather(*await self._send(events))
        try:
            if len(events) == self.batch_size:  # a backlog: read and queue the next batch while this one is acked
                following = await self.store.read_all(events[-1].checkpoint, limit=self.batch_size, conn=self._conn)
                if following:
                    self._ahead = (following, asyncio.gather(*await self._send(following)))
            await acks
        except BaseException:
            acks.cancel()
            self._drop_ahead()  # never publish past a batch that failed
            raise
        last = events[-1].checkpoint
        await self._conn.execute(
            f"""INSERT INTO {self.store.schema}.relay_checkpoints (name, tx_id, position, published)
                VALUES ($1, $2::xid8, $3, $4)
                ON CONFLICT (name) DO UPDATE SET tx_id = $2::xid8, position = $3,
                    published = relay_checkpoints.published + $4, updated_at = now()""",
            self.name,
            last.tx,
            last.position,
            len(events),
        )
        self.checkpoint = last
        self.published += len(events)
        RELAY_PUBLISHED.labels(self.service).inc(len(events))
        return len(events)

    async def _send(self, events: list[RecordedEvent]) -> list[asyncio.Future[Any]]:
        """Queue the events in order, one record batch per partition (and more when one fills): the same
        partition (the default partitioner's murmur2 of the key), bytes and order as ``send`` per event, at a
        fraction of its cost. Returns the futures of the batches' acknowledgements."""
        producer = self._producer
        assert producer is not None, "not leading"
        builders: dict[tuple[str, int], BatchBuilder] = {}
        partitions: dict[str, list[int]] = {}
        owner: dict[tuple[str, bytes], int] = {}  # a stream's events sit together: hash its key once
        futures = []
        for e in events:
            topic = self._topic_of(e.event_type)
            if topic not in partitions:
                partitions[topic] = sorted(await producer.partitions_for(topic))
            key = e.stream_id.encode()
            if (topic, key) not in owner:
                owner[topic, key] = _PARTITIONER(key, partitions[topic], partitions[topic])
            tp = (topic, owner[topic, key])
            value = envelope_json(e, self.service)
            builder = builders.get(tp)
            if builder is None or builder.append(key=key, value=value, timestamp=None, headers=KAFKA_HEADERS) is None:
                if builder is not None:  # full: queue it, go on in a new one
                    futures.append(await producer.send_batch(builder, tp[0], partition=tp[1]))
                builder = builders[tp] = producer.create_batch()
                if builder.append(key=key, value=value, timestamp=None, headers=KAFKA_HEADERS) is None:
                    raise ValueError(f"event {e.event_id} does not fit in a Kafka record batch")
        for (topic, partition), builder in builders.items():
            futures.append(await producer.send_batch(builder, topic, partition=partition))
        return futures

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
        async with self.store.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"""SELECT count(*) AS n, min(e.recorded_at) AS oldest FROM {s}.events e
                    WHERE (e.tx_id, e.position) > coalesce(
                        (SELECT (c.tx_id, c.position) FROM {s}.relay_checkpoints c WHERE c.name = $1),
                        ('0'::xid8, 0::bigint))""",
                self.name,
            )
        assert row is not None
        oldest = row["oldest"]
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
        return Lag(events=row["n"], seconds=max(age, 0.0))

    def _drop_ahead(self) -> None:
        """Forget the batch queued ahead: it is not checkpointed, so it is read and published again."""
        if self._ahead is not None:
            acks, self._ahead = self._ahead[1], None
            if acks.done() and not acks.cancelled():
                acks.exception()  # retrieved: it failed or not, the batch is published again
            acks.cancel()

    async def close(self) -> None:
        self._drop_ahead()
        if self._producer is not None:
            producer, self._producer = self._producer, None
            with contextlib.suppress(Exception):
                await producer.stop()
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):
                await conn.close()  # the advisory lock goes with the session
        self.is_leader = False


async def serve_relay(settings: Settings, service: str, *, schema: str | None = None, topic: str | None = None) -> None:
    """The relay process of one service: runs until SIGTERM or SIGINT."""
    configure_logging(settings, process=f"{service}-relay")
    url = settings.database_url_for(service)
    pool = await create_pool(url, min_size=1, max_size=2)
    try:
        store = PostgresEventStore(pool, schema or service)
        await store.setup()
        relay = OutboxRelay(
            store,
            service=service,
            topic=topic or events_topic(service),
            bootstrap_servers=settings.kafka_bootstrap_servers,
            database_url=url,
            kafka_options=settings.kafka_options(),
        )
        await relay.setup()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await relay.run(stop)
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m shared.relay", description=__doc__.splitlines()[0])
    parser.add_argument("service", help="the service whose store is relayed (leads, deals, production)")
    parser.add_argument("--schema", help="its PostgreSQL schema (default: the service name)")
    parser.add_argument("--topic", help="the topic (default: pipelines.<service>.events)")
    args = parser.parse_args(argv)
    asyncio.run(serve_relay(Settings(), args.service, schema=args.schema, topic=args.topic))


if __name__ == "__main__":
    main()
