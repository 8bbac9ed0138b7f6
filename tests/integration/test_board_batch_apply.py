"""The board's batch apply (one read, a fold in memory, one write per batch) against its per-event apply.

Both run in the projection runner on real PostgreSQL (dead letters on real Kafka), fed the same messages in
batches of random sizes: a generated history plus what it lacks (follow-ups, redefined pipeline, delivery
risk, line changes, updates of a deal never opened, a second opening, redelivered messages).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from services.deals import events as ev
from services.deals.domain import DEFAULT_STAGES
from services.deals.projections import BOARD_COLUMNS, apply_board, board
from shared.core.events import DomainEvent
from shared.core.money import Money
from shared.messaging.envelope import CloudEvent
from shared.messaging.projections import Fact, Projection, ProjectionRunner, one_by_one
from shared.ops.stack import Endpoints
from shared.store.db import Conn
from testkit.deals_history import History

pytestmark = [pytest.mark.pg, pytest.mark.kafka]

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SNAP = {s.stage_id: ev.StageSnapshot(**s.model_dump(exclude={"stuck_after_days"})) for s in DEFAULT_STAGES}


def envelope(stream: str, version: int, event: DomainEvent, at: datetime) -> bytes:
    return CloudEvent(
        id=str(uuid.uuid4()),
        source="/pipelines/deals",
        type=event.event_type,
        subject=stream,
        time=at,
        data=event.model_dump(mode="json"),
        streamid=stream,
        streamversion=version,
        position=1,
        schemaversion=event.schema_version,
        recordedtime=at,
        correlationid="c",
        causationid="c",
    ).kafka_value()


def extras(rng: random.Random) -> list[tuple[str, bytes]]:
    """Histories the generator does not make: follow-ups, a redefined pipeline, odd orders of events."""
    out: list[tuple[str, bytes]] = []
    stages = tuple(s.model_copy(update={"name": s.name + " (v2)"}) for s in DEFAULT_STAGES)
    out.append(
        (
            "pipeline-default",
            envelope("pipeline-default", 2, ev.PipelineDefined(pipeline_id="default", name="v2", stages=stages), T0),
        )
    )
    for d in range(40):
        deal = uuid.UUID(int=rng.getrandbits(128))
        stream, v, at = f"deal-{deal}", 0, T0 + timedelta(hours=d)

        def add(event: DomainEvent, stream: str = stream) -> None:
            nonlocal v, at
            v += 1
            at += timedelta(minutes=rng.randint(1, 600))
            out.append((stream, envelope(stream, v, event, at)))

        if d % 10 == 0:  # updates of a deal never opened: no row, only progress
            add(ev.DealValueChanged(deal_id=deal, old=Money.of(1), new=Money.of(2)))
            add(ev.ActivityLogged(**activity(deal)))
            continue
        add(opened(deal, at))
        follow_up = uuid.UUID(int=rng.getrandbits(128))
        for _ in range(rng.randint(3, 9)):
            add(
                rng.choice(
                    [
                        ev.DealLinesChanged(deal_id=deal, lines=(), value=Money.of(rng.randint(1, 99) * 1000)),
                        ev.DeliveryRiskFlagged(deal_id=deal, order_id=deal, reason="late"),
                        ev.FollowUpStarted(
                            deal_id=deal,
                            follow_up_id=follow_up,
                            order_id=None,
                            shipment_id=None,
                            kind="onboarding",
                            due_on=date(2026, 4, 1),
                        ),
                        ev.FollowUpDueChanged(
                            deal_id=deal, follow_up_id=follow_up, due_on=date(2026, 5, 1), reason="x"
                        ),
                        ev.FollowUpContactRecorded(deal_id=deal, follow_up_id=follow_up, channel=ev.Channel.PHONE),
                        ev.CustomerFeedbackRecorded(deal_id=deal, follow_up_id=follow_up, csat=rng.randint(1, 5)),
                        ev.FollowUpCompleted(deal_id=deal, follow_up_id=follow_up, outcome="ok"),
                        ev.DealProbabilityOverridden(deal_id=deal, probability=Decimal("0.55"), reason="r"),
                        ev.DealProbabilityOverrideCleared(deal_id=deal),
                        ev.ActivityLogged(**activity(deal)),
                        ev.DealReopened(
                            deal_id=deal, was="lost", to_stage=SNAP["contacted"], reason="r", reopened_at=at
                        ),
                        ev.DealLost(
                            deal_id=deal,
                            reason="price",
                            competitor="Rival",
                            stage_at_loss=SNAP["contacted"],
                            value=Money.of(5),
                            lost_at=at,
                        ),
                        opened(deal, at),  # opened again: the first opening's row stays
                    ]
                )
            )
    return out


def opened(deal: uuid.UUID, at: datetime) -> ev.DealOpened:
    return ev.DealOpened(
        deal_id=deal,
        pipeline_id="default",
        pipeline_version=1,
        stage=SNAP["target_identified"],
        title=f"Deal {deal.hex[:6]}",
        customer="C",
        contact_id=None,
        contact=None,
        owner_id="u-an",
        team_id="north",
        value=Money.of(1_000_000),
        expected_close_date=None,
        opened_at=at,
    )


def activity(deal: uuid.UUID) -> dict[str, Any]:
    return {
        "deal_id": deal,
        "activity_id": uuid.uuid4(),
        "activity_type": "call",
        "channel": "phone",
        "direction": "inbound",
        "stage_id": "contacted",
    }


def records(messages: Sequence[tuple[str, bytes]], topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    return [
        ConsumerRecord(topic, 0, offset, 0, 0, key.encode(), value, None, len(key), len(value), ())
        for offset, (key, value) in enumerate(messages)
    ]


def history(seed: int) -> list[tuple[str, bytes]]:
    """The generated deals and the extras, interleaved keeping each stream's order, with some redelivered."""
    rng = random.Random(seed)
    streams: dict[str, list[tuple[str, bytes]]] = {}
    for key, value in [(k.decode(), v) for k, v in History(150, seed=seed).messages()] + extras(rng):
        streams.setdefault(key, []).append((key, value))
    queues = [list(q) for q in streams.values()]
    out: list[tuple[str, bytes]] = []
    while queues:
        q = rng.choice(queues)
        out.append(q.pop(0))
        if rng.random() < 0.03:  # a redelivery of something already sent
            out.append(rng.choice(out))
        if not q:
            queues.remove(q)
    return out


@contextlib.asynccontextmanager
async def runner(
    pool: asyncpg.Pool, namespace: str, projection: Projection, endpoints: Endpoints, dlq: str
) -> AsyncIterator[ProjectionRunner]:
    r = ProjectionRunner(
        pool,
        projection,
        namespace=namespace,
        bootstrap_servers=endpoints.kafka_bootstrap_servers,
        dead_letter_topic=dlq,
    )
    await r.setup()
    r._producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap_servers)
    await r._producer.start()
    try:
        yield r
    finally:
        await r._producer.stop()


async def tables(conn: Conn, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    return {
        t: [tuple(r.values()) for r in await conn.fetch(f"SELECT {cols} FROM {schema}.{t} ORDER BY 1, 2")]
        for t, cols in {
            "board": ", ".join(BOARD_COLUMNS),
            "pipeline_stages": "*",
            "follow_ups": "*",
            "projection_progress": "stream_id, version",
        }.items()
    }


@pytest.fixture
async def namespaces(pg_pool: asyncpg.Pool) -> AsyncIterator[tuple[str, str]]:
    tag = uuid.uuid4().hex[:8]
    yield f"t{tag}_batch", f"t{tag}_single"
    async with pg_pool.acquire() as conn:
        for s in await conn.fetch(
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE $1", f"t{tag}_%"
        ):
            await conn.execute(f'DROP SCHEMA "{s["schema_name"]}" CASCADE')


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_batch_apply_builds_the_board_the_per_event_apply_builds(
    pg_pool: asyncpg.Pool, endpoints: Endpoints, kafka_topic: Any, namespaces: tuple[str, str], seed: int
) -> None:
    topic, dlq = await kafka_topic("deals"), await kafka_topic("dlq", partitions=1)
    batched = board(topic)
    calls = 0

    async def counted(conn: Conn, facts: Sequence[Fact]) -> None:
        nonlocal calls
        calls += 1
        await batched.apply(conn, facts)

    messages = records(history(seed), topic)
    rng = random.Random(seed)
    async with (
        runner(pg_pool, namespaces[0], replace(batched, apply=counted), endpoints, dlq) as fast,
        runner(pg_pool, namespaces[1], replace(batched, apply=one_by_one(apply_board)), endpoints, dlq) as slow,
    ):
        i = 0
        while i < len(messages):
            n = rng.choice([1, 7, 50, 400, 2000])
            await asyncio.gather(fast.process(1, messages[i : i + n]), slow.process(1, messages[i : i + n]))
            i += n
        assert calls > 0
        assert fast.stats[1].dead_lettered == slow.stats[1].dead_lettered == 0
        assert (fast.stats[1].applied, fast.stats[1].skipped) == (slow.stats[1].applied, slow.stats[1].skipped)
        assert fast.stats[1].skipped > 0, "redeliveries were skipped"
        async with pg_pool.acquire() as conn:
            got, want = await tables(conn, fast.schema(1)), await tables(conn, slow.schema(1))
    assert len(want["board"]) > 100
    assert len(want["follow_ups"]) > 0
    assert got == want


async def test_a_bad_event_in_a_batch_is_dead_lettered_alone(
    pg_pool: asyncpg.Pool, endpoints: Endpoints, kafka_topic: Any, namespaces: tuple[str, str]
) -> None:
    topic, dlq = await kafka_topic("deals"), await kafka_topic("dlq", partitions=1)
    messages = [(k.decode(), v) for k, v in History(30, seed=5).messages()]
    bad_at = next(i for i, (_, v) in enumerate(messages) if b"StageChanged" in v and i > 50)
    key, value = messages[bad_at]
    messages[bad_at] = (
        key,
        value.replace(b'"direction":"forward"', b'"direction":"sideways"', 1).replace(
            b'"direction":"backward"', b'"direction":"sideways"', 1
        ),
    )
    assert b"sideways" in messages[bad_at][1]
    async with runner(pg_pool, namespaces[0], board(topic), endpoints, dlq) as r:
        await r.process(1, records(messages, topic))
        stats = r.stats[1]
        assert (stats.applied, stats.dead_lettered) == (len(messages) - 1, 1)
        async with pg_pool.acquire() as conn:
            progress = await conn.fetchval(
                f"SELECT version FROM {r.schema(1)}.projection_progress WHERE stream_id = $1", key
            )
            versions = dict(await conn.fetch(f"SELECT deal_id::text, version FROM {r.schema(1)}.board"))
    assert progress == max(CloudEvent.model_validate_json(v).streamversion for k, v in messages if k == key)
    assert len(versions) == 30, "every other deal is on the board"
    consumer = AIOKafkaConsumer(
        dlq,
        bootstrap_servers=endpoints.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        group_id=uuid.uuid4().hex,
    )
    await consumer.start()
    try:
        dead: list[ConsumerRecord[bytes, bytes]] = []
        async with asyncio.timeout(30):
            while not dead:
                for rs in (await consumer.getmany(timeout_ms=500)).values():
                    dead.extend(rs)
    finally:
        await consumer.stop()
    assert [d.value for d in dead] == [messages[bad_at][1]]
    assert "ValidationError" in dict(dead[0].headers)["dlq-reason"].decode()
