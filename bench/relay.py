"""Relay: events per second from the store to Kafka, per-stream order kept — beside a raw aiokafka producer.

The store of an isolated deals schema is filled with realistic events: a few deals are driven through the
service's handlers (opened with a contact and lines, activities, stage moves, value changes, a quote), and their
rows are cloned into many streams with one bulk INSERT per 20,000 rows of exactly the columns the store's
append writes (new stream and event ids; ``recorded_at`` and ``tx_id`` take the same defaults), so the relay
reads them as it reads any event.

Each round publishes everything, on a fresh topic (6 partitions):

- project: ``OutboxRelay.lead()`` (not timed: connection, lock, producer start), then ``publish_batch()`` until
  it returns 0 — reading ``read_all`` batches of 500, building the CloudEvents, sending, writing the checkpoint;
- baseline: an ``AIOKafkaProducer`` with the relay's settings (idempotent, acks=all, linger 5 ms, batches of
  256 KiB; started before timing) reading the same rows with the same commit-order query in batches of 500 on a
  plain asyncpg connection and sending, per row, the CloudEvent bytes built before the round (the same bytes
  the relay sends) with the stream id as key, then waiting for the batch's acknowledgements. It writes no
  checkpoint and serialises nothing.

Rounds alternate which goes first. After the first project round the topic is read back: every stream's
versions must ascend from 1 without gap and every value must equal the pre-built bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from bench.common import Env, Report, cleanup, median
from services.deals import domain
from services.deals import main as deals_main
from services.deals.events import Contact, ProductLine
from shared.core.money import Money
from shared.edge.service import ServiceCore
from shared.messaging.envelope import KAFKA_HEADERS, CloudEvent
from shared.messaging.kafka import TopicSpec, delete_topics, ensure_topics, read_whole_topic
from shared.messaging.relay import OutboxRelay
from shared.ops.settings import Settings
from shared.store import START, RecordedEvent
from shared.store.commands import Context
from shared.store.postgres import PostgresEventStore

BATCH = 500
READ_SQL = """SELECT stream_id, version, position, event_id, event_type, schema_version, data, metadata,
                     occurred_at, recorded_at, tx_id FROM {s}.events
              WHERE (tx_id, position) > ($1::xid8, $2)
                AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
              ORDER BY tx_id, position LIMIT $3"""


def _commands(i: int) -> list[domain.Command]:
    """One deal's life: ten commands, about a dozen events."""
    vnd = lambda amount: Money(amount=Decimal(amount), currency="VND")  # noqa: E731
    return [
        domain.OpenDeal(
            title=f"Dây chuyền đóng gói {i}",
            customer=f"Công ty TNHH Bao Bì Sài Gòn {i}",
            owner_id="u-lan",
            team_id="north",
            contact_id=f"c-{i}",
            contact=Contact(name="Nguyễn Thị Lan", email=f"lan{i}@example.vn", phone="+84901234567"),
            lines=(
                ProductLine(product="Máy đóng gói", quantity=Decimal(2), unit_price=vnd("450000000")),
                ProductLine(product="Lắp đặt", quantity=Decimal(1), unit="job", unit_price=vnd("30000000")),
            ),
            expected_close_date=date(2027, 3, 1),
            source="website",
            campaign_id="spring",
        ),
        domain.LogActivity(activity_id=uuid.uuid4(), activity_type="call", channel="phone"),
        domain.MoveStage(stage_id="contacted", note="đã gọi"),
        domain.LogActivity(activity_id=uuid.uuid4(), activity_type="meeting", channel="meeting"),
        domain.MoveStage(stage_id="needs_discussed"),
        domain.ChangeValue(value=vnd("960000000"), reason="scope grew"),
        domain.LogActivity(activity_id=uuid.uuid4(), activity_type="email", channel="email"),
        domain.ChangeCloseDate(expected_close_date=date(2027, 4, 15), reason="budget after Tết"),
        domain.LogActivity(activity_id=uuid.uuid4(), activity_type="call", channel="chat"),
        domain.MoveStage(stage_id="quote_sent"),
    ]


async def _templates(core: deals_main.DealsService, deals: int) -> list[tuple[uuid.UUID, list[asyncpg.Record]]]:
    """Drive a few deals through the handlers; their stored rows are what gets cloned."""
    ctx = Context(actor="bench")
    ids = [uuid.uuid4() for _ in range(deals)]
    for i, d in enumerate(ids):
        for cmd in _commands(i):
            with contextlib.suppress(domain.DealRuleError):  # a refused command: the deal has fewer events
                await core.deals.handle(d, cmd, ctx)
    s = core.storage.store.schema
    out = []
    async with core.storage.pool.acquire() as conn:
        for d in ids:
            rows = await conn.fetch(
                f"""SELECT stream_id, version, event_type, schema_version, data::text AS data,
                           metadata::text AS metadata, occurred_at FROM {s}.events
                    WHERE stream_id = $1 ORDER BY version""",
                f"deal-{d}",
            )
            out.append((d, list(rows)))
    return out


async def prefill(core: deals_main.DealsService, settings: Settings, n: int) -> int:
    """About ``n`` events in the store, in streams of about a dozen; returns how many the store holds."""
    templates = await _templates(core, 4)
    per_deal = sum(len(rows) for _, rows in templates) / len(templates)
    clones = max(0, int(n / per_deal) - len(templates))
    s = core.storage.store.schema
    insert = f"""
        INSERT INTO {s}.events (stream_id, version, event_id, event_type, schema_version, data, metadata,
                                occurred_at)
        SELECT t.stream_id, t.version, t.event_id, t.event_type, t.schema_version, t.data::jsonb,
               t.metadata::jsonb, t.occurred_at
        FROM unnest($1::text[], $2::int[], $3::uuid[], $4::text[], $5::int[], $6::text[], $7::text[],
                    $8::timestamptz[])
             AS t(stream_id, version, event_id, event_type, schema_version, data, metadata, occurred_at)"""
    conn = await asyncpg.connect(settings.database_url_for("deals"))
    try:
        cols: list[list[Any]] = [[] for _ in range(8)]

        async def flush() -> None:
            if cols[0]:
                await conn.execute(insert, *cols)
                for c in cols:
                    c.clear()

        for c in range(clones):
            template_id, rows = templates[c % len(templates)]
            new_id, old = str(uuid.uuid4()), str(template_id)
            for r in rows:
                values = (
                    r["stream_id"].replace(old, new_id),
                    r["version"],
                    uuid.uuid4(),
                    r["event_type"],
                    r["schema_version"],
                    r["data"].replace(old, new_id),
                    r["metadata"],
                    r["occurred_at"],
                )
                for col, v in zip(cols, values, strict=True):
                    col.append(v)
            if len(cols[0]) >= 20_000:
                await flush()
        await flush()
        return int(await conn.fetchval(f"SELECT count(*) FROM {s}.events"))
    finally:
        await conn.close()


async def all_visible(core: ServiceCore, total: int, timeout_s: float = 300) -> None:
    """Wait until tailing readers see every stored event: ``read_all`` holds back events behind any transaction
    open in the cluster, and other people's benchmarks share this PostgreSQL."""
    s = core.storage.store.schema
    deadline = time.monotonic() + timeout_s
    async with core.storage.pool.acquire() as conn:
        while (
            await conn.fetchval(
                f"SELECT count(*) FROM {s}.events WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot())"
            )
            < total
        ):
            if time.monotonic() > deadline:
                raise TimeoutError("a transaction open elsewhere in the cluster holds back the store's tail")
            await asyncio.sleep(0.2)


async def new_topic(settings: Settings, name: str) -> str:
    topic = f"{settings.topic_prefix}.bench.{name}"
    await ensure_topics(settings.kafka_bootstrap_servers, [TopicSpec(topic, 6, settings.kafka_replication_factor)])
    return topic


async def project_round(core: ServiceCore, settings: Settings, topic: str, name: str) -> tuple[float, int]:
    relay = OutboxRelay(
        core.storage.store,
        service="deals",
        topic=topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        database_url=settings.database_url_for("deals"),
        name=name,
        kafka_options=settings.kafka_options(),
    )
    await relay.setup()
    assert await relay.lead()
    try:
        started = time.perf_counter()
        while await relay.publish_batch():
            pass
        return time.perf_counter() - started, relay.published
    finally:
        await relay.close()


async def baseline_round(settings: Settings, schema: str, topic: str, payloads: dict[int, bytes]) -> tuple[float, int]:
    conn = await asyncpg.connect(settings.database_url_for("deals"))
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_batch_size=262144,
        client_id="bench-raw",
        **settings.kafka_options(),
    )
    await producer.start()
    sql = READ_SQL.format(s=schema)
    sent = 0
    try:
        started = time.perf_counter()
        tx, position = 0, 0
        while rows := await conn.fetch(sql, tx, position, BATCH):
            futures = [
                await producer.send(
                    topic, value=payloads[r["position"]], key=r["stream_id"].encode(), headers=KAFKA_HEADERS
                )
                for r in rows
            ]
            await asyncio.gather(*futures)
            tx, position = rows[-1]["tx_id"], rows[-1]["position"]
            sent += len(rows)
        return time.perf_counter() - started, sent
    finally:
        await producer.stop()
        await conn.close()


async def verify(settings: Settings, topic: str, payloads: dict[int, bytes], stored: dict[str, int]) -> str:
    """Every stream's versions ascend from 1 without gap, and every value is the pre-built CloudEvent's bytes."""
    records = await read_whole_topic(settings.kafka_bootstrap_servers, topic, timeout_s=300)
    versions: dict[str, list[int]] = defaultdict(list)
    expected = set(payloads.values())
    for r in records:
        assert r.key is not None
        assert r.value is not None
        envelope = CloudEvent.from_kafka(r.value)
        assert envelope.streamid == r.key.decode(), "key is the stream id"
        assert r.value == payloads[envelope.position], f"value of position {envelope.position} differs"
        versions[envelope.streamid].append(envelope.streamversion)
    assert len(records) == len(expected), f"{len(records)} messages for {len(expected)} events"
    for stream, n in stored.items():
        assert versions[stream] == list(range(1, n + 1)), f"{stream} out of order: {versions[stream][:20]}"
    return (
        f"verified after the first project round: {len(records):,} messages read back, {len(stored):,} streams "
        "each in version order 1..n without gap or duplicate, every value byte-identical to "
        "CloudEvent.from_recorded(...).kafka_value()"
    )


async def run(env: Env) -> Report:
    n = env.size(100_000, 2_000)
    rounds = env.size(5, 2)
    settings = env.settings()
    core = await deals_main.build(settings)
    topics: list[str] = []
    try:
        fill_started = time.perf_counter()
        total = await prefill(core, settings, n)
        fill_s = time.perf_counter() - fill_started
        store = core.storage.store
        await all_visible(core, total)
        payloads = {e.position: CloudEvent.from_recorded(e, "deals").kafka_value() for e in await _everything(store)}
        async with core.storage.pool.acquire() as conn:
            stored = {
                r["stream_id"]: r["n"]
                for r in await conn.fetch(f"SELECT stream_id, max(version) AS n FROM {store.schema}.events GROUP BY 1")
            }
        assert len(payloads) == total
        project: list[float] = []
        raw: list[float] = []
        verified = ""
        for i in range(rounds):
            order = ("project", "raw") if i % 2 == 0 else ("raw", "project")
            for kind in order:
                topic = await new_topic(settings, f"{kind}{i}")
                topics.append(topic)
                if kind == "project":
                    seconds, sent = await project_round(core, settings, topic, f"bench{i}")
                    project.append(total / seconds)
                    if not verified:
                        verified = await verify(settings, topic, payloads, stored)
                else:
                    seconds, sent = await baseline_round(settings, store.schema, topic, payloads)
                    raw.append(total / seconds)
                assert sent == total, f"{kind} sent {sent} of {total}"
                print(f"  round {i} {kind}: {total / seconds:,.0f} events/s", flush=True)
        ratio = median(project) / median(raw)
        paired = [p / r for p, r in zip(project, raw, strict=True)]
        mean_bytes = sum(map(len, payloads.values())) / len(payloads)
        report = Report(
            name="relay",
            title=f"Relay: store → Kafka, {total:,} events in {len(stored):,} streams, {rounds} rounds",
            columns=["path", "events/s (median)", "min", "max", "ratio to raw"],
            rows=[
                ["project: OutboxRelay.publish_batch loop", median(project), min(project), max(project), ratio],
                ["baseline: raw AIOKafkaProducer, same rows + bytes", median(raw), min(raw), max(raw), 1.0],
            ],
        )
        report.at_least("relay / raw producer (events/s)", ratio, 0.7)
        report.notes += [
            f"{total:,} events (mean CloudEvent {mean_bytes:,.0f} bytes) in {len(stored):,} streams; bulk fill "
            f"took {fill_s:.1f} s; fresh 6-partition topic and fresh relay checkpoint per round; rounds "
            "alternate which path goes first.",
            "The baseline reads the same rows (same commit-order query, batches of 500, plain asyncpg, jsonb "
            "as text) and sends CloudEvent bytes built before the round, waiting for each batch's acks; it "
            "builds no envelope and writes no checkpoint. Both producers: idempotent, acks=all, linger 5 ms, "
            "max batch 256 KiB.",
            f"Ratio within each round (same minute, same neighbours): median {median(paired):.2f}, min "
            f"{min(paired):.2f}, max {max(paired):.2f}. Absolute rates swing with the shared machine's load.",
            "How the relay keeps up: one record batch per partition per read batch (create_batch/send_batch, "
            "partition from the default partitioner's murmur2 of the key, as send() would choose), the "
            "CloudEvent JSON written by pydantic-core from a dict (byte-identical, no model validation), and "
            "while a backlog drains the next batch is read and queued before the current one's acks are awaited.",
            verified,
        ]
        report.data = {
            "events": total,
            "streams": len(stored),
            "project_eps": project,
            "raw_eps": raw,
            "paired_ratios": paired,
        }
        return report
    finally:
        await core.close()
        await cleanup(settings)
        if topics:
            await delete_topics(settings.kafka_bootstrap_servers, topics)


async def _everything(store: PostgresEventStore) -> list[RecordedEvent]:
    out: list[RecordedEvent] = []
    after = START
    while batch := await store.read_all(after, limit=10_000):
        out.extend(batch)
        after = batch[-1].checkpoint
    return out
