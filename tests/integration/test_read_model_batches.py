"""Any split of a history into batches builds the deals read models that batches of one build (testkit/batches.py).

Each read model is one ``apply`` for a batch of events; the runner applies a failed batch again as batches of one.
Hypothesis draws a history (generated deals plus what the generator lacks: follow-ups, a redefined pipeline,
delivery risk, line changes, updates of a deal never opened, a second opening, redelivered messages) and the
batch sizes; the tables, the runner's counts and the dead letters must equal those of batches of one. Real
PostgreSQL through the real runner; the dead-letter test also sends to real Kafka.
"""

from __future__ import annotations

import contextlib
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.deals import events as ev
from services.deals.analytics import analytics
from services.deals.domain import DEFAULT_STAGES
from services.deals.projections import board
from shared.core.events import DomainEvent
from shared.core.money import Money
from shared.messaging.envelope import CloudEvent
from shared.messaging.projections import Projection
from shared.messaging.runner import ProjectionRunner
from shared.ops.stack import Endpoints
from testkit.batches import Outcome, assert_splits_agree, cut_at, records
from testkit.deals_history import History
from testkit.kafka import read_records

pytestmark = [pytest.mark.pg, pytest.mark.kafka]

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SNAP = {s.stage_id: ev.StageSnapshot(**s.model_dump(exclude={"stuck_after_days"})) for s in DEFAULT_STAGES}


def envelope(stream: str, version: int, event: DomainEvent, at: datetime, rng: random.Random) -> bytes:
    return CloudEvent(
        id=str(uuid.UUID(int=rng.getrandbits(128))),
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


def extras(rng: random.Random, deals: int) -> list[tuple[str, bytes]]:
    """Histories the generator does not make: follow-ups, a redefined pipeline, odd orders of events."""
    out: list[tuple[str, bytes]] = []
    stages = tuple(s.model_copy(update={"name": s.name + " (v2)"}) for s in DEFAULT_STAGES)
    out.append(
        (
            "pipeline-default",
            envelope(
                "pipeline-default", 2, ev.PipelineDefined(pipeline_id="default", name="v2", stages=stages), T0, rng
            ),
        )
    )
    for d in range(deals):
        deal = uuid.UUID(int=rng.getrandbits(128))
        stream, v, at = f"deal-{deal}", 0, T0 + timedelta(hours=d)

        def add(event: DomainEvent, stream: str = stream) -> None:
            nonlocal v, at
            v += 1
            at += timedelta(minutes=rng.randint(1, 600))
            out.append((stream, envelope(stream, v, event, at, rng)))

        if d % 10 == 0:  # events of a deal never opened: no row, only progress (or a dead letter)
            add(ev.DealValueChanged(deal_id=deal, old=Money.of(1), new=Money.of(2)))
            add(ev.ActivityLogged(**activity(deal, rng)))
            add(ev.DealProbabilityOverridden(deal_id=deal, probability=Decimal("0.2"), reason="r"))
            add(
                ev.StageChanged(
                    deal_id=deal,
                    from_stage=SNAP["target_identified"],
                    to_stage=SNAP["contacted"],
                    direction="forward",
                    entered_from_at=at,
                    changed_at=at,
                )
            )
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
                        ev.ActivityLogged(**activity(deal, rng)),
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


def activity(deal: uuid.UUID, rng: random.Random) -> dict[str, Any]:
    return {
        "deal_id": deal,
        "activity_id": uuid.UUID(int=rng.getrandbits(128)),
        "activity_type": "call",
        "channel": "phone",
        "direction": "inbound",
        "stage_id": "contacted",
    }


def history(seed: int, deals: int = 8) -> list[tuple[bytes, bytes]]:
    """Generated deals and the extras, interleaved keeping each stream's order, with some redelivered."""
    rng = random.Random(seed)
    streams: dict[bytes, list[tuple[bytes, bytes]]] = {}
    generated = list(History(deals, seed=seed).messages())
    for key, value in generated + [(k.encode(), v) for k, v in extras(rng, deals=deals)]:
        streams.setdefault(key, []).append((key, value))
    queues = [list(q) for q in streams.values()]
    out: list[tuple[bytes, bytes]] = []
    while queues:
        q = rng.choice(queues)
        out.append(q.pop(0))
        if rng.random() < 0.03:  # a redelivery of something already sent
            out.append(rng.choice(out))
        if not q:
            queues.remove(q)
    return out


SPLITS = settings(
    max_examples=10,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
seeds = st.integers(min_value=0, max_value=2)  # a few histories, each applied in batches of one once
cuts = st.lists(st.integers(min_value=1, max_value=300), max_size=15)  # where batches end
_one_by_one: dict[tuple[str, int], Outcome] = {}  # (read model, seed): the history applied in batches of one


async def splits_agree(pool: asyncpg.Pool, projection: Projection, seed: int, at: list[int]) -> Outcome:
    """The history of ``seed`` cut into batches at those positions builds what batches of one build."""
    key, messages = (projection.name, seed), history(seed)
    sizes = cut_at(at, len(messages))
    _one_by_one[key] = await assert_splits_agree(pool, projection, messages, sizes, one_by_one=_one_by_one.get(key))
    return _one_by_one[key]


@SPLITS
@given(seed=seeds, at=cuts)
async def test_any_split_into_batches_builds_the_board_batches_of_one_build(
    pg_pool: asyncpg.Pool, seed: int, at: list[int]
) -> None:
    want = await splits_agree(pg_pool, board("deals"), seed, at)
    assert len(want.tables["board"]) >= 8
    assert want.tables["follow_ups"], "follow-ups were started"
    assert not want.dead_lettered


@settings(SPLITS, max_examples=5)
@given(seed=seeds, at=cuts)
async def test_any_split_into_batches_builds_the_analytics_batches_of_one_build(
    pg_pool: asyncpg.Pool, seed: int, at: list[int]
) -> None:
    want = await splits_agree(pg_pool, analytics("deals"), seed, at)
    assert want.tables["deal_versions"] and want.tables["stage_visits"]
    assert want.dead_lettered, "a deal opened twice, a stage change of a deal never opened: dead letters"


@pytest.fixture
async def namespace(pg_pool: asyncpg.Pool) -> AsyncIterator[str]:
    name = f"t{uuid.uuid4().hex[:8]}_batch"
    yield name
    async with pg_pool.acquire() as conn:
        for s in await conn.fetch(
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE $1", f"{name}%"
        ):
            await conn.execute(f'DROP SCHEMA "{s["schema_name"]}" CASCADE')


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


async def test_a_bad_event_in_a_batch_is_dead_lettered_alone(
    pg_pool: asyncpg.Pool, endpoints: Endpoints, kafka_topic: Any, namespace: str
) -> None:
    topic, dlq = await kafka_topic("deals"), await kafka_topic("dlq", partitions=1)
    messages = list(History(30, seed=5).messages())
    bad_at = next(i for i, (_, v) in enumerate(messages) if b"StageChanged" in v and i > 50)
    key, value = messages[bad_at]
    messages[bad_at] = (
        key,
        value.replace(b'"direction":"forward"', b'"direction":"sideways"', 1).replace(
            b'"direction":"backward"', b'"direction":"sideways"', 1
        ),
    )
    assert b"sideways" in messages[bad_at][1]
    async with runner(pg_pool, namespace, board(topic), endpoints, dlq) as r:
        await r.process(1, records(messages, topic))
        stats = r.stats[1]
        assert (stats.applied, stats.dead_lettered) == (len(messages) - 1, 1)
        async with pg_pool.acquire() as conn:
            progress = await conn.fetchval(
                f"SELECT version FROM {r.schema(1)}.projection_progress WHERE stream_id = $1", key.decode()
            )
            versions = dict(await conn.fetch(f"SELECT deal_id::text, version FROM {r.schema(1)}.board"))
    assert progress == max(CloudEvent.model_validate_json(v).streamversion for k, v in messages if k == key)
    assert len(versions) == 30, "every other deal is on the board"
    dead = await read_records(endpoints.kafka_bootstrap_servers, dlq, 1)
    assert [d.value for d in dead] == [messages[bad_at][1]]
    assert "ValidationError" in dict(dead[0].headers)["dlq-reason"].decode()
