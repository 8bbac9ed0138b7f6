"""5. Growth: does a command slow down as the store and its streams grow?

- Append latency with 10,000 vs 1,000,000 events already stored (deal streams of ten events, filled in bulk
  from the rows a real deal's events are stored as), the same command path, rounds alternating the two stores.
- A command on a stream of 10, 1,000 and 10,000 events against one on a fresh stream: folded from nothing every
  time (no cache, no snapshot: what a naive event store does), from its snapshot in a process that has not seen
  it (a restart, a new replica), and from this process's state cache.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from datetime import UTC, datetime

from bench.common import Env, Report, cleanup, median, percentile
from services.deals import domain
from services.deals.handlers import Deals, deal_stream
from shared.decider import Context, Decider, execute
from shared.eventstore import StateCache
from shared.eventstore.postgres import PostgresEventStore
from shared.service import Storage


async def template_rows(deals: Deals) -> tuple[dict[str, object], dict[str, object]]:
    """The stored data of a real DealOpened and ActivityLogged, to fill streams in bulk with."""
    d = uuid.uuid4()
    ctx = Context(actor="u-bench")
    await deals.handle(d, domain.OpenDeal(title="Máy CNC", customer="Công ty An", owner_id="u-lan"), ctx)
    await deals.handle(d, domain.LogActivity(activity_type="call", channel="phone", outcome="ok"), ctx)
    opened, logged = await deals.store.read_stream(deal_stream(d))
    return opened.data, logged.data


async def fill(
    store: PostgresEventStore,
    templates: tuple[dict[str, object], dict[str, object]],
    streams: int,
    length: int,
    tag: str,
) -> list[uuid.UUID]:
    """``streams`` deals of ``length`` events each (opened, then activities), inserted by SQL in chunks."""
    opened, logged = templates
    ids = [uuid.uuid5(uuid.NAMESPACE_URL, f"{tag}-{i}") for i in range(streams)]
    chunk = max(1, 200_000 // length)
    async with store.pool.acquire() as conn:
        for start in range(0, streams, chunk):
            part = ids[start : start + chunk]
            await conn.execute(
                f"""INSERT INTO {store.schema}.events (stream_id, version, event_id, event_type, schema_version,
                                                      data, metadata, occurred_at)
                    SELECT 'deal-' || d, v, gen_random_uuid(),
                           CASE WHEN v = 1 THEN 'pipelines.deals.DealOpened' ELSE 'pipelines.deals.ActivityLogged' END,
                           CASE WHEN v = 1 THEN 1 ELSE 2 END,
                           jsonb_set(CASE WHEN v = 1 THEN $2::jsonb ELSE $3::jsonb END, '{{deal_id}}', to_jsonb(d::text)),
                           '{{"actor": "u-bench", "correlation_id": "bench"}}'::jsonb, now()
                    FROM unnest($1::uuid[]) AS d, generate_series(1, $4) AS v""",
                part,
                opened,
                logged,
                length,
            )
    return ids


def log_activity(store: PostgresEventStore, decider: Decider[domain.Deal]):
    async def run(deal_id: uuid.UUID) -> float:
        started = time.perf_counter()
        await execute(
            store,
            deal_stream(deal_id),
            decider,
            lambda state: domain.decide(
                state,
                domain.LogActivity(activity_type="call", channel="phone"),
                domain.Pipeline(),
                datetime.now(UTC),
                deal_id,
            ),
            metadata={"actor": "u-bench", "correlation_id": str(uuid.uuid4())},
        )
        return time.perf_counter() - started

    return run


async def store_size(env: Env, report: Report) -> None:
    small_settings, big_settings = env.settings(), env.settings()
    small, big = await Storage.open(small_settings, "deals"), await Storage.open(big_settings, "deals")
    try:
        deals = Deals(small.store, lambda: datetime.now(UTC))
        await deals.ensure_default_pipeline()
        templates = await template_rows(deals)
        sizes = {"small": env.size(10_000, 1_000), "big": env.size(1_000_000, 20_000)}
        ids = {
            "small": await fill(small.store, templates, sizes["small"] // 10, 10, "small"),
            "big": await fill(big.store, templates, sizes["big"] // 10, 10, "big"),
        }
        for s in (small, big):
            async with s.pool.acquire() as conn:
                await conn.execute(f"ANALYZE {s.store.schema}.events")
        commands = {
            "small": log_activity(small.store, domain.deal_decider),
            "big": log_activity(big.store, domain.deal_decider),
        }
        lat: dict[str, list[float]] = {"small": [], "big": []}
        per_round = env.size(500, 30)
        rng = __import__("random").Random(9)
        for _ in range(env.size(6, 2)):
            for name in ("small", "big"):
                for _ in range(per_round):  # random streams: the big store's index and heap are not all cached
                    lat[name].append(await commands[name](rng.choice(ids[name])))
        stored = {"small": f"{sizes['small']:,}", "big": f"{sizes['big']:,}"}
        for name in ("small", "big"):
            report.rows.append(
                [
                    "append",
                    f"{stored[name]} events stored",
                    len(lat[name]),
                    percentile(lat[name], 50) * 1000,
                    percentile(lat[name], 99) * 1000,
                    percentile(lat[name], 50) / percentile(lat["small"], 50),
                ]
            )
        ratio = percentile(lat["big"], 50) / percentile(lat["small"], 50)
        report.within(f"append p50 with {stored['big']} vs {stored['small']} stored", ratio, 0.8, 1.2)
        report.data["store_size"] = {"sizes": sizes, "latencies_s": lat}
    finally:
        await small.close()
        await big.close()
        await cleanup(small_settings)
        await cleanup(big_settings)


async def stream_length(env: Env, report: Report) -> None:
    settings = env.settings()
    storage = await Storage.open(settings, "deals")
    store = storage.store
    try:
        deals = Deals(store, lambda: datetime.now(UTC))
        await deals.ensure_default_pipeline()
        templates = await template_rows(deals)
        lengths = (1, 10, 1_000, 10_000) if not env.quick else (1, 10, 200)
        repeats = env.size(15, 3)
        streams = {n: await fill(store, templates, repeats, n, f"len{n}") for n in lengths}
        naive = dataclasses.replace(domain.deal_decider, snapshot_every=0)
        modes = {
            "folded from the start": (naive, True),
            "from its snapshot (new process)": (domain.deal_decider, True),
            "from this process's cache": (domain.deal_decider, False),
        }
        results: dict[str, dict[int, list[float]]] = {m: {n: [] for n in lengths} for m in modes}
        for mode, (decider, cold) in modes.items():
            command = log_activity(store, decider)
            for n in lengths:
                for i in range(repeats):
                    d = streams[n][i]
                    if mode.startswith("from its snapshot"):
                        store.states = StateCache()
                        await command(d)  # the first cold load writes the snapshot; measure the next one
                    if cold:
                        store.states = StateCache()
                    else:
                        await command(d)  # warm the cache
                    results[mode][n].append(await command(d))
        for mode in modes:
            fresh = median(results[mode][1])
            for n in lengths:
                m = median(results[mode][n])
                report.rows.append(
                    [
                        "command",
                        f"{n:,}-event stream, {mode}",
                        len(results[mode][n]),
                        m * 1000,
                        percentile(results[mode][n], 99) * 1000,
                        m / fresh,
                    ]
                )
        longest = lengths[-1]
        for mode in ("from its snapshot (new process)", "from this process's cache"):
            ratio = median(results[mode][longest]) / median(results[mode][1])
            report.at_most(f"command on a {longest:,}-event stream / on a fresh stream, {mode}", ratio, 2.0)
        report.data["stream_length"] = {m: {str(n): v for n, v in r.items()} for m, r in results.items()}
        report.notes.append(
            f"Stream-length rows: median of {repeats} commands per length and mode, each on its own stream; "
            f"snapshots every {domain.deal_decider.snapshot_every} events (docs/decisions/0009). "
            "'folded from the start' is a decider without snapshots and an empty cache: every event read and folded."
        )
    finally:
        await storage.close()
        await cleanup(settings)


async def run(env: Env) -> Report:
    report = Report(
        "growth",
        "Growth: a deal command as the store and the stream grow",
        ["what", "case", "commands", "p50 ms", "p99 ms", "ratio to first row of its group"],
    )
    await store_size(env, report)
    await stream_length(env, report)
    return report
