"""What operators ask of a running system, behind the CLI: read-model generations and lag, rebuilds, dead letters,
the relay's state (and a stream published again), and the live event stream. Each function takes the settings and
talks to PostgreSQL and Kafka through the kernel's contracts only, never a service's modules: the event store and
the relay's checkpoint (``shared.store``), the projection registry in each service's schema (which read models
exist, their generations), the projectors' consumer groups (``<topic prefix>.<service>.<read model>.g<N>``: what
they have committed, on which topics), the dead-letter topics and the CloudEvents on the events topics. A timeline
and a state are the service's to fold: ``tools.history`` asks its API."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.alerts.events import ALERTS_PREFIX
from shared.messaging.envelope import KAFKA_HEADERS, CloudEvent
from shared.messaging.kafka import admin_client, topic_configs
from shared.messaging.projections import request_rebuild
from shared.ops.settings import SERVICES, Settings
from shared.store import Checkpoint
from shared.store.db import create_pool
from shared.store.postgres import PostgresEventStore
from shared.store.wire import envelope_json, record_bytes


def group_of(settings: Settings, service: str, projection: str, generation: int) -> str:
    """The consumer group of a read model's generation (as ``ServiceCore.runners`` names it)."""
    return f"{settings.topic_prefix}.{service}.{projection}.g{generation}"


async def generations(settings: Settings, service: str) -> list[dict[str, Any]]:
    """The service's projection registry: each read model's generations and their states."""
    pool = await create_pool(settings.database_url_for(service), max_size=2)
    try:
        ns = settings.schema_name(service)
        if not await pool.fetchval("SELECT to_regclass($1)", f"{ns}.projection_generations"):
            return []
        rows = await pool.fetch(f"SELECT projection, generation, state FROM {ns}.projection_generations ORDER BY 1, 2")
        return [dict(r) for r in rows]
    finally:
        await pool.close()


async def topics_read(
    settings: Settings, service: str, registered: Sequence[Mapping[str, Any]]
) -> dict[str, list[str]]:
    """The topics each registered read model reads: those its generations' consumer groups have committed offsets
    on (a generation reads the same topics as the one it replaces; a group that never committed adds none)."""
    out: dict[str, set[str]] = {g["projection"]: set() for g in registered}
    async with admin_client(settings.kafka_bootstrap_servers, **settings.kafka_options()) as admin:
        for g in registered:
            committed = await admin.list_consumer_group_offsets(
                group_of(settings, service, g["projection"], g["generation"])
            )
            out[g["projection"]].update(tp.topic for tp in committed)
    return {name: sorted(topics) for name, topics in out.items()}


async def read_models(settings: Settings) -> dict[str, dict[str, list[str]]]:
    """Each service's read models (its projection registry) and the topics they read."""
    return {service: await topics_read(settings, service, await generations(settings, service)) for service in SERVICES}


async def group_lag(settings: Settings, group: str, topics: list[str]) -> int:
    """Messages in ``topics`` the consumer group has not committed past."""
    if not topics:
        return 0
    async with admin_client(settings.kafka_bootstrap_servers, **settings.kafka_options()) as admin:
        committed = {tp: m.offset for tp, m in (await admin.list_consumer_group_offsets(group)).items()}
        described = await admin.describe_topics(topics)
    tps = [TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]]
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, **settings.kafka_options())
    await consumer.start()
    try:
        end = await consumer.end_offsets(tps) if tps else {}
    finally:
        await consumer.stop()
    return sum(max(e - max(committed.get(tp, 0), 0), 0) for tp, e in end.items())


async def projections(settings: Settings) -> list[dict[str, Any]]:
    """Every read model's generations (but those dropped), their state and their consumer groups' lag."""
    rows = []
    for service in SERVICES:
        registered = await generations(settings, service)
        topics = await topics_read(settings, service, registered)
        for g in registered:
            if g["state"] == "dropped":
                continue
            group = group_of(settings, service, g["projection"], g["generation"])
            rows.append(
                {
                    "service": service,
                    "projection": g["projection"],
                    "generation": g["generation"],
                    "state": g["state"],
                    "lag": await group_lag(settings, group, topics[g["projection"]]),
                }
            )
    return rows


async def rebuild(
    settings: Settings,
    service: str,
    projection: str,
    progress: Callable[[int, int, float], None],
    poll_s: float = 1.0,
    wait_s: float = 3600,
) -> int:
    """Ask for a new generation, then report (done, total, events/s) until the projectors swap it in."""
    registered = await generations(settings, service)
    if projection not in {g["projection"] for g in registered}:
        known = ", ".join(sorted({g["projection"] for g in registered})) or "none"
        raise LookupError(f"{service} has no read model {projection!r} (it has: {known})")
    topics = (await topics_read(settings, service, registered))[projection]
    pool = await create_pool(settings.database_url_for(service), max_size=2)
    ns = settings.schema_name(service)
    try:
        generation = await request_rebuild(pool, ns, projection)
        group = group_of(settings, service, projection, generation)
        start, first_lag = time.monotonic(), None
        while time.monotonic() - start < wait_s:
            lag = await group_lag(settings, group, topics)
            first_lag = lag if first_lag is None else max(first_lag, lag)
            done = first_lag - lag
            progress(done, first_lag, done / max(time.monotonic() - start, 1e-6))
            state = await pool.fetchval(
                f"SELECT state FROM {ns}.projection_generations WHERE projection = $1 AND generation = $2",
                projection,
                generation,
            )
            if state == "active":
                return int(generation)
            await asyncio.sleep(poll_s)
        raise TimeoutError(f"generation {generation} of {projection} was not swapped in within {wait_s} s")
    finally:
        await pool.close()


async def relay_status(settings: Settings, service: str) -> dict[str, Any]:
    """Where the service's relay is: its checkpoint, the backlog behind it, and the next event to publish with its
    size against what Kafka takes (over it: the relay is stuck on that event until an operator acts)."""
    pool = await create_pool(settings.database_url_for(service), max_size=2)
    s = settings.schema_name(service)
    try:
        row = await pool.fetchrow(
            f"SELECT tx_id, position, published, updated_at FROM {s}.relay_checkpoints WHERE name = 'relay'"
        )
        after = (row["tx_id"], row["position"]) if row else (0, 0)
        backlog = await pool.fetchrow(
            f"""SELECT count(*) AS n, min(recorded_at) AS oldest FROM {s}.events
                WHERE (tx_id, position) > ($1::xid8, $2::bigint)""",
            *after,
        )
        store = PostgresEventStore(pool, s)
        following = await store.read_all(Checkpoint(*after), limit=1)
    finally:
        await pool.close()
    status: dict[str, Any] = {
        "service": service,
        "checkpoint_position": after[1],
        "published": row["published"] if row else 0,
        "checkpoint_moved_at": row["updated_at"] if row else None,
        "backlog": backlog["n"] if backlog else 0,
        "oldest_unpublished": backlog["oldest"] if backlog else None,
        "next": None,
    }
    if following:
        e = following[0]
        topic = _topic_of(settings, service, e.event_type)
        configured = await topic_configs(
            settings.kafka_bootstrap_servers, [topic], "max.message.bytes", **settings.kafka_options()
        )
        limit = min(int(configured[topic]), settings.kafka_max_request_size)
        size = record_bytes(envelope_json(e, service), e.stream_id.encode())
        status["next"] = {
            "event_id": str(e.event_id),
            "type": e.event_type,
            "stream_id": e.stream_id,
            "version": e.version,
            "position": e.position,
            "record_bytes": size,
            "limit": limit,
            "fits": size <= limit,
        }
    return status


def _topic_of(settings: Settings, service: str, event_type: str) -> str:
    """The topic the relay publishes an event type to (as ``ServiceCore.relay`` routes it)."""
    return settings.alerts_topic() if event_type.startswith(ALERTS_PREFIX) else settings.events_topic(service)


async def republish(settings: Settings, service: str, stream_id: str) -> int:
    """Publish a stream's events again from the store, in order, as the relay did (those it has published: the
    rest it publishes itself). Consumers skip versions they applied; a projector stopped at a gap in this stream
    goes on once the missing version arrives (docs/OPERATIONS.md)."""
    pool = await create_pool(settings.database_url_for(service), max_size=2)
    s = settings.schema_name(service)
    try:
        row = await pool.fetchrow(f"SELECT tx_id, position FROM {s}.relay_checkpoints WHERE name = 'relay'")
        events = await PostgresEventStore(pool, s).read_stream(stream_id)
    finally:
        await pool.close()
    if row is None:
        return 0
    published = [
        e for e in events if (int(e.checkpoint.tx), e.checkpoint.position) <= (int(row["tx_id"]), row["position"])
    ]
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_idempotence=True,
        acks="all",
        max_request_size=settings.kafka_max_request_size,
        **settings.kafka_options(),
    )
    await producer.start()
    try:
        for e in published:
            await producer.send_and_wait(
                _topic_of(settings, service, e.event_type),
                envelope_json(e, service),
                key=e.stream_id.encode(),
                headers=[*KAFKA_HEADERS, ("republished", b"1")],
            )
    finally:
        await producer.stop()
    return len(published)


async def _read(settings: Settings, topic: str) -> list[Any]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False, **settings.kafka_options()
    )
    await consumer.start()
    try:
        async with admin_client(settings.kafka_bootstrap_servers, **settings.kafka_options()) as admin:
            (described,) = await admin.describe_topics([topic])
        tps = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        out = []
        while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                out.extend(records)
        return out
    finally:
        await consumer.stop()


async def dead_letters(settings: Settings, service: str) -> list[dict[str, Any]]:
    records = await _read(settings, settings.dead_letter_topic(service))
    out = []
    for r in records:
        headers = {k: v.decode() for k, v in r.headers}
        out.append(
            {
                "offset": r.offset,
                "key": (r.key or b"").decode(),
                "reason": headers.get("dlq-reason", ""),
                "projection": headers.get("dlq-projection", ""),
                "source": headers.get("dlq-source", ""),
                "time": headers.get("dlq-time", ""),
                "value": r.value,
            }
        )
    return out


async def redrive(settings: Settings, service: str, offsets: list[int] | None = None) -> int:
    """Send dead letters (all, or those at ``offsets``) back to the topic they came from, once the cause is fixed."""
    letters = [d for d in await dead_letters(settings, service) if offsets is None or d["offset"] in offsets]
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_idempotence=True, **settings.kafka_options()
    )
    await producer.start()
    try:
        for d in letters:
            topic = d["source"].rsplit("/", 2)[0]
            await producer.send_and_wait(
                topic,
                d["value"],
                key=d["key"].encode() or None,
                headers=[("dlq-redriven-from", str(d["offset"]).encode())],
            )
    finally:
        await producer.stop()
    return len(letters)


async def tail(settings: Settings, service: str, *, from_beginning: bool = False) -> AsyncIterator[CloudEvent]:
    """The service's events as they arrive (or from the beginning), decoded."""
    consumer = AIOKafkaConsumer(
        settings.events_topic(service),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
        **settings.kafka_options(),
    )
    await consumer.start()
    try:
        async for message in consumer:
            try:
                yield CloudEvent.from_kafka(message.value)
            except ValueError:
                continue
    finally:
        await consumer.stop()


def describe(data: Mapping[str, Any]) -> str:
    """An event's data in a line: its first few fields that are not ids or empty."""
    keys = [k for k in data if not k.endswith("_id") and data[k] not in (None, [], {})][:4]
    return ", ".join(f"{k}={json.dumps(data[k], ensure_ascii=False, default=str)[:40]}" for k in keys)
