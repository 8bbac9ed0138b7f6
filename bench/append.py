"""1. Append: commands per second and p50/p99 latency through the event store — load the stream, fold it, decide,
append with the expected version — with 1, 8 and 32 concurrent writers, beside raw asyncpg doing the same read
and the same version-checked INSERT in the same transactions.

Both paths run against one schema, on streams of their own that start alike (a deal opened, ten activities);
writer w only touches streams w, w + writers, …, so no command loses a race. Rounds alternate the two paths.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg

from bench.common import Env, Report, cleanup, median, percentile
from services.deals import domain
from services.deals.handlers import Deals, deal_stream
from shared.edge.service import Storage
from shared.store.commands import Context, execute
from shared.store.postgres import PostgresEventStore

WRITERS = (1, 8, 32)
Command = Callable[[int], Awaitable[None]]


def activity() -> domain.LogActivity:
    return domain.LogActivity(
        activity_id=uuid.uuid4(), activity_type="call", channel="phone", outcome="called back", duration_minutes=5
    )


async def open_deals(deals: Deals, n: int, history: int) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(n)]
    ctx = Context(actor="u-bench")
    for d in ids:
        await deals.handle(d, domain.OpenDeal(title="Máy CNC", customer="Công ty An", owner_id="u-lan"), ctx)
        for _ in range(history):
            await deals.handle(d, activity(), ctx)
    return ids


def project_command(store: PostgresEventStore, ids: list[uuid.UUID]) -> Command:
    """The project's path: shared.core.decider.execute with the deals decider and domain."""

    async def run(i: int) -> None:
        deal_id = ids[i]
        await execute(
            store,
            deal_stream(deal_id),
            domain.deal_decider,
            lambda state: domain.decide(state, activity(), domain.Pipeline(), datetime.now(UTC), deal_id),
            metadata={"actor": "u-bench", "correlation_id": str(uuid.uuid4())},
        )

    return run


def raw_command(pool: asyncpg.Pool, schema: str, ids: list[uuid.UUID], insert_sql: str) -> Command:
    """By hand: read the stream's rows, decode their JSON, then the same version-checked INSERT in a transaction."""

    async def run(i: int) -> None:
        stream = deal_stream(ids[i])
        async with pool.acquire() as conn:
            rows = await conn.fetch(
                f"""SELECT stream_id, version, position, event_id, event_type, schema_version, data, metadata,
                           occurred_at, recorded_at, tx_id
                    FROM {schema}.events WHERE stream_id = $1 ORDER BY version""",
                stream,
            )
        version = rows[-1]["version"]
        data = {
            "deal_id": str(ids[i]),
            "activity_id": str(uuid.uuid4()),
            "activity_type": "call",
            "channel": "phone",
            "direction": "outbound",
            "stage_id": "qualify",
            "outcome": "called back",
            "duration_minutes": 5,
            "note": None,
        }
        metadata = {"actor": "u-bench", "correlation_id": str(uuid.uuid4())}
        async with pool.acquire() as conn, conn.transaction():
            inserted = await conn.fetch(
                insert_sql,
                stream,
                version,
                uuid.uuid4(),
                "pipelines.deals.ActivityLogged",
                2,
                data,
                json.loads(json.dumps(metadata)),
                datetime.now(UTC),
                None,  # no time order to keep (a command at now)
                False,  # not a reaction's clamp
            )
        assert inserted, "the raw path lost a race it cannot lose"

    return run


async def drive(command: Command, writers: int, n_streams: int, per_writer: int) -> tuple[float, list[float]]:
    """``writers`` tasks, each running ``per_writer`` commands on its own streams; returns (commands/s, latencies)."""
    latencies: list[float] = []

    async def writer(w: int) -> None:
        mine = list(range(w, n_streams, writers))
        for k in range(per_writer):
            started = time.perf_counter()
            await command(mine[k % len(mine)])
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    return writers * per_writer / (time.perf_counter() - started), latencies


async def run(env: Env) -> Report:
    settings = env.settings(db_pool_size=max(WRITERS))
    storage = await Storage.open(settings, "deals")  # the service's store: personal fields sealed
    store, pool, schema = storage.store, storage.pool, storage.store.schema
    report = Report(
        "append",
        "Append: load, decide, append with the expected version (deals, streams of ~10 events)",
        ["writers", "path", "commands/s", "p50 ms", "p99 ms", "ratio (cmd/s)"],
    )
    try:
        deals = Deals(store, lambda: datetime.now(UTC))
        await deals.ensure_default_pipeline()
        n_streams = env.size(256, 64)
        history = 10
        project_ids = await open_deals(deals, n_streams, history)
        uncached_ids = await open_deals(deals, n_streams, history)
        raw_ids = await open_deals(deals, n_streams, history)
        uncached = copy.copy(store)
        uncached.states = None  # reads and folds the whole stream each time, as the raw path does
        paths = {
            "project": project_command(store, project_ids),
            "project, no state cache": project_command(uncached, uncached_ids),
            "raw asyncpg": raw_command(pool, schema, raw_ids, store._append_one_sql),
        }
        rounds = env.size(5, 2)
        commands = env.size(1600, 64)  # per round, split among the writers
        for writers in WRITERS:
            rates: dict[str, list[float]] = {p: [] for p in paths}
            lats: dict[str, list[float]] = {p: [] for p in paths}
            for _ in range(rounds):
                for name, command in paths.items():
                    rate, latencies = await drive(command, writers, n_streams, max(1, commands // writers))
                    rates[name].append(rate)
                    lats[name].extend(latencies)
            base = median(rates["raw asyncpg"])
            for name in paths:
                rate = median(rates[name])
                report.rows.append(
                    [
                        writers,
                        name,
                        rate,
                        percentile(lats[name], 50) * 1000,
                        percentile(lats[name], 99) * 1000,
                        rate / base if base else 0.0,
                    ]
                )
                report.data[f"{writers}:{name}:rates"] = rates[name]
            ratio = median(rates["project"]) / base if base else 0.0
            report.at_least(f"append, {writers} writers: project / raw asyncpg (commands/s)", ratio, 0.8)
            ratio = median(rates["project, no state cache"]) / base if base else 0.0
            report.at_least(f"append, {writers} writers: project without its cache / raw asyncpg", ratio, 0.8)
        report.data["rounds"] = rounds
        report.data["commands_per_round"] = commands
        report.notes.append(
            f"{rounds} rounds per path and writer count, alternating; {commands} commands per round; "
            f"{n_streams} streams per path; pool of {max(WRITERS)} connections; PostgreSQL fsync and "
            "synchronous_commit on (every command waits for its WAL flush)."
        )
        report.notes.append(
            "The raw path reads and decodes the whole stream for every command, as the project did before "
            "decision 0009; the project reads only the events after the state it cached (usually the one it "
            "appended last), so its lead grows with the streams. 'project, no state cache' does the raw path's "
            "read plus the typed fold: the kernel's own overhead."
        )
        return report
    finally:
        await storage.close()
        await cleanup(settings)
