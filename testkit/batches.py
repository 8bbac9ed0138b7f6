"""Any split of a history into batches gives a read model the tables that batches of one give it.

A read model is one ``apply(conn, facts)`` for a batch of events in order; the runner hands it batches of any
size (up to ``catch_up_batch_size`` while behind) and, when a batch fails, the same events again as batches of
one. So a read model is correct only if every split of a history into batches builds the same tables. This module
checks that on real PostgreSQL, through the real runner:

    outcome = await apply_in_batches(pool, board(topic), messages, sizes=[7, 1, 300])
    await assert_splits_agree(pool, board(topic), messages, sizes=[7, 1, 300])  # against batches of one
    await assert_splits_agree(pool, board(topic), messages, sizes=cut_at([5, 6, 90], len(messages)))

``messages`` are (key, value) pairs as Kafka holds them (CloudEvents JSON, key = stream id), in the order one
partition delivers them; they may repeat (a redelivery) or be bad (a dead letter). Each run gets a fresh
namespace: ``ProjectionRunner.setup`` makes generation 1's schema with the projection's DDL, then
``ProjectionRunner.process`` applies each batch in its own transaction with the runner's whole discipline
(progress per stream, skipping what was applied, typed events of the accepted types only, a failed batch
replayed one event at a time, dead letters). Nothing is read from or sent to Kafka: records are built in
memory and dead letters are kept, not produced. The schemas are dropped afterwards.

Compared: every table the projection names in ``tables`` and its ``projection_progress`` (all columns but
``ignore_columns``, rows in a total order), the runner's applied / skipped / dead-lettered counts, and which
messages were dead-lettered. Use it with hypothesis to draw the histories and the sizes (a property test), as
tests/integration/test_read_model_batches.py does for the sales board and the analytics.

For another read model: its ``Projection`` (``tables`` must name every table its DDL makes) and a history of its
topics' messages with no gap (each stream's versions 1, 2, … in order; repeats are fine), e.g. from a generator
like testkit/deals_history.py plus the odd cases it lacks. Draw the cut positions (``cut_at``) rather than many
small sizes, and keep the histories few and small: batches of one cost a transaction per event, so compute their
``Outcome`` once per history and pass it as ``one_by_one``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import asyncpg
from aiokafka import AIOKafkaProducer, ConsumerRecord

from shared.messaging.decoded import Window
from shared.messaging.projections import Projection
from shared.messaging.runner import ProjectionRunner
from shared.store.db import Conn, identifier

Message = tuple[bytes, bytes]  # (key, value) as Kafka holds it
TOPIC = "history"  # the records' topic: a name only, nothing is read from Kafka


@dataclass(frozen=True)
class Outcome:
    """What a run of a history left: each table's rows (ordered) and what the runner counted."""

    tables: dict[str, list[tuple[Any, ...]]]
    applied: int
    skipped: int
    dead_lettered: list[int]  # the positions in the history of the messages sent to the dead-letter topic


class _DeadLetters:
    """Stands in for the runner's Kafka producer: keeps the dead letters' offsets instead of sending them."""

    def __init__(self) -> None:
        self.offsets: list[int] = []

    async def send(self, topic: str, value: bytes, key: bytes | None, headers: Any) -> asyncio.Future[None]:
        source = dict(headers)["dlq-source"].decode()
        self.offsets.append(int(source.rsplit("/", 1)[1]))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def records(messages: Sequence[Message], topic: str = TOPIC) -> list[ConsumerRecord[bytes, bytes]]:
    """The messages as one partition's consumer records, offsets counting from 0."""
    return [
        ConsumerRecord(topic, 0, offset, 0, 0, key, value, None, len(key), len(value), ())
        for offset, (key, value) in enumerate(messages)
    ]


def batches(items: Sequence[Any], sizes: Iterable[int]) -> list[Sequence[Any]]:
    """``items`` cut into consecutive batches of the given sizes; the sizes repeat until every item is in one."""
    cuts = [max(n, 1) for n in sizes] or [1]
    out: list[Sequence[Any]] = []
    i = 0
    while i < len(items):
        n = cuts[len(out) % len(cuts)]
        out.append(items[i : i + n])
        i += n
    return out


def cut_at(positions: Iterable[int], total: int) -> list[int]:
    """The batch sizes that cut a history of ``total`` messages before each of ``positions`` (those inside it)."""
    cuts = sorted({p for p in positions if 0 < p < total} | {0, total})
    return [b - a for a, b in itertools.pairwise(cuts)] or [1]


async def apply_in_batches(
    pool: asyncpg.Pool,
    projection: Projection,
    messages: Sequence[Message],
    sizes: Iterable[int],
    *,
    ignore_columns: Collection[str] = ("updated_at",),
) -> Outcome:
    """Build the projection's generation 1 in a fresh namespace from ``messages`` cut into batches of ``sizes``
    (repeated; ``[1]`` is batches of one), each through ``ProjectionRunner.process``; its tables, then drop it."""
    namespace = identifier(f"tb_{uuid.uuid4().hex[:12]}")
    runner = ProjectionRunner(
        pool, projection, namespace=namespace, bootstrap_servers="unused:9092", dead_letter_topic="dead"
    )
    letters = _DeadLetters()
    runner._producer = cast(AIOKafkaProducer, letters)
    try:
        await runner.setup()
        for batch in batches(records(messages), sizes):
            gaps = await runner.process(1, batch)
            assert not gaps, f"the history has a gap: {gaps}"
        stats = runner.stats[1]
        async with pool.acquire() as conn:
            tables = await _tables(conn, runner.schema(1), (*projection.tables, "projection_progress"), ignore_columns)
        return Outcome(tables, stats.applied, stats.skipped, letters.offsets)
    finally:
        async with pool.acquire() as conn:
            for schema in (runner.schema(1), namespace):
                await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


async def assert_splits_agree(
    pool: asyncpg.Pool,
    projection: Projection,
    messages: Sequence[Message],
    sizes: Iterable[int],
    *,
    one_by_one: Outcome | None = None,
    ignore_columns: Collection[str] = ("updated_at",),
) -> Outcome:
    """The history in batches of ``sizes`` leaves what it leaves in batches of one (``one_by_one``, if already
    known for this history: reuse it across splits); returns the batches-of-one outcome."""
    sizes = list(sizes)
    want = one_by_one or await apply_in_batches(pool, projection, messages, [1], ignore_columns=ignore_columns)
    got = await apply_in_batches(pool, projection, messages, sizes, ignore_columns=ignore_columns)
    assert_same(got, want, f"{projection.name} in batches of {list(sizes)}")
    return want


def assert_same(got: Outcome, want: Outcome, what: str) -> None:
    """Every table of ``want`` has the same rows in ``got``, and the runner counted the same."""
    for table, rows in want.tables.items():
        assert got.tables[table] == rows, f"{table} differs: {what}"
    assert (got.applied, got.skipped, got.dead_lettered) == (want.applied, want.skipped, want.dead_lettered), what


async def apply_together(
    pool: asyncpg.Pool,
    projections: Sequence[Projection],
    messages: Sequence[Message],
    sizes: Iterable[int],
    *,
    topic: str,
    seed: int = 0,
    ignore_columns: Collection[str] = ("updated_at",),
) -> list[Outcome]:
    """Build each projection's generation 1 (each in its own fresh namespace) from ``messages`` on ``topic`` cut into
    batches of ``sizes``, their runners sharing one ``Window`` of decoded records as a projector process's do
    (decision 0034): each batch goes to every runner in turn, in an order drawn from ``seed``, so the first decodes
    it and the others take its envelopes and events. Each projection's outcome, in order; the schemas are dropped."""
    window = Window()
    runners = [
        ProjectionRunner(
            pool,
            p,
            namespace=identifier(f"tb_{uuid.uuid4().hex[:12]}"),
            bootstrap_servers="unused:9092",
            dead_letter_topic="dead",
            window=window,
        )
        for p in projections
    ]
    letters = [_DeadLetters() for _ in runners]
    rng = random.Random(seed)
    try:
        with contextlib.ExitStack() as reading:
            for runner, dead in zip(runners, letters, strict=True):
                runner._producer = cast(AIOKafkaProducer, dead)
                await runner.setup()
                reading.enter_context(runner.reading(1))
            cut = batches(records(messages, topic), sizes)
            for batch in cut:
                for runner in rng.sample(runners, len(runners)):
                    gaps = await runner.process(1, batch)
                    assert not gaps, f"the history has a gap: {gaps}"
        # from its second batch on, a runner finds the others' readers behind it: it keeps what it decodes for them
        assert len(runners) < 2 or len(cut) < 2 or window.shared, "the runners shared no decoded record"
        out = []
        for runner, dead in zip(runners, letters, strict=True):
            stats, names = runner.stats[1], (*runner.projection.tables, "projection_progress")
            async with pool.acquire() as conn:
                tables = await _tables(conn, runner.schema(1), names, ignore_columns)
            out.append(Outcome(tables, stats.applied, stats.skipped, dead.offsets))
        return out
    finally:
        async with pool.acquire() as conn:
            for runner in runners:
                for schema in (runner.schema(1), runner.namespace):
                    await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


async def _tables(
    conn: Conn, schema: str, tables: Iterable[str], ignore_columns: Collection[str]
) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table in tables:
        columns = [
            identifier(r["column_name"])
            for r in await conn.fetch(
                """SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2
                   ORDER BY ordinal_position""",
                schema,
                table,
            )
            if r["column_name"] not in ignore_columns
        ]
        assert columns, f"no table {schema}.{table}"
        listed = ", ".join(columns)
        rows = await conn.fetch(f"SELECT {listed} FROM {schema}.{identifier(table)} ORDER BY ROW({listed})::text")
        out[table] = [tuple(r.values()) for r in rows]
    return out
